"""The env pool on Ray actors: the same ``run({slot: Reset|Step})`` API as ``interp.simulation.workers.EnvPool``.

For scaling rollouts past one machine: each actor owns the environments of the slots assigned to it
(slot % n_workers, as the local pool does) and the network still runs in the driver, batched by slot, so
records are identical to the local backend's. ``address`` connects to an existing cluster
(``ray.init(address=...)``, e.g. ``"auto"`` or ``"ray://head:10001"``); without it a local Ray instance is
started once per process (a few seconds) and reused by later pools. On a remote cluster the project code
must be importable by the workers (install it there, or pass a ``runtime_env`` to ``ensure_ray``).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.simulation.simulator import FAST, simulator_for
from interp.simulation.workers import PoolRounds, Reset, Step, StepResult, WorkerDied, _SlotEnvs

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # interp/<layer>/<module>.py


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None, runtime_env: Mapping | None = None):
    """Connect to Ray once per process: the cluster at ``address``, or a new local instance.

    A local instance gets the project root on its workers' PYTHONPATH so that ``interp`` imports there.
    Returns the ``ray`` module.
    """
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a declared dependency
        raise RuntimeError("the Ray backend needs the 'ray' package: pip install 'ray[default]'") from None
    if ray.is_initialized():
        return ray
    env = dict(runtime_env or {})
    if address is None:
        env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
                    "OMP_NUM_THREADS": "1", **env.get("env_vars", {})}
        env["env_vars"] = env_vars
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=env, logging_level="WARNING",
                 log_to_driver=True)
    else:
        ray.init(address=address, runtime_env=env or None, logging_level="WARNING")
    return ray


def shutdown() -> None:
    """Stop this process's connection to Ray (and the local instance, if this process started one)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


class _RayWorker:
    """One actor: the envs of its slots (the same code the local worker processes run)."""

    def __init__(self, env_config: Mapping, record_rows: bool, fast_sim: bool = True) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.envs = _SlotEnvs(dict(env_config), record_rows, fast_sim)

    def run_batch(self, batch: list[tuple[int, Any]]) -> list[tuple[int, StepResult]]:
        return self.envs.run_batch(batch)

    def close(self) -> None:
        self.envs.close()


class RayEnvPool(PoolRounds):
    """``n_slots`` environments over ``n_workers`` Ray actors (default: one per CPU of the cluster).

    Each actor reserves one CPU, so more workers than the cluster's CPUs would wait forever for a place:
    that is refused up front.
    """

    def __init__(self, env_config: Mapping, n_slots: int, n_workers: int | None = None, *, record_rows: bool = False,
                 address: str | None = None, fast_sim: bool = True) -> None:
        self.simulator = simulator_for(env_config, fast_sim)  # decided here: one warning, not one per actor
        fast_sim = self.simulator == FAST
        ray = ensure_ray(address, num_cpus=n_workers)
        self._ray = ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        wanted = cpus if n_workers is None else n_workers
        if wanted > cpus:
            raise ValueError(f"{wanted} Ray workers asked for, but the Ray cluster has {cpus} CPUs "
                             "(each worker takes one); ask for fewer workers or add nodes")
        self.n_slots = n_slots
        self.n_workers = max(1, min(n_slots, wanted))
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self._actors = [actor.remote(dict(env_config), record_rows, fast_sim) for _ in range(self.n_workers)]
        self._futures: dict[Any, int] = {}  # in-flight batch -> actor index

    def worker_of(self, slot: int) -> int:
        return slot % self.n_workers

    @property
    def busy(self) -> bool:
        return bool(self._futures)

    def send(self, commands: Mapping[int, Reset | Step]) -> None:
        """Dispatch commands; every actor they go to must be idle (its previous results received)."""
        batches: dict[int, list] = {}
        for slot, cmd in sorted(commands.items()):
            batches.setdefault(self.worker_of(slot), []).append((slot, cmd))
        clash = sorted(set(batches) & set(self._futures.values()))
        if clash:
            raise RuntimeError(f"Ray worker(s) {clash} are still busy: receive() their results first")
        for i, batch in batches.items():
            self._futures[self._actors[i].run_batch.remote(batch)] = i

    def receive(self) -> dict[int, StepResult]:
        """Results of every busy actor that has answered (waits for at least one)."""
        if not self._futures:
            return {}
        pending = list(self._futures)
        ready, rest = self._ray.wait(pending, num_returns=1)
        if rest:  # collect the others that are already done too
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        results: dict[int, StepResult] = {}
        for future in ready:
            del self._futures[future]
        try:
            for payload in self._ray.get(ready):
                results.update(payload)
        except self._ray.exceptions.RayActorError as err:  # the actor's process is gone: reschedule
            raise WorkerDied(f"a Ray environment worker died mid-command: {err}") from None
        except self._ray.exceptions.RayError as err:
            raise RuntimeError(f"a Ray environment worker failed:\n{err}") from None
        return results

    def close(self) -> None:
        for actor in self._actors:
            try:
                self._ray.kill(actor)
            except Exception:  # already gone (cluster shut down): nothing to release
                pass
        self._actors, self._futures = [], {}

    def __enter__(self) -> "RayEnvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
