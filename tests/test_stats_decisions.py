"""Edges of interp.stats' decision code that the known-answer tests in test_stats.py leave open, each pinned by a
value computed independently here (these tests were written to kill surviving mutants of
``python -m benchmarks.mutation --module stats-...`` (one module per file of interp/statistics/); the scores are in docs/validation/mutation.md)."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from interp import stats
from interp.stats import (PairedCounts, PairedRates, SequentialDesign, SequentialPairedFamily, StatsInputError,
                          Verdict, holm, mcnemar_exact, mcnemar_verdict, newcombe_paired_interval,
                          paired_bootstrap_interval, paired_fixed_sample_size, wilson_interval)


def _newcombe10(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's method 10 for a paired difference, written out from Fagerland, Lydersen & Laake (2017) 8.5."""
    n = a + b + c + d
    p1, p2 = (a + c) / n, (a + b) / n
    l1, u1 = proportion_confint(a + c, n, alpha=alpha, method="wilson")
    l2, u2 = proportion_confint(a + b, n, alpha=alpha, method="wilson")
    denominator = math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    ad_bc = a * d - b * c
    if ad_bc > n / 2:
        numerator = ad_bc - n / 2
    elif ad_bc >= 0:
        numerator = 0.0
    else:
        numerator = ad_bc
    phi = numerator / denominator
    delta = math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    epsilon = math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return p1 - p2 - delta, p1 - p2 + epsilon


@pytest.mark.parametrize("cells", [(5, 2, 2, 5), (2, 3, 3, 5), (3, 6, 1, 2), (40, 4, 21, 135)])
def test_newcombe_paired_continuity_correction_of_phi(cells):
    # (5, 2, 2, 5): ad - bc = 21 in (n/2, 2n]; (2, 3, 3, 5): 0 < ad - bc <= n/2 (phi corrected to 0); (3, 6, 1, 2):
    # negative association, kept as is
    a, b, c, d = cells
    counts = PairedCounts(both=a, baseline_only=b, treatment_only=c, neither=d)
    assert newcombe_paired_interval(counts) == pytest.approx(_newcombe10(a, b, c, d), abs=1e-12)


def test_interval_refusals_name_what_is_wrong():
    with pytest.raises(StatsInputError, match="^a paired interval needs at least one pair$"):
        newcombe_paired_interval(PairedCounts(0, 0, 0, 0))
    with pytest.raises(StatsInputError, match=r"^paired metrics need two 1-D arrays of equal length; got \(2,\) and \(1,\)$"):
        paired_bootstrap_interval([1.0, 2.0], [1.0])
    with pytest.raises(StatsInputError, match=r"^paired_fixed_sample_size needs a raised rate \(treatment_only > baseline_only\)$"):
        paired_fixed_sample_size(PairedRates(0.2, 0.1, 0.05))
    with pytest.raises(StatsInputError, match="^futility_alpha must lie in"):
        SequentialDesign(futility_alpha=1.5)


def test_wilson_at_the_edges():
    assert wilson_interval(5, 5) == pytest.approx(proportion_confint(5, 5, method="wilson"))
    assert wilson_interval(0, 5)[0] == pytest.approx(0.0, abs=1e-12)


def test_mcnemar_names_its_interval():
    result = mcnemar_exact(PairedCounts(10, 3, 9, 20), alternative="greater", alpha=0.1)
    assert result.ci_method == "Newcombe paired method 10, two-sided 90%"
    assert result.p_value == pytest.approx(sps.binomtest(9, 12, 0.5, alternative="greater").pvalue)


