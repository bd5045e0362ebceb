"""The environment factory: the real highway-env intersection, built from an rl-agents env config."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interp.model.config import load_env_config
from interp.simulation.env import action_names, make_env, observation_shape
from interp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ENV_CONFIG = ROOT / "checkpoints" / "reference" / "env_config.json"


@pytest.fixture(scope="module")
def env_config() -> dict:
    return load_env_config(ENV_CONFIG)


@pytest.fixture(scope="module")
def env(env_config):
    """One env for the module: building one costs about 0.7 s."""
    env = make_env(env_config, seed=0)
    yield env
    env.close()


def test_reference_env_observation_shape(env):
    assert observation_shape(env) == (15, 7)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (15, 7) and obs.dtype == np.float32
    assert obs[0, 0] == 1.0  # the ego row is present


def test_env_follows_the_config(env, env_config):
    assert env.unwrapped.spec.id == env_config["id"] == "intersection-v0"
    observation = env.unwrapped.config["observation"]
    assert observation["features"] == ["presence", "x", "y", "vx", "vy", "cos_h", "sin_h"]
    assert observation["order"] == "shuffled" and observation["absolute"] is True
    assert env.unwrapped.config["destination"] == "o1"


def test_action_names_come_from_the_env(env, env_config):
    assert action_names(env) == ["SLOWER", "IDLE", "FASTER"]
    actions = env.unwrapped.action_type.actions
    assert action_names(env) == [actions[i] for i in range(env.action_space.n)]
    # A config that changes the action type changes the names: they are read, not copied.
    lateral = make_env({**env_config, "action": {"type": "DiscreteMetaAction", "lateral": True, "longitudinal": True}})
    try:
        assert len(action_names(lateral)) == lateral.action_space.n == 5
        assert {"LANE_LEFT", "LANE_RIGHT"} <= set(action_names(lateral))
    finally:
        lateral.close()


def test_seeded_resets_repeat(env):
    first, _ = env.reset(seed=7)
    env.step(1)
    again, _ = env.reset(seed=7)
    np.testing.assert_array_equal(first, again)


def test_bad_env_id(env_config):
    with pytest.raises(ConfigError, match="no-such-env-v0"):
        make_env({**env_config, "id": "no-such-env-v0"})
    with pytest.raises(ConfigError, match="'id'"):
        make_env({k: v for k, v in env_config.items() if k != "id"})


def test_bad_import_module(env_config):
    with pytest.raises(ConfigError, match="no_such_module"):
        make_env({**env_config, "import_module": "no_such_module"})
