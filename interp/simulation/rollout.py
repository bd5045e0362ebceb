"""Greedy rollouts of an agent, optionally under interventions, on common starts, over the worker pool.

Every (condition, start) pair is an episode. Environments step in worker processes (``interp.simulation.workers``,
or Ray actors); the network runs in this process, one observation per forward pass, with one torch thread,
and actions are chosen by ``interp.model.policy`` (one row at a time, a documented near-tie rule). So an
episode's record depends only on its start, its condition and the agent: not on the number of workers, the
number of slots, the backend, the order in which workers answer, or which other episodes were served from
the cache. Across machines, steps decided on a near-tie are counted in each record (``near_ties``).
Conditions run on the same starts (common random numbers).

Workers are never held in lock-step: whenever one answers, its results are folded in and it gets its next
commands at once, so a slow worker (a reset, a crowded scene) does not stall the others.

Records are cached on disk (``interp.simulation.cache``) per (condition, start); a run only simulates the misses.

Read top to bottom: ``RolloutEngine`` (cache look-up, then ``_simulate``: start episodes in free slots, send
actions, fold results), then the per-condition greedy policy. The value types live in
``interp.simulation.records``, the sequential runner (``run_sequential``) in ``interp.simulation.sequential``
and the progress bar in ``interp.simulation.progress``; all are importable from here too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from interp.model import draws, policy
from interp.simulation.agent import Agent
from interp.simulation.cache import RolloutCache, record_key, resolved_env_config
from interp.model.config import canonical_json
from interp.simulation.pools import make_pool
from interp.simulation.simulator import FAST, PLAIN, in_verified_scope, simulator_for
from interp.simulation.workers import Reset, Step, StepResult, WorkerDied, default_workers
from interp.model import names
from interp.simulation.progress import Progress
from interp.simulation.records import (Condition, EpisodeRecord, EpisodeTrace, Hooks, Start, as_condition,
                                       as_conditions, as_start, q_digest_of, records_by_condition)
from interp.simulation.sequential import SequentialResult, run_sequential

__all__ = ["RolloutEngine", "EngineStats", "rollout", "Progress", "Condition", "EpisodeRecord", "EpisodeTrace", "Hooks",
           "Start", "as_condition", "as_conditions", "as_start", "records_by_condition", "SequentialResult",
           "run_sequential", "ENGINE_VERSION"]

ENGINE_VERSION = "hypodrive-rollout-3"  # bump when a change alters what records contain or how they are made
PATTERN_HOOK = names.PATTERN
MAX_RESTARTS = 3  # pool restarts after worker deaths before a run gives up
DEFAULT_CACHE = "default"  # sentinel: the cache at interp.cache.default_cache_dir()


# ---------------------------------------------------------------------------------------------- the engine

@dataclasses.dataclass
class EngineStats:
    """Counters of an engine's life: what was simulated and what the cache served."""

    simulated: int = 0
    cached: int = 0
    steps: int = 0
    sim_seconds: float = 0.0
    restarts: int = 0  # pools restarted after a worker died (its episodes rerun from their starts)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.sim_seconds if self.sim_seconds else math.nan


@dataclasses.dataclass
class _Job:
    """One episode to simulate (a cache miss) and its state while it runs."""

    index: int  # position in the run's output
    condition: Condition
    start: Start
    key: str | None
    obs: np.ndarray | None = None
    rows: tuple[int, ...] = ()
    actions: list[int] = dataclasses.field(default_factory=list)
    ret: float = 0.0
    near_ties: int = 0
    trace: dict[str, list] | None = None
    q_steps: list[np.ndarray] = dataclasses.field(default_factory=list)  # per-step Q-values, for the digest


