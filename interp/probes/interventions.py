"""Interventions expressed as hooks: a list of (hook name, function) pairs that ``run_with_hooks`` installs.

Keeping interventions as plain hook lists lets the same object drive a single forward pass, a probe, or a
rollout condition, and gives each a canonical description for caching (``describe()``: plain JSON, arrays
named by a hash of their bytes, so two conditions share a cache entry only if they do the same thing).

* ``Ablation``: replace an activation (or some of its units along dim 1: heads of ``hook_z``, neurons of a
  ``hook_hidden``, rows of ``hook_input``) by zero, by its mean over reference scenes, or by its value in
  a randomly drawn reference scene (resampling ablation).
* ``Patch``: activation patching, the activation of scene b replaced by its value in source scene b.
* ``Compose``: several interventions at once.
* metrics on Q-values (``QValue``, ``Margin``) and ``greedy_flips``; ``measure`` and ``activation_patching``
  return evidence; ``edit_weight`` / ``edit_head`` return an edited copy of a model (the original untouched).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from typing import Literal, Union

import numpy as np
import torch

from interp.errors import ConfigError
from interp.evidence import Evidence
from interp.model.hooks import HookFn, HookPoint
from interp.model.network import EgoAttentionNetwork
from interp.model.batch import as_batch
from interp.model import draws, names, policy

Z_HOOK = names.Z
HEAD_OUT_HOOK = names.HEAD_OUT
Observations = Union[np.ndarray, torch.Tensor]
Hooks = list[tuple[str, HookFn]]
AblationMode = Literal["zero", "mean", "resample"]
ABLATION_MODES = ("zero", "mean", "resample")
# Below this |clean - corrupted| gap a scene's patching fraction is undefined (NaN), not a huge ratio.
MIN_PATCH_GAP = 1e-6


to_tensor = as_batch  # the old name, kept for callers


def array_digest(value: Observations | None) -> dict | None:
    """A canonical, JSON-able name for an array: shape, dtype and a hash of its float32 bytes."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.ascontiguousarray(value, dtype=np.float32)
    return {"shape": list(arr.shape), "dtype": "float32", "sha256": hashlib.sha256(arr.tobytes()).hexdigest()[:16]}


def zero_heads_fn(heads: Sequence[int]) -> HookFn:
    heads = list(heads)

    def hook(z: torch.Tensor, _hook) -> torch.Tensor:
        z = z.clone()
        z[:, heads] = 0.0
        return z

    return hook


def ablate_heads(heads: Sequence[int], n_heads: int) -> list[tuple[str, HookFn]]:
    """Zero the per-head outputs ``z`` of ``heads`` before ``attention_combine``."""
    bad = [h for h in heads if not 0 <= h < n_heads]
    if bad:
        raise ConfigError(f"head(s) {bad} do not exist: this agent has heads 0..{n_heads - 1}")
    return [(Z_HOOK, zero_heads_fn(heads))]


# --- interventions ---------------------------------------------------------------------------------
def _check_hook(model: EgoAttentionNetwork, hook: str) -> None:
    if hook not in model.hook_dict:
        raise ConfigError(f"no hook point {hook!r}; this model has: {', '.join(model.hook_dict)}")


def _check_units(units: tuple[int, ...] | None, act: torch.Tensor, hook: str) -> None:
    if units is None:
        return
    size = act.shape[1] if act.ndim > 1 else 0
    bad = [u for u in units if not 0 <= u < size]
    if bad:
        raise ConfigError(f"{hook}: unit(s) {bad} out of range; dim 1 of this activation has {size} entries "
                          f"(shape {tuple(act.shape)})")


def _index(units: tuple[int, ...] | None) -> tuple:
    return (slice(None),) if units is None else (slice(None), list(units))


def activations(model: EgoAttentionNetwork, obs: Observations, hook: str,
                fwd_hooks: Sequence[tuple[str, HookFn]] = ()) -> torch.Tensor:
    """The activation at ``hook`` for a batch of observations (no gradient)."""
    _check_hook(model, hook)
    with torch.no_grad():
        _, cache = model.run_with_cache(to_tensor(obs), hook, fwd_hooks)
    return cache[hook]


def _replace_fn(hook: str, units: tuple[int, ...] | None, source: Callable[[torch.Tensor], torch.Tensor]) -> HookFn:
    """A hook writing ``source(act)`` (shaped like ``act[index]``) into the selected units of ``act``."""
    index = _index(units)

    def fn(act: torch.Tensor, _hook: HookPoint) -> torch.Tensor:
        _check_units(units, act, hook)
        out = act.clone()
        out[index] = source(act).to(act.dtype)
        return out

    return fn


