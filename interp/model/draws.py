"""Keys for random interventions: which draw a forward pass's rows get, named by where the rows come from.

A random intervention (the resampling ablation) must draw the same way for the same decision whatever else
runs: the worker count, the slot layout, the backend, the cache, the CPU. So its draws are not taken from a
shared random stream, nor from the bits of the observation (a 1-ulp change in an input would move them), but
from a generator keyed by *which decision it is*: ``DrawKey(episode seed, scenario, step, row, condition)``.

The rollout engine names each decision (``interp.model.policy.q_rows(..., keys=...)`` installs the keys for
each row's forward pass with ``keyed``); a hook reads the keys of its batch with ``current``. Outside the
engine (a probe on a batch of scenes) no keys are installed and row ``b`` of a batch gets
``DrawKey(row=b)``; ``q_rows`` gives each row its position in the caller's batch, so a batched forward and
``q_rows`` draw alike.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
from collections.abc import Iterator, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class DrawKey:
    """Names one row of one forward pass: episode seed and scenario (None for a plain seeded reset), step
    within the episode, row within the forward pass, and the condition's identity (its cache description)."""

    episode: int = 0
    step: int = 0
    row: int = 0
    condition: str = ""
    scenario: str | None = None


_KEYS: contextvars.ContextVar[tuple[DrawKey, ...] | None] = contextvars.ContextVar("hypodrive_draw_keys",
                                                                                  default=None)


@contextlib.contextmanager
def keyed(keys: Sequence[DrawKey]) -> Iterator[None]:
    """Within the block, forward passes of ``len(keys)`` rows draw by these keys (row ``b`` by ``keys[b]``)."""
    token = _KEYS.set(tuple(keys))
    try:
        yield
    finally:
        _KEYS.reset(token)


def current(batch: int) -> tuple[DrawKey, ...]:
    """The keys of a forward pass of ``batch`` rows: the installed ones, or ``DrawKey(row=b)`` for row ``b``."""
    keys = _KEYS.get()
    if keys is None:
        return tuple(DrawKey(row=b) for b in range(batch))
    if len(keys) != batch:
        raise ValueError(f"{len(keys)} draw keys are installed for a forward pass of {batch} rows; install one "
                         "key per row (interp.model.draws.keyed)")
    return keys


def generator(key: DrawKey, seed: int) -> np.random.Generator:
    """numpy's PCG64 generator seeded (through ``SeedSequence``) by the intervention's ``seed`` and ``key``.

    The key's fields are serialised as canonical JSON and hashed to 256 bits of entropy: fields of any sign
    or type (a negative seed, a scenario name) map to distinct streams."""
    text = json.dumps([int(seed), int(key.episode), key.scenario, int(key.step), int(key.row), key.condition])
    entropy = int.from_bytes(hashlib.sha256(text.encode()).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def draw_index(key: DrawKey, seed: int, n: int) -> int:
    """One index in ``range(n)`` for the row named by ``key`` (uniform; ``Generator.integers``)."""
    if n < 1:
        raise ValueError(f"cannot draw from {n} items")
    return int(generator(key, seed).integers(n))
