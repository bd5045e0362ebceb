"""Budgets per ``--profile``: how many episodes and scenes a spec may spend.

The sequential designs stop early when the evidence is clear; these are the maxima. Built scenes cost
milliseconds, so ``quick`` and ``default`` test the same scenes (a mechanism verdict does not depend on the
profile); only the number of simulated episodes differs. ``quick`` keeps the
whole spec run within ~3 minutes on 2 cores with a cold cache, ``default`` within ~10, ``full`` has no
time bound and treats an inconclusive verdict as a failure.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Budget:
    name: str
    heldout_episodes: int  # greedy episodes for rate claims (held-out seeds)
    max_pairs: int  # maximum paired seeds per condition in a sequential test
    batch_pairs: int  # paired seeds added per sequential look
    calibration_scenes: int  # scenes used to resolve head roles (disjoint from test scenes)
    test_scenes: int  # scenes a mechanism/invariance spec tests on
    sweep_points: int  # distances per sweep
    fuzz_examples: int  # hypothesis examples per fuzz property
    inconclusive_fails: bool = False


PROFILES = {
    "quick": Budget("quick", heldout_episodes=40, max_pairs=40, batch_pairs=20, calibration_scenes=120,
                    test_scenes=120, sweep_points=8, fuzz_examples=25),
    # default: max_pairs 300 gives the per-head ablation spec ~90 % power for +8.5 points from 28.5 % with Holm
    # across 4 heads (200 pairs gave ~65 %); benchmarks/test_power.py simulates it (docs/how-it-works/statistics.md)
    "default": Budget("default", heldout_episodes=200, max_pairs=300, batch_pairs=50, calibration_scenes=120,
                      test_scenes=120, sweep_points=8, fuzz_examples=25),
    "full": Budget("full", heldout_episodes=500, max_pairs=800, batch_pairs=100, calibration_scenes=300,
                   test_scenes=300, sweep_points=12, fuzz_examples=200, inconclusive_fails=True),
}
