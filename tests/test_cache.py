"""The episode cache: keys cover every determining input, reruns are served from disk, a killed run leaves
only whole records, several processes can share it, and it can be bypassed and cleared."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from interp.simulation import cache as cache_mod
from interp.simulation.agent import untrained_agent
from interp.simulation.cache import RolloutCache, default_cache_dir, record_key, resolved_env_config
from interp.model.config import canonical_json, load_agent_config, load_env_config
from interp.simulation.env import make_env
from interp.errors import ConfigError
from interp.probes.interventions import head_ablation
from interp.simulation.rollout import ENGINE_VERSION, Condition, RolloutEngine, Start
from tests.planted import ROOT

AGENT_CONFIG = ROOT / "checkpoints" / "reference" / "agent_config.json"
ENV_CONFIG = ROOT / "checkpoints" / "reference" / "env_config.json"
VERSIONS = {"highway-env": "1.12.1", "gymnasium": "1.4.0", "torch": "2.13.0", "numpy": "2.4.6"}


def short_env(duration: int = 2) -> dict:
    env = load_env_config(ENV_CONFIG)
    env["duration"] = duration
    return env


@pytest.fixture(scope="module")
def agent():
    return untrained_agent(load_agent_config(AGENT_CONFIG), short_env(), init_seed=0)


# ----------------------------------------------------------------------------------- keys

BASE_KEY = dict(agent_identity="abc123", env_config={"id": "intersection-v0", "duration": 13},
                start={"seed": 1, "setup": None}, intervention=None, engine_version="e1", versions=VERSIONS)

VARIANTS = {
    "checkpoint identity": {"agent_identity": "abc124"},
    "env config": {"env_config": {"id": "intersection-v0", "duration": 12}},
    "seed": {"start": {"seed": 2, "setup": None}},
    "scenario": {"start": {"seed": 1, "setup": {"scene": "empty road"}}},
    "intervention": {"intervention": {"kind": "ablation", "units": [1]}},
    "intervention detail": {"intervention": {"kind": "ablation", "units": [2]}},
    "engine version": {"engine_version": "e2"},
    **{f"{lib} version": {"versions": {**VERSIONS, lib: VERSIONS[lib] + ".post1"}} for lib in VERSIONS},
}


@pytest.mark.parametrize("what", sorted(VARIANTS))
def test_key_changes_when_a_determining_input_changes(what):
    assert record_key(**{**BASE_KEY, **VARIANTS[what]}) != record_key(**BASE_KEY)


def test_key_is_canonical_and_covers_the_installed_library_versions():
    reordered = {**BASE_KEY, "env_config": {"duration": 13, "id": "intersection-v0"}}
    assert record_key(**reordered) == record_key(**BASE_KEY)
    assert set(cache_mod.library_versions()) == set(VERSIONS)
    without = {k: v for k, v in BASE_KEY.items() if k != "versions"}
    assert record_key(**without) == record_key(**without, versions=cache_mod.library_versions())


def test_resolved_env_config_fills_defaults_so_spelled_out_defaults_share_a_key():
    plain = load_env_config(ENV_CONFIG)
    resolved = resolved_env_config(plain)
    assert resolved["duration"] == 13 and resolved["id"] == "intersection-v0"  # the env's default, filled in
    assert resolved_env_config({**plain, "duration": 13}) == resolved
    assert resolved_env_config({**plain, "duration": 12}) != resolved
    env = make_env(plain)  # computed from the class without building an env, yet equal to what the env uses
    try:
        built = {**env.unwrapped.config, "id": plain["id"], "import_module": plain["import_module"]}
        built.pop("offscreen_rendering")  # set from the render mode at build time; never changes an episode
        assert resolved == json.loads(canonical_json(built))
    finally:
        env.close()
    with pytest.raises(ConfigError, match="no 'id'"):
        resolved_env_config({"duration": 3})


def test_engine_key_covers_agent_condition_start_and_engine(agent):
    env = resolved_env_config(agent.env_config)
    plain = Condition("plain")
    key = RolloutEngine.key(agent, env, Start(1), plain)
    other = untrained_agent(load_agent_config(AGENT_CONFIG), short_env(), init_seed=1)
    assert RolloutEngine.key(other, env, Start(1), plain) != key
    assert RolloutEngine.key(agent, env, Start(2), plain) != key
    assert RolloutEngine.key(agent, env, Start(1), Condition("renamed")) == key  # names do not key records
    ablation = head_ablation([0], n_heads=4)
    assert RolloutEngine.key(agent, env, Start(1), Condition("a", ablation.hooks, ablation.describe())) != key
    assert RolloutEngine.key(agent, env, Start(1), Condition("h", [("hook_q", lambda q, h: q)])) is None
    assert RolloutEngine.key(agent, env, Start(1, setup=lambda e: None), plain) is None
    assert ENGINE_VERSION in json.dumps(ENGINE_VERSION)


# ----------------------------------------------------------------------------------- serving

def test_second_run_is_served_from_the_cache_without_starting_workers(agent, tmp_path):
    conditions = {"plain": None, "ablate0": head_ablation([0], n_heads=4)}
    with RolloutEngine(workers=1, slots=4, cache=tmp_path / "c") as first:
        records = first.run(agent, [1, 2], conditions)
    assert first.stats.simulated == 4 and first.stats.cached == 0
    with RolloutEngine(workers=1, slots=4, cache=tmp_path / "c") as second:
        again = second.run(agent, [1, 2], conditions)
        assert second._pool is None  # nothing to simulate: no worker was started
    assert second.stats.simulated == 0 and second.stats.cached == 4
    assert again == records
    with RolloutEngine(workers=0, cache=tmp_path / "c") as third:
        renamed = third.run(agent, [1], {"baseline": None})
    assert third.stats.cached == 1 and renamed[0].condition == "baseline"
    assert renamed[0] == records[0].__class__(**{**records[0].__dict__, "condition": "baseline"})


def test_a_traced_request_recomputes_untraced_entries_once(agent, tmp_path):
    with RolloutEngine(workers=0, cache=tmp_path / "c") as engine:
        plain = engine.run(agent, [3])
        traced = engine.run(agent, [3], trace=True)
        assert engine.stats.simulated == 2 and traced[0].trace is not None
        again = engine.run(agent, [3], trace=True)
        untraced = engine.run(agent, [3])
        assert engine.stats.simulated == 2 and engine.stats.cached == 2
    assert again == traced and untraced == plain and untraced[0].trace is None


def test_no_cache_reads_and_writes_nothing(agent, tmp_path, monkeypatch):
    monkeypatch.setenv(cache_mod.ENV_VAR, str(tmp_path / "default"))
    with RolloutEngine(workers=0, cache=None) as engine:
        engine.run(agent, [4])
        engine.run(agent, [4])
    assert engine.stats.simulated == 2 and engine.stats.cached == 0
    assert not (tmp_path / "default").exists()


CRASHING_RUN = textwrap.dedent("""
    import os, signal, sys
    from interp.simulation.agent import untrained_agent
    from interp.model.config import load_agent_config, load_env_config
    from interp.simulation.rollout import Condition, RolloutEngine

    env = load_env_config(sys.argv[2]); env["duration"] = 2
    agent = untrained_agent(load_agent_config(sys.argv[3]), env, init_seed=0)

    def killer(q, hook):  # the process dies as the second condition takes its first decision
        os.kill(os.getpid(), signal.SIGKILL)

    conditions = {"plain": None, "killer": Condition("killer", [("hook_q", killer)], {"kill": True})}
    RolloutEngine(workers=0, slots=1, cache=sys.argv[1]).run(agent, [5, 6], conditions)
