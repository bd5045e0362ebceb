"""The fast simulator's verified scope (``interp.simulation.fastsim.scope``): identity on every declared value,
the plain simulator with one warning outside it, and records and cache keys that say which simulator ran.

The identity variants are read from the declaration itself: every value in ``scope.VERIFIED`` that differs
from the reference config's runs the lock-step check of ``tests/test_fastsim.py`` (every observation, reward,
info and the whole simulator state after every step, by their bits), so a value cannot be declared without
being tested. ``REFUSED`` are values outside the scope, each shown to fall back with one warning naming it.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import highway_env
import pytest

from interp.model.config import load_env_config
from interp.simulation import fastsim
from interp.simulation.cache import resolved_env_config
from interp.simulation.env import make_env
from interp.simulation.fastsim import scope
from interp.simulation.records import EpisodeRecord, Start
from interp.simulation.rollout import RolloutEngine
from interp.simulation.simulator import FAST, PLAIN, in_verified_scope, outside_scope, simulator_for
from interp.simulation.workers import EnvPool
from tests.rollout_support import ENV_CONFIG, near_tie_agent
from tests.test_fastsim import random_policy, run_lockstep

SEEDS = range(79_000, 79_003)  # 3 episodes per variant, away from other tests' seeds
# the six variants every scope must decide on (supported or refused), by flat key
REQUIRED = ("observation.absolute", "observation.order", "duration", "spawn_probability", "initial_vehicle_count",
            "policy_frequency")
REFUSED = {  # flat key: a value outside the scope, and how to set it on the reference config
    "simulation_frequency": 10,
    "action.lateral": True,
    "observation.vehicles_count": 10,
    "observation.features": ["presence", "x", "y", "vx", "vy", "heading"],
    "duration": 40,
    "policy_frequency": 3,
    "an_unknown_key": 1,
}


def reference() -> dict:
    return load_env_config(ENV_CONFIG)


def with_entry(config: dict, key: str, value) -> dict:
    """``config`` with one flat key set (``observation.x`` / ``action.x`` inside those dicts)."""
    out = dict(config)
    if "." in key:
        outer, inner = key.split(".", 1)
        out[outer] = {**scope.flat_nested(resolved_env_config(config), outer), inner: value}
    else:
        out[key] = value
    return out


def variants() -> list[tuple[str, object]]:
    """Every declared value other than the reference config's own (as the env resolves it)."""
    flat = scope.flat_config(resolved_env_config(reference()))
    return [(key, value) for key, tested in scope.VERIFIED.items() for value in scope.examples(tested)
            if key not in flat or not scope._same(flat[key], value)]


REWARDS = {"collision_reward": -10, "arrived_reward": 3, "high_speed_reward": 0.5, "normalize_reward": True}


def test_the_declaration_covers_the_six_variants_and_the_reference():
    declared = dict(variants())
    assert not outside_scope(reference())
    for key in REQUIRED:
        assert key in declared or key in REFUSED, f"{key}: neither supported (identity-tested) nor refused"
    assert len([key for key in REQUIRED if key in declared]) >= 6


@pytest.mark.parametrize("key,value", variants(), ids=lambda v: str(v) if not isinstance(v, (list, dict)) else "x")
def test_each_declared_value_is_identical_on_the_fast_simulator(key, value):
    config = with_entry(reference(), key, value)
    assert in_verified_scope(config)
    plain, fast = make_env(config), make_env(config, fast_sim=True)
    assert fastsim.is_enabled(fast) and not fastsim.is_enabled(plain)
    assert plain.unwrapped.config == fast.unwrapped.config
    assert scope.flat_config(fast.unwrapped.config)[key] == value  # the variant really reached the env
    steps = [run_lockstep(plain, fast, seed, random_policy(seed)) for seed in SEEDS]
    assert sum(steps) >= len(SEEDS)


def test_reward_weights_are_not_simulated_and_give_identical_episodes():
    config = {**reference(), **REWARDS}
    assert in_verified_scope(config)
    plain, fast = make_env(config), make_env(config, fast_sim=True)
    assert fastsim.is_enabled(fast)
    for seed in SEEDS:
        run_lockstep(plain, fast, seed, random_policy(seed))


def test_the_identity_check_fails_on_a_planted_difference():
    """The harness the variants rely on can fail: a fast env on policy frequency 2 against a plain env on 1
    (each steps its own config) must be told apart."""
    plain = make_env(reference())
    fast = make_env(with_entry(reference(), "policy_frequency", 2), fast_sim=True)
    with pytest.raises(AssertionError):
        run_lockstep(plain, fast, SEEDS[0], random_policy(SEEDS[0]))


