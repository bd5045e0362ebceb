"""QK and OV circuits of each ego-attention head, in a weight form and in an empirical form.

Weight form, at the embedding output. rl-agents lays the projections out head-major: output feature
``h * D + d`` of ``query_ego`` / ``key_all`` / ``value_all`` belongs to head h, and so does input column
``h * D + d`` of ``attention_combine``. Per head (F = feature_size, D = F / H):

* ``QK^h = W_Q^h.T @ W_K^h / sqrt(D)``  [F, F]: score = e_ego @ QK^h @ e_other, a bilinear form on the
  ego embedding and another row's embedding (the pre-softmax score ``hook_scores``).
* ``OV^h = W_O^h @ W_V^h``  [F, F]: what a row's embedding, attended with weight 1, adds to the residual
  stream's ``attention_combine`` output (``hook_head_out``) through head h.

Because the embeddings are non-linear MLPs of the raw features, the weight form does not say which
*observation* feature a head reads. The empirical form answers that: head h's score for one vehicle row
as the row's features are swept over a grid in a base scene (``score_sweep``) or as they vary over a scene
set (``score_dependence``), and what that vehicle's value vector does to each action's Q through the rest
of the network (``ov_action_effects``: exact, by removing the row's contribution from head h's output, and
linearised, by the gradient of Q at the scene).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from interp.evidence import Evidence
from interp.model.features import FeatureLayout, reference_layout
from interp.model.network import EgoAttentionNetwork
from interp.model.batch import as_batch
from interp.model import names

SCORES = names.SCORES
PATTERN = names.PATTERN
VALUES = names.VALUES
HEAD_OUT = names.HEAD_OUT
COMBINED = names.COMBINED

# Variables a sweep can set on one row. x, y, vx, vy are the normalised features; ``heading`` is an angle
# [rad] written as (cos_h, sin_h); ``distance`` places the row at that normalised distance from the ego
# along the row's current bearing; ``speed`` sets (vx, vy) = speed * (cos_h, sin_h) along the row's heading.
SWEEP_VARIABLES = ("x", "y", "vx", "vy", "heading", "distance", "speed")
# Descriptors of another vehicle for the scene-set form (normalised units, rad): its position relative to the
# ego (dx, dy, distance), its position in the observation frame (x, y, and centre_distance from the frame's
# origin, the intersection centre when coordinates are absolute), and its motion.
DESCRIPTORS = ("dx", "dy", "distance", "x", "y", "centre_distance", "vx", "vy", "speed", "heading")
CHUNK = 4096


# ----------------------------------------------------------------------------------------------- weights

@dataclasses.dataclass(frozen=True, kw_only=True)
class WeightCircuits(Evidence):
    """Per-head QK [H, F, F] and OV [H, F, F] matrices at the embedding output, with their sizes."""

    qk: np.ndarray
    ov: np.ndarray
    qk_norm: np.ndarray  # [H] Frobenius norms
    ov_norm: np.ndarray  # [H]
    qk_singular_values: np.ndarray  # [H, D] (rank <= D)
    ov_singular_values: np.ndarray  # [H, D]


def head_slices(model: EgoAttentionNetwork) -> list[slice]:
    """The feature slice of each head in rl-agents' head-major layout."""
    d = model.attention_layer.features_per_head
    return [slice(h * d, (h + 1) * d) for h in range(model.n_heads)]


@torch.no_grad()
def weight_circuits(model: EgoAttentionNetwork) -> WeightCircuits:
    """QK^h = W_Q^h.T W_K^h / sqrt(D) and OV^h = W_O^h W_V^h for every head, from the weights alone."""
    layer = model.attention_layer
    w_q, w_k = layer.query_ego.weight.double(), layer.key_all.weight.double()
    w_v, w_o = layer.value_all.weight.double(), layer.attention_combine.weight.double()
    scale = 1.0 / math.sqrt(layer.features_per_head)
    qk = torch.stack([w_q[s].T @ w_k[s] * scale for s in head_slices(model)])
    ov = torch.stack([w_o[:, s] @ w_v[s] for s in head_slices(model)])
    return WeightCircuits(
        probe="qk_ov.weight_circuits", settings={"heads": model.n_heads, "scale": scale},
        qk=qk.numpy(), ov=ov.numpy(),
        qk_norm=torch.linalg.matrix_norm(qk).numpy(), ov_norm=torch.linalg.matrix_norm(ov).numpy(),
        qk_singular_values=torch.linalg.svdvals(qk)[:, : layer.features_per_head].numpy(),
        ov_singular_values=torch.linalg.svdvals(ov)[:, : layer.features_per_head].numpy(),
    )


