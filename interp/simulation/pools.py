"""Choosing an env pool: local worker processes or Ray actors, behind one ``run({slot: Reset|Step})`` API.

Why its own module: the Ray pool is built on the local pool's pieces (``ray_backend`` imports ``workers``),
so the choice between them sits above both and neither imports the other back.
"""
from __future__ import annotations

from collections.abc import Mapping

from interp.simulation.ray_backend import RayEnvPool
from interp.simulation.workers import EnvPool


def make_pool(env_config: Mapping, n_slots: int, n_workers: int | None = None, *, record_rows: bool = False,
              fast_sim: bool = True,
              backend: str = "local", address: str | None = None):
    """A pool of ``n_slots`` env slots: local worker processes (``backend="local"``, the default) or Ray actors
    (``backend="ray"``, on the cluster at ``address`` or a local Ray instance started for it)."""
    if backend == "local":
        if address is not None:
            raise ValueError("a Ray address only applies to backend='ray'")
        return EnvPool(env_config, n_slots, n_workers, record_rows=record_rows, fast_sim=fast_sim)
    if backend == "ray":
        return RayEnvPool(env_config, n_slots, n_workers, record_rows=record_rows, address=address, fast_sim=fast_sim)
    raise ValueError(f"unknown rollout backend {backend!r}; use 'local' (worker processes) or 'ray'")
