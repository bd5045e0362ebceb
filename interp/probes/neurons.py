"""Neurons and head outputs: activations over a scene set, similarity with vehicles in given roles, and a
semantic dictionary whose summaries must predict held-out scenes to count.

* ``activations``: any hook point over a scene set, batched, with per-unit statistics.
* ``head_role_similarity`` / ``neuron_role_similarity``: cosine between a head's output (``hook_head_out``)
  or a residual-reading neuron's input weights (``output_layer.layers.0``) and the embedding of the vehicle
  in a given role (e.g. the nearest crossing vehicle), against the other present vehicles of the same scene
  (paired, per scene; Wilcoxon signed-rank test). The embedding is what the attention layer reads: the
  others-embedding output (or the self-attention output when the model has one), which lives in the same
  F-dimensional space as the residual the head writes into.
* ``semantic_dictionary``: for each unit, the top-activating scenes of a training split summarised by the
  scenario parameters they share; the summary counts only if, on the held-out split, scenes matching it
  are "high" (above the training threshold) more often than the held-out base rate (one-sided exact
  binomial test, Holm-corrected over units).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from scipy import stats
from statsmodels.stats.multitest import multipletests

from interp.evidence import Evidence
from interp.model.features import FeatureLayout, reference_layout
from interp.model.network import EgoAttentionNetwork
from interp.model.batch import as_batch
from interp.model import names

HEAD_OUT = names.HEAD_OUT
CHUNK = 4096


# ------------------------------------------------------------------------------------------- activations

@dataclasses.dataclass(frozen=True, kw_only=True)
class Activations(Evidence):
    """``values`` [B, *shape] of hook point ``hook``; per-unit ``mean``, ``std`` and ``active_fraction`` (> 0)."""

    hook: str
    values: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    active_fraction: np.ndarray

    def units(self) -> np.ndarray:
        """[B, U]: every non-batch position flattened into one unit axis (row-major)."""
        return self.values.reshape(self.values.shape[0], -1)


@torch.no_grad()
def activations(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, hook: str) -> Activations:
    """Activations of one hook point over a scene set ``obs`` [B, N, F], run in chunks."""
    if hook not in model.hook_dict:
        raise KeyError(f"no hook point {hook!r}; this model has: {', '.join(model.hook_dict)}")
    x = as_batch(obs)
    parts = [model.run_with_cache(x[s:s + CHUNK], hook)[1][hook] for s in range(0, x.shape[0], CHUNK)]
    values = torch.cat(parts).float().numpy()
    return Activations(probe="neurons.activations", settings={"n_scenes": int(x.shape[0])}, hook=hook,
                       values=values, mean=values.mean(0), std=values.std(0), active_fraction=(values > 0).mean(0))


@torch.no_grad()
def head_direction_activations(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor,
                               directions: np.ndarray | None = None) -> np.ndarray:
    """[B, H] projection of each head's output on a direction [H, F] (default: the head's main write
    direction, the top left singular vector of W_O^h, signed so its mean projection is >= 0)."""
    head_out = torch.as_tensor(activations(model, obs, HEAD_OUT).values, dtype=torch.float64)  # [B, H, F]
    if directions is None:
        w_o = model.attention_layer.attention_combine.weight.detach().double()
        d = model.attention_layer.features_per_head
        directions = torch.stack([torch.linalg.svd(w_o[:, h * d:(h + 1) * d])[0][:, 0] for h in range(model.n_heads)])
    directions = torch.as_tensor(np.asarray(directions), dtype=torch.float64)
    proj = torch.einsum("bhf,hf->bh", head_out, directions)
    sign = torch.where(proj.mean(0) < 0, -1.0, 1.0).to(proj.dtype)
    return (proj * sign).numpy()


# ---------------------------------------------------------------------------------------- role similarity

@dataclasses.dataclass(frozen=True, kw_only=True)
class RoleSimilarity(Evidence):
    """Cosine of each unit's direction with the role vehicle's embedding vs the other present vehicles.

    ``role_cosine`` [B, U]; ``other_cosine`` [B, U] (mean over the scene's other present vehicles); NaN where
    undefined (a zero direction, e.g. a head that writes nothing, or no other vehicle). Over the scenes
    where both are defined: ``mean_role``, ``mean_other``, ``difference`` [U] with a 95 % t interval
    ``ci_low``/``ci_high`` and a two-sided Wilcoxon signed-rank ``p_value``; ``defined`` [U] counts scenes.
    """

    role: str
    units: tuple[str, ...]
    role_cosine: np.ndarray
    other_cosine: np.ndarray
    mean_role: np.ndarray
    mean_other: np.ndarray
    difference: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    defined: np.ndarray


@torch.no_grad()
def vehicle_embeddings(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[B, N, F] the rows the ego-attention layer reads (row 0 the ego's embedding)."""
    x = as_batch(obs)
    if model.self_attention_layer is not None:
        name = "self_attention_layer.hook_out"
        return model.run_with_cache(x, name)[1][name]
    last = len(model.config["others_embedding_layer"]["layers"]) - 1
    ego_last = len(model.config["embedding_layer"]["layers"]) - 1
    hook_names = (names.act_name("others_hidden", last), names.act_name("ego_hidden", ego_last))
    _, cache = model.run_with_cache(x, lambda n: n in hook_names)
    return torch.cat([cache[hook_names[1]], cache[hook_names[0]]], dim=1)


@torch.no_grad()
def head_role_similarity(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, roles: Sequence[int], *,
                         role: str = "role", layout: FeatureLayout | None = None) -> RoleSimilarity:
    """Cosine of each head's output ``hook_head_out`` [B, H, F] with the embedding of row ``roles[b]``."""
    x = as_batch(obs)
    _, cache = model.run_with_cache(x, HEAD_OUT)
    directions = cache[HEAD_OUT]  # [B, H, F], scene-specific
    return _role_similarity("neurons.head_role_similarity", directions, model, x, roles, role,
                            tuple(f"head {h}" for h in range(model.n_heads)), layout)


@torch.no_grad()
def neuron_role_similarity(model: EgoAttentionNetwork, obs: np.ndarray | torch.Tensor, roles: Sequence[int], *,
                           role: str = "role", layout: FeatureLayout | None = None) -> RoleSimilarity:
    """Cosine of each first-output-layer neuron's input weights (it reads the residual, the embeddings'
    space) with the embedding of row ``roles[b]``."""
    x = as_batch(obs)
    weights = model.output_layer.layers[0].weight.detach()  # [U, F]
    directions = weights[None].expand(x.shape[0], *weights.shape)
    return _role_similarity("neurons.neuron_role_similarity", directions, model, x, roles, role,
                            tuple(f"{names.act_name('output_hidden', 0)}[{u}]" for u in range(weights.shape[0])), layout)


def _role_similarity(probe: str, directions: torch.Tensor, model: EgoAttentionNetwork, x: torch.Tensor,
                     roles: Sequence[int], role: str, units: tuple[str, ...],
                     layout: FeatureLayout | None) -> RoleSimilarity:
    layout = layout or reference_layout()
    b, n = x.shape[:2]
    if np.asarray(roles).size not in (1, b):
        raise ValueError(f"roles must give one row per scene ({b}), got {np.asarray(roles).size}")
    roles_t = torch.as_tensor(np.broadcast_to(np.asarray(roles), (b,)).copy(), dtype=torch.long)
    present = x[..., layout.presence] >= 0.5
    if ((roles_t < 1) | (roles_t >= n)).any() or not present[torch.arange(b), roles_t].all():
        raise ValueError("every role must name a present other vehicle's row (1..N-1, presence >= 0.5)")
    emb = vehicle_embeddings(model, x).double()  # [B, N, F]
    d = directions.double()
    d_norm = d.norm(dim=-1)  # [B, U]
    cos = torch.einsum("buf,bnf->bun", d, emb) / (d_norm[..., None] * emb.norm(dim=-1)[:, None, :])
    cos = torch.where(d_norm[..., None] > 1e-12, cos, torch.nan)  # [B, U, N]
    role_cos = cos[torch.arange(b), :, roles_t]  # [B, U]
    others = present.clone()
    others[:, 0] = False
    others[torch.arange(b), roles_t] = False
    count = others.sum(1)
    other_cos = (torch.where(others[:, None], cos, 0.0).sum(-1) / count[:, None]).where(count[:, None] > 0, torch.nan)
    role_np, other_np = role_cos.numpy(), other_cos.numpy()
    diff = role_np - other_np
    summary = [_paired_summary(diff[:, u]) for u in range(diff.shape[1])]
    return RoleSimilarity(
        probe=probe, settings={"n_scenes": b}, role=role, units=units, role_cosine=role_np, other_cosine=other_np,
        mean_role=_defined_mean(role_np, diff), mean_other=_defined_mean(other_np, diff),
        difference=np.array([s[0] for s in summary]), ci_low=np.array([s[1] for s in summary]),
        ci_high=np.array([s[2] for s in summary]), p_value=np.array([s[3] for s in summary]),
        defined=np.array([s[4] for s in summary]),
    )


def _defined_mean(values: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """Column means over the rows where the paired difference is defined (NaN for a column with none)."""
    ok = ~np.isnan(diff)
    total = np.where(ok, values, 0.0).sum(0)
    return np.where(ok.any(0), total / np.maximum(ok.sum(0), 1), np.nan)


def _paired_summary(diff: np.ndarray) -> tuple[float, float, float, float, int]:
    """Mean of the defined paired differences, its 95 % t interval, Wilcoxon p, and their count."""
    d = diff[~np.isnan(diff)]
    if d.size < 2:
        return (float(d.mean()) if d.size else float("nan"), float("nan"), float("nan"), float("nan"), int(d.size))
    mean, sem = float(d.mean()), float(stats.sem(d))
    half = float(stats.t.ppf(0.975, d.size - 1) * sem) if sem > 0 else 0.0
    p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return mean, mean - half, mean + half, p, int(d.size)


# -------------------------------------------------------------------------------------- semantic dictionary

@dataclasses.dataclass(frozen=True, kw_only=True)
class DictionaryEntry:
    """One unit's summary and how well it predicts held-out scenes.

    ``summary``: {parameter: value} shared by at least ``min_share`` of the unit's top training scenes and
    significantly enriched there over all training scenes; ``shares``: that share per
    clause. Training ``train_precision``: share of matching training scenes that are high. Held out:
    ``heldout_matches`` scenes match the summary, ``heldout_precision`` of them are high, against
    ``heldout_base_rate`` of all held-out scenes; ``p_value`` one-sided exact binomial, ``p_adjusted`` Holm
    over units; ``counts`` when p_adjusted < alpha and the precision beats the base rate.
    """

    unit: str
    summary: dict
    shares: dict
    threshold: float
    top_scenes: tuple[int, ...]
    train_precision: float
    heldout_matches: int
    heldout_precision: float
    heldout_base_rate: float
    lift: float
    p_value: float
    p_adjusted: float
    counts: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class SemanticDictionary(Evidence):
    """Entries per unit; ``train`` / ``heldout`` are the scene indices of the split."""

    entries: tuple[DictionaryEntry, ...]
    train: np.ndarray
    heldout: np.ndarray

    def counted(self) -> dict[str, dict]:
        """{unit: summary} of the summaries that predict held-out scenes."""
        return {e.unit: e.summary for e in self.entries if e.counts}


def semantic_dictionary(values: np.ndarray, params: Sequence[Mapping[str, Hashable]], *,
                        unit_names: Sequence[str] | None = None, top_fraction: float = 0.1, min_share: float = 0.6,
                        max_clauses: int = 3, clause_alpha: float = 0.01, heldout_fraction: float = 0.5,
                        alpha: float = 0.05, seed: int = 0) -> SemanticDictionary:
    """Summarise each unit's top-activating scenes by shared scenario parameters, then test on held-out scenes.

    ``values`` [B, U] (or [B]) activations per scene (e.g. ``Activations.units()``); ``params`` one dict
    of scenario parameters per scene (e.g. {"approach": "left", "distance_band": "10-20"}).
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    if len(params) != values.shape[0]:
        raise ValueError(f"{values.shape[0]} scenes of activations but {len(params)} parameter dicts")
    if not 0 < top_fraction < 1 or not 0 < heldout_fraction < 1:
        raise ValueError("top_fraction and heldout_fraction must lie strictly between 0 and 1")
    labels = list(unit_names) if unit_names is not None else [f"unit {u}" for u in range(values.shape[1])]
    order = np.random.default_rng(seed).permutation(values.shape[0])
    n_held = int(round(heldout_fraction * values.shape[0]))
    heldout, train = np.sort(order[:n_held]), np.sort(order[n_held:])
    raw = [_entry(labels[u], values[:, u], params, train, heldout, top_fraction, min_share, max_clauses, clause_alpha)
           for u in range(values.shape[1])]
    p = np.array([e["p_value"] for e in raw])
    tested = ~np.isnan(p)
    adjusted = np.full_like(p, np.nan)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    entries = tuple(DictionaryEntry(**e, p_adjusted=float(a),
                                    counts=bool(tested[i] and a < alpha and e["lift"] > 1.0))
                    for i, (e, a) in enumerate(zip(raw, adjusted)))
    return SemanticDictionary(
        probe="neurons.semantic_dictionary",
        settings={"top_fraction": top_fraction, "min_share": min_share, "max_clauses": max_clauses,
                  "clause_alpha": clause_alpha,
                  "heldout_fraction": heldout_fraction, "alpha": alpha, "seed": seed},
        entries=entries, train=train, heldout=heldout,
    )


def _entry(unit: str, act: np.ndarray, params: Sequence[Mapping[str, Hashable]], train: np.ndarray,
           heldout: np.ndarray, top_fraction: float, min_share: float, max_clauses: int, clause_alpha: float) -> dict:
    threshold = float(np.quantile(act[train], 1.0 - top_fraction))
    # A unit at its floor in most scenes (a ReLU) has its quantile at the floor: "high" is then above it.
    high = act > threshold if threshold <= act[train].min() else act >= threshold
    top = train[high[train]]
    summary, shares = {}, {}
    if np.ptp(act[train]) > 0 and 0 < top.size < train.size:
        summary, shares = _shared_clauses(params, top, train, min_share, max_clauses, clause_alpha)
    match = np.array([bool(summary) and all(params[i].get(k) == v for k, v in summary.items())
                      for i in range(len(params))])
    train_match, held_match = match[train], match[heldout]
    base = float(high[heldout].mean()) if heldout.size else float("nan")
    k, n = int((high[heldout] & held_match).sum()), int(held_match.sum())
    precision = k / n if n else float("nan")
    p = float(stats.binomtest(k, n, base, alternative="greater").pvalue) if n and 0 < base < 1 else float("nan")
    return {
        "unit": unit, "summary": summary, "shares": shares, "threshold": threshold,
        "top_scenes": tuple(int(i) for i in top[np.argsort(-act[top])]),
        "train_precision": float(high[train][train_match].mean()) if train_match.any() else float("nan"),
        "heldout_matches": n, "heldout_precision": precision, "heldout_base_rate": base,
        "lift": precision / base if n and base > 0 else float("nan"), "p_value": p,
    }


def _shared_clauses(params: Sequence[Mapping[str, Hashable]], top: np.ndarray, train: np.ndarray,
                    min_share: float, max_clauses: int, clause_alpha: float) -> tuple[dict, dict]:
    """The (parameter, value) pairs that most top scenes share and that are significantly enriched among
    them over all training scenes (one-sided exact binomial, p < clause_alpha): a value common among the
    top scenes by chance, or common everywhere, does not enter the summary."""
    clauses = []
    for key in sorted({k for i in top for k in params[i]}, key=str):
        top_values = [params[i].get(key) for i in top]
        value = max(set(top_values), key=lambda v: (top_values.count(v), str(v)))
        count = top_values.count(value)
        overall = sum(params[i].get(key) == value for i in train) / len(train)
        if count / len(top_values) < min_share or overall >= 1.0:
            continue
        p = stats.binomtest(count, len(top_values), overall, alternative="greater").pvalue
        if p < clause_alpha:
            clauses.append((count / len(top_values), p, key, value))
    clauses.sort(key=lambda c: (-c[0], c[1], str(c[2])))
    chosen = clauses[:max_clauses]
    return {c[2]: c[3] for c in chosen}, {c[2]: c[0] for c in chosen}