def test_bootstrap_interval_fields_method_and_degenerate_case():
    rng = np.random.default_rng(0)
    b = rng.normal(size=40)
    t = b + 0.3 + rng.normal(scale=0.5, size=40)
    for method in ("percentile", "basic"):
        got = paired_bootstrap_interval(b, t, alpha=0.1, n_resamples=999, seed=3, method=method)
        ref = sps.bootstrap((b, t), lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis), paired=True,
                            vectorized=True, n_resamples=999, confidence_level=0.9, method=method,
                            rng=np.random.default_rng(3)).confidence_interval
        assert got.ci == pytest.approx((ref.low, ref.high))
        assert got.effect == pytest.approx(float(np.mean(t - b))) and got.n == 40 and got.confidence == pytest.approx(0.9)
        assert got.method.startswith(f"paired bootstrap {method}")
    flat = paired_bootstrap_interval([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], alpha=0.2)
    assert flat == stats.BootstrapInterval(0.5, (0.5, 0.5), 3, pytest.approx(0.8), "BCa (degenerate)")


def test_holm_defaults_and_a_single_p_value():
    reject, adjusted = holm([0.01, 0.04, 0.5])  # alpha defaults to 0.05
    assert reject.tolist() == [True, False, False]
    assert adjusted == pytest.approx([0.03, 0.08, 0.5])
    reject, adjusted = holm([0.01])
    assert reject.tolist() == [True] and adjusted.tolist() == [0.01]
    with pytest.raises(StatsInputError):
        holm([])


def test_paired_rates_null_from_counts_and_bounds():
    null = PairedRates.null(0.3, 0.1)
    assert (null.both, null.baseline_only, null.treatment_only) == pytest.approx((0.25, 0.05, 0.05))
    assert PairedRates.from_counts(PairedCounts(2, 3, 5, 10)) == PairedRates(0.1, 0.15, 0.25)
    PairedRates(1 + 1e-12, 0.0, 0.0)  # within the rounding tolerance
    with pytest.raises(StatsInputError, match="sum to <= 1"):
        PairedRates(0.5, 0.3, 0.3)
    with pytest.raises(StatsInputError):
        PairedRates(0.5, -0.1, 0.1)


def test_decision_rule_text():
    assert "Holm" not in SequentialDesign().decision_rule()
    assert "Holm over 4" in SequentialDesign().decision_rule(4)
    down = SequentialDesign(direction="decrease", min_effect=0.1, max_pairs=120).decision_rule()
    assert "'does not lower the rate'" in down and "'lowers it by >= 0.1'" in down and "at 120 pairs" in down


def test_family_refusals_and_verdict_fields():
    family = SequentialPairedFamily(["a", "b"], SequentialDesign(max_pairs=20))
    with pytest.raises(StatsInputError, match="baseline must hold booleans"):
        family.update([0, 2], {"a": [0, 1], "b": [0, 1]})
    family.update([False] * 20, {"a": [True] * 20, "b": [False] * 20})
    assert family.stopped
    with pytest.raises(StatsInputError, match="read verdicts\\(\\) instead of adding episodes$"):
        family.update([False], {"a": [True], "b": [False]})
    verdicts = family.verdicts()
    for name, decision_p in zip("ab", stats.holm_adjusted(np.array(
            [family._evidence[n].p_futility for n in family.names]))):
        v = verdicts[name]
        assert isinstance(v.futility_p_value, float) and v.futility_p_value == pytest.approx(decision_p)
        d = v.to_dict()
        assert d["p_value"] == v.p_value and d["futility_p_value"] == v.futility_p_value


def test_vectorised_simulation_refuses_mismatched_runs_and_keeps_integer_stops():
    design = SequentialDesign(max_pairs=10)
    with pytest.raises(StatsInputError, match="need baseline"):
        stats.run_sequential(design, np.zeros((5, 10), bool), np.zeros((4, 2, 10), bool), batch_pairs=5)
    sim = stats.run_sequential(design, np.zeros((3, 10), bool), np.ones((3, 1, 10), bool), batch_pairs=10)
    assert sim.stop_n.dtype.kind == "i" and sim.stop_n.tolist() == [[10]] * 3
    assert stats.look_ends(10, 10).tolist() == [10]
    assert stats.look_ends(25, 10).tolist() == [10, 20, 25]