# --------------------------------------------------------------------------------------------- sweeping

@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoreSweep(Evidence):
    """Head scores for one vehicle row as each sweep variable moves alone over its values, the rest fixed.

    ``scores`` / ``pattern``: [B, H, K, V] (B base scenes, K variables, V values); ``q_values``: [B, K, V, A].
    ``dependence`` [H, K]: the score's range (max - min over V), averaged over base scenes.
    ``most_dependent``: per head, the variable with the largest range, or None where every range is below
    ``flat_tolerance`` (the score does not depend on this row at all). ``peak_values`` [H, K]: the value of
    each variable at which the scene-averaged score is highest.
    """

    variables: tuple[str, ...]
    values: np.ndarray
    rows: np.ndarray
    scores: np.ndarray
    pattern: np.ndarray
    q_values: np.ndarray
    dependence: np.ndarray
    most_dependent: tuple[str | None, ...]
    peak_values: np.ndarray


def default_sweep_values(variable: str, n_values: int) -> np.ndarray:
    """The env's whole normalised range for features, a full turn for heading, 0..1 for distance and speed."""
    if variable == "heading":
        return np.linspace(-math.pi, math.pi, n_values, endpoint=False)
    if variable in ("distance", "speed"):
        return np.linspace(0.0, 1.0, n_values)
    return np.linspace(-1.0, 1.0, n_values)


def set_row_variable(obs: torch.Tensor, rows: torch.Tensor, variable: str, values: torch.Tensor,
                     layout: FeatureLayout) -> torch.Tensor:
    """Copies of ``obs`` [B, N, F] with ``variable`` of row ``rows[b]`` set to ``values[b]`` (clipped to [-1, 1])."""
    out = obs.clone()
    idx = torch.arange(obs.shape[0])
    row = out[idx, rows]  # [B, F]
    if variable in ("x", "y", "vx", "vy"):
        row[:, layout.index(variable)] = values
    elif variable == "heading":
        row[:, layout.index("cos_h")], row[:, layout.index("sin_h")] = torch.cos(values), torch.sin(values)
    elif variable == "distance":
        ix, iy = layout.index("x"), layout.index("y")
        rel = row[:, [ix, iy]] - out[:, 0, [ix, iy]]
        norm = rel.norm(dim=-1, keepdim=True)
        bearing = torch.where(norm > 1e-9, rel / norm.clamp_min(1e-9), torch.tensor([1.0, 0.0]))
        row[:, [ix, iy]] = out[:, 0, [ix, iy]] + values[:, None] * bearing
    elif variable == "speed":
        row[:, layout.index("vx")] = values * row[:, layout.index("cos_h")]
        row[:, layout.index("vy")] = values * row[:, layout.index("sin_h")]
    else:
        raise ValueError(f"unknown sweep variable {variable!r}; choose from {SWEEP_VARIABLES}")
    for name in ("x", "y", "vx", "vy"):
        if name in layout.names:
            row[:, layout.index(name)] = row[:, layout.index(name)].clamp(-1.0, 1.0)
    out[idx, rows] = row
    return out


