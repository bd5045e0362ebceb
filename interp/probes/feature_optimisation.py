"""Feature optimisation: gradient ascent on an observation to find what most drives an action, a unit or
a head's attention, inside the space of observations the env can produce.

Constraints, all by construction rather than by penalty:
* presence is never optimised (the mask is a hard threshold; the set of vehicles is part of the question);
* x, y, vx, vy stay in the env's normalised range [-1, 1] (projected after every step, as the env clips);
* heading is one free angle per row written as (cos, sin), so cos_h^2 + sin_h^2 = 1 always;
* only the chosen rows move (default: every present other vehicle); everything else is held.
Many starting observations are optimised at once as one batch (each its own problem).

``physical`` maps the optimised rows back to metres, m/s and radians with the env config's
``features_range``: what a scenario builder needs to place the vehicles (a point at +-1 is at the range's end,
which the env would also report for anything beyond it).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from interp.evidence import Evidence
from interp.model.features import FeatureLayout, reference_layout
from interp.model.network import EgoAttentionNetwork
from interp.model.batch import as_batch
from interp.model import names

POSITION_MOTION = ("x", "y", "vx", "vy")


@dataclasses.dataclass(frozen=True)
class Objective:
    """What to maximise, per scene [B]: ``q`` (Q[action], or Q[action] - Q[versus]), ``unit`` (the activation of
    ``hook`` at index ``unit``, batch dimension excluded), ``attention`` / ``log_attention`` / ``score``
    (head ``head``'s pattern, log-pattern or pre-softmax score on row ``row``)."""

    kind: str
    action: int | None = None
    versus: int | None = None
    hook: str | None = None
    unit: tuple[int, ...] = ()
    head: int | None = None
    row: int | tuple[int, ...] | None = None  # one row for every scene, or one per scene

    def hook_names(self) -> tuple[str, ...]:
        if self.kind == "unit":
            return (self.hook,)
        if self.kind in ("attention", "log_attention"):
            return (names.PATTERN,)
        if self.kind == "score":
            return (names.SCORES,)
        return ()

    def __call__(self, q: torch.Tensor, cache: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.kind == "q":
            return q[:, self.action] - (q[:, self.versus] if self.versus is not None else 0.0)
        if self.kind == "unit":
            act = cache[self.hook]
            return act[(slice(None), *self.unit)]
        if self.kind == "attention":
            return self._row(cache[names.PATTERN][:, self.head, 0])
        if self.kind == "log_attention":
            return torch.log(self._row(cache[names.PATTERN][:, self.head, 0]).clamp_min(1e-30))
        if self.kind == "score":
            return self._row(cache[names.SCORES][:, self.head, 0])
        raise ValueError(f"unknown objective kind {self.kind!r}")

    def _row(self, per_row: torch.Tensor) -> torch.Tensor:
        if isinstance(self.row, int):
            return per_row[:, self.row]
        return per_row[torch.arange(per_row.shape[0]), torch.as_tensor(self.row, dtype=torch.long)]

    def describe(self) -> str:
        if self.kind == "q":
            return f"Q[{self.action}]" + ("" if self.versus is None else f" - Q[{self.versus}]")
        if self.kind == "unit":
            return f"{self.hook}{list(self.unit)}"
        row = self.row if isinstance(self.row, int) else "per-scene rows"
        return f"{self.kind}(head {self.head} -> row {row})"


def q_objective(action: int, versus: int | None = None) -> Objective:
    return Objective("q", action=action, versus=versus)


def unit_objective(hook: str, unit: int | Sequence[int]) -> Objective:
    return Objective("unit", hook=hook, unit=(unit,) if isinstance(unit, int) else tuple(unit))


def attention_objective(head: int, row: int | Sequence[int], *, kind: str = "log_attention") -> Objective:
    """Head ``head``'s attention to ``row``; the log of the pattern (default) keeps a useful gradient once the
    pattern saturates near 1, ``score`` ignores the competing rows."""
    if kind not in ("attention", "log_attention", "score"):
        raise ValueError(f"kind must be attention, log_attention or score, got {kind!r}")
    return Objective(kind, head=head, row=row if isinstance(row, int) else tuple(int(r) for r in row))


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureOptimisation(Evidence):
    """The optimised observations and how the objective rose.

    ``initial`` / ``optimised`` [B, N, F] normalised observations; ``trace`` [steps + 1, B] the objective
    before each step and at the end; ``moved`` [B, N] which rows were free; ``physical``: for every feature
    with a range (and ``heading``), [B, N] values of ``optimised`` in metres, m/s, radians; ``at_limit``
    [B, N, 4]: x, y, vx, vy of free rows that ended on the range's end (+-1).
    """

    objective: str
    features: tuple[str, ...]
    initial: np.ndarray
    optimised: np.ndarray
    moved: np.ndarray
    trace: np.ndarray
    initial_value: np.ndarray
    final_value: np.ndarray
    physical: dict
    at_limit: np.ndarray


def optimise_features(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, objective: Objective, *,
                      rows: int | Sequence[int] | np.ndarray | None = None, features: Sequence[str] = (*POSITION_MOTION, "heading"),
                      steps: int = 200, lr: float = 0.05, layout: FeatureLayout | None = None) -> FeatureOptimisation:
    """Adam ascent on the free features of the free rows of every scene in ``obs`` [B, N, F], projected
    onto the env's ranges after each step. ``rows``: the rows to move -- one index for every scene, one index
    per scene ([B] ints) or a [B, N] bool mask (default: every present other row); ``features``: which of
    x, y, vx, vy, heading may move."""
    layout = layout or reference_layout()
    bad = [f for f in features if f not in (*POSITION_MOTION, "heading")]
    if bad:
        raise ValueError(f"features {bad} cannot be optimised; choose from {(*POSITION_MOTION, 'heading')}")
    x0 = as_batch(obs)
    moved = _free_rows(x0, rows, layout)
    cols = [layout.index(f) for f in POSITION_MOTION]
    free_cols = torch.tensor([f in features for f in POSITION_MOTION])
    position = x0[..., cols].clone().requires_grad_(True)  # [B, N, 4]
    angle = torch.atan2(x0[..., layout.index("sin_h")], x0[..., layout.index("cos_h")]).clone().requires_grad_(True)
    move_pos = moved[..., None] & free_cols  # [B, N, 4]
    move_angle = moved & ("heading" in features)
    optimiser = torch.optim.Adam([position, angle], lr=lr)
    names = objective.hook_names()
    trace = []
    for _ in range(steps + 1):
        x = _assemble(x0, position, angle, move_pos, move_angle, layout)
        q, cache = _forward(model, x, names)
        value = objective(q, cache)
        trace.append(value.detach().clone())
        if len(trace) > steps:
            break
        optimiser.zero_grad()
        (-value.sum()).backward()
        optimiser.step()
        with torch.no_grad():
            position.clamp_(-1.0, 1.0)
    with torch.no_grad():
        final = _assemble(x0, position, angle, move_pos, move_angle, layout)
    trace_t = torch.stack(trace)
    physical = layout.to_physical(final.numpy())
    at_limit = (final[..., cols].abs() >= 1.0 - 1e-6) & move_pos
    return FeatureOptimisation(
        probe="feature_optimisation.optimise_features",
        settings={"steps": steps, "lr": lr, "features": list(features)},
        objective=objective.describe(), features=tuple(features), initial=x0.numpy(), optimised=final.numpy(),
        moved=moved.numpy(), trace=trace_t.numpy(), initial_value=trace_t[0].numpy(), final_value=trace_t[-1].numpy(),
        physical={k: v for k, v in physical.items() if k in (*layout.ranges, "heading")}, at_limit=at_limit.numpy(),
    )


def _free_rows(x: torch.Tensor, rows: int | Sequence[int] | np.ndarray | None, layout: FeatureLayout) -> torch.Tensor:
    """[B, N] bool: present rows >= 1 that may move (an absent row is masked: moving it changes nothing)."""
    present = x[..., layout.presence] >= 0.5
    present[:, 0] = False
    if rows is None:
        return present
    idx = np.asarray(rows)
    b, n = present.shape
    if idx.ndim == 0:
        chosen = torch.zeros_like(present)
        chosen[:, int(idx)] = True
    elif idx.shape == (b,) and idx.dtype != bool:
        chosen = torch.zeros_like(present)
        chosen[torch.arange(b), torch.as_tensor(idx, dtype=torch.long)] = True
    elif idx.shape == (b, n) and idx.dtype == bool:
        chosen = torch.as_tensor(idx)
    else:
        raise ValueError(f"rows must be one row index, one row per scene ([{b}] ints) or a [{b}, {n}] bool mask; "
                         f"got shape {idx.shape}")
    if (chosen & ~present).any() or chosen[:, 0].any():
        raise ValueError("rows to optimise must be present other vehicles (row >= 1, presence >= 0.5) in every scene")
    return chosen


def _assemble(x0: torch.Tensor, position: torch.Tensor, angle: torch.Tensor, move_pos: torch.Tensor,
              move_angle: torch.Tensor, layout: FeatureLayout) -> torch.Tensor:
    columns = list(x0.unbind(-1))
    for k, name in enumerate(POSITION_MOTION):
        i = layout.index(name)
        columns[i] = torch.where(move_pos[..., k], position[..., k], x0[..., i])
    ic, is_ = layout.index("cos_h"), layout.index("sin_h")
    columns[ic] = torch.where(move_angle, torch.cos(angle), x0[..., ic])
    columns[is_] = torch.where(move_angle, torch.sin(angle), x0[..., is_])
    return torch.stack(columns, dim=-1)


def _forward(model: EgoAttentionNetwork, x: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, dict]:
    if not names:
        return model(x), {}
    cache: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook) -> None:  # keep the graph: run_with_cache would detach
        cache[hook.name] = act

    return model.run_with_hooks(x, [(lambda n: n in names, keep)]), cache

