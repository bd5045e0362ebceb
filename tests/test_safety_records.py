"""The rollout engine's records carry the safety measures, computed from the real simulator's states, and keep
them through the cache."""
from __future__ import annotations

import json

import pytest

from interp.safety import measures
from interp.simulation.records import EpisodeRecord
from interp.simulation.rollout import RolloutEngine


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from interp.simulation.agent import load_agent

    agent = load_agent("checkpoints/reference")
    with RolloutEngine(workers=0, cache=tmp_path_factory.mktemp("cache")) as engine:
        fresh = engine.run(agent, range(3_000_000, 3_000_006))
        cached = engine.run(agent, range(3_000_000, 3_000_006))
        assert engine.stats.cached == 6
    return fresh, cached


def test_records_carry_the_measures_and_the_cache_keeps_them(records):
    fresh, cached = records
    for r, c in zip(fresh, cached):
        s = r.safety
        assert s is not None and c.safety == s
        assert len(s["ttc"]) == len(s["drac"]) == len(s["min_distance"]) == r.length + 1
        assert all(0.0 <= t <= measures.TTC_CAP_S for t in s["ttc"])
        assert s["min_ttc"] == min(s["ttc"])
        if r.crashed:  # a crash is a touch: TTC 0 at the end, no gap, a PET of 0
            assert s["ttc"][-1] == 0.0 and s["min_distance_episode"] == 0.0 and s["min_pet"] == 0.0
        json.dumps(r.to_dict())  # JSON-able as evaluate --json writes it
        assert EpisodeRecord.from_dict(json.loads(json.dumps(r.to_dict()))).safety == s


def test_evaluate_json_carries_the_measures(tmp_path):
    from interp.cli import main

    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", "checkpoints/reference", "--episodes", "2", "--seed", "3000100",
                 "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--json", str(out)]) == 0
    episodes = json.loads(out.read_text())["episodes"]
    assert len(episodes) == 2
    for e in episodes:
        assert set(e["safety"]) >= {"ttc", "drac", "min_distance", "min_ttc", "max_drac", "min_distance_episode",
                                    "pet", "min_pet"}


def test_the_recorder_sees_every_simulation_frame_and_every_decision():
    """The documented frequencies: one frame per simulation frame (15 per policy step, plus the initial state),
    one decision state per step plus the initial one; a deep copy of the env records into its own recorder."""
    import copy

    from interp.simulation.agent import load_agent
    from interp.simulation.workers import Reset, Step, _SlotEnvs

    agent = load_agent("checkpoints/reference")
    envs = _SlotEnvs(agent.env_config, record_rows=True, fast_sim=True)
    envs.run(0, Reset(seed=3_000_200))
    for _ in range(3):
        envs.run(0, Step(1))
    unwrapped = envs.env(0).unwrapped
    recorder = unwrapped._hypodrive_safety
    frames_per_step = unwrapped.config["simulation_frequency"] // unwrapped.config["policy_frequency"]
    assert len(recorder.frames) == 1 + 3 * frames_per_step
    assert len(recorder.decisions) == 1 + 3
    clone = copy.deepcopy(unwrapped)
    assert clone._hypodrive_safety is not recorder and clone._automatic_rendering.unwrapped is clone
    envs.close()
