"""Ego-attention patterns: per head over observation rows, mapped to scenario vehicles, and summaries of them.

Rows are not vehicles (the env shuffles rows every step), so anything a spec says about "the vehicle"
goes through a row -> vehicle mapping ([B, N] vehicle ids, ``-1`` for an empty row, as
``interp.simulation.row_identity`` records it). Absent rows are masked by the network and get zero attention.

* ``attention_patterns``: pattern [B, H, N], entropy, attention per vehicle.
* ``attention_to``: attention each head gives a set of rows (e.g. the nearest crossing vehicle), against
  what uniform attention over the present rows would give.
* ``argmax_share``: the share of scenes where a head attends most to a given row, with a Wilson CI and an
  exact one-sided test against chance (argmax uniform over the present rows, ego included).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from statsmodels.stats.proportion import proportion_confint

from interp.errors import ConfigError
from interp.evidence import Evidence
from interp.probes.interventions import Observations, to_tensor
from interp.model.network import EgoAttentionNetwork
from interp.model import names

EMPTY_ROW = -1
PATTERN_HOOK = names.PATTERN


def _presence(model: EgoAttentionNetwork, x: torch.Tensor) -> np.ndarray:
    return (x[:, :, model.presence_idx] >= 0.5).numpy()


def pattern_and_presence(model: EgoAttentionNetwork, obs: Observations) -> tuple[np.ndarray, np.ndarray]:
    """(pattern [B, H, N], present [B, N] bool) for a batch of observations."""
    x = to_tensor(obs)
    with torch.no_grad():
        pattern = model.attention(x)[:, :, 0, :].numpy()
    return pattern, _presence(model, x)


def entropy(pattern: np.ndarray, present: np.ndarray) -> np.ndarray:
    """[B, H] entropy in nats of each head's pattern over the present rows."""
    p = np.where(present[:, None, :], pattern, 0.0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(-1)


def vehicle_attention(pattern: np.ndarray, rows: np.ndarray) -> list[dict[int, list[float]]]:
    """Per scene, {vehicle id: attention per head} from a row -> vehicle mapping [B, N] (-1 = empty row)."""
    rows = np.asarray(rows)
    if rows.shape != (pattern.shape[0], pattern.shape[2]):
        raise ConfigError(f"row -> vehicle mapping has shape {rows.shape}; expected [batch, rows] = "
                          f"{(pattern.shape[0], pattern.shape[2])}")
    scenes = []
    for b in range(pattern.shape[0]):
        by_id: dict[int, list[float]] = {}
        for r, vid in enumerate(rows[b]):
            if vid != EMPTY_ROW:
                by_id[int(vid)] = [float(v) for v in pattern[b, :, r]]
        scenes.append(by_id)
    return scenes


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttentionEvidence(Evidence):
    """Each head's pattern over the rows (and vehicles, when a mapping is given) with its entropy.

    ``normalised_entropy`` = entropy / log(present rows): 1 is uniform attention, 0 all on one row
    (NaN for a scene with the ego alone)."""

    n: int
    n_heads: int
    pattern: np.ndarray
    present: np.ndarray
    entropy: np.ndarray
    normalised_entropy: np.ndarray
    mean_normalised_entropy: np.ndarray
    rows: np.ndarray | None = None
    by_vehicle: list | None = None


def attention_patterns(model: EgoAttentionNetwork, obs: Observations, rows: np.ndarray | None = None) -> AttentionEvidence:
    pattern, present = pattern_and_presence(model, obs)
    ent = entropy(pattern, present)
    k = present.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(k[:, None] > 1, ent / np.log(np.maximum(k, 2))[:, None], np.nan)
    return AttentionEvidence(
        probe="attention_patterns", settings={"batch": int(pattern.shape[0])}, n=int(pattern.shape[0]),
        n_heads=int(pattern.shape[1]), pattern=pattern, present=present, entropy=ent, normalised_entropy=norm,
        mean_normalised_entropy=np.nanmean(norm, axis=0) if np.isfinite(norm).any() else np.full(pattern.shape[1], np.nan),
        rows=None if rows is None else np.asarray(rows),
        by_vehicle=None if rows is None else vehicle_attention(pattern, rows),
    )


def rows_of_vehicles(rows: np.ndarray, vehicles: Sequence[Sequence[int]]) -> np.ndarray:
    """[B, N] bool: the rows holding the given vehicle ids, scene by scene."""
    rows = np.asarray(rows)
    if len(vehicles) != rows.shape[0]:
        raise ConfigError(f"{len(vehicles)} vehicle sets for {rows.shape[0]} scenes")
    return np.stack([np.isin(rows[b], list(vehicles[b])) & (rows[b] != EMPTY_ROW) for b in range(rows.shape[0])])


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttentionToEvidence(Evidence):
    """Attention each head gives a set of target rows per scene (``share`` [B, H]), against ``chance`` [B],
    the share uniform attention over the present rows would give (|targets| / present rows). Scenes with
    no present target are left out (``used`` marks the scenes kept)."""

    n: int
    used: np.ndarray
    share: np.ndarray
    chance: np.ndarray
    mean_share: np.ndarray
    mean_chance: float
    targets: np.ndarray


def attention_to(model: EgoAttentionNetwork, obs: Observations, targets: np.ndarray) -> AttentionToEvidence:
    """``targets``: [B, N] bool rows of interest (see ``rows_of_vehicles``) or [B] int, one row per scene (-1: none)."""
    pattern, present = pattern_and_presence(model, obs)
    mask = _target_mask(targets, present.shape) & present
    used = mask.any(-1)
    if not used.any():
        raise ConfigError("no scene has a present target row: nothing to measure")
    share = (pattern * mask[:, None, :]).sum(-1)[used]
    chance = (mask.sum(-1) / present.sum(-1))[used]
    return AttentionToEvidence(
        probe="attention_to", settings={"batch": int(pattern.shape[0])}, n=int(used.sum()), used=used,
        share=share, chance=chance, mean_share=share.mean(0), mean_chance=float(chance.mean()), targets=mask,
    )


def _target_mask(targets: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.shape == shape:
        return targets.astype(bool)
    if targets.shape == shape[:1]:
        mask = np.zeros(shape, dtype=bool)
        has = targets >= 0
        mask[np.flatnonzero(has), targets[has].astype(int)] = True
        return mask
    raise ConfigError(f"targets must be [batch, rows] bool or [batch] row indices; got shape {targets.shape} "
                      f"for a batch of shape {shape}")


def poisson_binomial_sf(hits: int, probabilities: np.ndarray) -> float:
    """P(X >= hits) for X a sum of independent Bernoulli(p_i) (exact, by convolution)."""
    dist = np.zeros(len(probabilities) + 1)
    dist[0] = 1.0
    for i, p in enumerate(probabilities, start=1):
        dist[1:i + 1] = dist[1:i + 1] * (1 - p) + dist[0:i] * p
        dist[0] *= 1 - p
    return float(min(1.0, dist[hits:].sum()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArgmaxShareEvidence(Evidence):
    """Per head: the share of scenes whose strict argmax (ties count as misses) is the target row, its
    Wilson CI at ``1 - alpha``, the chance level (mean over scenes of 1 / present rows, ego included), and
    the exact one-sided p-value of that many hits or more under chance (a Poisson-binomial)."""

    n: int
    hits: np.ndarray
    share: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    chance: float
    p_value: np.ndarray
    beats_chance: np.ndarray
    best_head: int
    hit: np.ndarray
    target_row: np.ndarray
    alpha: float


def argmax_share(model: EgoAttentionNetwork, obs: Observations, target_row: np.ndarray,
                 alpha: float = 0.05) -> ArgmaxShareEvidence:
    """``target_row``: [B] the row each scene's head should attend to most (-1: no target, scene left out)."""
    pattern, present = pattern_and_presence(model, obs)
    target_row = np.asarray(target_row).astype(int)
    if target_row.shape != (pattern.shape[0],):
        raise ConfigError(f"target_row must be [batch] = ({pattern.shape[0]},), got {target_row.shape}")
    used = target_row >= 0
    used[used] &= present[np.flatnonzero(used), target_row[used]]
    if not used.any():
        raise ConfigError("no scene has a present target row: nothing to measure")
    p, pres, tgt = pattern[used], present[used], target_row[used]
    idx = np.arange(len(tgt))
    on_target = p[idx, :, tgt]  # [n, H]
    others = np.where(pres[:, None, :], p, -np.inf)
    others[idx, :, tgt] = -np.inf
    hit = on_target > others.max(-1)
    n, hits = len(tgt), hit.sum(0)
    low, high = proportion_confint(hits, n, alpha=alpha, method="wilson")
    chances = 1.0 / pres.sum(-1)
    chance = float(chances.mean())
    p_values = np.array([poisson_binomial_sf(int(h), chances) for h in hits])
    share = hits / n
    return ArgmaxShareEvidence(
        probe="argmax_share", settings={"batch": int(pattern.shape[0]), "ties": "miss"}, n=n, hits=hits,
        share=share, ci_low=np.asarray(low), ci_high=np.asarray(high), chance=chance, p_value=p_values,
        beats_chance=np.asarray(low) > chance, best_head=int(np.argmax(share)), hit=hit, target_row=target_row,
        alpha=alpha,
    )
