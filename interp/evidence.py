"""Evidence: the frozen, JSON-able result every probe returns.

Each probe module defines its own frozen dataclass subclassing ``Evidence``; ``to_dict`` turns any of
them (numpy arrays and tensors included) into plain JSON so reports and CI diffs never need the model.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Plain-JSON form of numbers, arrays, tensors, dataclasses and containers (NaN/inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evidence:
    """Base of every probe result: which probe produced it and with what settings (keyword-only fields,
    so subclasses may add required fields)."""

    probe: str
    settings: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, **jsonable(self)}
