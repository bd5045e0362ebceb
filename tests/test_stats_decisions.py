"""Edges of interp.stats' decision code that the known-answer tests in test_stats.py leave open, each pinned by a
value computed independently here (these tests were written to kill surviving mutants of
``python -m benchmarks.mutation --module stats``; the equivalent mutants left are listed in the README)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from interp import stats
from interp.stats import (PairedCounts, PairedRates, SequentialDesign, SequentialPairedFamily, StatsInputError,
                          holm, mcnemar_exact, newcombe_paired_interval, paired_bootstrap_interval,
                          paired_fixed_sample_size, wilson_interval)


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
