"""The scene space both searches draw from (a hypothesis strategy and a uniform sampler over the same scenes),
the outcome of checking a property on one scene, and scene classes (what makes two failures distinct)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from specs.support.scenes import CONFLICT_KINDS  # noqa: F401  (one definition, re-exported)
from fixtures.builder import Scene, SceneBuilder
from fixtures.scenario import TURNS, EgoSpec, Scenario, VehicleSpec
from fixtures.strategies import ARMS, JITTER, MIN_GAP_TO_EGO, SLOT, ego_specs, scenarios


ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = ROOT / "specs" / "regressions"
DATABASE_ROOT = ROOT / ".hypothesis" / "fuzz"
DISTANCE_BANDS = (10.0, 25.0, 50.0)  # m: band edges of a vehicle's distance to its conflict point (scene classes)
SLOWER = 0  # action index: the only action that lowers the target speed (FASTER == IDLE at top speed)


@dataclasses.dataclass(frozen=True)
class SceneSpace:
    """Ego + one timed conflicting vehicle + 0..max_others others; ranges in m, m/s and s.

    ``routes`` are the (approach, turn) pairs whose path meets the ego's; ``ego_to_conflict`` the ego's arc length
    from its entry to each route's conflict point (so the timed vehicle can be placed by time).
    """

    routes: tuple[tuple[str, str], ...]
    ego_to_conflict: tuple[float, ...]
    lead: tuple[float, float]
    ego_turn: str = "left"
    ego_distance: tuple[float, float] = (0.0, 35.0)
    ego_speed: tuple[float, float] = (5.0, 9.0)
    timed_speed: tuple[float, float] = (2.0, 10.0)
    max_others: int = 3
    others_distance: tuple[float, float] = (0.0, 80.0)
    others_speed: tuple[float, float] = (0.0, 10.0)

    @classmethod
    def around(cls, builder: SceneBuilder, lead: tuple[float, float], ego_turn: str = "left", **ranges) -> "SceneSpace":
        """The space on ``builder``'s road: every route that meets the ego's path (left arm first, so shrinking
        prefers traffic from the left)."""
        routes, offsets = [], []
        for approach in ("left", "right", "oncoming"):
            for turn in TURNS:
                conflict = builder.geometry.conflict(approach, turn, ego_turn)
                if conflict is not None:
                    routes.append((approach, turn))
                    offsets.append(conflict.s_ego - builder.geometry.ego_path(ego_turn).entry_s)
        return cls(tuple(routes), tuple(offsets), lead, ego_turn, **ranges)

    def strategy(self) -> st.SearchStrategy[Scenario]:
        """Hypothesis strategy: shrinks towards fewer/slower/farther others, the first route, the smallest lead."""
        ego = ego_specs(turns=(self.ego_turn,), min_distance=self.ego_distance[0], max_distance=self.ego_distance[1],
                        min_speed=self.ego_speed[0], max_speed=self.ego_speed[1])
        others = scenarios(max_vehicles=self.max_others, min_distance=self.others_distance[0],
                           max_distance=self.others_distance[1], min_speed=self.others_speed[0],
                           max_speed=self.others_speed[1], ego=ego)
        timed = st.tuples(st.integers(0, len(self.routes) - 1), st.floats(*self.lead), st.floats(*self.timed_speed))
        return st.builds(lambda base, t: self.assemble(base.ego, *t, base.vehicles), others, timed).filter(
            lambda s: s is not None)

    def sample(self, rng: np.random.Generator) -> Scenario | None:
        """One scene drawn uniformly from the same space (None: the draw is not a valid scenario; draw again)."""
        ego = EgoSpec(distance=float(rng.uniform(*self.ego_distance)), speed=float(rng.uniform(*self.ego_speed)),
                      turn=self.ego_turn)
        route, lead, speed = int(rng.integers(len(self.routes))), float(rng.uniform(*self.lead)), float(
            rng.uniform(*self.timed_speed))
        others = self._uniform_others(rng, ego)
        return None if others is None else self.assemble(ego, route, lead, speed, others)

    def _uniform_others(self, rng: np.random.Generator, ego: EgoSpec) -> tuple[VehicleSpec, ...] | None:
        """fixtures.strategies.scenarios' placement rule (10 m slots per arm, < 4 m jitter), drawn uniformly."""
        low, high = self.others_distance
        slots, jitter = int((high - low) // SLOT) + 1, min(JITTER, high - low)
        count = int(rng.integers(0, self.max_others + 1))
        cells = rng.permutation(len(ARMS) * slots)[:count]  # distinct (arm, slot) cells
        vehicles = []
        for cell in cells:
            arm, slot = ARMS[cell // slots], int(cell % slots)
            distance = max(low, high - slot * SLOT - float(rng.uniform(0.0, jitter)))
            if arm == "own":
                if abs(distance - ego.distance) < MIN_GAP_TO_EGO:
                    return None
                arm = "ahead" if distance < ego.distance else "behind"
            vehicles.append(VehicleSpec(arm, distance, speed=float(rng.uniform(*self.others_speed)),
                                        turn=str(TURNS[int(rng.integers(len(TURNS)))])))
        return tuple(vehicles)

    def assemble(self, ego: EgoSpec, route: int, lead: float, speed: float,
                 others: Iterable[VehicleSpec]) -> Scenario | None:
        """The timed vehicle (named v0) placed so it reaches the conflict point ``lead`` s before the ego."""
        approach, turn = self.routes[route]
        ego_time = (self.ego_to_conflict[route] + ego.distance) / ego.speed
        arrive = ego_time - lead
        if arrive < 0:
            return None
        timed = VehicleSpec(approach, speed * arrive, speed=speed, turn=turn, reference="conflict")
        rest = tuple(dataclasses.replace(v, name="") for v in others)
        return Scenario(ego=ego, vehicles=(timed, *rest), name="fuzzed")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One scene checked: in the domain?, holds?, score (higher = closer to failing), the vehicles involved."""

    applicable: bool
    holds: bool = True
    score: float = float("-inf")
    summary: str = ""
    involved: tuple[str, ...] = ()
    scene_class: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    numbers: Mapping[str, Any] = dataclasses.field(default_factory=dict)


NOT_APPLICABLE = Outcome(applicable=False)


def distance_band(distance: float | None) -> str:
    if distance is None or not math.isfinite(distance):
        return "?"
    if distance < 0:
        return "past"
    low = 0.0
    for edge in DISTANCE_BANDS:
        if distance < edge:
            return f"{low:g}-{edge:g}m"
        low = edge
    return f">={low:g}m"


def vehicle_class(scene: Scene, name: str) -> str:
    """approach, turn and distance band of one vehicle (the ego: its distance to the intersection entry)."""
    if name == "ego":
        return f"ego {scene.scenario.ego.turn} {distance_band(scene.scenario.ego.distance)}"
    relation = scene.relations[name]
    if relation.kind in CONFLICT_KINDS:
        distance = relation.distance_to_conflict
    elif relation.gap is not None:
        distance = abs(relation.gap)
    else:
        distance = relation.distance_to_ego
    return f"{relation.approach} {relation.turn} {distance_band(distance)}"


def scene_class(scene: Scene, involved: Iterable[str]) -> str:
    """The class that defines a *distinct* failure: the ego's and each involved vehicle's side, turn, band."""
    others = sorted(vehicle_class(scene, name) for name in set(involved) - {"ego"})
    return " | ".join([vehicle_class(scene, "ego"), *others])


def make_outcome(scene: Scene, *, holds: bool, score: float, summary: str, involved: Iterable[str],
             labels: Mapping[str, str], **numbers: Any) -> Outcome:
    involved = tuple(involved)
    return Outcome(True, holds, float(score), summary, involved, scene_class(scene, involved), dict(labels), numbers)
