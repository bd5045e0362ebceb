"""The specs' own decision rules, tested on planted models: each must accept its known answer and reject the
negative control the spec runs (a rule that cannot fail is a defect)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats as sps

from fixtures.builder import SceneBuilder
from specs.support import claims, controls
from specs.support.scenes import distance_sweeps
from tests.planted import (ENV_CONFIG_PATH, PLANTED_HEAD, SILENT_HEAD, closest_row,
                           random_observations)


PLANTED_OBS = (64, 3)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


@pytest.fixture(scope="module")
def sweeps():
    builder = SceneBuilder(json.loads(ENV_CONFIG_PATH.read_text()))
    return distance_sweeps(builder, 16, seed=5, points=5)


def test_permutation_rule_accepts_the_planted_model_and_rejects_a_row_order_leak(model, obs):
    assert claims.permutation_invariant(model, obs).holds
    assert not claims.permutation_invariant(controls.row_order_leak(model), obs).holds


def test_absent_row_rule_rejects_a_broken_presence_mask(model, obs):
    assert claims.absent_rows_ignored(model, obs).holds
    assert not claims.absent_rows_ignored(controls.broken_presence_mask(model), obs).holds


def test_planted_head_attends_to_its_target_and_the_silent_or_uniform_head_does_not(model, obs):
    rows = closest_row(obs)
    assert claims.attends_to_target(model, PLANTED_HEAD, obs, rows).holds
    assert not claims.attends_to_target(model, SILENT_HEAD, obs, rows).holds
    assert not claims.attends_to_target(controls.uniform_attention(model), PLANTED_HEAD, obs, rows).holds


def test_planted_attention_rises_as_the_car_nears_and_uniform_attention_does_not(model, sweeps):
    # planted head 0 scores closeness to the intersection centre: a car nearer its conflict point is closer
    assert claims.attention_rises_when_nearer(model, PLANTED_HEAD, sweeps).holds
    assert not claims.attention_rises_when_nearer(controls.uniform_attention(model), PLANTED_HEAD, sweeps).holds


def test_planted_keep_margin_never_rises_when_nearer_and_the_swapped_control_does(model, sweeps):
    # Q_FASTER falls as head 0's z (closeness) rises, the others do not move: the margin can only fall
    assert claims.never_more_willing_when_nearer(model, sweeps).holds
    assert not claims.never_more_willing_when_nearer(controls.negated_q(model), sweeps).holds


def test_planted_head_lowers_the_keep_margin_and_a_silenced_head_does_not(model):
    obs = random_observations(64, seed=4, min_present=3)
    obs[:, :, 3:5] = 0.0  # still traffic: the ego's speed terms are constant, head 0 decides FASTER vs IDLE
    check = claims.head_lowers_keep_margin(model, PLANTED_HEAD, obs)
    assert check.numbers["mean"] < 0
    assert not claims.head_lowers_keep_margin(model, SILENT_HEAD, obs).holds
    assert not claims.head_lowers_keep_margin(controls.silenced_head(model, PLANTED_HEAD), PLANTED_HEAD, obs).holds


def test_a_symmetric_head_does_not_count_as_side_specialisation(model, sweeps):
    # closeness |x| + |y| is the same for mirrored left/right cars: the planted model has no side preference
    left = np.stack([s.scenes[-1].observation for s in sweeps])
    mirrored = left.copy()
    mirrored[:, 1:, 1] *= -1.0  # mirror the other cars' x
    mirrored[:, 1:, 3] *= -1.0
    rows = np.array([s.scenes[-1].rows["crossing"] for s in sweeps])
    assert not claims.heads_specialise_by_side(model, left, rows, mirrored, rows).holds


def _slows_for_close_cars(model):
    """The planted model edited so SLOWER rises with head 0's output (Q_SLOWER = 2 z0 - 1): it slows for a car
    near the centre and keeps its speed otherwise."""
    import torch

    from tests.planted import PLANTED_NEURON

    clone = controls.negated_q(controls.negated_q(model))  # a deep copy
    with torch.no_grad():
        clone.output_layer.predict.weight[0].zero_()
        clone.output_layer.predict.weight[0, PLANTED_NEURON] = 2.0
        clone.output_layer.predict.bias[0] = -1.0
    return clone


def test_action_unchanged_rule_detects_a_changed_action(model):
    edited = _slows_for_close_cars(model)
    obs = random_observations(40, seed=6, min_present=2, max_present=2)
    obs[:, 1:, 1:3] = np.where(obs[:, 1:, 0:1] > 0, 0.9, 0.0)  # the other car far from the centre
    near = obs.copy()
    near[:, 1:, 1:3] = np.where(obs[:, 1:, 0:1] > 0, 0.01, 0.0)  # the same car at the centre
    assert claims.action_unchanged(edited, obs, obs).holds
    assert not claims.action_unchanged(edited, obs, near).holds


def test_collision_rate_rule_known_answers():
    from specs.support.claims import rate_verdict as _rate_check

    assert _rate_check([False] * 100, 0.15)[0] == "supported"
    assert _rate_check([True] * 50 + [False] * 50, 0.15)[0] == "refuted"
    assert _rate_check([True] * 2 + [False] * 8, 0.15)[0] == "inconclusive"


def test_qk_position_rule_accepts_the_planted_head_and_rejects_uniform_attention(model):
    from specs.support.claims import score_tracks_position as _score_tracks_position

    obs = random_observations(200, seed=8, min_present=4)
    assert _score_tracks_position(model, PLANTED_HEAD, obs)[1].holds  # head 0 scores closeness: |x| + |y|
    assert not _score_tracks_position(controls.uniform_attention(model), PLANTED_HEAD, obs)[1].holds


def test_feature_optimisation_rule_known_answer_and_control(model):
    from specs.support.claims import optimised_car_moves_closer as _optimised_car_moves_closer

    edited = _slows_for_close_cars(model)  # slows for a car near the centre: ascent must bring the car closer
    obs = random_observations(24, seed=9, min_present=2, max_present=2)
    rows = np.array([int(np.flatnonzero(o[1:, 0] > 0.5)[0]) + 1 for o in obs])
    assert _optimised_car_moves_closer(edited, obs, rows)[1].holds
    assert not _optimised_car_moves_closer(controls.negated_q(edited), obs, rows)[1].holds


def test_ig_rule_needs_more_than_random_networks_reach():
    from specs.support.claims import beats_random as _beats_random

    randoms = np.array([0.5, 0.6, 0.7, 0.55, 0.65])
    assert _beats_random(0.9, randoms, 90, 100, "agent").holds
    assert not _beats_random(0.68, randoms, 68, 100, "agent").holds


def test_row_order_leak_adds_the_row_index_times_its_scale_to_the_last_others_embedding(model):
    leak = controls.row_order_leak(model)
    last, first = "others_embedding.hook_hidden.1", "others_embedding.hook_hidden.0"
    x = torch.zeros(2, 14, 8, dtype=torch.float64)
    expected = (torch.arange(14, dtype=torch.float64) * 0.05).view(1, -1, 1).expand(2, 14, 8)
    assert torch.equal(leak.hook_dict[last](x), expected)
    assert torch.allclose(controls.row_order_leak(model, scale=0.5).hook_dict[last](x), 10 * expected)
    assert torch.equal(leak.hook_dict[first](x), x), "only the last embedding layer leaks"
    assert torch.equal(model.hook_dict[last](x), x), "the agent under test is never edited"


def test_silenced_head_zeroes_exactly_its_slice_of_attention_combine(model):
    d = model.attention_layer.features_per_head
    before = model.attention_layer.attention_combine.weight.detach().clone()
    for head in range(model.n_heads):
        after = controls.silenced_head(model, head).attention_layer.attention_combine.weight.detach()
        assert torch.all(after[:, head * d:(head + 1) * d] == 0)
        keep = torch.ones(before.shape[1], dtype=torch.bool)
        keep[head * d:(head + 1) * d] = False
        assert torch.equal(after[:, keep], before[:, keep])
    assert torch.equal(model.attention_layer.attention_combine.weight, before)


# ------------------------------------------------------------------------------------------ rules' numbers and edges
def test_attends_to_target_needs_both_bounds_and_reports_its_numbers(model, obs):
    from interp.probes.attention import argmax_share

    rows = closest_row(obs)
    ev = argmax_share(model, obs, rows)
    check = claims.attends_to_target(model, PLANTED_HEAD, obs, rows, random_share=0.3)
    k, n = int(ev.hits[PLANTED_HEAD]), ev.n
    assert check.holds and check.numbers == {
        "hits": k, "n": n, "share": k / n, "ci": (float(ev.ci_low[PLANTED_HEAD]), float(ev.ci_high[PLANTED_HEAD])),
        "chance": ev.chance, "random_share": 0.3, "p_value_vs_chance": float(ev.p_value[PLANTED_HEAD]),
        "all_heads_share": ev.share.tolist()}
    assert check.summary.endswith(" (95th percentile of random networks)") and f"in {k}/{n} scenes" in check.summary
    assert k == n  # the planted head always finds the closest row: a share of 1 cannot beat a random share of 1
    assert not claims.attends_to_target(model, PLANTED_HEAD, obs, rows, random_share=1.0).holds


def test_attention_rise_numbers(model, sweeps):
    check = claims.attention_rises_when_nearer(model, PLANTED_HEAD, sweeps)
    up, down = check.numbers["up"], check.numbers["down"]
    assert up + down <= len(sweeps) == check.numbers["n"] == 16
    assert check.numbers["p_value"] == pytest.approx(sps.binomtest(up, up + down, 0.5, alternative="greater").pvalue)
    assert len(check.numbers["curves"]) == 8 and check.numbers["distances"] == list(sweeps[0].distances)
    assert f"rose nearer in {up}, fell in {down} of 16 sweeps" in check.summary
    # a head that falls in some sweeps: the sign test counts both directions
    flipped = claims.attention_rises_when_nearer(model, PLANTED_HEAD, sweeps[:3] + [_reversed(s) for s in sweeps[3:]])
    assert flipped.numbers["down"] > 0 and flipped.numbers["p_value"] == pytest.approx(
        sps.binomtest(flipped.numbers["up"], flipped.numbers["up"] + flipped.numbers["down"], 0.5,
                      alternative="greater").pvalue)
    flat = claims.attention_rises_when_nearer(controls.uniform_attention(model), PLANTED_HEAD, sweeps)
    assert flat.numbers["p_value"] == 1.0 and not flat.holds


def _reversed(sweep):
    import dataclasses

    return dataclasses.replace(sweep, scenes=tuple(reversed(sweep.scenes)), distances=tuple(reversed(sweep.distances)))


def _randoms(model):
    from tests.planted import randomised_copy

    return lambda i: randomised_copy(model, seed=100 + i)


def test_random_quantiles_are_quantiles_over_randomly_initialised_networks(model, obs, sweeps):
    from interp.probes.attention import argmax_share

    make = _randoms(model)
    rows = closest_row(obs)
    cal, test = obs[:32], obs[32:]
    shares = []
    for i in range(5):
        m = make(i)
        best = int(argmax_share(m, cal, rows[:32]).best_head)
        shares.append(float(argmax_share(m, test, rows[32:]).share[best]))
    got = controls.random_role_share_quantile(make, cal, rows[:32], test, rows[32:], inits=5, q=0.8)
    assert got == pytest.approx(float(np.quantile(shares, 0.8)))
    left = np.stack([s.scenes[-1].observation for s in sweeps])
    right = np.stack([s.scenes[0].observation for s in sweeps])
    left_rows = np.array([s.scenes[-1].rows["crossing"] for s in sweeps])
    right_rows = np.array([s.scenes[0].rows["crossing"] for s in sweeps])
    idx = np.arange(len(sweeps))
    spreads = []
    for i in range(4):
        means = (claims.attention_pattern(make(i), left)[idx, :, left_rows] - claims.attention_pattern(make(i), right)[idx, :, right_rows]).mean(0)
        spreads.append(float(means.max() - means.min()))
    pairs = (left, left_rows, right, right_rows)
    assert claims.side_preference_spread(make(0), *pairs) == pytest.approx(spreads[0])
    assert controls.random_spread_quantile(make, pairs, inits=4, q=0.5) == pytest.approx(float(np.quantile(spreads, 0.5)))


def test_head_contribution_needs_the_interval_and_the_test(model):
    obs = random_observations(5, seed=4, min_present=3)
    obs[:, :, 3:5] = 0.0
    check = claims.head_lowers_keep_margin(model, PLANTED_HEAD, obs)
    # five scenes, all lowered: the bootstrap interval is below 0 but the exact Wilcoxon p is 1/32 > ALPHA
    assert check.numbers["ci"][1] < 0 and check.numbers["p_value"] == pytest.approx(1 / 32) and not check.holds
    assert set(check.numbers) == {"mean", "ci", "p_value", "n", "share_negative"}
    assert check.numbers["n"] == 5 and check.numbers["share_negative"] == 1.0


def test_permutation_rule_numbers_are_seeded(model, obs):
    leak = controls.row_order_leak(model)
    a, b = claims.permutation_invariant(leak, obs), claims.permutation_invariant(leak, obs)
    assert a.numbers == b.numbers and a.numbers["permutations"] == 4 and a.numbers["n"] == len(obs)
    assert set(a.numbers) == {"max_abs_dq", "n", "permutations"}
    assert f"under 4 row permutations: {a.numbers['max_abs_dq']:.2e}" in a.summary


def test_absent_rows_rule_numbers_and_the_presence_threshold(model, obs):
    from tests.planted import randomised_copy

    broken = controls.broken_presence_mask(randomised_copy(model, seed=5))  # random weights read the garbage
    check = claims.absent_rows_ignored(broken, obs)
    absent = obs[:, :, 0] < 0.5
    noisy = obs.copy()
    garbage = np.random.default_rng(0).uniform(-1, 1, size=obs.shape).astype(np.float32)
    garbage[:, :, 0] = 0.0
    noisy[absent] = garbage[absent]
    dq = float(np.abs(claims.q_values(broken, noisy) - claims.q_values(broken, obs)).max())
    mass = float((claims.attention_pattern(broken, obs) * absent[:, None, :]).sum(-1).max())
    assert check.numbers == {"max_absent_attention": mass, "max_abs_dq": dq, "n": len(obs)}
    assert check.summary.startswith("attention on absent rows <=")
    half = obs.copy()  # presence exactly 0.5 is present (the env's mask is presence < 0.5)
    half[:, :, 0] = np.where(obs[:, :, 0] > 0, 0.5, 0.0)
    half[:, 0, 0] = 1.0
    assert claims.absent_rows_ignored(model, half).holds


def test_action_unchanged_and_directional_numbers(model, sweeps):
    edited = controls.silenced_head(model, PLANTED_HEAD)
    before = random_observations(40, seed=6, min_present=2, max_present=2)
    check = claims.action_unchanged(edited, before, before)
    assert check.numbers == {"unchanged": 40, "n": 40, "share": 1.0, "ci": pytest.approx(check.numbers["ci"])}
    assert check.numbers["ci"] == pytest.approx(claims.wilson_interval(40, 40))
    assert "action unchanged in 40/40 scenes" in check.summary
    negated = controls.negated_q(model)
    got = claims.never_more_willing_when_nearer(negated, sweeps)
    violations = steps = 0
    worst = 0.0
    for sweep in sweeps:
        rises = np.diff(claims.keep_speed_margin(claims.q_values(negated, np.stack([s.observation for s in sweep.scenes]))))
        violations += int((rises > claims.DIR_TOL).sum())
        steps += len(rises)
        worst = max(worst, float(rises.max()))
    assert got.numbers == {"violations": violations, "steps": steps, "largest_rise": worst, "n_sweeps": len(sweeps)}
    assert violations > 0 and steps == 4 * len(sweeps)
    assert f"rose in {violations} of {steps} closer-by-one-step moves" in got.summary


def test_silenced_head_on_random_weights_zeroes_only_its_columns(model):
    from tests.planted import randomised_copy

    rand = randomised_copy(model, seed=3)
    d = rand.attention_layer.features_per_head
    before = rand.attention_layer.attention_combine.weight.detach().clone()
    for head in range(rand.n_heads):
        after = controls.silenced_head(rand, head).attention_layer.attention_combine.weight.detach()
        expected = before.clone()
        expected[:, head * d:(head + 1) * d] = 0.0
        assert torch.equal(after, expected)


def test_hide_rows_returns_float32_whatever_it_is_given():
    obs = random_observations(4, seed=1).astype(np.float64)
    hidden = controls.hide_rows(obs, [1, 2, 3, 4])
    assert hidden.dtype == np.float32 and obs[0, 1, 0] in (0.0, 1.0)


def test_row_order_leak_uses_the_only_embedding_layer_of_a_one_layer_network():
    from interp.model.config import resolve_model_config
    from interp.model.network import EgoAttentionNetwork
    from tests import planted

    config = planted.planted_agent_config()["model"]
    config = {**config, "others_embedding_layer": {**config["others_embedding_layer"], "layers": [8]}}
    one_layer = EgoAttentionNetwork(resolve_model_config(config, 15, 7, 3)).eval()
    assert "others_embedding.hook_hidden.1" not in one_layer.hook_dict
    x = torch.zeros(1, 14, 8)
    out = controls.row_order_leak(one_layer).hook_dict["others_embedding.hook_hidden.0"](x)
    assert torch.allclose(out[0, :, 0], torch.arange(14.0) * 0.05)


def test_attention_pattern_takes_float64_observations(model, obs):
    assert claims.attention_pattern(model, obs.astype(np.float64)).shape == (len(obs), model.n_heads, obs.shape[1])


def test_side_rule_needs_two_different_heads_and_reports_its_numbers(model, sweeps):
    left = np.stack([s.scenes[-1].observation for s in sweeps])
    mirrored = left.copy()
    mirrored[:, 1:, 1] *= -1.0
    mirrored[:, 1:, 3] *= -1.0
    rows = np.array([s.scenes[-1].rows["crossing"] for s in sweeps])
    check = claims.heads_specialise_by_side(model, left, rows, mirrored, rows, random_spread=-1.0)
    assert not check.holds  # no head prefers a side, however small the random spread
    assert set(check.numbers) == {"spread", "random_spread", "mean_left_minus_right", "p_left_holm", "p_right_holm",
                                  "left_heads", "right_heads", "n"}
    assert check.numbers["random_spread"] == -1.0 and check.numbers["n"] == len(sweeps)
    assert len(check.numbers["p_left_holm"]) == len(check.numbers["p_right_holm"]) == model.n_heads
    assert len(check.numbers["mean_left_minus_right"]) == model.n_heads
    assert check.summary.endswith("(95th percentile over randomly initialised networks)")


def test_head_contribution_interval_is_the_seeded_bootstrap(model):
    obs = random_observations(40, seed=4, min_present=3)
    obs[:, :, 3:5] = 0.0
    check = claims.head_lowers_keep_margin(model, PLANTED_HEAD, obs)
    from interp.probes.interventions import ablate_heads

    contribution = (claims.keep_speed_margin(claims.q_values(model, obs))
                    - claims.keep_speed_margin(claims.q_values(model, obs, ablate_heads([PLANTED_HEAD], model.n_heads))))
    ci = sps.bootstrap((contribution,), np.mean, confidence_level=0.95, random_state=0,
                       n_resamples=2000).confidence_interval
    assert check.numbers["ci"] == (float(ci.low), float(ci.high))
    assert check.numbers["mean"] == pytest.approx(float(contribution.mean()))
    assert check.summary.startswith(f"head {PLANTED_HEAD} changes the keep-speed margin by {contribution.mean():+.3f}")


def test_attention_rise_with_as_many_falls_as_rises(model, sweeps):
    balanced = sweeps[:8] + [_reversed(s) for s in sweeps[:8]]
    check = claims.attention_rises_when_nearer(model, PLANTED_HEAD, balanced)
    up, down = check.numbers["up"], check.numbers["down"]
    assert up == down > 0
    assert check.numbers["p_value"] == pytest.approx(sps.binomtest(up, 2 * up, 0.5, alternative="greater").pvalue)
    assert check.numbers["p_value"] < 1
    assert check.numbers["median_change"] == pytest.approx(0.0, abs=1e-6)


def test_random_spread_quantile_draws_twenty_networks_by_default(model, sweeps):
    drawn = []
    make = _randoms(model)
    left = np.stack([s.scenes[-1].observation for s in sweeps])
    rows = np.array([s.scenes[-1].rows["crossing"] for s in sweeps])
    controls.random_spread_quantile(lambda i: drawn.append(i) or make(i), (left, rows, left, rows))
    assert drawn == list(range(20))
