"""The highway-env environment an agent is evaluated in, built from an rl-agents env config."""
from __future__ import annotations

import copy
import importlib
import warnings
from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from interp.errors import ConfigError

RL_AGENTS_KEYS = ("id", "import_module", "__class__")


def highway_config(env_config: Mapping) -> dict:
    """The part of an rl-agents env config that highway-env itself reads."""
    return {k: copy.deepcopy(v) for k, v in env_config.items() if k not in RL_AGENTS_KEYS}


def make_env(env_config: Mapping, *, render_mode: str | None = None, seed: int | None = None,
             fast_sim: bool = False) -> gym.Env:
    """Build the env as rl-agents does (import the module that registers it, then configure it).

    highway-env's ``configure`` is a *shallow* update: the ``observation`` entry of the config replaces
    the default one whole, exactly as it does in rl-agents, so the agent sees what it was trained on.

    ``fast_sim``: accelerate the simulator with ``interp.simulation.fastsim`` (bit-for-bit the same episodes,
    faster: docs/how-it-works/fast-simulator.md); where it cannot be installed (another highway-env version
    or env, or a config outside its verified scope) this warns and returns the plain simulator.
    """
    if "id" not in env_config:
        raise ConfigError("env config has no 'id' (e.g. \"intersection-v0\")")
    module = env_config.get("import_module") or "highway_env"
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(f"env config import_module {module!r} cannot be imported: {err}") from None
    config = highway_config(env_config)
    if render_mode == "rgb_array":
        config.setdefault("offscreen_rendering", True)  # without it frames come back black headless
    try:
        with warnings.catch_warnings():  # intersection-v0 is deprecated upstream, but it is what the agent knows
            warnings.filterwarnings("ignore", message=".*is out of date.*")
            env = gym.make(env_config["id"], config=config, render_mode=render_mode)
    except gym.error.Error as err:
        raise ConfigError(f"cannot make env {env_config['id']!r}: {err}") from None
    if fast_sim:
        enable_fast_sim(env)
    if seed is not None:
        env.reset(seed=seed)
    return env


def enable_fast_sim(env: gym.Env) -> bool:
    """Install ``interp.simulation.fastsim`` on ``env``; False (with a warning) where it cannot, leaving the plain
    simulator. A config outside the fast simulator's verified scope warns once per process (naming the keys)."""
    try:
        from interp.simulation import fastsim
    except ImportError as err:  # e.g. a highway-env without the classes fastsim specialises
        warnings.warn(f"fast_sim unavailable ({err}); using the plain simulator", RuntimeWarning, stacklevel=3)
        return False
    try:
        fastsim.enable(env)
    except fastsim.OutsideVerifiedScope as err:
        fastsim.scope.warn_once(err.entries, stacklevel=4)
        return False
    except fastsim.FastSimUnavailable as err:
        warnings.warn(str(err), RuntimeWarning, stacklevel=3)
        return False
    return True


def action_names(env: gym.Env) -> list[str]:
    """Action names in index order, read from the env's action type (never copied into our code)."""
    actions = env.unwrapped.action_type.actions
    return [actions[i] for i in range(len(actions))]


def observation_shape(env: gym.Env) -> tuple[int, int]:
    """(vehicles, features) of the env's Kinematics observation."""
    shape = env.observation_space.shape
    if shape is None or len(shape) != 2:
        raise ConfigError(
            f"the agent needs a Kinematics observation of shape [vehicles, features], the env gives {shape}; "
            "set observation.type = \"Kinematics\" with flatten = false"
        )
    return int(shape[0]), int(shape[1])


def observation_features(env_config: Mapping) -> list[str]:
    obs = env_config.get("observation", {})
    return list(obs.get("features", []))


def env_spec(env_config: Mapping) -> tuple[tuple[int, int], list[str]]:
    """Observation shape and action names of an env config (builds the env once; cheap enough, ~0.4 s)."""
    env = make_env(env_config)
    try:
        return observation_shape(env), action_names(env)
    finally:
        env.close()


def as_batch(obs: np.ndarray) -> np.ndarray:
    obs = np.asarray(obs, dtype=np.float32)
    return obs[None] if obs.ndim == 2 else obs