@dataclasses.dataclass(frozen=True, eq=False)
class Intervention:
    """Something that changes a forward pass; ``hooks(model)`` gives the hook list, ``describe()`` its JSON name."""

    def hooks(self, model: EgoAttentionNetwork) -> Hooks:
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError

    def run(self, model: EgoAttentionNetwork, obs: Observations) -> torch.Tensor:
        """Q-values [B, A] under this intervention (no gradient)."""
        with torch.no_grad():
            return model.run_with_hooks(to_tensor(obs), self.hooks(model))


@dataclasses.dataclass(frozen=True, eq=False)
class Ablation(Intervention):
    """Replace the activation at ``hook`` (only ``units`` along dim 1 if given).

    ``mode``: ``zero``; ``mean`` (its mean over the ``reference`` scenes); ``resample`` (each scene gets the
    activation of a reference scene, the donor, drawn by a generator keyed by ``seed`` and the scene's
    ``interp.model.draws.DrawKey``: in rollouts the engine names each decision by episode seed, step and
    condition, so the draw depends neither on batching, call order or layout, nor on the last bits of the
    observation, and cached rollout records stay valid; in a probe's batch, row ``b`` is ``DrawKey(row=b)``).
    """

    hook: str
    units: tuple[int, ...] | None = None
    mode: AblationMode = "zero"
    reference: np.ndarray | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ABLATION_MODES:
            raise ConfigError(f"ablation mode {self.mode!r} unknown; use one of {ABLATION_MODES}")
        if self.mode != "zero" and self.reference is None:
            raise ConfigError(f"{self.mode} ablation needs reference scenes (reference=[B, rows, features])")
        if self.units is not None:
            object.__setattr__(self, "units", tuple(int(u) for u in self.units))

    def hooks(self, model: EgoAttentionNetwork) -> Hooks:
        _check_hook(model, self.hook)
        index = _index(self.units)
        if self.mode == "zero":
            return [(self.hook, _replace_fn(self.hook, self.units, lambda act: torch.zeros_like(act[index])))]
        ref = activations(model, self.reference, self.hook)
        _check_units(self.units, ref, self.hook)
        ref = ref[index]
        if self.mode == "mean":
            mean = ref.float().mean(dim=0, keepdim=True)
            return [(self.hook, _replace_fn(self.hook, self.units, lambda act: mean.expand_as(act[index])))]
        def draw(act: torch.Tensor) -> torch.Tensor:
            donors = [draws.draw_index(key, self.seed, ref.shape[0]) for key in draws.current(act.shape[0])]
            return ref[torch.tensor(donors, dtype=torch.long)]

        return [(self.hook, _replace_fn(self.hook, self.units, draw))]

    def describe(self) -> dict:
        return {"kind": "ablation", "hook": self.hook, "units": None if self.units is None else list(self.units),
                "mode": self.mode, "reference": array_digest(self.reference),
                "seed": self.seed if self.mode == "resample" else None}


@dataclasses.dataclass(frozen=True, eq=False)
class Patch(Intervention):
    """Activation patching: scene b's activation at ``hook`` (``units``) replaced by its value in ``source[b]``
    (a single source scene is used for every scene of the batch)."""

    hook: str
    source: np.ndarray
    units: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.units is not None:
            object.__setattr__(self, "units", tuple(int(u) for u in self.units))

    def hooks(self, model: EgoAttentionNetwork) -> Hooks:
        src = activations(model, self.source, self.hook)
        _check_units(self.units, src, self.hook)
        src = src[_index(self.units)]

        def aligned(act: torch.Tensor) -> torch.Tensor:
            if src.shape[0] not in (1, act.shape[0]):
                raise ConfigError(f"patch source has {src.shape[0]} scenes but the batch has {act.shape[0]}; "
                                  "give one source scene per scene (or a single one)")
            return src.expand(act.shape[0], *src.shape[1:])

        return [(self.hook, _replace_fn(self.hook, self.units, aligned))]

    def describe(self) -> dict:
        return {"kind": "patch", "hook": self.hook, "units": None if self.units is None else list(self.units),
                "source": array_digest(self.source)}


@dataclasses.dataclass(frozen=True, eq=False)
class Compose(Intervention):
    """Several interventions in one forward pass (sources computed on the unedited model, hooks in order)."""

    parts: tuple[Intervention, ...]

    def hooks(self, model: EgoAttentionNetwork) -> Hooks:
        return [pair for part in self.parts for pair in part.hooks(model)]

    def describe(self) -> dict:
        return {"kind": "compose", "parts": [part.describe() for part in self.parts]}


