"""Known answers of the specs' decision rules (``specs.support.claims``) at their edges: exact p-values, the
strictness of each threshold, the numbers and the summary every Check reports, and what the feature-optimisation
rule moves. Planted models with Q-values set by hand (``tests/planted.py``); expected values computed by hand or
by an independent library call, never by the rule itself.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import stats as sps

from specs.support import claims, controls
from specs.support.budget import PROFILES
from tests.planted import PLANTED_HEAD, planted_model, random_observations


@pytest.fixture(scope="module")
def model():
    return planted_model()


def _constant_q(model, q):
    """The planted network with Q-values that depend on nothing: Q = q in every scene."""
    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        clone.output_layer.predict.weight.zero_()
        clone.output_layer.predict.bias.copy_(torch.tensor(q))
    return clone


# ------------------------------------------------------------------------------------------ rate verdict
def test_rate_verdict_p_values_are_the_exact_binomial_tails():
    verdict, p = claims.rate_verdict([False] * 100, 0.15)
    assert verdict == "supported" and p == pytest.approx(0.85 ** 100, rel=1e-9)  # P(K <= 0 | n=100, 0.15)
    verdict, p = claims.rate_verdict([True] * 50 + [False] * 50, 0.15)
    assert verdict == "refuted" and p == pytest.approx(sps.binom.sf(49, 100, 0.15), rel=1e-9)  # P(K >= 50)
    verdict, p = claims.rate_verdict([True] * 2 + [False] * 8, 0.15)
    assert verdict == "inconclusive" and p == pytest.approx(sps.binom.cdf(2, 10, 0.15), rel=1e-9)  # P(K <= 2)


def test_rate_verdict_rejects_only_below_alpha():
    # ten of ten at a bound of 1/2: the one-sided tail is exactly 2**-10; at alpha = that tail neither side rejects
    assert claims.rate_verdict([False] * 10, 0.5, alpha=2 ** -10) == ("inconclusive", 2 ** -10)
    assert claims.rate_verdict([False] * 10, 0.5, alpha=2 ** -9) == ("supported", 2 ** -10)
    assert claims.rate_verdict([True] * 10, 0.5, alpha=2 ** -10) == ("inconclusive", 1.0)
    assert claims.rate_verdict([True] * 10, 0.5, alpha=2 ** -9) == ("refuted", 2 ** -10)


def test_ablation_design_is_the_documented_design():
    budget = PROFILES["quick"]
    design = claims.ablation_design(budget)
    assert (design.alpha, design.direction, design.max_pairs, design.min_effect) == (0.05, "increase", 40, 0.05)
    assert claims.ablation_design(PROFILES["default"], "decrease").direction == "decrease"
    assert claims.ablation_design(PROFILES["default"], "decrease").max_pairs == 300


# ------------------------------------------------------------------------------------------ slowing, IG
def test_slows_in_most_counts_a_tie_as_not_slowing(model):
    obs = random_observations(40, seed=11, min_present=3, max_present=3)
    tie = claims.slows_in_most(_constant_q(model, (1.0, 1.0, 0.0)), obs)  # SLOWER = IDLE: margin exactly 0
    low, high = claims.wilson_interval(0, 40)
    assert not tie.holds and tie.numbers == {"share": 0.0, "ci": (low, high), "n": 40}
    assert tie.summary == f"slows down in 0/40 scenes (95% CI {low:.2f}-{high:.2f}; needs > 0.5)"
    slows = claims.slows_in_most(_constant_q(model, (1.0, 0.0, 0.5)), obs)  # SLOWER best by 0.5
    assert slows.holds and slows.numbers["share"] == 1.0 and slows.numbers["n"] == 40
    assert slows.summary.startswith("slows down in 40/40 scenes")
    keeps = claims.slows_in_most(_constant_q(model, (0.5, 0.0, 1.0)), obs)  # FASTER best by 0.5
    assert not keeps.holds and keeps.numbers["share"] == 0.0


def test_beats_random_needs_strictly_more_than_the_95th_percentile():
    randoms = np.arange(21) / 20  # 0, 0.05, ..., 1: the 95th percentile is 0.95, the median 0.5
    at = claims.beats_random(0.95, randoms, 95, 100, "agent")
    low, high = claims.wilson_interval(95, 100)
    assert not at.holds
    assert at.numbers == {"share": 0.95, "ci": (low, high), "n": 100, "random_q95": 0.95, "random_median": 0.5}
    assert at.summary == (f"agent: IG ranks the nearest crossing car first in 95/100 scenes (95% CI {low:.2f}-"
                          f"{high:.2f}); random networks: median 0.50, 95th percentile 0.95")
    assert claims.beats_random(0.96, randoms, 96, 100, "agent").holds


# ------------------------------------------------------------------------------------------ QK position
def test_score_rule_reports_the_top_descriptor_and_its_eta(model):
    from interp.probes.qk_ov import score_dependence

    obs = random_observations(200, seed=8, min_present=4)
    dep, check = claims.score_tracks_position(model, PLANTED_HEAD, obs)
    top, eta = check.numbers["top"], check.numbers["eta2"]
    assert check.holds and top in claims.POSITION_DESCRIPTORS and set(check.numbers) == {"top", "eta2"}
    reference = score_dependence(model, obs)
    assert top == reference.most_dependent[PLANTED_HEAD] and eta == float(reference.eta_squared[PLANTED_HEAD].max())
    assert check.summary == (f"head {PLANTED_HEAD}'s score tracks {top} most (eta^2 {eta:.2f}; needs a position "
                             f"descriptor with eta^2 >= {claims.MIN_ETA_SQUARED})")
    # uniform attention: no descriptor moves the score, so there is no top one and eta^2 counts as 0
    flat = claims.score_tracks_position(controls.uniform_attention(model), PLANTED_HEAD, obs)[1]
    assert flat.numbers == {"top": None, "eta2": 0.0} and not flat.holds


# ------------------------------------------------------------------------------------------ feature optimisation
def _one_car(n: int, seed: int):
    obs = random_observations(n, seed=seed, min_present=2, max_present=2)
    rows = np.array([int(np.flatnonzero(o[1:, 0] > 0.5)[0]) + 1 for o in obs])
    return obs, rows


def _slows_for_close_cars(model):
    """Q_SLOWER = 2 z0 - 1 (head 0's closeness read-out): slowing pays more the nearer the car is to the centre."""
    from tests.planted import PLANTED_NEURON

    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        clone.output_layer.predict.weight[0].zero_()
        clone.output_layer.predict.weight[0, PLANTED_NEURON] = 2.0
        clone.output_layer.predict.bias[0] = -1.0
    return clone


def test_feature_optimisation_rule_moves_only_the_named_car_and_counts_it(model):
    from interp.probes.feature_optimisation import optimise_features, q_objective

    obs, rows = _one_car(24, seed=9)
    opt, check = claims.optimised_car_moves_closer(_slows_for_close_cars(model), obs, rows)
    reference = optimise_features(_slows_for_close_cars(model), obs, q_objective(claims.SLOWER, versus=claims.IDLE),
                                  rows=rows, features=claims.OPTIMISED_FEATURES, steps=claims.OPTIMISATION_STEPS,
                                  lr=claims.OPTIMISATION_LR)
    assert opt.objective == reference.objective and opt.features == ("x", "y", "vx", "vy")
    np.testing.assert_array_equal(opt.optimised, reference.optimised)
    assert len(opt.trace) == claims.OPTIMISATION_STEPS + 1
    idx = np.arange(len(obs))
    moved = np.zeros(obs.shape, bool)
    moved[idx, rows, 1:5] = True  # x, y, vx, vy of the named car only
    np.testing.assert_array_equal(opt.optimised[~moved], obs[~moved])
    # slowing pays more for a nearer car: every car ends nearer the centre (distance of (x, y), columns 1 and 2)
    before = np.hypot(obs[idx, rows, 1], obs[idx, rows, 2])
    after = np.hypot(opt.optimised[idx, rows, 1], opt.optimised[idx, rows, 2])
    assert np.all(after < before - 1e-4)
    p = 0.5 ** 24  # the one-sided sign test of 24 closer, 0 farther
    assert check.holds and check.numbers == {"closer": 24, "farther": 0, "p_value": pytest.approx(p, rel=1e-9),
                                             "n": 24}
    assert check.summary == ("optimising for slowing moved the car closer to the intersection centre in 24, farther "
                             f"in 0 scenes (sign test p={check.numbers['p_value']:.2g})")
    away = claims.optimised_car_moves_closer(controls.negated_q(_slows_for_close_cars(model)), obs, rows)[1]
    assert not away.holds and away.numbers["closer"] == 0 and away.numbers["farther"] == 24
    assert away.numbers["p_value"] == pytest.approx(1.0)


def test_feature_optimisation_rule_ignores_cars_that_do_not_move(model):
    obs, rows = _one_car(12, seed=10)
    obs[np.arange(12), rows, 1:3] = 0.3  # inside the env's ranges: with no gradient nothing moves them
    opt, check = claims.optimised_car_moves_closer(_constant_q(model, (0.5, 0.0, 1.0)), obs, rows)
    np.testing.assert_array_equal(opt.optimised, obs)
    assert check.numbers == {"closer": 0, "farther": 0, "p_value": 1.0, "n": 12} and not check.holds


# ------------------------------------------------------------------------------------------ side specialisation
def test_side_rule_adjusts_with_holm_over_both_directions_of_every_head():
    from statsmodels.stats.multitest import multipletests

    m = planted_model()  # the planted pairs of the side control's can-pass test (tests/test_controls_can_pass.py)
    n = 30
    left = random_observations(n, seed=15, min_present=3, max_present=3, shuffle_rows=False)
    right = random_observations(n, seed=16, min_present=2, max_present=2, shuffle_rows=False)
    left[:, 1, 1:3] = 0.05
    left[:, 2, 1:3] = 0.9
    right[:, 1, 1:3] = 0.9
    rows = np.ones(n, dtype=int)
    check = claims.heads_specialise_by_side(m, left, rows, right, rows, random_spread=0.05)
    idx = np.arange(n)
    diff = claims.attention_pattern(m, left)[idx, :, rows] - claims.attention_pattern(m, right)[idx, :, rows]
    raw = ([float(sps.wilcoxon(diff[:, h], alternative="greater", zero_method="zsplit").pvalue) for h in range(m.n_heads)]
           + [float(sps.wilcoxon(diff[:, h], alternative="less", zero_method="zsplit").pvalue) for h in range(m.n_heads)])
    holm = multipletests(raw, alpha=claims.ALPHA, method="holm")[1]
    np.testing.assert_allclose(check.numbers["p_left_holm"] + check.numbers["p_right_holm"], holm, rtol=1e-12)
    assert check.numbers["left_heads"] == [0] and check.numbers["right_heads"] == [1]
    # no random spread given: any spread above 0 will do; a spread equal to the random one is not above it
    assert claims.heads_specialise_by_side(m, left, rows, right, rows).holds
    assert not claims.heads_specialise_by_side(m, left, rows, right, rows, random_spread=check.numbers["spread"]).holds


# ------------------------------------------------------------------------------------------ sweeps, contribution
@pytest.fixture(scope="module")
def sweeps():
    import json

    from fixtures.builder import SceneBuilder
    from specs.support.scenes import distance_sweeps
    from tests.planted import ENV_CONFIG_PATH

    builder = SceneBuilder(json.loads(ENV_CONFIG_PATH.read_text()))
    yield distance_sweeps(builder, 8, seed=5, points=5)
    builder.close()


def test_attention_rise_compares_the_farthest_and_the_nearest_point_of_each_sweep(model, sweeps):
    check = claims.attention_rises_when_nearer(model, PLANTED_HEAD, sweeps)
    curves = [[float(claims.attention_pattern(model, np.stack([sc.observation for sc in s.scenes]))[i, PLANTED_HEAD,
                                                                                                 sc.rows["crossing"]])
               for i, sc in enumerate(s.scenes)] for s in sweeps]
    np.testing.assert_allclose(check.numbers["curves"], curves, rtol=1e-6)
    change = np.array([c[-1] - c[0] for c in curves])  # nearest minus farthest point
    assert check.numbers["median_change"] == pytest.approx(float(np.median(change)), rel=1e-5)
    assert (check.numbers["up"], check.numbers["down"]) == (int((change > 1e-6).sum()), int((change < -1e-6).sum()))
    assert check.summary == (f"attention rose nearer in {check.numbers['up']}, fell in {check.numbers['down']} of 8 "
                             f"sweeps (sign test p={check.numbers['p_value']:.2g})")
    # uniform attention: no change either way, and a p-value of 1
    flat = claims.attention_rises_when_nearer(controls.uniform_attention(model), PLANTED_HEAD, sweeps)
    assert (flat.numbers["up"], flat.numbers["down"], flat.numbers["p_value"]) == (0, 0, 1.0)
    # the distances reported are the first sweep's, far to near
    import dataclasses

    first = dataclasses.replace(sweeps[0], scenes=tuple(reversed(sweeps[0].scenes)),
                                distances=tuple(reversed(sweeps[0].distances)))
    turned = claims.attention_rises_when_nearer(model, PLANTED_HEAD, [first, *sweeps[1:]])
    assert turned.numbers["distances"] == list(reversed(sweeps[0].distances))


def test_a_silent_head_contributes_nothing_and_its_test_says_so(model):
    from tests.planted import SILENT_HEAD

    obs = random_observations(20, seed=4, min_present=3)
    check = claims.head_lowers_keep_margin(model, SILENT_HEAD, obs)
    assert check.numbers["mean"] == 0.0 and check.numbers["share_negative"] == 0.0
    assert check.numbers["p_value"] == 1.0 and not check.holds  # all contributions 0: no Wilcoxon test to run


def test_largest_rise_is_zero_when_the_margin_never_rises(model, sweeps):
    blind = controls.silenced_head(model, PLANTED_HEAD)  # Q depends on the ego only: every step changes nothing
    check = claims.never_more_willing_when_nearer(blind, sweeps)
    assert check.holds and check.numbers == {"violations": 0, "steps": 4 * len(sweeps), "largest_rise": 0.0,
                                             "n_sweeps": len(sweeps)}
    assert check.summary == ("the margin rose in 0 of 32 closer-by-one-step moves (largest rise +0.000 Q; "
                             f"tolerance {claims.DIR_TOL:g})")
