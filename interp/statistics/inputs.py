"""Shared conventions and input checks of the statistics layer (outcome arrays, alpha, direction,
verdict codes)."""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from interp import vocabulary
from interp.errors import HypodriveError


Direction = Literal["increase", "decrease"]
VerdictName = str  # one of interp.vocabulary.STATISTICAL_VERDICTS
DIRECTIONS: tuple[str, ...] = ("increase", "decrease")

# Verdict codes of the vectorised sequential engine (shared by the objects and the simulations).
CONTINUE, SUPPORTED, REFUTED, INCONCLUSIVE = 0, 1, 2, 3
CODE_NAMES: dict[int, str] = dict(zip((SUPPORTED, REFUTED, INCONCLUSIVE), vocabulary.STATISTICAL_VERDICTS))


class StatsInputError(HypodriveError, ValueError):
    """Data or settings given to a statistical routine are unusable (the message says which and why)."""


def as_outcomes(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-D boolean array from booleans or 0/1 numbers; anything else is refused with its offending value."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StatsInputError(f"{name} must be a 1-D sequence of booleans (one per episode); got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise StatsInputError(f"{name} must hold booleans or 0/1; got dtype {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        first = int(np.argmax(bad))
        raise StatsInputError(f"{name} must hold booleans or 0/1; element {first} is {arr[first].item()!r}")
    return arr.astype(bool)


def paired_outcomes(baseline: ArrayLike, treatment: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    b, t = as_outcomes(baseline, "baseline"), as_outcomes(treatment, "treatment")
    if b.shape != t.shape:
        raise StatsInputError(f"paired outcomes need one baseline and one treatment episode per seed; got "
                              f"{b.size} baseline and {t.size} treatment outcomes")
    return b, t


def check_alpha(alpha: float, name: str = "alpha") -> float:
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"{name} must lie in (0, 1); got {alpha}")
    return float(alpha)


def check_direction(direction: str) -> int:
    """+1 for 'increase', -1 for 'decrease': the sign that maps effects into the claimed direction."""
    if direction not in DIRECTIONS:
        raise StatsInputError(f"direction must be one of {DIRECTIONS} (the claimed effect of the treatment on the "
                              f"event rate); got {direction!r}")
    return 1 if direction == "increase" else -1


def float_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