def head_ablation(heads: Sequence[int], mode: AblationMode = "zero", reference: Observations | None = None,
                  seed: int = 0, n_heads: int | None = None) -> Ablation:
    """Ablate heads' ``z`` (before ``attention_combine``); ``n_heads`` checks the indices up front."""
    if n_heads is not None:
        ablate_heads(heads, n_heads)  # raises on a head that does not exist
    ref = None if reference is None else to_tensor(reference).numpy()
    return Ablation(hook=Z_HOOK, units=tuple(heads), mode=mode, reference=ref, seed=seed)


def neuron_ablation(hook: str, neurons: Sequence[int], mode: AblationMode = "zero",
                    reference: Observations | None = None, seed: int = 0) -> Ablation:
    """Ablate neurons (units along dim 1) of a layer, e.g. ``output_layer.hook_hidden.0``."""
    ref = None if reference is None else to_tensor(reference).numpy()
    return Ablation(hook=hook, units=tuple(neurons), mode=mode, reference=ref, seed=seed)


def head_patch(head: int, source: Observations, hook: str = Z_HOOK) -> Patch:
    """Patch one head's ``z`` (``z[:, head]``) from ``source`` scenes."""
    return Patch(hook=hook, source=to_tensor(source).numpy(), units=(int(head),))


# --- metrics ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class QValue:
    """The Q-value of one action."""

    action: int

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        return q[:, self.action]

    def describe(self) -> dict:
        return {"metric": "q", "action": self.action}


@dataclasses.dataclass(frozen=True)
class Margin:
    """Q(action) - Q(other): how much the network prefers one action over another."""

    action: int
    other: int

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        return q[:, self.action] - q[:, self.other]

    def describe(self) -> dict:
        return {"metric": "margin", "action": self.action, "other": self.other}


Metric = Union[QValue, Margin]


def greedy_flips(q_before: torch.Tensor | np.ndarray, q_after: torch.Tensor | np.ndarray) -> np.ndarray:
    """[B] bool: the greedy action (by ``interp.model.policy``'s rule, as rollouts choose it) changed."""
    return policy.choose(np.asarray(q_before))[0] != policy.choose(np.asarray(q_after))[0]


@dataclasses.dataclass(frozen=True, kw_only=True)
class InterventionEvidence(Evidence):
    """A metric per scene without and with an intervention; ``effect = intervened - clean``."""

    intervention: dict
    metric: dict
    n: int
    clean: np.ndarray
    intervened: np.ndarray
    effect: np.ndarray
    mean_effect: float
    max_abs_effect: float
    q_clean: np.ndarray
    q_intervened: np.ndarray
    flips: int
    flip_rate: float


def measure(model: EgoAttentionNetwork, obs: Observations, intervention: Intervention, metric: Metric) -> InterventionEvidence:
    """Run ``obs`` with and without ``intervention`` and compare ``metric`` and the greedy action."""
    x = to_tensor(obs)
    with torch.no_grad():
        q_clean = model(x)
    q_int = intervention.run(model, x)
    clean, intervened = metric(q_clean).numpy(), metric(q_int).numpy()
    effect = intervened - clean
    flips = greedy_flips(q_clean.numpy(), q_int.numpy())
    return InterventionEvidence(
        probe="intervention", settings={"batch": int(x.shape[0])}, intervention=intervention.describe(),
        metric=metric.describe(), n=int(x.shape[0]), clean=clean, intervened=intervened, effect=effect,
        mean_effect=float(effect.mean()), max_abs_effect=float(np.abs(effect).max(initial=0.0)),
        q_clean=q_clean.numpy(), q_intervened=q_int.numpy(), flips=int(flips.sum()), flip_rate=float(flips.mean()),
    )


# --- activation patching ---------------------------------------------------------------------------
Target = tuple[str, Union[tuple[int, ...], None]]


def head_targets(n_heads: int, hook: str = Z_HOOK) -> list[Target]:
    """One patching target per head: ``(hook_z, (h,))``."""
    return [(hook, (h,)) for h in range(n_heads)]


def _fraction(numerator: np.ndarray, gap: np.ndarray) -> np.ndarray:
    safe = np.abs(gap) >= MIN_PATCH_GAP
    return np.where(safe, numerator / np.where(safe, gap, 1.0), np.nan)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PatchingEvidence(Evidence):
    """Activation patching between clean and corrupted scenes (scene b of each is a pair), per target.

    ``denoised[t, b]``: the metric of corrupted scene b with target t's activation from clean scene b.
    ``noised[t, b]``: the metric of clean scene b with target t's activation from corrupted scene b.
    ``restored[t] = (mean denoised - mean corrupted) / (mean clean - mean corrupted)`` (1: the target alone
    carries the difference); ``destroyed[t] = (mean clean - mean noised) / (mean clean - mean corrupted)``.
    Per-scene versions are NaN where ``|clean - corrupted| < MIN_PATCH_GAP``.
    """

    targets: list
    metric: dict
    n: int
    clean: np.ndarray
    corrupted: np.ndarray
    denoised: np.ndarray
    noised: np.ndarray
    restored: np.ndarray
    destroyed: np.ndarray
    restored_per_scene: np.ndarray
    destroyed_per_scene: np.ndarray


