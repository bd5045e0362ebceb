"""A pool of highway-env environments stepped in worker processes, in lock-step rounds.

The simulator costs ~0.15 s per agent step and the network microseconds, so environments live in
worker processes (one per core by default) while the parent runs the network once per round on a batch
laid out by *slot* (row i = slot i, always the same batch shape). An episode's trajectory then depends
only on its seed (or setup) and the policy, never on how slots are spread over workers: the same inputs
give the same records with 1, 2 or 4 workers.

Hand-written rather than gymnasium's AsyncVectorEnv because each slot needs its own explicit seed or
scene set-up per episode, replays of recorded actions (resuming training) and per-step payloads (which
vehicle is behind each observation row) that the vector API does not carry.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Reset:
    """Start an episode in a slot: ``env.reset(seed)``, then an optional ``setup(env) -> obs`` (e.g. a scene),
    then replay ``actions`` (used to restore an interrupted training episode)."""

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
    rows: tuple[int, ...] = ()  # id of the vehicle behind each observation row (-1 for an empty row)
    replay: tuple["StepResult", ...] = ()  # results of replayed actions (Reset with actions)

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


class _SlotEnvs:
    """The environments of one worker, created lazily per slot."""

    def __init__(self, env_config: Mapping, record_rows: bool) -> None:
        self.env_config = env_config
        self.record_rows = record_rows
        self.envs: dict[int, Any] = {}

    def env(self, slot: int):
        if slot not in self.envs:
            from interp.env import make_env

            env = make_env(self.env_config)
            if self.record_rows:
                from interp.row_identity import install_row_recorder

                install_row_recorder(env)
            self.envs[slot] = env
        return self.envs[slot]

    def run(self, slot: int, command: Reset | Step) -> StepResult:
        env = self.env(slot)
        if isinstance(command, Step):
            return step_result(*env.step(command.action), env)
        obs, info = env.reset(seed=command.seed)
        if command.setup is not None:
            obs = command.setup(env)
        result = StepResult(obs=np.asarray(obs, dtype=np.float32), rows=observed_rows(env))
        replayed = tuple(step_result(*env.step(a), env) for a in command.actions)
        if replayed:
            last = replayed[-1]
            result = dataclasses.replace(last, replay=replayed)
        return result


def _worker_main(conn, env_config: Mapping, record_rows: bool) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    envs = _SlotEnvs(env_config, record_rows)
    while True:
        message = conn.recv()
        if message is None:
            break
        try:
            conn.send(("ok", [(slot, envs.run(slot, command)) for slot, command in message]))
        except Exception:  # send the worker's traceback to the parent instead of dying silently
            conn.send(("error", traceback.format_exc()))
    conn.close()


class EnvPool:
    """``n_slots`` environments over ``n_workers`` processes (0 workers: everything in this process).

    ``run({slot: Reset|Step})`` executes one command per listed slot and returns their results; slots are
    assigned to workers round-robin (slot % n_workers).
    """

    def __init__(self, env_config: Mapping, n_slots: int, n_workers: int | None = None, *, record_rows: bool = False) -> None:
        self.n_slots = n_slots
        self.n_workers = min(n_slots, default_workers() if n_workers is None else n_workers)
        self._local = _SlotEnvs(env_config, record_rows) if self.n_workers == 0 else None
        self._conns = []
        self._procs = []
        if self.n_workers:
            ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
            for _ in range(self.n_workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker_main, args=(child, dict(env_config), record_rows), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)

    def run(self, commands: Mapping[int, Reset | Step]) -> dict[int, StepResult]:
        if self._local is not None:
            return {slot: self._local.run(slot, cmd) for slot, cmd in sorted(commands.items())}
        batches: list[list] = [[] for _ in self._conns]
        for slot, cmd in sorted(commands.items()):
            batches[slot % self.n_workers].append((slot, cmd))
        busy = [i for i, batch in enumerate(batches) if batch]
        for i in busy:
            self._conns[i].send(batches[i])
        results: dict[int, StepResult] = {}
        errors = []
        for i in busy:
            try:
                status, payload = self._conns[i].recv()
            except (EOFError, ConnectionError) as err:
                raise RuntimeError(f"environment worker {i} died ({type(err).__name__}); see its output above") from None
            if status == "error":
                errors.append(payload)
            else:
                results.update(payload)
        if errors:
            raise RuntimeError("an environment worker failed:\n" + "\n".join(errors))
        return results

    def close(self) -> None:
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


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def batch_obs(n_slots: int, obs_by_slot: Mapping[int, np.ndarray], shape: Sequence[int]) -> np.ndarray:
    """The network's input laid out by slot: row i is slot i, zeros for idle slots (fixed batch shape)."""
    batch = np.zeros((n_slots, *shape), dtype=np.float32)
    for slot, obs in obs_by_slot.items():
        batch[slot] = obs
    return batch
