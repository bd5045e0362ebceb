"""Unit tests of interp.stats: known values from the literature, cross-checks against scipy/statsmodels, and
simulation checks (A/A calibration, power, Holm familywise error) that can fail, each with a control showing
that the check bites on a procedure known to be wrong."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats as sps
from statsmodels.stats.multitest import multipletests

from interp import stats
from interp.stats import (PairedCounts, PairedRates, SequentialDesign, SequentialPairedFamily, SequentialPairedTest,
                          StatsInputError, Verdict, holm, mcnemar_exact, mcnemar_verdict, newcombe_paired_interval,
                          newcombe_unpaired_interval, paired_bootstrap_interval, paired_fixed_sample_size,
                          run_sequential, simulate_paired_outcomes, simulate_sequential, unpaired_sample_size,
                          wilson_interval)

# A measured example (benchmarks/test_stats_design.py): ablating one head moved crashes 28.5 % -> 37 %, discordant 4 vs 21 per 200 pairs.
PLANTED = PairedRates(both=0.265, baseline_only=4 / 200, treatment_only=21 / 200)
# A/A: same 28.5 % rate in both conditions, 12.5 % discordant pairs (as many as the planted case), no difference.
NULL = PairedRates.null(rate=0.285, discordance=0.125)
RUNS = 2000


def significantly_above(events: int, runs: int, bound: float) -> bool:
    """The stated tolerance of every simulated error rate: it fails only if the one-sided 99 % Wilson lower
    bound of the observed rate exceeds ``bound`` (so a true rate <= bound fails about 1 % of the time at most,
    and with 2000 runs a true rate 1.5x alpha is caught)."""
    return wilson_interval(events, runs, alpha=0.02)[0] > bound


def significantly_below(events: int, runs: int, bound: float) -> bool:
    return wilson_interval(events, runs, alpha=0.02)[1] < bound


# ------------------------------------------------------------------------------------------- known values

def test_wilson_matches_published_and_hand_computed_value():
    # Newcombe (1998a), Stat Med 17:857, example 81/263: Wilson 95 % interval 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    # Independent hand formula: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    k, n, z = 3, 40, sps.norm.isf(0.025)
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    assert wilson_interval(k, n) == pytest.approx(((centre - half) / scale, (centre + half) / scale))
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("events, n", [(-1, 10), (11, 10), (0, 0)])
def test_wilson_refuses_impossible_counts(events, n):
    with pytest.raises(StatsInputError, match="0 <= events <= n"):
        wilson_interval(events, n)


def test_newcombe_unpaired_matches_published_value():
    # Newcombe (1998b), Stat Med 17:873, example 56/70 vs 48/80: method 10 interval 0.0524 to 0.3339.
    low, high = newcombe_unpaired_interval(baseline_events=48, baseline_n=80, treatment_events=56, treatment_n=70)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_newcombe_paired_matches_published_value_and_flips_with_roles():
    # Fagerland, Lydersen & Laake (2017) ch. 8, Cavo et al. table [[59, 6], [16, 80]]: first - second = -0.0621,
    # Newcombe square-and-add 95 % interval -0.1186 to -0.0046. Here treatment = second, baseline = first.
    counts = PairedCounts(both=59, baseline_only=6, treatment_only=16, neither=80)
    low, high = newcombe_paired_interval(counts)
    assert counts.difference == pytest.approx(10 / 161)
    assert (round(low, 4), round(high, 4)) == (0.0046, 0.1186)
    swapped = PairedCounts(both=59, baseline_only=16, treatment_only=6, neither=80)
    assert newcombe_paired_interval(swapped) == pytest.approx((-high, -low))


def test_newcombe_paired_interval_covers_in_simulation():
    """Coverage of the hand-written paired interval on the planted design (n = 100): near 95 %, never far below."""
    rng = np.random.default_rng(7)
    base, treat = simulate_paired_outcomes(PLANTED, n_runs=1500, n_pairs=100, rng=rng)
    covered = 0
    for b, t in zip(base, treat[:, 0]):
        low, high = newcombe_paired_interval(PairedCounts.from_outcomes(b, t))
        covered += low <= PLANTED.difference <= high
    assert not significantly_below(covered, 1500, 0.93)


def test_exact_mcnemar_matches_scipy_binomtest_on_discordant_pairs():
    for b, c in [(4, 21), (10, 10), (0, 7), (3, 0), (12, 5)]:
        counts = PairedCounts(both=30, baseline_only=b, treatment_only=c, neither=100)
        two = mcnemar_exact(counts)
        assert two.p_value == pytest.approx(sps.binomtest(c, b + c, 0.5).pvalue)
        greater = mcnemar_exact(counts, alternative="greater")
        assert greater.p_value == pytest.approx(sps.binomtest(c, b + c, 0.5, alternative="greater").pvalue)
        assert greater.difference == pytest.approx((c - b) / counts.n)
        assert greater.ci == newcombe_paired_interval(counts)
    assert mcnemar_exact(PairedCounts(5, 0, 0, 5)).p_value == 1.0


def test_paired_counts_from_outcomes_and_refusals():
    counts = PairedCounts.from_outcomes([1, 1, 0, 0, 1], [True, False, True, False, True])
    assert counts == PairedCounts(both=2, baseline_only=1, treatment_only=1, neither=1)
    with pytest.raises(StatsInputError, match="one baseline and one treatment episode per seed"):
        PairedCounts.from_outcomes([1, 0], [1])
    with pytest.raises(StatsInputError, match="element 1 is 2"):
        PairedCounts.from_outcomes([0, 2], [0, 1])
    with pytest.raises(StatsInputError, match="1-D"):
        PairedCounts.from_outcomes([[0, 1]], [[0, 1]])


def test_mcnemar_verdict_fixed_n():
    base = np.array([0] * 150 + [1] * 4 + [0] * 21 + [1] * 25, bool)
    treat = np.array([0] * 150 + [0] * 4 + [1] * 21 + [1] * 25, bool)
    v = mcnemar_verdict(base, treat, claim="ablation raises crashes", alpha=0.01)
    assert v.verdict == "supported" and v.discordant == (4, 21) and v.n == 200
    assert v.p_value == pytest.approx(sps.binomtest(21, 25, 0.5, alternative="greater").pvalue)
    assert v.ci[0] > 0 and "McNemar" in v.decision_rule and "SUPPORTED" in v.summary()
    same = mcnemar_verdict(base, base, alpha=0.01)
    assert same.verdict == "refuted" and same.ci[1] < 0.05


def test_paired_bootstrap_is_seeded_and_covers_a_planted_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(5.0, 2.0, size=80)
    treat = base + 1.0 + rng.normal(0.0, 0.5, size=80)
    first = paired_bootstrap_interval(base, treat, n_resamples=2000, seed=3)
    again = paired_bootstrap_interval(base, treat, n_resamples=2000, seed=3)
    assert first == again
    assert first.effect == pytest.approx(np.mean(treat - base))
    assert 0 < first.ci[0] < 1.0 < first.ci[1]
    # Pairing is what makes it narrow: the per-pair noise (sd 0.5) is far below the between-seed spread (sd 2).
    assert first.ci[1] - first.ci[0] < 0.5
    flat = paired_bootstrap_interval(base, base + 2.0)
    assert flat.ci == pytest.approx((2.0, 2.0))
    with pytest.raises(StatsInputError, match="NaN"):
        paired_bootstrap_interval([1.0, np.nan], [1.0, 2.0])


def test_holm_matches_statsmodels_and_the_vectorised_holm_agrees():
    rng = np.random.default_rng(1)
    # few rows: every multipletests call runs gc.collect(), slow in a big process
    p = rng.uniform(0, 0.1, size=(3, 5)) ** rng.uniform(0.5, 2, size=(3, 5))
    adjusted = stats.holm_adjusted(p)
    for row, adj in zip(p, adjusted):
        assert adj == pytest.approx(multipletests(row, method="holm")[1])
    reject, adj = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert list(reject) == [True, False, False, True] and adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with pytest.raises(StatsInputError):
        holm([0.5, 1.5])


# ------------------------------------------------------------------------------------------- e-values

def test_e_values_equal_the_explicit_betting_products():
    rng = np.random.default_rng(2)
    x = rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1], size=60)
    counts = (np.sum(x == 1), np.sum(x == 0), np.sum(x == -1))
    bets = stats.betting_fractions(7)
    for delta in (-0.3, 0.0, 0.05, 0.4):
        up = np.mean([np.prod(1 + g * (x - delta) / (1 + delta)) for g in bets])
        down = np.mean([np.prod(1 - g * (x - delta) / (1 - delta)) for g in bets])
        assert float(stats.log_e_value_up(*counts, delta, bets)) == pytest.approx(math.log(up))
        assert float(stats.log_e_value_down(*counts, delta, bets)) == pytest.approx(math.log(down))


def test_sequential_test_supports_a_clear_effect_and_its_interval_agrees():
    test = SequentialPairedTest(alpha=0.01, max_pairs=400, claim="ablating head 1 raises collisions")
    rng = np.random.default_rng(4)
    base, treat = simulate_paired_outcomes(PairedRates(0.2, 0.0, 0.3), n_runs=1, n_pairs=400, rng=rng)
    decision = None
    for start in range(0, 400, 20):
        decision = test.update(base[0, start:start + 20], treat[0, 0, start:start + 20])
        if decision.stop:
            break
    assert decision.stop and decision.verdict == "supported" and decision.p_value <= 0.01
    v = test.verdict()
    assert v.verdict == "supported" and v.ci[0] > 0 and v.n == test.n < 400
    assert v.claim == "ablating head 1 raises collisions" and v.discordant[0] == 0
    assert json.loads(json.dumps(v.to_dict()))["verdict"] == "supported"
    with pytest.raises(StatsInputError, match="already stopped"):
        test.update([True], [True])


def test_futility_refutes_when_nothing_changes_and_interval_agrees():
    test = SequentialPairedTest(alpha=0.01, max_pairs=1000, min_effect=0.05)
    same = np.zeros(50, bool)
    same[::4] = True
    while not test.stopped:
        decision = test.update(same, same)
    v = test.verdict()
    assert decision.verdict == v.verdict == "refuted" and v.n < 1000
    assert v.ci[1] < 0.05 and v.effect == 0.0 and v.discordant == (0, 0)


def test_decrease_direction_mirrors_increase():
    rng = np.random.default_rng(5)
    base, treat = simulate_paired_outcomes(PairedRates(0.2, 0.3, 0.0), n_runs=1, n_pairs=200, rng=rng)
    down = SequentialPairedTest(alpha=0.01, direction="decrease", max_pairs=200)
    up = SequentialPairedTest(alpha=0.01, direction="increase", max_pairs=200)
    down.update(base[0], treat[0, 0])
    up.update(treat[0, 0], base[0])  # roles swapped: the same evidence, mirrored
    vd, vu = down.verdict(), up.verdict()
    assert vd.verdict == vu.verdict == "supported" and vd.effect == pytest.approx(-vu.effect)
    assert vd.ci == pytest.approx((-vu.ci[1], -vu.ci[0])) and vd.p_value == pytest.approx(vu.p_value)


def test_inconclusive_at_max_pairs_and_pairs_beyond_it_are_not_used():
    test = SequentialPairedTest(alpha=0.01, max_pairs=30)
    base = np.array([True, False] * 20)
    decision = test.update(base, ~base)  # 40 pairs, all discordant, half each way
    assert decision.stop and decision.verdict == "inconclusive" and decision.n == 30 and decision.n_used == 30
    assert test.verdict().n == 30


def test_early_verdict_is_inconclusive_with_a_note():
    test = SequentialPairedTest(alpha=0.01, max_pairs=300)
    test.update([True, False], [True, True])
    v = test.verdict()
    assert v.verdict == "inconclusive" and "stopped by the caller at 2 pairs" in v.decision_rule


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 1.5}, "alpha must lie in"), ({"direction": "up"}, "direction must be one of"),
    ({"max_pairs": 0}, "max_pairs must be a positive integer"), ({"min_effect": 0}, "min_effect"),
])
def test_design_refuses_bad_settings(kwargs, message):
    with pytest.raises(StatsInputError, match=message):
        SequentialDesign(**kwargs)


def test_family_refuses_missing_or_unknown_treatments():
    family = SequentialPairedFamily(["head0", "head1"], alpha=0.05, max_pairs=100)
    with pytest.raises(StatsInputError, match=r"missing \['head1'\], unknown \['head9'\]"):
        family.update([True], {"head0": [True], "head9": [False]})


# ------------------------------------------------------------------------------------------- simulations

@pytest.mark.parametrize("n_hypotheses", [1, 4])
def test_objects_and_vectorised_simulation_reach_the_same_verdicts(n_hypotheses):
    """The calibration simulations are only evidence about the objects if both run the same rule."""
    design = SequentialDesign(alpha=0.05, max_pairs=120, min_effect=0.1)
    rates = PairedRates(0.1, 0.08, 0.14)
    base, treat = simulate_paired_outcomes(rates, n_runs=25, n_pairs=120, n_treatments=n_hypotheses,
                                           rng=np.random.default_rng(6))
    sim = run_sequential(design, base, treat, batch_pairs=15)
    for run in range(25):
        names = [f"h{i}" for i in range(n_hypotheses)]
        family = SequentialPairedFamily(names, design)
        start = 0
        while not family.stopped:
            family.update(base[run, start:start + 15],
                          {n: treat[run, i, start:start + 15] for i, n in enumerate(names) if n in family.active})
            start += 15
        verdicts = family.verdicts()
        assert [verdicts[n].verdict for n in names] == list(sim.verdict_names()[run])
        assert [verdicts[n].n for n in names] == list(sim.stop_n[run])
        if n_hypotheses == 1:  # the interval states the decision: lower end > 0 iff supported, etc.
            v = verdicts["h0"]
            assert (v.ci[0] > 0) == (v.verdict == "supported")
            assert v.verdict != "refuted" or v.ci[1] < design.min_effect


def test_aa_calibration_false_positive_rate_at_most_alpha():
    """A/A: 2000 sequential runs, up to 1000 pairs each with looks every 10, 12.5 % discordant pairs and no
    true difference. The false-positive ("supported") rate must not be significantly above alpha."""
    for alpha in (0.05, 0.01):
        design = SequentialDesign(alpha=alpha, max_pairs=1000)
        sim = simulate_sequential(design, NULL, n_runs=RUNS, batch_pairs=10, seed=11)
        false_positives = int(sim.supported.sum())
        assert not significantly_above(false_positives, RUNS, alpha), (false_positives, alpha)


def test_aa_calibration_check_bites_on_naive_peeking():
    """Control: the same check on an exact one-sided McNemar test re-run at every look (peeking) must fail."""
    alpha, ends = 0.05, np.arange(10, 1001, 10)
    base, treat = simulate_paired_outcomes(NULL, n_runs=RUNS, n_pairs=1000, rng=np.random.default_rng(11))
    x = treat[:, 0].astype(int) - base
    c, b = np.cumsum(x == 1, axis=1)[:, ends - 1], np.cumsum(x == -1, axis=1)[:, ends - 1]
    peeking_positive = (sps.binom.sf(c - 1, b + c, 0.5) <= alpha).any(axis=1)
    assert significantly_above(int(peeking_positive.sum()), RUNS, alpha)


def test_futility_calibration_false_refutation_rate_at_most_futility_alpha():
    """A true rise of 5 points, at the futility margin (0.049): "refuted" must not be significantly more
    frequent than futility_alpha over 2000 runs."""
    rates = PairedRates(both=0.245, baseline_only=0.04, treatment_only=0.09)
    design = SequentialDesign(alpha=0.05, max_pairs=1000, min_effect=0.049)
    sim = simulate_sequential(design, rates, n_runs=RUNS, batch_pairs=10, seed=15)
    assert not significantly_above(int(sim.refuted.sum()), RUNS, design.refute_alpha)


def test_planted_difference_is_detected_with_power(record_property):
    """4 vs 21 discordant per 200 pairs (28.5 % -> 37 %): at alpha 0.01, max 300 pairs, looks every 10,
    the claim is supported in >= 80 % of 2000 runs; the stopping n is reported."""
    design = SequentialDesign(alpha=0.01, max_pairs=300)
    sim = simulate_sequential(design, PLANTED, n_runs=RUNS, batch_pairs=10, seed=12)
    power = float(sim.supported.mean())
    stop = sim.stop_n[:, 0]
    record_property("power", power)
    record_property("stop_n_median", float(np.median(stop)))
    record_property("stop_n_mean", float(stop.mean()))
    print(f"planted 4 vs 21 per 200: power {power:.3f}, stopping n median {np.median(stop):.0f}, "
          f"mean {stop.mean():.1f}, 90th percentile {np.quantile(stop, 0.9):.0f} (max 300)")
    assert power >= 0.8
    assert sim.refuted.mean() <= 0.01  # a true effect of 8.5 points > min_effect is refuted at most alpha


def test_holm_keeps_familywise_error_across_four_sequential_tests():
    """Four hypotheses sharing one baseline, each treatment with no true effect: familywise error <= alpha.
    Control: the same runs without Holm exceed alpha, so the check can fail."""
    alpha = 0.05
    design = SequentialDesign(alpha=alpha, max_pairs=1000)
    with_holm = simulate_sequential(design, NULL, n_runs=RUNS, n_hypotheses=4, batch_pairs=20, seed=13)
    assert not significantly_above(int(with_holm.supported.any(axis=1).sum()), RUNS, alpha)
    without = simulate_sequential(design, NULL, n_runs=RUNS, n_hypotheses=4, batch_pairs=20, seed=13,
                                  holm_adjust=False)
    assert significantly_above(int(without.supported.any(axis=1).sum()), RUNS, alpha)


def test_holm_family_with_two_real_effects_keeps_error_on_the_nulls():
    alpha, design = 0.05, SequentialDesign(alpha=0.05, max_pairs=600)
    rng = np.random.default_rng(14)
    base, null_treat = simulate_paired_outcomes(NULL, n_runs=RUNS, n_pairs=600, n_treatments=2, rng=rng)
    # Treatments with a real effect, drawn on the same baseline (planted table conditional on the baseline).
    p_real = np.where(base, PLANTED.both / PLANTED.baseline_rate,
                      PLANTED.treatment_only / (1 - PLANTED.baseline_rate))
    real = rng.random((RUNS, 2, 600)) < p_real[:, None, :]
    # All four share one baseline (NULL and PLANTED both have a 28.5 % baseline rate).
    sim = run_sequential(design, base, np.concatenate([null_treat, real], axis=1), batch_pairs=20)
    assert not significantly_above(int(sim.supported[:, :2].any(axis=1).sum()), RUNS, alpha)
    assert sim.supported[:, 2:].mean() >= 0.9


def test_sample_sizes_unpaired_and_paired_fixed():
    # Textbook arcsine formula: n = ((z_a + z_b) / h)^2 per arm... times 2 for two equal arms (Cohen's h).
    h = 2 * math.asin(math.sqrt(0.37)) - 2 * math.asin(math.sqrt(0.285))
    expected = 2 * ((sps.norm.isf(0.01) + sps.norm.isf(0.2)) / h) ** 2
    assert unpaired_sample_size(0.285, 0.37, alpha=0.01, power=0.8) == math.ceil(expected)
    n = paired_fixed_sample_size(PLANTED, alpha=0.01, power=0.8)

    def exact_power(pairs: int) -> float:  # by brute force over the critical value of every discordant count
        r, q = PLANTED.baseline_only + PLANTED.treatment_only, PLANTED.treatment_only / 0.125
        total = 0.0
        for d in range(1, pairs + 1):
            k = np.arange(d + 1)
            reject = k[sps.binom.sf(k - 1, d, 0.5) <= 0.01]
            if reject.size:
                total += sps.binom.pmf(d, pairs, r) * sps.binom.sf(reject.min() - 1, d, q)
        return total

    assert exact_power(n) >= 0.8 > exact_power(n - 1)


def test_verdict_to_dict_is_json_with_none_for_nan():
    v = Verdict(claim=None, verdict="inconclusive", n=0, effect=math.nan, ci=(-1.0, 1.0), p_value=1.0,
                decision_rule="r", discordant=(0, 0))
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert d["effect"] is None and d["ci"] == [-1.0, 1.0] and d["discordant"] == {"baseline_only": 0,
                                                                                  "treatment_only": 0}
