"""A pool of highway-env environments stepped in worker processes, in lock-step rounds.

The simulator costs ~0.15 s per agent step and the network microseconds, so environments live in
worker processes (one per core by default) while the parent runs the network once per round on a batch
laid out by *slot* (row i = slot i, always the same batch shape). An episode's trajectory then depends
only on its seed (or setup) and the policy, never on how slots are spread over workers: the same inputs
give the same records with 1, 2 or 4 workers.

Hand-written rather than gymnasium's AsyncVectorEnv because each slot needs its own explicit seed or
scene set-up per episode, replays of recorded actions (resuming training) and per-step payloads (which
vehicle is behind each observation row) that the vector API does not carry.

The same pool API (``run({slot: Reset|Step})``, ``close()``, context manager) is served by local processes
(``EnvPool``, the default) or by Ray actors (``interp.simulation.ray_backend.RayEnvPool``, built on this module);
``interp.simulation.pools.make_pool`` picks one.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import multiprocessing.connection
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from interp.simulation.simulator import FAST, simulator_for


@dataclasses.dataclass(frozen=True)
class Reset:
    """Start an episode in a slot: ``env.reset(seed)``, then an optional ``setup(env) -> obs`` (e.g. a scene),
    then replay ``actions`` (used to restore an interrupted training episode).

    ``setup`` runs in the worker, so it must be picklable (a module-level function or an instance of a
    module-level class). It should return the env's own observation (``env.unwrapped.observation_type.observe()``)
    so that the row recorder sees it.
    """

    seed: int
    setup: Callable[[Any], np.ndarray] | None = None
    actions: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Step:
    action: int


@dataclasses.dataclass
class StepResult:
    obs: np.ndarray
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    crashed: bool = False
    arrived: bool = False
    speed: float = 0.0
    # Id of the vehicle behind each observation row (-1 for an empty row), numbered per episode in order of
    # first sight (the ego is 0): the same episode gets the same ids in any worker, with any pool layout.
    rows: tuple[int, ...] = ()
    replay: tuple["StepResult", ...] = ()  # results of replayed actions (Reset with actions)
    safety: dict | None = None  # recorded states for the safety measures (interp.safety.recorder), on the last step

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def step_result(obs: np.ndarray, reward: float, terminated: bool, truncated: bool, info: Mapping, env) -> StepResult:
    """The parts of a step worth sending back. Arrival is the env's own ``has_arrived`` via its reward
    term (highway-env 1.12 has no ``arrived`` info key)."""
    rewards = info.get("rewards", {})
    return StepResult(
        obs=np.asarray(obs, dtype=np.float32), reward=float(reward), terminated=bool(terminated),
        truncated=bool(truncated), crashed=bool(info.get("crashed", False)),
        arrived=bool(rewards.get("arrived_reward", 0) > 0), speed=float(info.get("speed", 0.0)),
        rows=observed_rows(env),
    )


def observed_rows(env) -> tuple[int, ...]:
    rows = getattr(env.unwrapped, "_hypodrive_rows", None)
    return tuple(rows) if rows is not None else ()


class EpisodeIds:
    """Renumbers the recorder's process-wide vehicle ids per episode, in order of first sight.

    The recorder's raw ids come from a counter shared by every env of a process, so they depend on what else
    that process simulated; first-sight numbering depends only on the episode itself.
    """

    def __init__(self) -> None:
        self.ids: dict[int, int] = {}

    def __call__(self, raw_rows: Sequence[int]) -> tuple[int, ...]:
        out = []
        for raw in raw_rows:
            if raw < 0:
                out.append(raw)
            else:
                out.append(self.ids.setdefault(raw, len(self.ids)))
        return tuple(out)


class _SlotEnvs:
    """The environments of one worker, created lazily per slot."""

    def __init__(self, env_config: Mapping, record_rows: bool, fast_sim: bool = True,
                 record_safety: bool | None = None) -> None:
        self.env_config = env_config
        self.record_rows = record_rows
        # The rollout engine's envs (which record rows) also record the states of the safety measures;
        # training's envs record neither.
        self.record_safety = record_rows if record_safety is None else record_safety
        self.fast_sim = fast_sim  # as decided by the pool's owner (interp.simulation.simulator.simulator_for)
        self.envs: dict[int, Any] = {}
        self.ids: dict[int, EpisodeIds] = {}

    def env(self, slot: int):
        if slot not in self.envs:
            from interp.simulation.env import make_env
            from interp.simulation.fastsim import is_enabled

            env = make_env(self.env_config, fast_sim=self.fast_sim)
            if self.fast_sim and not is_enabled(env):  # the records would name the wrong simulator
                raise RuntimeError("the fast simulator was chosen for this env config but could not be installed "
                                   "in the worker (see the warning above); run with fast_sim=False")
            if self.record_rows:
                from interp.simulation.row_identity import install_row_recorder

                install_row_recorder(env)
            if self.record_safety:
                from interp.safety.recorder import install

                install(env)
            self.envs[slot] = env
        return self.envs[slot]

    def run(self, slot: int, command: Reset | Step) -> StepResult:
        env = self.env(slot)
        if isinstance(command, Step):
            return self._renumber(slot, self._step(env, command.action))
        self.ids[slot] = EpisodeIds()
        obs, info = env.reset(seed=command.seed)
        if command.setup is not None:
            obs = command.setup(env)
        safety = getattr(env.unwrapped, "_hypodrive_safety", None)
        if safety is not None:
            safety.start()
        result = self._renumber(slot, StepResult(obs=np.asarray(obs, dtype=np.float32), rows=observed_rows(env)))
        replayed = tuple(self._renumber(slot, self._step(env, a)) for a in command.actions)
        if replayed:
            last = replayed[-1]
            result = dataclasses.replace(last, replay=replayed)
        return result

    @staticmethod
    def _step(env, action: int) -> StepResult:
        """One policy step; at an episode's end, with the states recorded for its safety measures."""
        result = step_result(*env.step(action), env)
        safety = getattr(env.unwrapped, "_hypodrive_safety", None)
        if safety is not None:
            safety.after_step()
            if result.done:
                result.safety = safety.raw(1.0 / env.unwrapped.config["simulation_frequency"])
        return result

    def _renumber(self, slot: int, result: StepResult) -> StepResult:
        if result.rows:
            result.rows = self.ids.setdefault(slot, EpisodeIds())(result.rows)
        return result

    def run_batch(self, batch: Sequence[tuple[int, Reset | Step]]) -> list[tuple[int, StepResult]]:
        return [(slot, self.run(slot, command)) for slot, command in batch]

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def _worker_main(conn, env_config: Mapping, record_rows: bool, fast_sim: bool = True) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker: the workers share the cores
    envs = _SlotEnvs(env_config, record_rows, fast_sim)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone (killed): nothing left to serve
            break
        if message is None:
            break
        try:
            conn.send(("ok", envs.run_batch(message)))
        except Exception:  # send the worker's traceback to the parent instead of dying silently
            conn.send(("error", traceback.format_exc()))
    conn.close()