def activation_patching(model: EgoAttentionNetwork, clean: Observations, corrupted: Observations,
                        targets: Sequence[Target], metric: Metric) -> PatchingEvidence:
    """Patch each target from clean into corrupted (denoising) and from corrupted into clean (noising)."""
    xc, xk = to_tensor(clean), to_tensor(corrupted)
    if xc.shape != xk.shape:
        raise ConfigError(f"clean {tuple(xc.shape)} and corrupted {tuple(xk.shape)} batches must pair up scene by scene")
    with torch.no_grad():
        m_clean, m_corr = metric(model(xc)).numpy(), metric(model(xk)).numpy()
    denoised = np.stack([metric(Patch(hook, xc.numpy(), units).run(model, xk)).numpy() for hook, units in targets])
    noised = np.stack([metric(Patch(hook, xk.numpy(), units).run(model, xc)).numpy() for hook, units in targets])
    gap, mean_gap = m_clean - m_corr, float(np.mean(m_clean - m_corr))
    return PatchingEvidence(
        probe="activation_patching", settings={"batch": int(xc.shape[0]), "min_gap": MIN_PATCH_GAP},
        targets=[{"hook": hook, "units": None if units is None else list(units)} for hook, units in targets],
        metric=metric.describe(), n=int(xc.shape[0]), clean=m_clean, corrupted=m_corr, denoised=denoised,
        noised=noised,
        restored=_fraction(denoised.mean(1) - m_corr.mean(), np.full(len(targets), mean_gap)),
        destroyed=_fraction(m_clean.mean() - noised.mean(1), np.full(len(targets), mean_gap)),
        restored_per_scene=_fraction(denoised - m_corr[None], gap[None]),
        destroyed_per_scene=_fraction(m_clean[None] - noised, gap[None]),
    )


# --- model editing ---------------------------------------------------------------------------------
HEAD_PARTS = ("query", "key", "value", "combine")
_PART_WEIGHT = {"query": "query_ego", "key": "key_all", "value": "value_all", "combine": "attention_combine"}


def edit_weight(model: EgoAttentionNetwork, name: str,
                value: torch.Tensor | np.ndarray | Callable[[torch.Tensor], torch.Tensor]) -> EgoAttentionNetwork:
    """A copy of ``model`` with parameter ``name`` replaced by ``value`` (or ``value(old)``); the original untouched."""
    params = dict(model.named_parameters())
    if name not in params:
        raise ConfigError(f"no parameter {name!r}; this model has: {', '.join(params)}")
    edited = copy.deepcopy(model)
    param = dict(edited.named_parameters())[name]
    with torch.no_grad():
        new = value(param.detach().clone()) if callable(value) else torch.as_tensor(np.asarray(value))
        if tuple(new.shape) != tuple(param.shape):
            raise ConfigError(f"{name}: new value has shape {tuple(new.shape)}, the parameter {tuple(param.shape)}")
        param.copy_(new.to(param.dtype))
    return edited


def edit_head(model: EgoAttentionNetwork, head: int, *, part: str = "combine", scale: float = 0.0) -> EgoAttentionNetwork:
    """A copy with one head's slice of the ego-attention weights multiplied by ``scale``.

    ``combine`` (default, scale 0): the head writes nothing (its columns of ``attention_combine``), the
    weight-level twin of zero-ablating its ``z``; ``query``/``key``: scale 0 makes it attend uniformly;
    ``value``: scales what it reads.
    """
    heads, d = model.n_heads, model.attention_layer.features_per_head
    if not 0 <= head < heads:
        raise ConfigError(f"head {head} does not exist: this model has heads 0..{heads - 1}")
    if part not in HEAD_PARTS:
        raise ConfigError(f"head part {part!r} unknown; use one of {HEAD_PARTS}")
    rows = slice(head * d, (head + 1) * d)

    def scaled(weight: torch.Tensor) -> torch.Tensor:
        if part == "combine":
            weight[:, rows] *= scale
        else:
            weight[rows, :] *= scale
        return weight

    return edit_weight(model, f"attention_layer.{_PART_WEIGHT[part]}.weight", scaled)
