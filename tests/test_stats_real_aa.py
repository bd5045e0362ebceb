"""A/A calibration of the sequential paired test on real rollout outcomes.

Two disjoint seed sets of the same checkpoint have no true difference. From the 500 greedy held-out episodes of
the earlier reference agent ``reference-v1`` (real highway-env rollouts, ``tests/data``), draw two disjoint random seed sets, pair them index
by index, and run the sequential test as the specs do (batches of 25, at most 250 pairs). Over 2000 draws the
share of "supported" verdicts must not be significantly above alpha; repeating a plain exact McNemar test at
every look on the same draws (the mistake the always-valid design avoids) is the control that must exceed it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from interp.stats import PairedCounts, SequentialPairedTest, mcnemar_exact, wilson_interval

DATA = json.loads((Path(__file__).parent / "data" / "reference-v1_heldout_outcomes.json").read_text())
ALPHA, BATCH, PAIRS, DRAWS = 0.05, 25, 250, 2000


def _draws(seed: int = 0):
    outcomes = np.array(DATA["crashed"], dtype=bool)
    rng = np.random.default_rng(seed)
    for _ in range(DRAWS):
        order = rng.permutation(len(outcomes))
        yield outcomes[order[:PAIRS]], outcomes[order[PAIRS:2 * PAIRS]]


def _sequential_supports(a: np.ndarray, b: np.ndarray) -> bool:
    test = SequentialPairedTest(alpha=ALPHA, direction="increase", max_pairs=PAIRS, min_effect=0.05)
    for i in range(0, PAIRS, BATCH):
        if test.update(a[i:i + BATCH], b[i:i + BATCH]).stop:
            break
    return test.verdict().verdict == "supported"


def _repeated_mcnemar_supports(a: np.ndarray, b: np.ndarray) -> bool:
    return any(mcnemar_exact(PairedCounts.from_outcomes(a[:i], b[:i]), alternative="greater").p_value <= ALPHA
               for i in range(BATCH, PAIRS + 1, BATCH))


def test_sequential_test_keeps_its_false_positive_rate_on_real_disjoint_seed_sets():
    assert len(DATA["crashed"]) >= 2 * PAIRS and 0 < sum(DATA["crashed"]) < len(DATA["crashed"])
    false_positives = sum(_sequential_supports(a, b) for a, b in _draws())
    low, _ = wilson_interval(false_positives, DRAWS, alpha=0.02)  # one-sided 99 % lower bound
    assert low <= ALPHA, f"A/A false-positive rate {false_positives / DRAWS:.3f} is significantly above {ALPHA}"


def test_the_control_repeated_fixed_n_test_inflates_the_false_positive_rate():
    false_positives = sum(_repeated_mcnemar_supports(a, b) for a, b in _draws())
    low, _ = wilson_interval(false_positives, DRAWS, alpha=0.02)
    assert low > ALPHA, f"peeking with a fixed-n test should exceed {ALPHA}; got {false_positives / DRAWS:.3f}"
