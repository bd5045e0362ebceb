"""States drawn from the agent's own greedy rollouts (not built scenes), for state-level claims that need busy
scenes: calibration scenes hold 1-4 vehicles, which makes per-scene rank statistics degenerate.

Episodes are the held-out seeds (``interp.seeds``), traced by the rollout engine (cached like every record); from
each episode at most ``per_episode`` states with at least ``min_vehicles`` observed other vehicles are kept, evenly
spaced over the qualifying steps, so no single long episode dominates and the episode stays the unit of
resampling for confidence intervals.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from interp.seeds import first

EPISODES = 60  # held-out episodes traced (measured: 60 episodes hold 502 states with >= 3 observed others)
PER_EPISODE = 4  # states kept per episode at most
MIN_VEHICLES = 3  # observed other vehicles a state needs
MIN_STATES = 200  # fewer states than this and the claim is not tested


@dataclasses.dataclass(frozen=True)
class RolloutStates:
    """``obs`` [S, N, F]; ``episode`` [S] the seed each state comes from (the resampling cluster); ``step`` [S];
    ``vehicle_ids`` [S, N] the vehicle behind each row (ego 0, -1 empty), as the engine recorded it."""

    obs: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    vehicle_ids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.obs)

    @property
    def n_episodes(self) -> int:
        return len(np.unique(self.episode))


def rollout_states(engine, agent, *, seed_offset: int = 0, episodes: int = EPISODES, per_episode: int = PER_EPISODE,
                   min_vehicles: int = MIN_VEHICLES, min_states: int = MIN_STATES) -> RolloutStates:
    """Busy states from the agent's held-out greedy episodes (see the module docstring)."""
    seeds = list(range(first("heldout") + seed_offset, first("heldout") + seed_offset + episodes))
    records = engine.run(agent, seeds, trace=True)
    presence = agent.model.presence_idx
    obs, episode, step, ids = [], [], [], []
    for seed, record in zip(seeds, records):
        trace = record.trace
        busy = np.flatnonzero((trace.obs[:, 1:, presence] >= 0.5).sum(1) >= min_vehicles)
        if len(busy) > per_episode:
            busy = busy[np.unique(np.linspace(0, len(busy) - 1, per_episode).round().astype(int))]
        for t in busy:
            obs.append(trace.obs[t]); episode.append(seed); step.append(int(t)); ids.append(trace.rows[t])
    if len(obs) < min_states:
        raise RuntimeError(f"only {len(obs)} states with >= {min_vehicles} observed other vehicles in {episodes} "
                           f"held-out episodes (at most {per_episode} per episode); raise `episodes` to reach "
                           f"{min_states}")
    return RolloutStates(np.stack(obs).astype(np.float32), np.array(episode), np.array(step), np.stack(ids))
