"""The mutation benchmark's sample (benchmarks/mutation.py): a module's scored set is a prefix of a random order
fixed by the committed seed (so a time budget never biases it toward fast mutants), and each score carries its
95 % Wilson interval."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import mutation

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "interp.statistics.intervals."


def _results(n: int, done: set[int], code: int = 1) -> dict[str, int | None]:
    return {f"{PREFIX}x_f__mutmut_{i}": (code if i in done else None) for i in range(n)}


def test_the_order_is_fixed_by_the_seed_alone():
    results = _results(50, set())
    shuffled = dict(reversed(list(results.items())))
    order = mutation.permutation("stats-intervals", results, seed=7)
    assert order == mutation.permutation("stats-intervals", shuffled, seed=7)
    assert sorted(order) == sorted(results) and order != sorted(results)
    assert order != mutation.permutation("stats-intervals", results, seed=8)


def test_the_scored_set_stops_at_the_first_mutant_without_a_result():
    results = _results(30, set())
    order = mutation.permutation("stats-intervals", results, seed=1)
    for name in order[:5] + order[6:20]:  # the 6th has no result: the scored prefix ends before it
        results[name] = 1
    assert mutation.scored_prefix("stats-intervals", results, seed=1) == order[:5]
    results[order[5]] = 0
    assert mutation.scored_prefix("stats-intervals", results, seed=1) == order[:20]


def test_wilson_interval_matches_the_closed_form():
    killed, n, z = 85, 100, 1.959963984540054
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert mutation.wilson(killed, n) == pytest.approx([centre - half, centre + half], abs=1e-9)
    assert mutation.wilson(0, 0) is None


def test_the_committed_sample_names_its_seed_and_round_size():
    spec = json.loads((ROOT / "benchmarks" / "mutation-sample.json").read_text())
    assert isinstance(spec["seed"], int) and spec["round"] >= 1
