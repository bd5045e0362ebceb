"""The fast simulator's verified scope: the env-config values on which its identity with highway-env is tested.

Why: identity is shown by running both simulators side by side, and a run shows it only for the config it
ran. So the fast simulator is installed only where every entry of the env config (highway-env's class
defaults with the given entries over them, the shallow update highway-env does; the observation's entries
and the action's with their classes' defaults) has a value declared here; elsewhere the plain simulator runs, with
one warning naming the key. ``tests/test_fastsim_scope.py`` runs the identity check on every declared value
that differs from the reference config (the declaration is the test's list), and checks the fallback on
values outside it.

Two kinds of key:
- ``VERIFIED``: keys that change the simulated world or what the fast code computes, each with the values
  on which identity is tested.
- ``NOT_SIMULATED``: keys the step never reads: rendering (read only when drawing) and the reward weights
  (read by highway-env's own reward code, which the fast simulator does not replace, on the same state).
  Any value; the reward weights are varied in one identity test all the same.
A key in neither is outside the scope (a key this highway-env version does not know, or one added later).
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

from highway_env.envs.common.action import DiscreteMetaAction
from highway_env.envs.common.observation import KinematicObservation


class AtMost:
    """Every number in (0, ``limit``]: for a key whose smaller values give a prefix of the episode at ``limit``
    (``duration``: highway-env reads it only in ``IntersectionEnv._is_truncated``, ``time >= duration``), so
    identity tested at ``limit`` covers them. ``examples`` are the values the identity test runs."""

    def __init__(self, limit: float, examples: tuple) -> None:
        self.limit, self.examples = limit, examples

    def __contains__(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= self.limit

    def __repr__(self) -> str:
        return f"any number in (0, {self.limit}]"


REFERENCE_FEATURES = ["presence", "x", "y", "vx", "vy", "cos_h", "sin_h"]
REFERENCE_RANGE = {"x": [-100, 100], "y": [-100, 100], "vx": [-20, 20], "vy": [-20, 20]}

VERIFIED: dict[str, tuple | AtMost] = {
    "simulation_frequency": (15,),
    "policy_frequency": (1, 2),
    "duration": AtMost(20, examples=(4, 20)),
    "spawn_probability": (0.6, 0.3),
    "initial_vehicle_count": (10, 5),
    "destination": ("o1",),
    "controlled_vehicles": (1,),
    "other_vehicles_type": ("highway_env.vehicle.behavior.IDMVehicle",),
    "neighbour_vehicles_connected_lanes": (False,),
    "offroad_terminal": (False,),
    "action.type": ("DiscreteMetaAction",),
    "action.longitudinal": (True,),
    "action.lateral": (False,),
    "action.target_speeds": ([0, 4.5, 9],),
    "observation.type": ("Kinematics",),
    "observation.vehicles_count": (15,),
    "observation.features": (REFERENCE_FEATURES,),
    "observation.features_range": (REFERENCE_RANGE,),
    "observation.absolute": (True, False),
    "observation.order": ("shuffled", "sorted"),
    "observation.normalize": (True,),
    "observation.clip": (True,),
    "observation.see_behind": (False,),
    "observation.observe_intentions": (True, False),
    "observation.include_obstacles": (True,),
    "observation.flatten": (False,),
}

NOT_SIMULATED = frozenset({
    "screen_width", "screen_height", "centering_position", "scaling", "show_trajectories", "render_agent",
    "offscreen_rendering", "manual_control", "real_time_rendering",
    "collision_reward", "high_speed_reward", "arrived_reward", "reward_speed_range", "normalize_reward",
})

# rl-agents' keys (which env to build): the env class itself is checked by ``installation.check_supported``
RL_AGENTS_KEYS = frozenset({"id", "import_module", "__class__"})


def _defaults(cls) -> dict[str, Any]:
    """The keyword defaults of ``cls``'s constructor: what the env uses for a config entry left out."""
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


# config entries whose value is a dict of constructor arguments: (type name, its class's defaults)
_NESTED = {"observation": ("Kinematics", _defaults(KinematicObservation)),
           "action": ("DiscreteMetaAction", _defaults(DiscreteMetaAction))}

_WARNED: set[str] = set()


def flat_nested(config: Mapping, name: str) -> dict[str, Any]:
    """The ``observation`` or ``action`` entry of a resolved config with its class's defaults filled in."""
    type_name, defaults = _NESTED[name]
    value = dict(config.get(name) or {})
    return {**defaults, **value} if value.get("type") == type_name else value


def flat_config(config: Mapping) -> dict[str, Any]:
    """The resolved env config as ``{key: value}``, the observation's and the action's entries as
    ``observation.<entry>`` / ``action.<entry>`` (with their class's defaults for the entries left out, as
    the env builds them)."""
    flat = {key: value for key, value in config.items() if key not in _NESTED and key not in RL_AGENTS_KEYS}
    for name, (type_name, defaults) in _NESTED.items():
        value = config.get(name)
        if isinstance(value, Mapping):
            entries = {**defaults, **value} if value.get("type") == type_name else value
            flat.update({f"{name}.{key}": entry for key, entry in entries.items()})
        elif value is not None:
            flat[name] = value
    return flat


def _same(a: Any, b: Any) -> bool:
    """Equal as config values: numbers by value (1 == 1.0), containers entry by entry, nothing else coerced."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def tested_value(tested: tuple | AtMost, value: Any) -> bool:
    """Whether ``value`` is one of the ``tested`` values (or in a tested range)."""
    if isinstance(tested, AtMost):
        return value in tested
    return any(_same(value, candidate) for candidate in tested)


def examples(tested: tuple | AtMost) -> tuple:
    """The values the identity test runs for one key."""
    return tested.examples if isinstance(tested, AtMost) else tested


def outside(config: Mapping) -> list[str]:
    """The entries of the resolved env ``config`` outside the verified scope, as ``"key=value"`` strings
    (empty: inside it)."""
    found = []
    for key, value in flat_config(config).items():
        if key in NOT_SIMULATED:
            continue
        tested = VERIFIED.get(key)
        if tested is None:
            found.append(f"{key}={value!r} (a key the fast simulator was never tested with)")
        elif not tested_value(tested, value):
            shown = repr(tested) if isinstance(tested, AtMost) else ", ".join(repr(v) for v in tested)
            found.append(f"{key}={value!r} (tested: {shown})")
    return found


def describe(entries: list[str]) -> str:
    """The message for a config outside the scope: which key(s), and what to do."""
    return ("env config outside the fast simulator's verified scope (the values its identity with highway-env "
            "is tested on, interp.simulation.fastsim.scope.VERIFIED): " + "; ".join(entries)
            + ". Using the plain simulator. To add a value, add it to VERIFIED and run tests/test_fastsim_scope.py.")


def warn_once(entries: list[str], stacklevel: int = 3) -> None:
    """One ``RuntimeWarning`` per process for each distinct set of keys outside the scope."""
    message = describe(entries)
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