class RolloutEngine:
    """Runs greedy episodes for (condition, start) pairs, serving what it can from the cache.

    ``workers``: environment worker processes (default: all cores; 0 = in this process).
    ``slots``: episodes in flight at once (default two per worker; a throughput knob only, records do not
    depend on it). ``backend``: ``"local"`` processes or ``"ray"`` actors (``ray_address`` to join a
    cluster). ``cache``: a ``RolloutCache``, a directory, ``"default"`` (``$HYPODRIVE_CACHE_DIR`` or
    ``.hypodrive-cache``) or None (no cache). ``record_rows``: record the vehicle behind each observation
    row (needed for traces). The pool starts on the first cache miss and is reused until ``close()`` (or
    the end of the ``with`` block).
    """

    def __init__(self, *, workers: int | None = None, slots: int | None = None, backend: str = "local",
                 ray_address: str | None = None, cache: RolloutCache | str | None = DEFAULT_CACHE,
                 record_rows: bool = True, fast_sim: bool = True) -> None:
        if slots is None:  # two per worker: a worker never waits for the network, and few envs to build
            slots = 2 * max(default_workers() if workers is None else workers, 1)
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.workers = workers
        self.slots = slots
        self.backend = backend
        self.ray_address = ray_address
        self.cache = _open_cache(cache)
        self.record_rows = record_rows
        self.fast_sim = fast_sim  # used inside its verified scope only (interp.simulation.simulator)
        self.stats = EngineStats()
        self._pool = None
        self._pool_env: str | None = None
        self._simulator = FAST if fast_sim else PLAIN

    # -------------------------------------------------------------- public API
    def run(self, agent: Agent, starts: Iterable[int | Start],
            conditions: Mapping[str, Any] | Sequence[Condition] | None = None, *, trace: bool = False,
            env_config: Mapping | None = None, progress: bool | Progress = False) -> list[EpisodeRecord]:
        """Run every condition on every start; records in (start, condition) order.

        ``conditions`` maps names to what ``as_condition`` accepts (default: the plain agent as
        "baseline"). ``trace`` adds per-step observations, Q-values, attention and row identities.
        ``env_config`` defaults to the agent's own.
        """
        if trace and not self.record_rows:
            raise ValueError("trace=True needs the row recorder: build the engine with record_rows=True")
        starts = [as_start(s) for s in starts]
        conds = as_conditions(conditions)
        env = dict(agent.env_config if env_config is None else env_config)
        self._simulator = simulator_for(env, self.fast_sim)
        jobs = [_Job(index=i * len(conds) + j, condition=c, start=s, key=None)
                for i, s in enumerate(starts) for j, c in enumerate(conds)]
        records: list[EpisodeRecord | None] = [None] * len(jobs)
        misses = self._serve_from_cache(agent, env, jobs, records, trace)
        bar = progress if isinstance(progress, Progress) else Progress(len(jobs), [c.name for c in conds],
                                                                      enabled=bool(progress))
        for job in jobs:
            if records[job.index] is not None:
                bar.episode(job.condition.name, cached=True)
        try:
            while misses:
                try:
                    for job, record in self._simulate(agent, env, misses, trace, bar):
                        records[job.index] = record
                        if job.key is not None and self.cache is not None:
                            self.cache.set(job.key, record.to_dict())  # at once: a crash keeps what is done
                    misses = []
                except WorkerDied as died:
                    misses = self._after_worker_death(died, [job for job in misses if records[job.index] is None])
        except BaseException:
            self.close()  # workers may be mid-command: the next run starts a fresh pool
            raise
        finally:
            if not isinstance(progress, Progress):
                bar.close()
        return records  # type: ignore[return-value]  # every slot is filled

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._pool, self._pool_env = None, None

    def __enter__(self) -> "RolloutEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _after_worker_death(self, died: WorkerDied, unfinished: list[_Job]) -> list[_Job]:
        """Restart the pool and rerun the unfinished episodes from their starts (a worker that keeps dying
        fails the run after ``MAX_RESTARTS``, saying so)."""
        self.close()
        self.stats.restarts += 1
        if self.stats.restarts > MAX_RESTARTS:
            raise RuntimeError(f"{died}\nworkers died {self.stats.restarts} times in this engine's life; giving up. "
                               "Finished episodes are cached: fix the cause (memory? a set-up that crashes?) "
                               "and rerun to resume.") from None
        warnings.warn(f"{died}; restarting the pool and rerunning {len(unfinished)} unfinished episode(s) from "
                      f"their starts (restart {self.stats.restarts} of at most {MAX_RESTARTS})", RuntimeWarning,
                      stacklevel=3)
        return [dataclasses.replace(job, obs=None, rows=(), actions=[], ret=0.0, near_ties=0, trace=None, q_steps=[])
                for job in unfinished]

    # -------------------------------------------------------------- cache
    def _serve_from_cache(self, agent: Agent, env: dict, jobs: list[_Job], records: list, trace: bool) -> list[_Job]:
        """Fill ``records`` from the cache; return the jobs left to simulate (with their keys set)."""
        if self.cache is None:
            return list(jobs)
        resolved = resolved_env_config(env)
        # inside the verified scope both simulators give the same records, so the key leaves the simulator out
        simulator = None if in_verified_scope(env) else self._simulator
        misses = []
        for job in jobs:
            job.key = self.key(job.condition.agent or agent, resolved, job.start, job.condition, simulator)
            cached = self.cache.get(job.key) if job.key is not None else None
            if cached is not None and (not trace or cached.get("trace") is not None):
                record = EpisodeRecord.from_dict({**cached, "condition": job.condition.name})
                records[job.index] = record if trace else record.without_trace()
                self.stats.cached += 1
            else:
                misses.append(job)
        return misses

    @staticmethod
    def key(agent: Agent, resolved_env: Mapping, start: Start, condition: Condition,
            simulator: str | None = None) -> str | None:
        """The cache key of one episode, or None when the start or the intervention cannot be named.
        ``simulator``: named in the key only where given (outside the fast simulator's verified scope)."""
        start_description = start.description
        if start_description is None or not condition.cacheable:
            return None
        return record_key(agent_identity=agent.identity, env_config=resolved_env, start=start_description,
                          intervention=condition.description, engine_version=f"{ENGINE_VERSION}/{policy.RULE}",
                          simulator=simulator)

    # -------------------------------------------------------------- simulation
    def _pool_for(self, env: dict):
        env_json = canonical_json(env)
        if self._pool is None or self._pool_env != env_json:
            self.close()
            self._pool = make_pool(env, self.slots, self.workers, record_rows=self.record_rows,
                                   backend=self.backend, address=self.ray_address,
                                   fast_sim=simulator_for(env, self.fast_sim) == FAST)
            self._pool_env = env_json
        return self._pool

    def _simulate(self, agent: Agent, env: dict, jobs: list[_Job], trace: bool,
                  bar: "Progress") -> Iterator[tuple[_Job, EpisodeRecord]]:
        """Keep every worker busy: as soon as a worker answers, fold its results, start new episodes in its
        free slots and send it the next actions (batched forward per condition over its slots). Workers
        never wait for each other; which slot or worker runs an episode does not change its record."""
        pool = self._pool_for(env)
        policies = [_Policy(c.agent or agent, c) for c in {id(j.condition): j.condition for j in jobs}.values()]
        n_workers = max(pool.n_workers, 1)
        slots_of = {w: [slot for slot in range(self.slots) if pool.worker_of(slot) == w] for w in range(n_workers)}
        queue = list(reversed(jobs))
        running: dict[int, _Job] = {}
        idle = set(range(n_workers))
        started = time.perf_counter()
        with _single_thread(), _add_elapsed(self.stats, started):
            while queue or running:
                commands: dict[int, Reset | Step] = {}
                for w in sorted(idle):
                    commands.update(self._next_commands(slots_of[w], queue, running, policies, trace))
                if commands:
                    pool.send(commands)
                    idle -= {pool.worker_of(slot) for slot in commands}
                    n_steps = sum(isinstance(c, Step) for c in commands.values())
                    self.stats.steps += n_steps
                    bar.steps(n_steps)
                results = pool.receive()
                idle |= {pool.worker_of(slot) for slot in results}
                for slot in sorted(results):
                    job, result = running[slot], results[slot]
                    if job.obs is not None:
                        job.ret += result.reward
                    job.obs, job.rows = result.obs, result.rows
                    if result.done:
                        del running[slot]
                        self.stats.simulated += 1
                        bar.episode(job.condition.name)
                        yield job, _record(job, result, pool.simulator)

    @staticmethod
    def _next_commands(slots: Sequence[int], queue: list[_Job], running: dict[int, _Job], policies: list["_Policy"],
                       trace: bool) -> dict[int, Reset | Step]:
        """For one idle worker: resets for its free slots (while episodes remain), greedy steps for the rest."""
        commands: dict[int, Reset | Step] = {}
        for slot in slots:
            if slot not in running and queue:
                job = running[slot] = queue.pop()
                job.trace = {"obs": [], "q": [], "attention": [], "rows": []} if trace else None
                commands[slot] = Reset(seed=job.start.seed, setup=job.start.setup)
        live = {slot: running[slot] for slot in slots if slot in running and slot not in commands}
        for greedy in policies:
            mine = {slot: job for slot, job in live.items() if job.condition is greedy.condition}
            for slot, action in greedy.act(mine).items():
                running[slot].actions.append(action)
                commands[slot] = Step(action)
        return commands