""")


def test_a_run_killed_mid_way_leaves_whole_valid_entries(agent, tmp_path):
    directory = tmp_path / "c"
    proc = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(directory), str(ENV_CONFIG), str(AGENT_CONFIG)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    with RolloutCache(directory) as cache:
        assert len(cache) == 1  # seed 5 under the plain agent finished before the kill
        assert cache._cache.check() == []  # diskcache's own consistency check: no warnings
    with RolloutEngine(workers=0, cache=directory) as engine:
        served = engine.run(agent, [5], {"plain": None})
        assert engine.stats.cached == 1
    with RolloutEngine(workers=0, cache=None) as engine:
        fresh = engine.run(agent, [5], {"plain": None})
    assert served == fresh


CONCURRENT_WRITER = textwrap.dedent("""
    import sys
    from interp.simulation.cache import RolloutCache
    cache = RolloutCache(sys.argv[1])
    me = int(sys.argv[2])
    for i in range(300):
        cache.set(f"shared-{i}", {"writer": me, "i": i, "payload": list(range(50))})
        cache.set(f"own-{me}-{i}", {"writer": me, "i": i})
        got = cache.get(f"shared-{(i * 7) % 300}")
        assert got is None or got["i"] == (i * 7) % 300, got
    print("ok")
""")


def test_several_processes_share_one_cache(tmp_path):
    directory = tmp_path / "c"
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(directory), str(me)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for me in (0, 1)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    with RolloutCache(directory) as cache:
        assert len(cache) == 300 + 2 * 300
        assert all(cache.get(f"shared-{i}")["i"] == i for i in range(300))


# ----------------------------------------------------------------------------------- location and clearing

def test_default_location_is_the_env_var_or_the_gitignored_project_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(cache_mod.ENV_VAR, raising=False)
    assert default_cache_dir() == ROOT / ".hypodrive-cache"
    assert "/.hypodrive-cache/" in (ROOT / ".gitignore").read_text().split()
    monkeypatch.setenv(cache_mod.ENV_VAR, str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    assert RolloutCache.default().directory == tmp_path / "elsewhere"


def test_clear_empties_the_cache_and_the_command_line_does_too(tmp_path, capsys):
    from interp.cli import main

    directory = tmp_path / "c"
    with RolloutCache(directory) as cache:
        for i in range(3):
            cache.set(f"k{i}", {"i": i})
    assert cache_mod.clear(directory) == 3
    with RolloutCache(directory) as cache:
        assert len(cache) == 0
        cache.set("k", {"i": 0})
    assert main(["cache", "info", "--cache-dir", str(directory)]) == 0
    assert "1 episode records" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(directory)]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert cache_mod.clear(tmp_path / "never-made") == 0


def test_an_unreadable_entry_is_a_miss(tmp_path):
    with RolloutCache(tmp_path / "c") as cache:
        cache._cache.set("bad", "not a record dict")
        assert cache.get("bad") is None and cache.get("absent") is None