def test_duration_is_read_only_by_the_truncation_test():
    """Why shorter durations are covered by the identity test at 20: of the code an intersection-v0 env runs
    (highway-env's package less the other envs' modules), only ``IntersectionEnv._is_truncated`` reads the
    entry (``time >= duration``), so a shorter episode is a prefix of a longer one."""
    package = Path(highway_env.__file__).parent
    other_envs = {path for path in (package / "envs").glob("*.py") if path.name not in ("intersection_env.py",
                                                                                        "__init__.py")}
    sources = [path for path in package.rglob("*.py") if path not in other_envs]
    assert package / "envs" / "common" / "abstract.py" in sources and len(other_envs) >= 5
    reads = [(path.name, line.strip()) for path in sources
             for line in path.read_text(encoding="utf-8").splitlines() if re.search(r"""\[["']duration["']\]""", line)]
    assert reads == [("intersection_env.py", 'return self.time >= self.config["duration"]')]


# ---------------------------------------------------------------------------------------------- outside

@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(scope, "_WARNED", set())


@pytest.mark.parametrize("key,value", list(REFUSED.items()), ids=list(REFUSED))
def test_outside_the_scope_the_plain_simulator_runs_with_one_warning_naming_the_key(fresh_warnings, key, value):
    config = with_entry(reference(), key, value)
    assert not in_verified_scope(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        envs = [make_env(config, fast_sim=True) for _ in range(3)]
        assert simulator_for(config, True) == PLAIN
    assert not any(fastsim.is_enabled(env) for env in envs)
    relevant = [w for w in caught if issubclass(w.category, RuntimeWarning) and "verified" in str(w.message)]
    assert len(relevant) == 1, [str(w.message) for w in relevant]
    assert f"{key}={value!r}" in str(relevant[0].message)
    with pytest.raises(fastsim.OutsideVerifiedScope, match=re.escape(key)):
        fastsim.enable(envs[0])
    envs[0].reset(seed=0)  # still a working plain simulator


def test_inside_the_scope_there_is_no_warning(fresh_warnings):
    """The control: the same calls on the reference config warn nothing and install the fast simulator."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = make_env(reference(), fast_sim=True)
        assert simulator_for(reference(), True) == FAST
    assert fastsim.is_enabled(env)
    assert not [w for w in caught if "verified" in str(w.message)]


def test_a_pool_outside_the_scope_decides_once_for_its_workers(fresh_warnings):
    config = with_entry(reference(), "simulation_frequency", 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with EnvPool(config, 2, 0, fast_sim=True) as pool:
            pool.run({0: _reset(0), 1: _reset(1)})
            assert pool.simulator == PLAIN
            assert not any(fastsim.is_enabled(env) for env in pool._local.envs.values())
    assert len([w for w in caught if "verified" in str(w.message)]) == 1


def _reset(seed: int):
    from interp.simulation.workers import Reset

    return Reset(seed=seed)


# ---------------------------------------------------------------------------------------------- records

def test_records_name_their_simulator_and_the_key_names_it_only_outside_the_scope(fresh_warnings, tmp_path):
    agent = near_tie_agent(duration=3)
    with RolloutEngine(workers=0, slots=1, cache=tmp_path / "cache", fast_sim=True) as fast_engine:
        (fast_record,) = fast_engine.run(agent, [5])
    assert fast_record.simulator == FAST
    with RolloutEngine(workers=0, slots=1, cache=tmp_path / "cache", fast_sim=False) as plain_engine:
        (served,) = plain_engine.run(agent, [5])
        assert plain_engine.stats.cached == 1  # inside the scope one key serves both simulators
    assert served.simulator == FAST  # a cached record keeps the simulator that produced it
    with RolloutEngine(workers=0, slots=1, cache=None, fast_sim=False) as plain_engine:
        (plain_record,) = plain_engine.run(agent, [5])
    assert plain_record.simulator == PLAIN
    assert (plain_record.actions, plain_record.ret) == (fast_record.actions, fast_record.ret)
    assert EpisodeRecord.from_dict(fast_record.to_dict()).simulator == FAST

    outside = with_entry(agent.env_config, "simulation_frequency", 10)
    with pytest.warns(RuntimeWarning, match="simulation_frequency"):
        with RolloutEngine(workers=0, slots=1, cache=tmp_path / "cache", fast_sim=True) as engine:
            (record,) = engine.run(agent, [5], env_config=outside)
    assert record.simulator == PLAIN
    inside_key = RolloutEngine.key(agent, resolved_env_config(agent.env_config), Start(5), _plain())
    assert inside_key == RolloutEngine.key(agent, resolved_env_config(agent.env_config), Start(5), _plain(), None)
    resolved = resolved_env_config(outside)
    assert RolloutEngine.key(agent, resolved, Start(5), _plain(), PLAIN) != RolloutEngine.key(
        agent, resolved, Start(5), _plain(), FAST)


def _plain():
    from interp.simulation.records import Condition

    return Condition("baseline")