class _Policy:
    """The greedy policy of one condition, through ``interp.model.policy``: one row per forward pass, each
    named for random interventions by (episode seed, scenario, step, condition) (``interp.model.draws``)."""

    def __init__(self, agent: Agent, condition: Condition) -> None:
        self.agent, self.condition = agent, condition
        self.model = agent.model
        self.hooks = condition.resolved_hooks(agent.model)
        self.draw_id = draw_identity(condition)

    def act(self, jobs: Mapping[int, _Job]) -> dict[int, int]:
        """Greedy actions of ``jobs`` (slot -> job); each row alone, so no row depends on another."""
        slots = sorted(jobs)
        if not slots:
            return {}
        obs = np.stack([jobs[slot].obs for slot in slots]).astype(np.float32)
        tracing = any(jobs[slot].trace is not None for slot in slots)
        keys = [draws.DrawKey(episode=jobs[slot].start.seed, scenario=jobs[slot].start.scenario,
                              step=len(jobs[slot].actions), row=0, condition=self.draw_id) for slot in slots]
        q, pattern = policy.q_rows(self.model, obs, self.hooks, cache=PATTERN_HOOK if tracing else None, keys=keys)
        best, near_tie = policy.choose(q)
        actions: dict[int, int] = {}
        for i, slot in enumerate(slots):
            job = jobs[slot]
            actions[slot] = int(best[i])
            job.near_ties += bool(near_tie[i])
            job.q_steps.append(q[i].copy())
            if job.trace is not None:
                job.trace["obs"].append(obs[i].copy())
                job.trace["q"].append(q[i].copy())
                job.trace["attention"].append(pattern[i][:, 0, :].copy())
                job.trace["rows"].append(np.asarray(job.rows))
        return actions


