"""Greedy rollouts of an agent, optionally under interventions, on common seeds, over the worker pool.

Every (condition, seed) pair is an episode; episodes are spread over ``slots`` env slots in a fixed order
and the network runs once per round per condition on a batch laid out by slot, so records do not
depend on the number of workers. Conditions run side by side on the same seeds (common random numbers).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from interp.agent import Agent
from interp.hooks import HookFn, NameFilter
from interp.workers import EnvPool, Reset, Step, StepResult, batch_obs

Hooks = Sequence[tuple[NameFilter, HookFn]]


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """One greedy episode. ``arrived`` is the env's own arrival test (reward term ``arrived_reward``)."""

    condition: str
    seed: int
    crashed: bool
    arrived: bool
    length: int
    ret: float
    actions: tuple[int, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Running:
    condition: str
    seed: int
    obs: np.ndarray | None = None
    actions: list[int] = dataclasses.field(default_factory=list)
    ret: float = 0.0


def rollout(agent: Agent, seeds: Sequence[int], conditions: Mapping[str, Hooks] | None = None, *,
            workers: int | None = None, slots: int = 8, progress: bool = False) -> list[EpisodeRecord]:
    """Run each condition (name -> hooks; default: the plain agent) on every seed; records in (condition, seed) order."""
    conditions = dict(conditions or {"baseline": ()})
    queue = [(name, int(seed)) for seed in seeds for name in conditions]
    obs_shape = (agent.model.config["in"] // agent.model.config["embedding_layer"]["in"],
                 agent.model.config["embedding_layer"]["in"])
    records: dict[tuple[str, int], EpisodeRecord] = {}
    running: dict[int, _Running] = {}
    bar = _progress_bar(len(queue), progress)
    with EnvPool(agent.env_config, min(slots, max(len(queue), 1)), workers) as pool:
        n_slots = pool.n_slots
        commands: dict[int, Reset | Step] = {}
        next_item = 0
        while next_item < len(queue) or running:
            for slot in range(n_slots):
                if slot not in running and next_item < len(queue):
                    name, seed = queue[next_item]
                    next_item += 1
                    running[slot] = _Running(name, seed)
                    commands[slot] = Reset(seed=seed)
            results = pool.run(commands)
            commands = {}
            for slot in sorted(results):
                ep = running[slot]
                result = results[slot]
                if ep.obs is not None:  # a step result
                    ep.ret += result.reward
                ep.obs = result.obs
                if result.done:
                    records[(ep.condition, ep.seed)] = _record(ep, result)
                    del running[slot]
                    bar.update(1)
            live = {slot: ep for slot, ep in running.items() if slot not in commands}
            for slot, action in _greedy(agent, conditions, live, n_slots, obs_shape).items():
                running[slot].actions.append(action)
                commands[slot] = Step(action)
    bar.close()
    return [records[item] for item in queue]


def _greedy(agent: Agent, conditions: Mapping[str, Hooks], live: Mapping[int, _Running], n_slots: int,
            obs_shape) -> dict[int, int]:
    """One forward per condition on a slot-laid batch (fixed shape, so ties cannot flip with batch contents)."""
    actions = {}
    for name, hooks in conditions.items():
        mine = {slot: ep.obs for slot, ep in live.items() if ep.condition == name}
        if not mine:
            continue
        batch = torch.from_numpy(batch_obs(n_slots, mine, obs_shape))
        with torch.no_grad():
            q = agent.model.run_with_hooks(batch, hooks) if hooks else agent.model(batch)
        best = q.argmax(1).numpy()
        actions.update({slot: int(best[slot]) for slot in mine})
    return actions


def _record(ep: _Running, last: StepResult) -> EpisodeRecord:
    return EpisodeRecord(condition=ep.condition, seed=ep.seed, crashed=last.crashed, arrived=last.arrived,
                         length=len(ep.actions), ret=ep.ret, actions=tuple(ep.actions))


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="episodes", unit="ep", disable=not enabled, dynamic_ncols=True)
