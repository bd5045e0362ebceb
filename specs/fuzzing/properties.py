"""The fuzz properties: each checks one built scene and returns an ``Outcome`` (in domain? holds? a score for
``hypothesis.target``, the vehicles involved)."""
from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from fixtures.branching import branch, constant_policy
from fixtures.builder import Scene, SceneBuilder
from interp.model import policy
from specs.support.scenes import ArrivesFirst
from specs.support.claims import keep_speed_margin
from specs.fuzzing.space import CONFLICT_KINDS, NOT_APPLICABLE, Outcome, SLOWER, SceneSpace, make_outcome


class Subject(Protocol):
    """What a property needs of the agent: Q-values of observations [B, N, F] (and ``model`` for attention)."""

    def q_values(self, obs: np.ndarray) -> np.ndarray: ...


class Property(Protocol):
    name: str
    claim: str
    score_label: str

    def space(self, builder: SceneBuilder) -> SceneSpace: ...

    def check(self, subject: Subject, scene: Scene) -> Outcome: ...


def _q(subject: Subject, obs: np.ndarray) -> np.ndarray:
    return np.asarray(subject.q_values(np.array(obs, dtype=np.float32)[None]))[0]  # a writable copy for torch


def _crossing(scene: Scene, name: str) -> bool:
    relation = scene.relations[name]
    return relation.kind in CONFLICT_KINDS and scene.rows.get(name) is not None


@dataclasses.dataclass(frozen=True)
class CrossingFirstSlows:
    """When an observed vehicle whose path meets the ego's reaches the conflict point ``lead[0]``..``lead[1]`` s
    before the ego, and the ego is at most ``horizon`` s from it, the agent does not keep or raise its target speed:
    keep-speed margin max(Q[IDLE], Q[FASTER]) - Q[SLOWER] <= 0. The window's upper end leaves out cars that have
    cleared the conflict point long before the ego arrives; scenes where the ego's target speed is already the
    lowest (SLOWER cannot lower it) are outside the domain."""

    lead: tuple[float, float] = (0.5, 2.0)
    horizon: float = 5.0
    name: str = "crossing_first_slows"
    claim: str = ("the agent does not keep or raise its target speed when a crossing vehicle reaches the conflict point "
                  "first")
    score_label: str = "keep-speed margin"

    def space(self, builder: SceneBuilder) -> SceneSpace:
        return SceneSpace.around(builder, self.lead)

    @property
    def arrives_first(self) -> ArrivesFirst:
        """The situation: ``specs.support.scenes.ArrivesFirst`` with this property's parameters (any observed
        conflicting vehicle, the lead inside the window inclusive, the ego at most ``horizon`` s away)."""
        return ArrivesFirst(vehicles="any", observed=True, min_lead=self.lead[0], max_lead=self.lead[1], strict=False,
                            horizon=self.horizon, strict_horizon=False)

    def first(self, scene: Scene) -> list[str]:
        """The vehicles that arrive first in ``scene`` (``arrives_first``)."""
        return self.arrives_first.which(scene)

    def check(self, subject: Subject, scene: Scene) -> Outcome:
        first = self.first(scene)
        if not first or getattr(scene.vehicle("ego"), "speed_index", 1) == 0:
            return NOT_APPLICABLE
        q = _q(subject, scene.observation)
        margin = float(keep_speed_margin(q[None])[0])
        leads = {n: self.arrives_first.lead(scene, n) for n in first}
        labels = {n: f"first by {leads[n]:.1f}s" for n in first}
        labels["ego"] = f"keep margin {margin:+.2f}"
        # Deliberately the network's preference (margin <= 0), not ``interp.model.policy``'s action: stricter by at
        # most TIE_TOL (a margin in (0, TIE_TOL] is a tie the rule resolves to SLOWER, yet counts here as keeping
        # speed), and the margin is the continuous score hypothesis.target climbs.
        return make_outcome(scene, holds=margin <= 0, score=margin, involved=first, labels=labels,
                        summary=f"keep-speed margin {margin:+.3f} (> 0 keeps speed) with {', '.join(first)} arriving "
                                f"first by {', '.join(f'{leads[n]:.2f}s' for n in first)}",
                        q=q.tolist(), margin=margin, leads=leads)


@dataclasses.dataclass(frozen=True)
class CrossingHeadAttendsNearest:
    """The crossing head's attention peaks (strict argmax over present rows, the ego's row included) on the nearest
    observed crossing vehicle: the one nearest to its conflict point with the ego's path, not yet past it."""

    head: int
    lead: tuple[float, float] = (-3.0, 3.0)
    name: str = "crossing_head_attends_nearest"
    claim: str = "the crossing head's attention goes to the nearest crossing vehicle"
    score_label: str = "attention deficit"

    def space(self, builder: SceneBuilder) -> SceneSpace:
        return SceneSpace.around(builder, self.lead)

    def check(self, subject: Subject, scene: Scene) -> Outcome:
        import torch

        nearest = scene.nearest_crossing
        if nearest is None:
            return NOT_APPLICABLE
        with torch.no_grad():
            pattern = subject.model.attention(torch.from_numpy(np.array(scene.observation, np.float32)[None]))
        weights = pattern[0, self.head, 0].numpy()
        present = np.asarray(scene.observation)[:, 0] >= 0.5
        present[0] = True
        target_row = scene.rows[nearest]
        others = np.where(present, weights, -np.inf)
        others[target_row] = -np.inf
        rival_row = int(np.argmax(others))
        deficit = float(others[rival_row] - weights[target_row])
        by_row = {row: name for name, row in scene.rows.items() if row is not None}
        rival = by_row.get(rival_row, f"row {rival_row}")
        labels = {name: f"{weights[row]:.2f}" for name, row in scene.rows.items() if row is not None}
        return make_outcome(scene, holds=deficit < 0, score=deficit, involved=(nearest, rival),
                        labels=labels,
                        summary=f"head {self.head} gives {weights[target_row]:.2f} to the nearest crossing vehicle "
                                f"{nearest} and {others[rival_row]:.2f} to {rival}",
                        nearest=nearest, rival=rival, attention_nearest=float(weights[target_row]),
                        attention_rival=float(others[rival_row]))


