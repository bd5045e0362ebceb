"""Scene families the specs test on, drawn from seeded generators (calibration and test sets disjoint).

A family is a list of built scenes whose ground truth (which vehicle is the nearest crossing one, which
row it sits in) comes from the scene builder. Calibration scenes (used to resolve head roles) and test
scenes (used by the specs) come from different generator seeds, so a role is never fitted on the scenes
that then test it.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from fixtures.builder import Scene, SceneBuilder
from fixtures.scenario import EgoSpec, Scenario, ScenarioError, VehicleSpec

CALIBRATION_SEED = 101
TEST_SEED = 202
CROSSING_SIDES = ("left", "right")


def _distractor(rng: np.random.Generator, name: str) -> VehicleSpec:
    """A vehicle that may or may not cross the ego's path: the builder's ground truth says which."""
    approach = str(rng.choice(["left", "right", "oncoming"]))
    return VehicleSpec(approach, float(rng.uniform(20.0, 70.0)), speed=float(rng.uniform(4.0, 9.0)),
                       turn=str(rng.choice(["left", "straight", "right"])), name=name)


def crossing_scenario(rng: np.random.Generator, *, side: str | None = None, distance: float | None = None,
                      speed: float | None = None, distractors: int | None = None) -> Scenario:
    """The ego 20-45 m before the entry at 9 m/s turning left, one car crossing straight from the left or
    right at 4-60 m from the conflict point, and 0-3 other cars anywhere."""
    side = side or str(rng.choice(CROSSING_SIDES))
    crossing = VehicleSpec(side, float(rng.uniform(4.0, 60.0)) if distance is None else distance,
                           speed=float(rng.uniform(5.0, 10.0)) if speed is None else speed,
                           turn="straight", reference="conflict", name="crossing")
    n_other = int(rng.integers(0, 4)) if distractors is None else distractors
    others = tuple(_distractor(rng, f"other{i}") for i in range(n_other))
    ego = EgoSpec(distance=float(rng.uniform(20.0, 45.0)), speed=9.0, turn="left")
    return Scenario(ego=ego, vehicles=(crossing, *others), name=f"crossing_{side}")


def build_family(builder: SceneBuilder, n: int, seed: int, make: Callable[[np.random.Generator], Scenario],
                 accept: Callable[[Scene], bool] = lambda scene: True, max_tries: int = 20) -> list[Scene]:
    """``n`` accepted scenes from ``make``; draws that cannot be built (overlaps etc.) are redrawn."""
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    tries = 0
    while len(scenes) < n:
        tries += 1
        if tries > max_tries * n:
            raise RuntimeError(f"only {len(scenes)} of {n} scenes could be built in {tries} draws")
        try:
            scene = builder.build(make(rng), allow_unobserved=True)
        except ScenarioError:
            continue
        if accept(scene):
            scenes.append(scene)
    return scenes


@dataclasses.dataclass(frozen=True)
class ArrivesFirst:
    """"A crossing vehicle reaches the conflict point first": the one definition, every choice a parameter.

    The lead of a vehicle is the ego's time to its conflict point with that vehicle minus the vehicle's own
    (ground truth from the scene builder, seconds); positive: the vehicle gets there first.

    ``vehicles``: ``"nearest"`` (only the scene's nearest crossing vehicle) or ``"any"`` (every vehicle whose
    path meets the ego's, crossing or merging). ``observed``: the vehicle must have an observation row.
    ``min_lead`` / ``max_lead``: the lead's bounds; ``strict`` makes the lower bound strict (lead > min_lead)
    instead of inclusive. ``horizon``: the ego at most this far (seconds) from the conflict point (None: any
    distance); ``strict_horizon``: strictly closer than it.
    """

    vehicles: str = "nearest"
    observed: bool = True
    min_lead: float = 0.0
    max_lead: float = float("inf")
    strict: bool = True
    horizon: float | None = None
    strict_horizon: bool = True

    def __post_init__(self) -> None:
        if self.vehicles not in ("nearest", "any"):
            raise ValueError(f"vehicles must be 'nearest' or 'any', got {self.vehicles!r}")

    def which(self, scene: Scene) -> list[str]:
        """The vehicles that arrive first under these parameters (names, in the scene's order)."""
        if self.vehicles == "nearest":
            names = [scene.nearest_crossing] if scene.nearest_crossing else []
        else:
            names = [name for name, r in scene.relations.items() if r.kind in CONFLICT_KINDS]
        return [name for name in names if self._first(scene, name)]

    def __call__(self, scene: Scene) -> bool:
        return bool(self.which(scene))

    def lead(self, scene: Scene, name: str) -> float:
        r = scene.relations[name]
        return r.ego_time_to_conflict - r.time_to_conflict

    def _first(self, scene: Scene, name: str) -> bool:
        r = scene.relations.get(name)
        if r is None or r.time_to_conflict is None or r.ego_time_to_conflict is None:
            return False
        if self.observed and scene.rows.get(name) is None:
            return False
        lead = self.lead(scene, name)
        if not math.isfinite(lead):
            return False
        above = lead > self.min_lead if self.strict else lead >= self.min_lead
        if not (above and lead <= self.max_lead):
            return False
        if self.horizon is None:
            return True
        return r.ego_time_to_conflict < self.horizon if self.strict_horizon else r.ego_time_to_conflict <= self.horizon


CONFLICT_KINDS = ("crossing", "merge")  # relation kinds whose path meets the ego's


def has_observed_nearest_crossing(scene: Scene) -> bool:
    return scene.nearest_crossing is not None and scene.rows.get(scene.nearest_crossing) is not None


def crossing_scenes(builder: SceneBuilder, n: int, seed: int) -> list[Scene]:
    """Scenes with an observed nearest crossing vehicle."""
    return build_family(builder, n, seed, crossing_scenario, has_observed_nearest_crossing)


def observations(scenes: list[Scene]) -> np.ndarray:
    return np.stack([s.observation for s in scenes]).astype(np.float32)


def nearest_crossing_rows(scenes: list[Scene]) -> np.ndarray:
    return np.array([scene.rows[scene.nearest_crossing] for scene in scenes])


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One scene family member rebuilt with its crossing vehicle at several distances (nearest last)."""

    distances: tuple[float, ...]
    scenes: tuple[Scene, ...]


def distance_sweeps(builder: SceneBuilder, n: int, seed: int, points: int, near: float = 6.0,
                    far: float = 50.0) -> list[Sweep]:
    """Paired sweeps: the same scene (ego, other cars, speed) with only the crossing car's distance changed,
    so each sweep is its own control."""
    rng = np.random.default_rng(seed)
    distances = tuple(float(d) for d in np.linspace(far, near, points))
    sweeps: list[Sweep] = []
    tries = 0
    while len(sweeps) < n and tries < 20 * n:
        tries += 1
        base = crossing_scenario(rng, distance=far)
        try:
            scenes = tuple(builder.build(dataclasses.replace(
                base, vehicles=(dataclasses.replace(base.vehicles[0], distance=d), *base.vehicles[1:])),
                allow_unobserved=True) for d in distances)
        except ScenarioError:
            continue
        if all(scene.rows.get("crossing") is not None for scene in scenes):
            sweeps.append(Sweep(distances, scenes))
    return sweeps


def same_crossing_groups(builder: SceneBuilder, n_groups: int, members: int, seed: int) -> tuple[list[Scene], list[int]]:
    """Groups of scenes sharing the ego and the nearest crossing car exactly, differing in the other cars:
    within a group, anything that "only depends on the nearest crossing vehicle" must be equal."""
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    labels: list[int] = []
    group = 0
    tries = 0
    while group < n_groups and tries < 50 * n_groups:
        tries += 1
        base = crossing_scenario(rng, distractors=0)
        found: list[Scene] = []
        for _ in range(members * 6):
            scenario = dataclasses.replace(base, vehicles=(base.vehicles[0], *(_distractor(rng, f"other{i}")
                                                                              for i in range(int(rng.integers(0, 4))))))
            try:
                scene = builder.build(scenario, allow_unobserved=True)
            except ScenarioError:
                continue
            if scene.nearest_crossing == "crossing" and scene.rows.get("crossing") is not None:
                found.append(scene)
            if len(found) == members:
                break
        if len(found) == members:
            scenes += found
            labels += [group] * members
            group += 1
    return scenes, labels