def test_paired_fixed_sample_size_is_reached_exactly_at_its_cap():
    rates = PairedRates(both=0.265, baseline_only=4 / 200, treatment_only=21 / 200)
    n = paired_fixed_sample_size(rates, alpha=0.05, power=0.8)
    assert paired_fixed_sample_size(rates, alpha=0.05, power=0.8, max_pairs=n) == n
    with pytest.raises(StatsInputError, match="not reached"):
        paired_fixed_sample_size(rates, alpha=0.05, power=0.8, max_pairs=n - 1)


def test_design_comparison_is_consistent():
    rates = PairedRates(both=0.265, baseline_only=4 / 200, treatment_only=21 / 200)
    comparison = stats.compare_designs(rates, alpha=0.05, power=0.9, batch_pairs=25, n_runs=300, seed=1)
    seq = comparison.sequential
    assert seq.max_pairs % 25 == 0 and seq.power >= 0.9 and seq.n_runs == 300 and seq.max_pairs > 200
    assert seq.median_pairs <= seq.max_pairs and 0 < seq.mean_pairs <= seq.max_pairs
    # the cap is the first look at which the simulated power reaches 0.8
    cap = 200  # the simulation's length doubles from 200 pairs until the power is reached
    while cap < seq.max_pairs:
        cap *= 2
    sim = stats.simulate_sequential(SequentialDesign(alpha=0.05, max_pairs=cap), rates, n_runs=300, batch_pairs=25,
                                    seed=1)
    supported_by = lambda cap: float((sim.supported[:, 0] & (sim.stop_n[:, 0] <= cap)).mean())  # noqa: E731
    assert supported_by(seq.max_pairs) == pytest.approx(seq.power)
    assert supported_by(seq.max_pairs - 25) < 0.9
    assert comparison.unpaired_per_arm == stats.unpaired_sample_size(rates.baseline_rate, rates.treatment_rate,
                                                                       alpha=0.05, power=0.9)
    assert comparison.paired_fixed_pairs == paired_fixed_sample_size(rates, alpha=0.05, power=0.9)
    info = comparison.to_dict()
    assert info["ratio"] == pytest.approx(2 * seq.mean_pairs / (2 * comparison.unpaired_per_arm))
    assert info["sequential"] == dataclasses.asdict(seq) and info["rates"] == dataclasses.asdict(rates)
    assert info["paired_fixed_episodes"] == 2 * comparison.paired_fixed_pairs and info["batch_pairs"] == 25
    assert info["unpaired_per_arm"] == comparison.unpaired_per_arm and info["power"] == 0.9 and info["alpha"] == 0.05
    assert info["unpaired_episodes"] == 2 * comparison.unpaired_per_arm
    assert info["sequential_mean_episodes"] == pytest.approx(2 * seq.mean_pairs)


# --------------------------------------------------------------------------------------------------------------
# Written for the survivors of the first mutation pass on the split modules (interp/statistics/*.py, --sample 40).

