"""Installing the fast simulator on one env instance, and taking it off again.

Why per instance: it changes the class of that env's own objects (env, road, road network, observation
type) to the fast subclasses; highway-env's classes are never modified and other envs are unaffected.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from highway_env.envs.common.observation import KinematicObservation
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.road.regulation import RegulatedRoad
from highway_env.road.road import RoadNetwork

from interp.errors import HypodriveError
from interp.simulation.fastsim import base, kernels, scope
from interp.simulation.fastsim.lanes import FastRoadNetwork
from interp.simulation.fastsim.observation import FastKinematicObservation
from interp.simulation.fastsim.road import FastRegulatedRoad

VERIFIED_VERSIONS = ("1.12.1",)


class FastSimUnavailable(HypodriveError, RuntimeError):
    """The fast simulator cannot be installed on this env; use the plain simulator."""


class OutsideVerifiedScope(FastSimUnavailable):
    """The env's config has values outside the fast simulator's verified scope (``scope.VERIFIED``);
    ``entries`` names them."""

    def __init__(self, entries: list[str]) -> None:
        super().__init__(scope.describe(entries))
        self.entries = entries


def highway_env_version() -> str:
    import highway_env

    return str(getattr(highway_env, "__version__", "unknown"))


def check_supported(env) -> None:
    """Raise ``FastSimUnavailable`` unless ``env`` is an intersection-v0 env on a verified highway-env, with
    a config inside the verified scope (else ``OutsideVerifiedScope``, which names the keys)."""
    version = highway_env_version()
    if version not in VERIFIED_VERSIONS:
        raise FastSimUnavailable(
            f"interp.simulation.fastsim was verified bit-for-bit against highway-env {', '.join(VERIFIED_VERSIONS)} only, "
            f"and highway-env {version} is installed: use the plain simulator (fast_sim=False), or install "
            f"highway-env=={VERIFIED_VERSIONS[-1]}, or re-verify with tests/test_fastsim.py (-m slow) and add "
            "the version to interp.simulation.fastsim.VERIFIED_VERSIONS"
        )
    unwrapped = getattr(env, "unwrapped", env)
    if type(unwrapped) not in _FAST_ENV and type(unwrapped) not in _FAST_ENV.values():
        raise FastSimUnavailable(
            f"interp.simulation.fastsim supports intersection-v0 (highway_env IntersectionEnv) only, not "
            f"{type(unwrapped).__module__}.{type(unwrapped).__qualname__}: use the plain simulator (fast_sim=False)"
        )
    entries = scope.outside(unwrapped.config)
    if entries:
        raise OutsideVerifiedScope(entries)


def enable(env):
    """Accelerate this env instance (idempotent); returns ``env``. Raises ``FastSimUnavailable``."""
    check_supported(env)
    unwrapped = env.unwrapped
    if is_enabled(env):
        return env
    unwrapped.__class__ = _FAST_ENV[type(unwrapped)]
    if base.USE_KERNELS:
        kernels.warm_up()
    for name in ("road", "observation_type"):  # convert what exists already through the descriptors
        if name in unwrapped.__dict__:
            setattr(unwrapped, name, unwrapped.__dict__[name])
    return env


install = enable


def disable(env):
    """Give this env instance back its plain highway-env classes; returns ``env``. Copies made while it was
    enabled stay accelerated."""
    unwrapped = env.unwrapped
    if not is_enabled(env):
        return env
    road = unwrapped.__dict__.get("road")
    if road is not None:
        _restore(road)
        _restore(getattr(road, "network", None))
    _restore(unwrapped.__dict__.get("observation_type"))
    _restore(unwrapped)
    return env


def is_enabled(env) -> bool:
    return isinstance(getattr(env, "unwrapped", env), FastIntersectionEnv)


@contextlib.contextmanager
def fast_sim(env) -> Iterator[Any]:
    """``with fast_sim(env): ...`` runs the block accelerated and restores the plain classes afterwards."""
    was_enabled = is_enabled(env)
    enable(env)
    try:
        yield env
    finally:
        if not was_enabled:
            disable(env)


def _restore(obj) -> None:
    if obj is None:
        return
    plain = _PLAIN.get(type(obj))
    if plain is not None:
        for key in [k for k in obj.__dict__ if k.startswith("_fastsim")]:
            del obj.__dict__[key]
        obj.__class__ = plain


class _Converting:
    """A data descriptor for an env attribute kept in the instance dict under its own name: whatever is
    assigned (by ``_make_road``, ``define_spaces``, a scene builder...) is converted to its fast class."""

    def __init__(self, convert) -> None:
        self.convert = convert

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = self.convert(value)


def _fast_road(road):
    if type(road) is RegulatedRoad:
        road.__class__ = FastRegulatedRoad
    if road is not None and type(getattr(road, "network", None)) is RoadNetwork:
        road.network.__class__ = FastRoadNetwork
    return road


def _fast_observation(observation_type):
    if type(observation_type) is KinematicObservation:
        observation_type.__class__ = FastKinematicObservation
    return observation_type


class FastIntersectionEnv(IntersectionEnv):
    """``IntersectionEnv`` whose road, road network and observation get the fast classes above."""

    road = _Converting(_fast_road)
    observation_type = _Converting(_fast_observation)


_FAST_ENV = {IntersectionEnv: FastIntersectionEnv}
_PLAIN = {FastIntersectionEnv: IntersectionEnv, FastRegulatedRoad: RegulatedRoad, FastRoadNetwork: RoadNetwork,
          FastKinematicObservation: KinematicObservation}