@torch.no_grad()
def score_sweep(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, rows: int | Sequence[int], *,
                variables: Sequence[str] = ("x", "y", "vx", "vy", "heading", "distance"), n_values: int = 41,
                values: dict[str, Sequence[float]] | None = None, flat_tolerance: float = 1e-4,
                layout: FeatureLayout | None = None) -> ScoreSweep:
    """Sweep one row's variables one at a time in each base scene and record every head's score for it.

    ``obs`` [B, N, F] (or one [N, F]) are the base scenes; ``rows`` the swept row per scene (>= 1, present).
    ``values`` overrides the default grid of a variable (all grids must have ``n_values`` points).
    """
    layout = layout or reference_layout()
    x = as_batch(obs)
    b = x.shape[0]
    row_idx = torch.as_tensor(np.broadcast_to(np.asarray(rows), (b,)).copy(), dtype=torch.long)
    _check_rows(x, row_idx, layout)
    unknown = [v for v in variables if v not in SWEEP_VARIABLES]
    if unknown:
        raise ValueError(f"unknown sweep variable(s) {unknown}; choose from {SWEEP_VARIABLES}")
    grids = [np.asarray((values or {}).get(v, default_sweep_values(v, n_values)), dtype=np.float64) for v in variables]
    if any(g.shape != (n_values,) for g in grids):
        raise ValueError(f"every sweep grid needs n_values={n_values} points; got {[g.size for g in grids]}")
    grid = np.stack(grids)
    k, v = grid.shape
    # Batch layout [B, K, V]: scene-major, then variable, then value.
    base = x[:, None, None].expand(b, k, v, *x.shape[1:]).reshape(b * k * v, *x.shape[1:])
    rep_rows = row_idx[:, None, None].expand(b, k, v).reshape(-1)
    swept = base.clone()
    for ki, name in enumerate(variables):
        sel = torch.zeros(b, k, v, dtype=torch.bool)
        sel[:, ki] = True
        sel = sel.reshape(-1)
        vals = torch.as_tensor(grid[ki], dtype=x.dtype)[None].expand(b, v).reshape(-1)
        swept[sel] = set_row_variable(base[sel], rep_rows[sel], name, vals, layout)
    q, cache = _run(model, swept, (SCORES, PATTERN))
    gather = torch.arange(swept.shape[0])
    h = model.n_heads
    scores = cache[SCORES][gather, :, 0, rep_rows].reshape(b, k, v, h).permute(0, 3, 1, 2)
    pattern = cache[PATTERN][gather, :, 0, rep_rows].reshape(b, k, v, h).permute(0, 3, 1, 2)
    dependence = (scores.amax(-1) - scores.amin(-1)).mean(0)  # [H, K]
    mean_scores = scores.mean(0)  # [H, K, V]
    peak = torch.as_tensor(grid)[torch.arange(k)[None, :], mean_scores.argmax(-1)]  # [H, K]
    return ScoreSweep(
        probe="qk_ov.score_sweep",
        settings={"n_values": n_values, "flat_tolerance": flat_tolerance, "n_scenes": b},
        variables=tuple(variables), values=grid, rows=row_idx.numpy(),
        scores=scores.numpy(), pattern=pattern.numpy(), q_values=q.reshape(b, k, v, -1).numpy(),
        dependence=dependence.numpy(),
        most_dependent=tuple(_most(dependence[hh].numpy(), variables, flat_tolerance) for hh in range(h)),
        peak_values=peak.numpy(),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class PositionGrid(Evidence):
    """Head scores and attention for one vehicle row placed on a grid of positions relative to the ego.

    ``dx`` [V], ``dy`` [W] normalised offsets from the ego; ``scores`` / ``pattern`` [B, H, V, W];
    ``q_values`` [B, V, W, A]. Positions outside the env's range are clipped to it, as the env would.
    """

    dx: np.ndarray
    dy: np.ndarray
    rows: np.ndarray
    scores: np.ndarray
    pattern: np.ndarray
    q_values: np.ndarray


@torch.no_grad()
def position_grid(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, rows: int | Sequence[int], *,
                  dx: Sequence[float] = tuple(np.linspace(-0.5, 0.5, 21)),
                  dy: Sequence[float] = tuple(np.linspace(-0.5, 0.5, 21)),
                  layout: FeatureLayout | None = None) -> PositionGrid:
    """Every head's score for row ``rows[b]`` moved to ego + (dx, dy), other features kept (a heatmap per head)."""
    layout = layout or reference_layout()
    x = as_batch(obs)
    b = x.shape[0]
    row_idx = torch.as_tensor(np.broadcast_to(np.asarray(rows), (b,)).copy(), dtype=torch.long)
    _check_rows(x, row_idx, layout)
    gx, gy = np.asarray(dx, dtype=np.float64), np.asarray(dy, dtype=np.float64)
    v, w = gx.size, gy.size
    base = x[:, None, None].expand(b, v, w, *x.shape[1:]).reshape(b * v * w, *x.shape[1:])
    rep_rows = row_idx[:, None, None].expand(b, v, w).reshape(-1)
    ego = base[:, 0]
    off_x = torch.as_tensor(gx, dtype=x.dtype)[None, :, None].expand(b, v, w).reshape(-1)
    off_y = torch.as_tensor(gy, dtype=x.dtype)[None, None, :].expand(b, v, w).reshape(-1)
    placed = set_row_variable(base, rep_rows, "x", ego[:, layout.index("x")] + off_x, layout)
    placed = set_row_variable(placed, rep_rows, "y", ego[:, layout.index("y")] + off_y, layout)
    q, cache = _run(model, placed, (SCORES, PATTERN))
    gather = torch.arange(placed.shape[0])
    h = model.n_heads
    scores = cache[SCORES][gather, :, 0, rep_rows].reshape(b, v, w, h).permute(0, 3, 1, 2)
    pattern = cache[PATTERN][gather, :, 0, rep_rows].reshape(b, v, w, h).permute(0, 3, 1, 2)
    return PositionGrid(probe="qk_ov.position_grid", settings={"n_scenes": b}, dx=gx, dy=gy, rows=row_idx.numpy(),
                        scores=scores.numpy(), pattern=pattern.numpy(), q_values=q.reshape(b, v, w, -1).numpy())


# ---------------------------------------------------------------------------------------------- scene set

@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoreDependence(Evidence):
    """How much of each head's score variation across vehicles *within a scene* each descriptor explains.

    The ego's query sets a per-scene offset of every score and softmax ignores it, so the dependence is
    measured within scenes, over scenes with at least two other vehicles present: ``eta_squared`` [H, K] is
    the partial correlation ratio of the score on quantile bins of descriptor k with scene effects removed
    (an additive fit score = scene + g(bin); the share of the within-scene variance that g explains, 0..1).
    ``spearman`` [H, K]: rank correlation of the scene-centred score with the scene-centred descriptor (its
    sign says which way). ``most_dependent``: per head, the descriptor with the largest eta squared, or None
    where the head's within-scene scores vary by less than ``flat_tolerance`` (std).
    """

    descriptors: tuple[str, ...]
    n_vehicles: int
    eta_squared: np.ndarray
    spearman: np.ndarray
    score_std: np.ndarray  # [H] within-scene std of the score
    most_dependent: tuple[str | None, ...]


def row_descriptors(obs: np.ndarray, layout: FeatureLayout) -> dict[str, np.ndarray]:
    """[B, N] arrays of each row's position (relative to the ego and in the frame) and motion (normalised, rad)."""
    obs = np.asarray(obs, dtype=np.float64)
    get = lambda name: obs[..., layout.index(name)]  # noqa: E731
    dx, dy = get("x") - get("x")[:, :1], get("y") - get("y")[:, :1]
    return {"dx": dx, "dy": dy, "distance": np.hypot(dx, dy), "x": get("x"), "y": get("y"),
            "centre_distance": np.hypot(get("x"), get("y")), "vx": get("vx"), "vy": get("vy"),
            "speed": np.hypot(get("vx"), get("vy")), "heading": np.arctan2(get("sin_h"), get("cos_h"))}


@torch.no_grad()
def score_dependence(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, *, n_bins: int = 10,
                     flat_tolerance: float = 1e-4, extra_descriptors: Mapping[str, np.ndarray] | None = None,
                     layout: FeatureLayout | None = None) -> ScoreDependence:
    """Which descriptor of another vehicle each head's score tracks, over a scene set ``obs`` [B, N, F].

    ``extra_descriptors`` adds named [B, N] per-row quantities (e.g. a time to the conflict point computed
    by a scenario builder) to the built-in ``DESCRIPTORS``.
    """
    layout = layout or reference_layout()
    x = as_batch(obs)
    _, cache = _run(model, x, (SCORES,))
    present = x[:, :, layout.presence].numpy() >= 0.5
    present[:, 0] = False  # the ego row is not "another vehicle"
    keep = present.sum(1) >= 2
    desc = {**row_descriptors(x.numpy(), layout),
            **{k: np.asarray(v, dtype=np.float64) for k, v in (extra_descriptors or {}).items()}}
    present = present[keep]
    scene = np.nonzero(present)[0]  # scene id of every (scene, row) pair kept
    scores = cache[SCORES][:, :, 0, :].numpy()[keep].transpose(1, 0, 2)[:, present]  # [H, M]
    h = scores.shape[0]
    centred = np.stack([_centre(scores[hh], scene) for hh in range(h)]) if scores.size else scores
    eta, rho = np.zeros((h, len(desc))), np.zeros((h, len(desc)))
    for ki, values in enumerate(desc.values()):
        d = values[keep][present]
        bins = quantile_bins(d, n_bins)
        for hh in range(h):
            eta[hh, ki] = partial_eta_squared(scores[hh], scene, bins)
            rho[hh, ki] = _spearman(_centre(d, scene), centred[hh])
    std = centred.std(axis=1) if centred.size else np.zeros(h)
    names = tuple(desc)
    return ScoreDependence(
        probe="qk_ov.score_dependence",
        settings={"n_bins": n_bins, "flat_tolerance": flat_tolerance, "n_scenes": int(keep.sum())},
        descriptors=names, n_vehicles=int(scene.size), eta_squared=eta, spearman=rho, score_std=std,
        most_dependent=tuple(None if std[hh] < flat_tolerance else names[int(eta[hh].argmax())]
                             for hh in range(h)),
    )


def quantile_bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each value, on (deduplicated) quantile edges."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1))) if x.size else np.zeros(1)
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))