def _pairs(both: int, baseline_only: int, treatment_only: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    base = np.array([1] * both + [1] * baseline_only + [0] * treatment_only + [0] * neither, bool)
    treat = np.array([1] * both + [0] * baseline_only + [1] * treatment_only + [0] * neither, bool)
    return base, treat


def test_wilson_on_a_single_episode():
    # k = n = 1: centre (1 + z²/2) / (1 + z²), half-width (z²/2) / (1 + z²), so the interval is [1 / (1 + z²), 1].
    z2 = sps.norm.isf(0.025) ** 2
    assert wilson_interval(1, 1) == pytest.approx((1 / (1 + z2), 1.0))
    assert wilson_interval(0, 1) == pytest.approx((0.0, z2 / (1 + z2)), abs=1e-12)


def test_newcombe_paired_at_another_alpha_and_with_an_empty_margin():
    for cells in ((5, 2, 2, 5), (40, 4, 21, 135)):
        counts = PairedCounts(*cells)
        assert newcombe_paired_interval(counts, alpha=0.1) == pytest.approx(_newcombe10(*cells, alpha=0.1), abs=1e-12)
    # the baseline never has the event (a + b = 0): phi is 0 (Newcombe 1998), the square-and-add of the margins
    n, z2 = 15, sps.norm.isf(0.025) ** 2
    l1, u1 = proportion_confint(5, n, method="wilson")
    u2 = z2 / (n + z2)  # Wilson upper bound of 0 / n
    expected = (5 / n - math.hypot(5 / n - l1, u2), 5 / n + math.hypot(u1 - 5 / n, 0.0))
    assert newcombe_paired_interval(PairedCounts(0, 0, 5, 10)) == pytest.approx(expected, abs=1e-12)


def test_newcombe_unpaired_names_the_bad_arm():
    with pytest.raises(StatsInputError, match=r"^baseline: need 0 <= events <= n and n >= 1; got events=3, n=2$"):
        stats.newcombe_unpaired_interval(3, 2, 1, 2)
    with pytest.raises(StatsInputError, match=r"^treatment: need 0 <= events <= n and n >= 1; got events=1, n=0$"):
        stats.newcombe_unpaired_interval(1, 2, 1, 0)


def test_mcnemar_refuses_an_unknown_alternative_by_name():
    with pytest.raises(StatsInputError, match="^alternative must be 'two-sided', 'greater' or 'less'; got 'LESS'$"):
        mcnemar_exact(PairedCounts(1, 2, 3, 4), alternative="LESS")


def test_holm_accepts_p_equal_to_one_and_refuses_missing_values():
    reject, adjusted = holm([0.2, 1.0])
    assert reject.tolist() == [False, False] and adjusted.tolist() == [0.4, 1.0]
    reject, adjusted = holm([0, 1])  # integers are p-values too; the adjusted ones are floats
    assert adjusted.dtype == np.float64 and adjusted.tolist() == [0.0, 1.0] and reject.tolist() == [True, False]
    with pytest.raises(StatsInputError, match="^holm needs a non-empty 1-D sequence of p-values"):
        holm([0.1, None])


def test_mcnemar_verdict_in_the_decrease_direction():
    base, treat = _pairs(5, 21, 4, 170)  # the treatment lowers the rate: 26/200 -> 9/200
    v = mcnemar_verdict(base, treat, claim="ablation lowers arrivals", direction="decrease")
    assert v.verdict == "supported" and v.direction == "decrease" and v.discordant == (21, 4) and v.n == 200
    assert v.p_value == pytest.approx(sps.binomtest(4, 25, 0.5, alternative="less").pvalue)
    assert v.ci == pytest.approx(_newcombe10(5, 21, 4, 170, alpha=0.1), abs=1e-12)  # each end one-sided 95 %
    assert v.effect == pytest.approx(-17 / 200)
    assert (v.baseline_rate, v.treatment_rate) == pytest.approx((26 / 200, 9 / 200))
    assert v.claim == "ablation lowers arrivals"
    assert v.decision_rule == ("fixed n: supported if exact one-sided McNemar p <= 0.05; refuted if the Newcombe "
                               "paired 95% bound excludes a change of 0.05 in the claimed direction (decrease)")
    # the same data against a claimed decrease when the rate rises: the lower bound shows no decrease of 0.05
    raised = mcnemar_verdict(treat, base, direction="decrease")
    low, high = _newcombe10(5, 4, 21, 170, alpha=0.1)
    assert raised.verdict == "refuted" and -low < 0.05 <= high
    assert raised.p_value == pytest.approx(sps.binomtest(21, 25, 0.5, alternative="less").pvalue)


def test_mcnemar_verdict_inconclusive_when_the_far_bound_reaches_min_effect():
    # 2 of 100 pairs go the claimed way, none the other: p = 0.5^2 = 0.25; the upper bound reaches 0.05 (so not
    # refuted) although the lower one lies within 0.05 of 0
    base, treat = _pairs(0, 0, 2, 98)
    v = mcnemar_verdict(base, treat)
    assert v.p_value == pytest.approx(0.25)
    assert v.ci[1] >= 0.05 > -v.ci[0] and v.verdict == "inconclusive"
    assert mcnemar_verdict(treat, base, direction="decrease").verdict == "inconclusive"


def test_mcnemar_verdict_refuses_no_pairs_by_name():
    with pytest.raises(StatsInputError, match="^mcnemar_verdict needs at least one pair of episodes$"):
        mcnemar_verdict([], [])


VERDICT_KEYS = {"claim", "verdict", "n", "effect", "ci", "p_value", "decision_rule", "discordant", "direction", "alpha",
                "baseline_rate", "treatment_rate", "futility_p_value"}


def test_verdict_to_dict_keys_json_round_trip_and_summary():
    v = Verdict(claim="ablating head 2 raises crashes", verdict="supported", n=200, effect=0.085, ci=(0.045, 0.125),
                p_value=0.0004, decision_rule="rule", discordant=(4, 21), direction="increase", alpha=0.01,
                baseline_rate=0.285, treatment_rate=0.37, futility_p_value=0.9)
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert d == {"claim": "ablating head 2 raises crashes", "verdict": "supported", "n": 200, "effect": 0.085,
                 "ci": [0.045, 0.125], "p_value": 0.0004, "decision_rule": "rule",
                 "discordant": {"baseline_only": 4, "treatment_only": 21}, "direction": "increase", "alpha": 0.01,
                 "baseline_rate": 0.285, "treatment_rate": 0.37, "futility_p_value": 0.9}
    # what interp.roles.format_roles and causal_roles read from it
    assert (f"{d['effect']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] n={d['n']} {d['verdict']}"
            == "+0.085 [+0.045, +0.125] n=200 supported")
    assert v.summary() == ("ablating head 2 raises crashes: SUPPORTED  n=200  effect +0.085 (CI +0.045 to +0.125)  "
                           "p=0.0004  discordant b=4 c=21  [rule]")
    unnamed = dataclasses.replace(v, claim=None, verdict="refuted")
    assert unnamed.summary().startswith("REFUTED  n=200  effect +0.085")
    # a verdict from the fixed-n rule has every key, with its rates
    fixed = mcnemar_verdict(*_pairs(3, 1, 6, 10), claim="c").to_dict()
    assert set(fixed) == VERDICT_KEYS and fixed["claim"] == "c" and fixed["n"] == 20
    assert (fixed["baseline_rate"], fixed["treatment_rate"], fixed["futility_p_value"]) == (0.2, 0.45, None)


def test_sequential_interval_before_any_look_and_at_the_upper_edge():
    test = stats.SequentialPairedTest(max_pairs=10)
    v = test.verdict()  # stopped by the caller before the first batch: no evidence, the whole range
    assert v.ci == (-1.0, 1.0) and v.n == 0 and v.verdict == "inconclusive"
    assert v.decision_rule.endswith("(stopped by the caller at 0 pairs, before max_pairs)")
    # every pair goes the claimed way: E_down(delta) = mean_g (1 - g)^n < 1 for every delta, so no upper bound
    # is ever rejected and the interval's far end stays at +1 (a difference of rates)
    test.update([False] * 3, [True] * 3)
    assert test.verdict().ci[1] == 1.0
    down = stats.SequentialPairedTest(max_pairs=10, direction="decrease")
    down.update([True] * 3, [False] * 3)
    assert down.verdict().ci[0] == -1.0


def test_settle_supports_at_p_equal_to_alpha():
    from interp.statistics.inputs import CONTINUE, REFUTED, SUPPORTED
    from interp.statistics.sequential import settle

    design = SequentialDesign(alpha=0.05, futility_alpha=0.1, max_pairs=100)
    codes = settle(np.array([CONTINUE, CONTINUE, CONTINUE]), np.array([0.05, 0.5, 0.5]), np.array([1.0, 0.1, 0.2]),
                   10, design, adjust=False)
    assert codes.tolist() == [SUPPORTED, REFUTED, CONTINUE]


def test_simulated_outcomes_with_a_baseline_rate_of_one():
    baseline, treatments = stats.simulate_paired_outcomes(PairedRates(both=0.6, baseline_only=0.4, treatment_only=0.0),
                                                          n_runs=50, n_pairs=40, rng=np.random.default_rng(0))
    assert baseline.all() and treatments.shape == (50, 1, 40)
    events = int(treatments.sum())  # P(treatment | baseline event) = both / baseline rate = 0.6
    low, high = wilson_interval(events, treatments.size, alpha=1e-4)
    assert low < 0.6 < high


def test_vectorised_simulation_looks_after_every_pair_like_the_object():
    design = SequentialDesign(alpha=0.05, max_pairs=30, min_effect=0.2)
    rng = np.random.default_rng(5)
    baseline, treatments = stats.simulate_paired_outcomes(PairedRates(0.1, 0.05, 0.3), n_runs=6, n_pairs=30,
                                                          n_treatments=1, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or other numpy warnings from the simulation
        sim = stats.run_sequential(design, baseline, treatments, batch_pairs=1)
    for run in range(6):
        test = stats.SequentialPairedTest(alpha=0.05, max_pairs=30, min_effect=0.2)
        for i in range(30):
            decision = test.update(baseline[run, i:i + 1], treatments[run, 0, i:i + 1])
            if decision.stop:
                break
        assert (sim.verdict_names()[run, 0], int(sim.stop_n[run, 0])) == (decision.verdict, test.n)
    with pytest.raises(StatsInputError, match="^simulated runs hold 5 pairs, fewer than max_pairs=30$"):
        stats.run_sequential(design, baseline[:, :5], treatments[..., :5], batch_pairs=1)


RAISED = PairedRates(both=0.1, baseline_only=0.02, treatment_only=0.2)


def test_sequential_sample_size_is_the_first_look_reaching_power_even_on_a_tie():
    # 8 runs: the supported share moves in steps of 1/8; with seed 1 it is exactly 0.5 at some look
    seq = stats.sequential_sample_size(RAISED, alpha=0.05, power=0.5, n_runs=8, seed=1, batch_pairs=10)
    sim = stats.simulate_sequential(SequentialDesign(alpha=0.05, max_pairs=200), RAISED, n_runs=8, batch_pairs=10,
                                    seed=1)
    share = {end: float((sim.supported[:, 0] & (sim.stop_n[:, 0] <= end)).mean()) for end in range(10, 201, 10)}
    first = min(end for end, s in share.items() if s >= 0.5)
    assert share[first] == 0.5  # the tie the rule must include
    assert (seq.max_pairs, seq.power) == (first, 0.5)
    assert seq.mean_pairs == pytest.approx(float(np.minimum(sim.stop_n[:, 0], first).mean()))


def test_sequential_sample_size_defaults_and_refusal():
    explicit = stats.sequential_sample_size(RAISED, alpha=0.01, power=0.8, min_effect=0.05, batch_pairs=10, n_runs=50,
                                            seed=0)
    assert stats.sequential_sample_size(RAISED, n_runs=50) == explicit
    # compare_designs' sequential column is sequential_sample_size with the same settings (seeds included)
    comparison = stats.compare_designs(RAISED, n_runs=50)
    assert comparison.sequential == explicit
    info = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert set(info) == {"rates", "alpha", "power", "batch_pairs", "unpaired_per_arm", "unpaired_episodes",
                         "paired_fixed_pairs", "paired_fixed_episodes", "sequential", "sequential_mean_episodes",
                         "ratio"}
    assert info["paired_fixed_pairs"] == paired_fixed_sample_size(RAISED, alpha=0.01, power=0.8)
    with pytest.raises(StatsInputError, match="^power 0.8 not reached within 200 pairs$"):
        stats.sequential_sample_size(PairedRates.null(0.3, 0.1), n_runs=20, pair_cap=200)