def _record(job: _Job, last: StepResult, simulator: str) -> EpisodeRecord:
    trace = None
    if job.trace is not None:
        t = job.trace
        n, f = job.obs.shape if job.obs is not None else (0, 0)
        trace = EpisodeTrace(obs=np.asarray(t["obs"], np.float32).reshape(-1, n, f),
                             q=np.asarray(t["q"], np.float32), attention=np.asarray(t["attention"], np.float32),
                             rows=np.asarray(t["rows"], np.int64).reshape(-1, n))
    safety = None
    if last.safety is not None:  # the measures are computed here, from the states the worker recorded
        from interp.safety.recorder import summarise

        safety = summarise(**last.safety)
    return EpisodeRecord(condition=job.condition.name, seed=job.start.seed, crashed=last.crashed,
                         arrived=last.arrived, length=len(job.actions), ret=job.ret, actions=tuple(job.actions),
                         scenario=job.start.scenario, trace=trace, near_ties=job.near_ties,
                         q_digest=q_digest_of(job.q_steps), simulator=simulator, safety=safety)


def draw_identity(condition: Condition) -> str:
    """What names a condition in its random draws: its cache description (so two names for one intervention
    draw alike, as they share cached records), or its name when it has none (never cached)."""
    if condition.description is None:
        return f"name:{condition.name}"
    return "description:" + canonical_json(condition.description)


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """One torch thread while the engine runs (bit-reproducible, and the cores belong to the workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _add_elapsed(stats: EngineStats, started: float) -> Iterator[None]:
    try:
        yield
    finally:
        stats.sim_seconds += time.perf_counter() - started


def _open_cache(cache: RolloutCache | str | None) -> RolloutCache | None:
    if cache is None or isinstance(cache, RolloutCache):
        return cache
    if cache == DEFAULT_CACHE:
        return RolloutCache()
    return RolloutCache(cache)



def rollout(agent: Agent, seeds: Iterable[int | Start], conditions: Mapping[str, Any] | None = None, *,
            workers: int | None = None, slots: int | None = None, progress: bool = False, trace: bool = False,
            cache: RolloutCache | str | None = DEFAULT_CACHE, backend: str = "local",
            ray_address: str | None = None) -> list[EpisodeRecord]:
    """One-shot convenience around ``RolloutEngine``: run, then close the pool."""
    with RolloutEngine(workers=workers, slots=slots, cache=cache, backend=backend, ray_address=ray_address) as engine:
        return engine.run(agent, seeds, conditions, trace=trace, progress=progress)