def partial_eta_squared(y: np.ndarray, groups: np.ndarray, bins: np.ndarray, iterations: int = 100) -> float:
    """Share of y's within-group variance explained by bin effects, fitting y = group + bin by backfitting."""
    residual_groups = _centre(y, groups)
    total = float((residual_groups ** 2).sum())
    if total <= 1e-12 * max(float((y ** 2).sum()), 1e-30):
        return 0.0
    bin_effect = np.zeros(bins.max() + 1)
    group_effect = np.zeros(groups.max() + 1)
    for _ in range(iterations):
        group_effect = _group_mean(y - bin_effect[bins], groups)
        new = _group_mean(y - group_effect[groups], bins)
        if np.allclose(new, bin_effect, atol=1e-12 * (1 + np.abs(new).max())):
            bin_effect = new
            break
        bin_effect = new
    residual = y - group_effect[groups] - bin_effect[bins]
    return float(np.clip(1.0 - (residual ** 2).sum() / total, 0.0, 1.0))


def _group_mean(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    counts = np.bincount(groups)
    return np.bincount(groups, weights=y) / np.maximum(counts, 1)


def _centre(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return y - _group_mean(y, groups)[groups]


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


# ------------------------------------------------------------------------------------------ OV to actions

@dataclasses.dataclass(frozen=True, kw_only=True)
class OVActionEffects(Evidence):
    """What each row's value vector, through each head, adds to each action's Q.

    ``contribution`` [B, H, N, F] (with ``keep_contribution``): the row's share of ``hook_head_out``
    (attention weight x OV^h applied to its value, so the shares sum over rows to the head's output). ``patched`` [B, H, N, A]: Q(clean) minus
    Q with that share removed from head h's output (attention weights held, the rest recomputed exactly);
    ``linear`` [B, H, N, A]: the gradient of Q at the scene times the share; ``gap`` = max |patched - linear|.
    ``head_effect`` [H, A]: mean over scenes of the summed |patched| over rows.
    """

    action_names: tuple[str, ...]
    contribution: np.ndarray | None  # kept only on request: [B, H, N, F] is large
    patched: np.ndarray
    linear: np.ndarray
    gap: float
    head_effect: np.ndarray


def ov_action_effects(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, *,
                      action_names: Sequence[str] | None = None, keep_contribution: bool = False) -> OVActionEffects:
    """Exact (patching) and linearised effects of every (head, row) value contribution on every Q."""
    x = as_batch(obs)
    b, n = x.shape[:2]
    h = model.n_heads
    contribution = row_contributions(model, x)  # [B, H, N, F]
    # Exact: remove one (head, row) share at a time; the patched batch is laid out [B, H, N].
    with torch.no_grad():
        clean = _run(model, x, ())[0]
        patched_q = []
        for start in range(0, b * h * n, CHUNK):
            flat = torch.arange(start, min(start + CHUNK, b * h * n))
            scene, head, row = flat // (h * n), (flat // n) % h, flat % n
            delta = torch.zeros(flat.numel(), h, contribution.shape[-1])
            delta[torch.arange(flat.numel()), head] = contribution[scene, head, row]
            patched_q.append(model.run_with_hooks(x[scene], [(HEAD_OUT, lambda act, _hook, d=delta: act - d)]))
        patched = clean[:, None, None] - torch.cat(patched_q).reshape(b, h, n, -1)
    grads = combined_gradients(model, x)  # [B, F, A]
    linear = torch.einsum("bhnf,bfa->bhna", contribution, grads)
    names = tuple(action_names) if action_names is not None else tuple(f"action_{a}" for a in range(clean.shape[1]))
    return OVActionEffects(
        probe="qk_ov.ov_action_effects", settings={"n_scenes": b},
        action_names=names, contribution=contribution.numpy() if keep_contribution else None,
        patched=patched.numpy(), linear=linear.detach().numpy(),
        gap=float((patched - linear).abs().max()) if patched.numel() else 0.0,
        head_effect=patched.abs().sum(2).mean(0).numpy(),
    )


@torch.no_grad()
def row_contributions(model: EgoAttentionNetwork, x: torch.Tensor) -> torch.Tensor:
    """[B, H, N, F]: pattern[b, h, j] * W_O^h v_j^h; summing over j gives ``hook_head_out``."""
    _, cache = _run(model, x, (PATTERN, VALUES))
    w_o = model.attention_layer.attention_combine.weight  # [F, F], columns head-major
    per_head = torch.stack([w_o[:, s] for s in head_slices(model)])  # [H, F, D]
    ov_values = torch.einsum("bhnd,hfd->bhnf", cache[VALUES], per_head)
    return cache[PATTERN][:, :, 0, :, None] * ov_values


def combined_gradients(model: EgoAttentionNetwork, x: torch.Tensor) -> torch.Tensor:
    """dQ_a / d(attention_combine output) [B, F, A]; every head's output enters Q through this sum."""
    leaf: dict[str, torch.Tensor] = {}

    def capture(act: torch.Tensor, _hook) -> torch.Tensor:
        leaf["combined"] = act.detach().requires_grad_(True)
        return leaf["combined"]

    with torch.enable_grad():
        q = model.run_with_hooks(x, [(COMBINED, capture)])
        grads = [torch.autograd.grad(q[:, a].sum(), leaf["combined"], retain_graph=True)[0] for a in range(q.shape[1])]
    return torch.stack(grads, dim=-1)


# ---------------------------------------------------------------------------------------------- helpers


def _check_rows(x: torch.Tensor, rows: torch.Tensor, layout: FeatureLayout) -> None:
    if ((rows < 1) | (rows >= x.shape[1])).any():
        raise ValueError(f"rows must be other vehicles' rows 1..{x.shape[1] - 1}; got {rows.tolist()}")
    absent = x[torch.arange(x.shape[0]), rows, layout.presence] < 0.5
    if absent.any():
        raise ValueError(f"scenes {torch.nonzero(absent).flatten().tolist()} have no vehicle in the swept row "
                         "(presence < 0.5): a masked row gets no attention whatever its features")


def _run(model: EgoAttentionNetwork, x: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, dict]:
    """Forward in chunks, caching the named hook points."""
    outs, caches = [], []
    for start in range(0, x.shape[0], CHUNK):
        if names:
            out, cache = model.run_with_cache(x[start:start + CHUNK], lambda name: name in names)
        else:
            out, cache = model(x[start:start + CHUNK]), {}
        outs.append(out)
        caches.append(cache)
    return torch.cat(outs), {k: torch.cat([c[k] for c in caches]) for k in names}


def _most(dependence: np.ndarray, variables: Sequence[str], tolerance: float) -> str | None:
    return None if dependence.max() < tolerance else variables[int(dependence.argmax())]