@dataclasses.dataclass(frozen=True)
class NoAvoidableCollision:
    """Rolling the scene forward ``steps`` policy steps under the agent's greedy policy does not end in a crash
    that the all-SLOWER policy, from the same state, avoids (fixtures.branching; no vehicles spawn)."""

    steps: int = 6
    lead: tuple[float, float] = (-2.0, 2.0)
    name: str = "no_avoidable_collision"
    claim: str = "no collision that braking from the start would have avoided"
    score_label: str = "closeness in the greedy branch (-min gap, m)"

    def space(self, builder: SceneBuilder) -> SceneSpace:
        return SceneSpace.around(builder, self.lead)

    def check(self, subject: Subject, scene: Scene) -> Outcome:
        tagged = _tagged(scene)
        greedy = branch(tagged, lambda obs: int(policy.choose(_q(subject, obs))[0]), self.steps)  # the engine's rule
        gap = min_gap(greedy.observations, scene)
        if not greedy.crashed:
            return make_outcome(scene, holds=True, score=-gap, involved=(), labels={},
                            summary=f"no crash in {greedy.steps} greedy steps (min gap {gap:.1f} m)", min_gap=gap)
        braking = branch(tagged, constant_policy(SLOWER), self.steps)
        hit = [name for name in _crashed_names(greedy.env) if name != "ego"]
        labels = {name: "hit" for name in hit}
        labels["ego"] = f"crashes at step {greedy.steps}" + ("" if braking.crashed else "; SLOWER avoids")
        return make_outcome(scene, holds=braking.crashed, score=-gap, involved=hit, labels=labels,
                        summary=f"greedy actions {greedy.actions.tolist()} crash into {', '.join(hit) or '?'} at step "
                                f"{greedy.steps}; all-SLOWER {'crashes too' if braking.crashed else 'does not crash'}",
                        min_gap=gap, greedy_actions=greedy.actions.tolist(), slower_crashed=braking.crashed)


def min_gap(observations: np.ndarray, scene: Scene) -> float:
    """Smallest centre distance [m] between the ego (row 0) and any present vehicle over a branch's observations."""
    obs_type = scene.env.observation_type
    features = list(obs_type.features)
    xy = np.asarray(observations, dtype=np.float64)[..., [features.index("x"), features.index("y")]]
    if obs_type.normalize:
        for k, name in enumerate(("x", "y")):
            low, high = obs_type.features_range[name]
            xy[..., k] = (xy[..., k] + 1.0) / 2.0 * (high - low) + low
    present = np.asarray(observations)[..., features.index("presence")] >= 0.5
    gaps = np.linalg.norm(xy[:, 1:] - xy[:, :1], axis=-1)
    gaps = np.where(present[:, 1:], gaps, np.inf)
    return float(gaps.min()) if np.isfinite(gaps).any() else float("inf")


def _tagged(scene: Scene) -> Scene:
    """The scene with its snapshot's vehicles tagged by scenario name (branches copy the tags along)."""
    import copy

    network = scene.env.road.network
    env = copy.deepcopy(scene.env, {id(network): network})
    for name, index in scene.vehicle_index.items():
        env.road.vehicles[index].fuzz_name = name
    return dataclasses.replace(scene, env=env)


def _crashed_names(env) -> list[str]:
    return [getattr(v, "fuzz_name", "?") for v in env.road.vehicles if getattr(v, "crashed", False)]


PROPERTY_NAMES = ("crossing_first_slows", "crossing_head_attends_nearest", "no_avoidable_collision")


def make_property(name: str, head: int | None = None) -> Property:
    """A property by name (``head``: the crossing head, for the attention property)."""
    if name == "crossing_first_slows":
        return CrossingFirstSlows()
    if name == "no_avoidable_collision":
        return NoAvoidableCollision()
    if name == "crossing_head_attends_nearest":
        if head is None:
            raise ValueError("the attention property needs the crossing head's index")
        return CrossingHeadAttendsNearest(head)
    raise ValueError(f"unknown fuzz property {name!r}; known: {PROPERTY_NAMES}")


@dataclasses.dataclass(frozen=True)
class ConstantPolicy:
    """A subject that always prefers one action (e.g. never SLOWER: the reckless control of the collision property)."""

    action: int
    n_actions: int = 3

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        q = np.zeros((len(obs), self.n_actions), dtype=np.float32)
        q[:, self.action] = 1.0
        return q
