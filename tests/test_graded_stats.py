"""The graded sequential paired test: calibrated under the null at every look (always-valid), powerful under a
shift, Holm across hypotheses, clear errors; and a mutant (a t-test re-run at every look) that the calibration
check catches."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from interp.statistics.graded import GradedDesign, GradedPairedFamily
from interp.statistics.inputs import StatsInputError

ALPHA = 0.05
RUNS = 400
LOOKS = 10
BATCH = 20


def _run(make_pair, decide, rng) -> bool:
    """True when the procedure claims an effect at any of LOOKS looks of BATCH pairs."""
    base_all, treat_all = [], []
    for _ in range(LOOKS):
        b, t = make_pair(rng, BATCH)
        base_all.append(b)
        treat_all.append(t)
        if decide(np.concatenate(base_all), np.concatenate(treat_all), b, t):
            return True
    return False


def _betting(design):
    state = {}

    def decide(base, treat, b, t):
        family = state.setdefault("f", GradedPairedFamily(["h"], design))
        if not family.stopped:
            family.update(b, {"h": t})
        return family.status("h") == "supported"
    return decide


def _peeking_t_test(base, treat, b, t):  # the mutant: a fixed-n test re-run at every look
    return stats.ttest_rel(treat, base, alternative="less").pvalue <= ALPHA


def _rejection_rate(decide_factory, make_pair) -> tuple[int, int]:
    rng = np.random.default_rng(7)
    hits = sum(_run(make_pair, decide_factory(), rng) for _ in range(RUNS))
    return hits, RUNS


def test_always_valid_under_the_null_and_the_peeking_mutant_is_caught():
    design = GradedDesign(scale=5.0, min_effect=0.25, direction="decrease", max_pairs=LOOKS * BATCH)

    def null(rng, n):
        return rng.uniform(0, 5, n), rng.uniform(0, 5, n)
    hits, n = _rejection_rate(lambda: _betting(design), null)
    # exact one-sided binomial: the rejection rate is not above alpha
    assert stats.binomtest(hits, n, ALPHA, alternative="greater").pvalue > 0.05, hits
    mutant_hits, _ = _rejection_rate(lambda: _peeking_t_test, null)
    assert stats.binomtest(mutant_hits, n, ALPHA, alternative="greater").pvalue < 0.01, mutant_hits


def test_detects_a_shift_and_refutes_a_null_effect():
    rng = np.random.default_rng(3)
    design = GradedDesign(scale=5.0, min_effect=0.25, direction="decrease", max_pairs=400)
    family = GradedPairedFamily({"lower": "lowers", "same": "lowers"}, design)
    while not family.stopped:
        base = rng.uniform(2, 5, 20)
        family.update(base, {name: np.clip(base - (1.0 if name == "lower" else 0.0) + rng.normal(0, 0.3, 20), 0, 5)
                             for name in family.active})
    v = family.verdicts()
    assert v["lower"].verdict == "supported" and v["lower"].ci[1] < 0
    assert v["same"].verdict == "refuted" and v["same"].ci[0] > -0.25
    assert -1.2 < v["lower"].effect < -0.8


def test_clear_errors_on_bad_input():
    design = GradedDesign(scale=5.0, min_effect=0.25)
    with pytest.raises(StatsInputError, match="cap them first"):
        GradedPairedFamily(["h"], design).update([1.0, 6.0], {"h": [1.0, 2.0]})
    with pytest.raises(StatsInputError, match="min_effect"):
        GradedDesign(scale=5.0, min_effect=5.0)
