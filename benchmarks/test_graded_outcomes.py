"""Known answers for the graded-outcomes benchmark's analysis (``benchmarks/graded_outcomes.py``) on planted
pools, without rollouts: a head whose ablation lowers the minimum TTC by 1 s and raises crashes by 8.5 points
is decided with fewer episodes on the graded outcome; heads without effect are not called supported; a pool
where nothing differs gives agreeing verdicts."""
from __future__ import annotations

import numpy as np
import pytest

import benchmarks.graded_outcomes as bench


def _pool(effect: bool, n: int = 200, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    base_ttc = rng.uniform(1.0, 5.0, n)
    base_crash = rng.random(n) < 0.285

    def arm(shift: float, extra_crash: float) -> dict:
        crash = base_crash | (rng.random(n) < extra_crash)
        ttc = np.clip(base_ttc - shift + rng.normal(0, 0.3, n), 0, 5)
        return {"crashed": crash, "ttc": np.where(crash, 0.0, ttc)}

    pool = {"baseline": {"crashed": base_crash, "ttc": np.where(base_crash, 0.0, base_ttc)},
            "ablate head 0": arm(1.0 if effect else 0.0, 0.12 if effect else 0.0),
            "ablate head 1": arm(0.0, 0.0)}
    pool["A/A"] = arm(0.0, 0.0)
    return pool


@pytest.fixture(autouse=True)
def few_runs(monkeypatch):
    monkeypatch.setattr(bench, "RUNS", 20)
    monkeypatch.setattr(bench, "OUTER", 4)


def test_a_planted_ttc_effect_is_decided_with_fewer_episodes_on_the_graded_outcome():
    result = bench.analyse_agent(_pool(effect=True))
    assert result["spec_order"]["graded"]["verdicts"]["ablate head 0"] == "supported"
    assert result["spec_order"]["graded"]["verdicts"]["ablate head 1"] != "supported"
    assert result["mean_episodes"]["graded"] < result["mean_episodes"]["binary"]
    assert result["ratio"] > 1.0


def test_no_effect_is_not_called_supported_by_either_test():
    result = bench.analyse_agent(_pool(effect=False, seed=1))
    for kind in ("binary", "graded"):
        assert "supported" not in result["spec_order"][kind]["verdicts"].values()
    assert result["aa_false_positive"]["graded"] <= 0.2 and result["aa_false_positive"]["binary"] <= 0.2
