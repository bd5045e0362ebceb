"""What every part of the fast simulator reads: the decision margin, the kernels switch, and small-array helpers.

Why one bottom module: the flag ``USE_KERNELS`` is read at call time (``base.USE_KERNELS``) by every part,
so that one assignment (a test's ``monkeypatch.setattr(base, "USE_KERNELS", False)``) switches the whole
simulator to its numpy path.
"""
from __future__ import annotations

import numpy as np
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import MDPVehicle

from interp.simulation.fastsim import kernels

MARGIN = 1e-6  # decisions closer than this to a threshold or a tie are re-taken by highway-env's own code
TWO_PI = 2 * np.pi
USE_KERNELS = kernels.AVAILABLE  # the compiled decision kernels (interp.simulation.fastsim.kernels), else numpy; tests flip it


ufunc_clip = getattr(getattr(getattr(np, "_core", None), "umath", None), "clip", np.clip)  # what np.clip calls, minus
# its Python-level dispatch (~8 us a call on a scalar); tests/test_fastsim.py checks it equals np.clip


_SCRATCH: dict = {}


def _scratch(key: tuple, make):
    """Output arrays for a kernel, made once per ``key`` (kernel and shape) and reused: only for results read
    at once and never kept (a kernel call fills every entry it returns)."""
    arrays = _SCRATCH.get(key)
    if arrays is None:
        arrays = _SCRATCH[key] = make()
    return arrays


def _positions(objects: list) -> np.ndarray:
    return np.array([o.position for o in objects], dtype=np.float64).reshape(len(objects), 2)


# Small-array numpy: elementwise ufuncs cost well under a microsecond, while axis reductions, np.triu,
# np.nonzero and count_nonzero(axis=...) cost several; the helpers below avoid the latter in hot paths.

_UPPER: dict[int, np.ndarray] = {}


def _upper(n: int) -> np.ndarray:
    """The strictly upper triangular [n, n] boolean mask (pairs i < j), cached."""
    if n not in _UPPER:
        _UPPER[n] = np.triu(np.ones((n, n), dtype=bool), k=1)
    return _UPPER[n]


def _pairs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(i, j) of the True entries of an [n, n] mask, in row-major order."""
    n = mask.shape[1]
    return [divmod(k, n) for k in np.flatnonzero(mask).tolist()]


def _two_smallest(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of [m, k] values (k >= 2): (index of the smallest, the smallest, the runner-up)."""
    best = values.argmin(axis=1)
    two = np.partition(values, 1, axis=1)
    return best, two[:, 0], two[:, 1]


_MOVABLE = (IDMVehicle, MDPVehicle)
_MOVABLE_SET = frozenset(_MOVABLE)