class WorkerDied(RuntimeError):
    """An environment worker process (or Ray actor) vanished mid-command: killed, out of memory, crashed.

    Its slots' episodes are lost mid-way; the rollout engine restarts the pool and reruns them from their
    starts (episodes are deterministic, so the records are the same as if nothing had happened)."""


class PoolRounds:
    """``run`` for any pool with ``send``/``receive``/``busy`` (local processes, Ray actors): one lock-step round."""

    def run(self, commands: Mapping[int, Reset | Step]) -> dict[int, StepResult]:
        self.send(commands)
        results: dict[int, StepResult] = {}
        while self.busy:
            results.update(self.receive())
        return results


class EnvPool(PoolRounds):
    """``n_slots`` environments over ``n_workers`` processes (0 workers: everything in this process).

    ``run({slot: Reset|Step})`` executes one command per listed slot and returns their results (lock-step:
    the trainer's rounds). ``send`` / ``receive`` split it for callers that keep every worker busy (the
    rollout engine): ``send`` dispatches commands to idle workers, ``receive`` waits until at least one
    busy worker answers and returns the results of those that have. Slots are assigned to workers
    round-robin (``worker_of(slot) = slot % n_workers``).
    """

    def __init__(self, env_config: Mapping, n_slots: int, n_workers: int | None = None, *, record_rows: bool = False,
                 fast_sim: bool = True) -> None:
        self.simulator = simulator_for(env_config, fast_sim)  # decided here: one warning, not one per worker
        fast_sim = self.simulator == FAST
        self.n_slots = n_slots
        self.n_workers = min(n_slots, default_workers() if n_workers is None else n_workers)
        self._local = _SlotEnvs(env_config, record_rows, fast_sim) if self.n_workers == 0 else None
        self._pending: dict[int, Reset | Step] = {}  # in-process mode: commands sent, not yet run
        self._busy: set[int] = set()
        self._conns = []
        self._procs = []
        if self.n_workers:
            ctx = _context()
            for _ in range(self.n_workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker_main, args=(child, dict(env_config), record_rows, fast_sim), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)

    def worker_of(self, slot: int) -> int:
        return slot % self.n_workers if self.n_workers else 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (e.g. to read their CPU time in a benchmark)."""
        return [proc.pid for proc in self._procs]

    @property
    def busy(self) -> bool:
        return bool(self._busy or self._pending)

    def send(self, commands: Mapping[int, Reset | Step]) -> None:
        """Dispatch commands; every worker they go to must be idle (its previous results received)."""
        if self._local is not None:
            self._pending.update(commands)
            return
        batches: dict[int, list] = {}
        for slot, cmd in sorted(commands.items()):
            batches.setdefault(self.worker_of(slot), []).append((slot, cmd))
        clash = sorted(set(batches) & self._busy)
        if clash:
            raise RuntimeError(f"environment worker(s) {clash} are still busy: receive() their results first")
        for i, batch in batches.items():
            self._conns[i].send(batch)
            self._busy.add(i)

    def receive(self) -> dict[int, StepResult]:
        """Results of every busy worker that has answered (waits for at least one)."""
        if self._local is not None:
            pending, self._pending = self._pending, {}
            return {slot: self._local.run(slot, cmd) for slot, cmd in sorted(pending.items())}
        if not self._busy:
            return {}
        ready = mp.connection.wait([self._conns[i] for i in sorted(self._busy)])
        results: dict[int, StepResult] = {}
        errors = []
        for i in sorted(self._conns.index(conn) for conn in ready):
            self._busy.discard(i)
            try:
                status, payload = self._conns[i].recv()
            except (EOFError, ConnectionError) as err:
                proc = self._procs[i]
                proc.join(timeout=1)
                raise WorkerDied(f"environment worker {i} (pid {proc.pid}) died mid-command "
                                 f"({type(err).__name__}, exit code {proc.exitcode}); see its output above") from None
            if status == "error":
                errors.append(payload)
            else:
                results.update(payload)
        if errors:
            raise RuntimeError("an environment worker failed:\n" + "\n".join(errors))
        return results

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Imported once by the fork server, so that each new worker starts with the simulator already loaded.
PRELOAD = ("interp.simulation.workers", "interp.simulation.env", "interp.simulation.row_identity", "gymnasium",
           "highway_env")


def _context():
    """Workers start from a fork server (a clean process that imported the simulator once; each worker is a
    fork of it: ~0.3 s instead of ~2 s to spawn and import). Never a plain fork of this process: forking
    after torch has started threads can deadlock. Spawn where there is no fork server (Windows).

    The preload list is process-wide and only takes effect if the fork server is not running yet."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx
    return mp.get_context("spawn")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

