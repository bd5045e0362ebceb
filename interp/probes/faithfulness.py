"""Attention faithfulness: does attention rank the observed vehicles like what they do to the decision?

Per state, every present other vehicle (row) is scored three ways:

* **attention**: each head's weight on the row (``hook_pattern``), and the heads' combined attention (their mean);
* **causal importance**, the change of a scalar metric of the Q-values (default: the keep-speed margin
  max(Q[IDLE], Q[FASTER]) - Q[SLOWER]) when the row is taken away:
    - for a head: the row removed from *that head's* attention only, the head's remaining weights renormalised to
      sum to one (every other head and every other activation untouched; done at ``hook_pattern``);
    - for the agent: the row masked out (presence 0, features zeroed, as the env writes an absent row);
* **Shapley values** of the rows for the same metric (captum's ``ShapleyValueSampling``, one feature group per
  row, an absent row as the baseline, the ego row never removed).

Rankings are compared per scene with Kendall's tau-b and top-1 agreement. Importances and Shapley values are
ranked by magnitude (a vehicle matters whether it raises or lowers the margin). The null is a within-scene
permutation: each scene's attention values reassigned at random among that scene's vehicles (independently per
scene), which keeps every scene's number of vehicles and ties; the p-value is the Monte Carlo permutation p-value
(1 + #null >= observed) / (1 + permutations), valid at any number of permutations.

A scene where either score is constant over its vehicles (e.g. a head whose removal changes nothing) has no
ranking: its tau counts as 0 (no association), which can only weaken a claim of faithfulness.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch
from captum.attr import ShapleyValueSampling
from scipy import stats as sps

from interp.errors import ConfigError
from interp.evidence import Evidence
from interp.model import names
from interp.model.batch import as_batch
from interp.model.network import EgoAttentionNetwork
from interp.probes.attributions import absent_baseline

Metric = Callable[[torch.Tensor], torch.Tensor]
SHAPLEY_SAMPLES = 25  # permutations per state in ShapleyValueSampling (captum's default)
PERMUTATIONS = 1000  # within-scene permutations of the null
MIN_VEHICLES = 3  # fewer present other vehicles make rank statistics degenerate


def keep_speed_margin(q: torch.Tensor) -> torch.Tensor:
    """max(Q[IDLE], Q[FASTER]) - Q[SLOWER]: the willingness not to slow down (SLOWER 0, IDLE 1, FASTER 2)."""
    return torch.maximum(q[:, 1], q[:, 2]) - q[:, 0]


def present_others(obs: torch.Tensor, presence: int = 0) -> np.ndarray:
    """[B, N] bool: present rows other than the ego (row 0)."""
    present = (obs[..., presence] >= 0.5).numpy().copy()
    present[:, 0] = False
    return present


# ------------------------------------------------------------------------------------------ the three scores
def _metric(model: EgoAttentionNetwork, x: torch.Tensor, metric: Metric, hooks=()) -> torch.Tensor:
    with torch.no_grad():
        return metric(model.run_with_hooks(x, hooks) if hooks else model(x))


def renormalise(pattern: torch.Tensor) -> torch.Tensor:
    """Attention weights rescaled to sum to one over the rows (what is left after a row was removed)."""
    return pattern / pattern.sum(-1, keepdim=True).clamp_min(torch.finfo(pattern.dtype).tiny)


def head_removal_effects(model: EgoAttentionNetwork, obs, metric: Metric = keep_speed_margin,
                         only: Sequence[int] | None = None) -> np.ndarray:
    """[B, H, N] metric(clean) - metric(row n removed from head h's attention, renormalised); 0 on the ego row
    (and on heads not in ``only``, when given).

    One batched forward: scene b is repeated once per (head, other row) and each copy gets its own mask."""
    x = as_batch(obs)
    b, n = x.shape[0], x.shape[1]
    heads = model.n_heads
    chosen = range(heads) if only is None else [int(h) for h in only]
    bad = [h for h in chosen if not 0 <= h < heads]
    if bad:
        raise ConfigError(f"head(s) {bad} do not exist: this model has heads 0..{heads - 1}")
    combos = [(h, j) for h in chosen for j in range(1, n)]
    keep = torch.ones(len(combos), heads, 1, n, dtype=x.dtype)
    for c, (h, j) in enumerate(combos):
        keep[c, h, 0, j] = 0.0
    keep = keep.repeat(b, 1, 1, 1)  # [B * C, H, 1, N], scene-major

    edited = (keep == 0).any(-1, keepdim=True)  # [B * C, H, 1, 1]: the one head each copy edits

    def remove(pattern: torch.Tensor, _hook) -> torch.Tensor:
        kept = pattern * keep
        return torch.where(edited, renormalise(kept), pattern)  # the other heads bit for bit as they were

    clean = _metric(model, x, metric)
    removed = _metric(model, x.repeat_interleave(len(combos), dim=0), metric, [(names.PATTERN, remove)])
    effect = torch.zeros(b, heads, n, dtype=torch.float64)
    removed = removed.view(b, len(combos)).double()
    for c, (h, j) in enumerate(combos):
        effect[:, h, j] = clean.double() - removed[:, c]
    return effect.numpy()


def row_removal_effects(model: EgoAttentionNetwork, obs, metric: Metric = keep_speed_margin) -> np.ndarray:
    """[B, N] metric(clean) - metric(row n masked out of the observation); 0 on the ego row."""
    x = as_batch(obs)
    b, n = x.shape[0], x.shape[1]
    copies = x.repeat_interleave(n - 1, dim=0).view(b, n - 1, n, x.shape[2]).clone()
    for j in range(1, n):
        copies[:, j - 1, j] = 0.0
    clean = _metric(model, x, metric).double()
    removed = _metric(model, copies.view(-1, n, x.shape[2]), metric).double().view(b, n - 1)
    effect = torch.zeros(b, n, dtype=torch.float64)
    effect[:, 1:] = clean[:, None] - removed
    return effect.numpy()


def shapley_values(model: EgoAttentionNetwork, obs, metric: Metric = keep_speed_margin, *,
                   n_samples: int = SHAPLEY_SAMPLES, seed: int = 0, presence: int = 0) -> np.ndarray:
    """[B, N] captum Shapley value sampling of each row for ``metric``; removal = an absent row; ego row 0.

    Only present other rows are players: states are grouped by their number k of present others, the rows of
    each state reordered so those come first (the network is invariant to the order of the other rows, and
    absent rows are masked), and captum samples over k + 1 groups (group 0: the ego and the absent rows, equal
    to their baseline, so it gets 0) instead of all rows: the same values at a fraction of the forward passes."""
    x = as_batch(obs)
    n, f = x.shape[1], x.shape[2]
    present = present_others(x, presence)
    counts = present.sum(1)
    out = np.zeros((x.shape[0], n))
    forward = lambda batch: metric(model(batch))  # noqa: E731
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        for k in np.unique(counts):
            if k == 0:
                continue
            states = np.flatnonzero(counts == k)
            # row order per state: the ego, its present others, then the absent rows
            order = np.argsort(~present[states], axis=1, kind="stable")
            order = np.concatenate([np.zeros((len(states), 1), int), order[:, :k], order[:, k:][order[:, k:] != 0]
                                    .reshape(len(states), -1)], axis=1)
            reordered = x[torch.as_tensor(states)[:, None], torch.as_tensor(order)]
            groups = torch.zeros(1, n, f, dtype=torch.long)
            groups[0, 1:k + 1] = torch.arange(1, k + 1)[:, None]
            attr = ShapleyValueSampling(forward).attribute(
                reordered, baselines=absent_baseline(reordered), feature_mask=groups, n_samples=n_samples,
                perturbations_per_eval=int(k) + 1)
            values = attr[..., 0].double().numpy()
            out[states[:, None], order] = values
    return out


# ------------------------------------------------------------------------------------------ rank statistics
def kendall_tau_b(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[B] Kendall's tau-b between a[s] and b[s] over the valid entries of each scene (0 where undefined).

    Hand-written, vectorised over scenes so the permutation null stays fast; equal to
    ``scipy.stats.kendalltau`` (tau-b) scene by scene (tests/test_faithfulness.py checks it)."""
    return _TauAgainst(b, valid)(a)


class _TauAgainst:
    """tau-b of any ``a`` against a fixed ``b``: b's pair signs computed once (the permutation null reuses them)."""

    def __init__(self, b: np.ndarray, valid: np.ndarray) -> None:
        upper = np.triu(np.ones(valid.shape[1], dtype=bool), 1)[None]
        self.pair = valid[:, :, None] & valid[:, None, :] & upper
        self.sb = np.sign(b[:, :, None] - b[:, None, :]) * self.pair
        self.nb = np.abs(self.sb).sum((1, 2))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        sa = np.sign(a[:, :, None] - a[:, None, :]) * self.pair
        num = (sa * self.sb).sum((1, 2))
        den = np.sqrt(np.abs(sa).sum((1, 2)) * self.nb)
        return np.divide(num, den, out=np.zeros(len(a)), where=den > 0)


def top1_agreement(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[B] bool: the valid entry with the largest a is one with the largest b (a tie on top in b counts)."""
    am = np.where(valid, a, -np.inf)
    bm = np.where(valid, b, -np.inf)
    top_a = am.argmax(1)
    idx = np.arange(len(a))
    return valid.any(1) & (bm[idx, top_a] >= bm.max(1))


def top1_chance(valid: np.ndarray) -> np.ndarray:
    """[B] the top-1 agreement a random ranking reaches: 1 / vehicles (no ties on top)."""
    return 1.0 / np.maximum(valid.sum(1), 1)


def permute_within_scenes(a: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``a`` with each scene's valid entries shuffled among that scene's valid positions (the rest kept)."""
    keys = np.where(valid, rng.random(valid.shape), 2.0)
    order = np.argsort(keys, axis=1, kind="stable")  # a random order of the valid positions, then the others
    slots = np.argsort(~valid, axis=1, kind="stable")  # the valid positions in index order, then the others
    out = a.copy()
    idx = np.arange(len(a))[:, None]
    out[idx, slots] = a[idx, order]
    return out


@dataclasses.dataclass(frozen=True)
class PermutationResult:
    """Mean per-scene statistic, its within-scene permutation null and the one-sided p-value (greater)."""

    observed: float
    null: np.ndarray
    p_value: float


def within_scene_permutation_test(a: np.ndarray, b: np.ndarray, valid: np.ndarray,
                                  statistic: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], *,
                                  permutations: int = PERMUTATIONS, seed: int = 0) -> PermutationResult:
    """H0: within each scene, a's values are exchangeable among its vehicles (unrelated to b's ranking).

    Hand-written because the shuffle is stratified by scene with a different number of vehicles per scene,
    which ``scipy.stats.permutation_test`` does not do."""
    rng = np.random.default_rng(seed)
    against = _TauAgainst(b, valid) if statistic is kendall_tau_b else (lambda x: statistic(x, b, valid))
    observed = float(against(a).mean())
    null = np.array([against(permute_within_scenes(a, valid, rng)).mean() for _ in range(permutations)])
    p = (1 + int((null >= observed - 1e-12).sum())) / (1 + permutations)
    return PermutationResult(observed, null, float(p))


def cluster_ci(values: np.ndarray, clusters: np.ndarray, *, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap CI of the mean of per-scene ``values``, resampling whole clusters (episodes: scenes of one
    episode are not independent); ``scipy.stats.bootstrap`` on (sum, count) per cluster, paired."""
    values, clusters = np.asarray(values, float), np.asarray(clusters)
    labels = np.unique(clusters)
    if len(labels) < 2:
        return (float("nan"), float("nan"))
    sums = np.array([values[clusters == c].sum() for c in labels])
    counts = np.array([(clusters == c).sum() for c in labels], float)
    res = sps.bootstrap((sums, counts), lambda s, c, axis=-1: s.sum(axis) / c.sum(axis), paired=True,
                        vectorized=True, method="percentile", confidence_level=level, n_resamples=2000,
                        random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# ------------------------------------------------------------------------------------------ evidence
@dataclasses.dataclass(frozen=True, kw_only=True)
class Faithfulness(Evidence):
    """The three scores of every row of every scene (``valid``: the present other rows).

    ``attention`` [B, H, N]; ``combined`` [B, N] (mean over heads); ``head_effect`` [B, H, N] and ``agent_effect``
    [B, N] signed metric changes on removal; ``shapley`` [B, N] signed Shapley values. Rankings compare
    magnitudes: ``ranking(np.abs(ev.shapley), ev.valid)``.
    """

    metric: str
    valid: np.ndarray
    attention: np.ndarray
    combined: np.ndarray
    head_effect: np.ndarray
    agent_effect: np.ndarray
    shapley: np.ndarray

    @property
    def n(self) -> int:
        return int(self.valid.shape[0])


def faithfulness(model: EgoAttentionNetwork, obs, metric: Metric = keep_speed_margin, *,
                 n_samples: int = SHAPLEY_SAMPLES, seed: int = 0, min_vehicles: int = MIN_VEHICLES,
                 presence: int = 0) -> Faithfulness:
    """All three scores on states with at least ``min_vehicles`` present other vehicles (checked: fewer make
    the rank statistics degenerate)."""
    x = as_batch(obs)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ConfigError(f"faithfulness needs a batch of observations [B, rows, features], got {tuple(x.shape)}")
    valid = present_others(x, presence)
    few = np.flatnonzero(valid.sum(1) < min_vehicles)
    if len(few):
        raise ConfigError(f"{len(few)} of {len(x)} states have fewer than {min_vehicles} present other vehicles "
                          f"(first: state {few[0]} with {int(valid[few[0]].sum())}); keep states with >= "
                          f"{min_vehicles} (rank statistics on 1-2 vehicles are degenerate)")
    with torch.no_grad():
        attention = model.attention(x)[:, :, 0, :].double().numpy()
    return Faithfulness(
        probe="faithfulness", settings={"n_samples": n_samples, "seed": seed, "min_vehicles": min_vehicles},
        metric=getattr(metric, "__name__", str(metric)), valid=valid, attention=attention,
        combined=attention.mean(1), head_effect=head_removal_effects(model, x, metric),
        agent_effect=row_removal_effects(model, x, metric), shapley=shapley_values(model, x, metric,
                                                                                   n_samples=n_samples, seed=seed,
                                                                                   presence=presence))


def ranking(scores: np.ndarray, valid: np.ndarray) -> list[list[int]]:
    """Per scene, the valid rows ordered by score, largest first (ties by row index)."""
    out = []
    for s, v in zip(scores, valid):
        rows = np.flatnonzero(v)
        out.append([int(r) for r in rows[np.argsort(-s[rows], kind="stable")]])
    return out
