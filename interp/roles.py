"""Head roles, found per head against random networks: by attention (rollout-free) and by effect (ablation).

Head indices are arbitrary per training run, so specs name roles, never indices. This module decides which
heads hold which role; it is pure computation (no pytest, no plotting). ``python -m interp roles`` and the
spec plugin (``specs/support/roles.py``) both call :func:`find_roles`.

**Attention roles** (one per vehicle category, e.g. ``crossing`` = the nearest crossing vehicle; the categories
come from scene ground truth, see ``fixtures.role_scenes``). A head's *profile* is its mean attention mass on
each category, over the calibration scenes where the category is present. The calibration scenes are split
into two disjoint halves (even and odd draws). The *null* is the same profile for ``n_null`` (>= 39) randomly
initialised networks of the same architecture, taking the maximum over heads (the best head is the one picked),
and then the maximum over those networks. A head holds a role only if its mass beats that **null maximum** on
**each** half: a random network's best head beats the maximum of K others with probability at most 1/(K + 1)
per half and role, whatever the distribution; with K = ``N_NULL`` = 799 and 10 roles, the chance that any
attention role resolves on a random network is at most 1.25 %. ``tests/test_roles.py`` measures the false-resolution rate on fresh random
networks whose init seeds the null never used.

**Causal roles** (``safety``, ``progress``). Each head's output is zero-ablated (``attention_layer.hook_z``)
on paired episodes with the calibration seeds of ``interp.seeds`` (disjoint from every other range), and the
paired change is decided by the always-valid sequential test of ``interp.stats`` (Holm across heads):
``safety`` = ablating the head raises collisions, ``progress`` = ablating it lowers arrivals.

A role held by several heads lists them by effect size (largest first); specs use the first.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp import seeds as seedmap

CATEGORIES = ("ego", "crossing", "crossing_left", "crossing_right", "oncoming", "ahead", "behind", "near", "mid", "far")
ATTENTION_ROLES = CATEGORIES
CAUSAL_ROLES = ("safety", "progress")
ROLES = ATTENTION_ROLES + CAUSAL_ROLES
# Random networks in the attention null. One role alone would need 39 (a random network's best head beats the
# maximum of 39 others with probability <= 1/40 per half). With len(CATEGORIES) = 10 roles tested at once, 799
# bounds the chance that ANY attention role resolves on a random network by 10/800 = 1.25 % per half (union
# bound); tests/test_roles.py measures the rate on 400 fresh random networks (4/400 observed, see README).
N_NULL = 799
N_SCENES = 240  # role-calibration scenes (two halves of 120)
MIN_SCENES_PER_HALF = 10  # a category present in fewer scenes of a half cannot give a role
CAUSAL_ALPHA = 0.05
CAUSAL_MIN_EFFECT = 0.05
CAUSAL_MAX_PAIRS = 200
CAUSAL_BATCH_PAIRS = 50
CACHE_VERSION = 1  # bump when the rules or the calibration family change (cached role maps are then ignored)


# ------------------------------------------------------------------------------------------ attention profiles
def random_networks(model: torch.nn.Module, init_seeds: Iterable[int]) -> list[torch.nn.Module]:
    """Untrained networks of ``model``'s architecture, each built right after ``torch.manual_seed(seed)`` (exactly
    ``interp.simulation.agent.untrained_agent``'s initialisation)."""
    nets = []
    for seed in init_seeds:
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            net = type(model)(model.config)
        nets.append(net.eval())
    return nets


def attention_mass(model: torch.nn.Module, obs: np.ndarray | torch.Tensor,
                   masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """[B, H, C] attention mass each head puts on each category (in ``masks``' order) in each scene."""
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    with torch.no_grad():
        pattern = model.attention(x)[:, :, 0, :].double().numpy()  # [B, H, N]
    m = np.stack([np.asarray(masks[c], dtype=np.float64) for c in masks], axis=-1)  # [B, N, C]
    return np.einsum("bhn,bnc->bhc", pattern, m)


def _profile(mass: np.ndarray, present: np.ndarray) -> np.ndarray:
    """[H, C] mean mass over the scenes where each category is present (NaN where it never is)."""
    counts = present.sum(0)  # [C]
    total = np.einsum("bhc,bc->hc", mass, present.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def _nanmax(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an absent category is all-NaN: kept as NaN
        return np.nanmax(a, axis=axis)


def halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The two disjoint calibration halves: even and odd scene indices."""
    idx = np.arange(n)
    return idx[0::2], idx[1::2]


def split_profiles(model: torch.nn.Module, obs: np.ndarray, masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """[2, H, C] profile of each head on each calibration half."""
    mass = attention_mass(model, obs, masks)
    present = np.stack([np.asarray(masks[c]).any(-1) for c in masks], axis=-1)  # [B, C]
    return np.stack([_profile(mass[h], present[h]) for h in halves(len(obs))])


def null_profiles(model: torch.nn.Module, obs: np.ndarray, masks: Mapping[str, np.ndarray],
                  init_seeds: Iterable[int]) -> np.ndarray:
    """[K, 2, C] the best head's profile (max over heads) of each of K random networks, per half and category.
    One forward pass per network over all scenes (a few milliseconds each)."""
    out = [_nanmax(split_profiles(net, obs, masks), axis=1) for net in random_networks(model, init_seeds)]
    return np.stack(out)


@dataclasses.dataclass(frozen=True)
class AttentionRoles:
    """Per head and category: the profile on each half, the null maximum and 95th percentile, and the roles."""

    categories: tuple[str, ...]
    profile: np.ndarray  # [2, H, C] agent
    null_max: np.ndarray  # [2, C] maximum over random networks of the max over heads
    null_q95: np.ndarray  # [2, C] 95th percentile of the same
    null_median: np.ndarray  # [2, C]
    n_scenes: np.ndarray  # [2, C] scenes of each half where the category is present
    n_null: int
    null_seeds: tuple[int, int]
    roles: dict[str, list[int]]  # category -> heads beating the null maximum on both halves, largest margin first
    margins: np.ndarray  # [H, C] min over halves of (profile - null max)
    reasons: dict[str, str]  # category -> why it resolved / did not

    @property
    def n_heads(self) -> int:
        return self.profile.shape[1]


def resolve_attention(profile: np.ndarray, null: np.ndarray, n_scenes: np.ndarray,
                      categories: Sequence[str]) -> tuple[dict[str, list[int]], np.ndarray, dict[str, str]]:
    """The rule: head h holds category c's role iff profile[half, h, c] > max over null of null[:, half, c] on both
    halves, and the category is present in at least MIN_SCENES_PER_HALF scenes of each half.

    ``profile`` [2, H, C], ``null`` [K, 2, C], ``n_scenes`` [2, C]. Returns (roles, margins [H, C], reasons)."""
    null_max = _nanmax(null, axis=0)  # [2, C]
    margins = np.min(profile - null_max[:, None, :], axis=0)  # [H, C]
    roles: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    for c, name in enumerate(categories):
        if np.min(n_scenes[:, c]) < MIN_SCENES_PER_HALF:
            roles[name] = []
            reasons[name] = (f"too few calibration scenes with a {name} vehicle ({int(n_scenes[0, c])} and "
                             f"{int(n_scenes[1, c])} per half; need {MIN_SCENES_PER_HALF})")
            continue
        beats = np.all(profile[:, :, c] > null_max[:, None, c], axis=0) & np.isfinite(margins[:, c])
        heads = sorted(np.flatnonzero(beats).tolist(), key=lambda h: -margins[h, c])
        roles[name] = heads
        best = int(np.argmax(np.nan_to_num(np.min(profile[:, :, c], axis=0), nan=-np.inf)))
        halves_text = (f"{profile[0, best, c]:.3f} / {profile[1, best, c]:.3f} on the two halves vs null maximum "
                       f"{null_max[0, c]:.3f} / {null_max[1, c]:.3f} ({null.shape[0]} random networks, max over heads)")
        if heads:
            h = heads[0]
            reasons[name] = (f"head {h}: attention mass {profile[0, h, c]:.3f} / {profile[1, h, c]:.3f} on the two "
                             f"halves beats the null maximum {null_max[0, c]:.3f} / {null_max[1, c]:.3f} "
                             f"({null.shape[0]} random networks, max over heads)")
        else:
            reasons[name] = f"no head beats the null maximum on both halves: best head {best} {halves_text}"
    return roles, margins, reasons


def attention_roles(model: torch.nn.Module, obs: np.ndarray, masks: Mapping[str, np.ndarray], *,
                    n_null: int = N_NULL, null_seeds: Iterable[int] | None = None) -> AttentionRoles:
    """Attention roles of ``model`` on calibration scenes ``obs`` [B, N, F] with category masks (category ->
    [B, N] bool, keys a subset of CATEGORIES in any order)."""
    categories = tuple(c for c in CATEGORIES if c in masks) + tuple(c for c in masks if c not in CATEGORIES)
    masks = {c: np.asarray(masks[c], dtype=bool) for c in categories}
    if n_null < 39:
        raise ValueError(f"the attention null needs at least 39 random networks (1/40 = 2.5 % per half), got {n_null}")
    masks = {c: m for c, m in masks.items()}
    seeds = list(null_seeds) if null_seeds is not None else list(seedmap.init_seeds("role_null", n_null))
    profile = split_profiles(model, obs, masks)
    null = null_profiles(model, obs, masks, seeds)
    present = np.stack([masks[c].any(-1) for c in categories], axis=-1)  # [B, C]
    n_scenes = np.stack([present[h].sum(0) for h in halves(len(obs))])
    roles, margins, reasons = resolve_attention(profile, null, n_scenes, categories)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an absent category is all-NaN: kept as NaN
        q95, median = np.nanquantile(null, 0.95, axis=0), np.nanmedian(null, axis=0)
    return AttentionRoles(categories=categories, profile=profile, null_max=_nanmax(null, axis=0),
                          null_q95=q95, null_median=median,
                          n_scenes=n_scenes, n_null=len(seeds), null_seeds=(min(seeds), max(seeds) + 1),
                          roles=roles, margins=margins, reasons=reasons)


def split_half_stability(att: AttentionRoles) -> dict[str, Any]:
    """How far the two halves agree: the best head per category, and the correlation of the H x C profiles."""
    valid = [c for c in range(len(att.categories)) if np.min(att.n_scenes[:, c]) >= MIN_SCENES_PER_HALF]
    agree = [int(np.argmax(att.profile[0, :, c]) == np.argmax(att.profile[1, :, c])) for c in valid]
    a, b = att.profile[0][:, valid].ravel(), att.profile[1][:, valid].ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and np.std(a) > 0 and np.std(b) > 0 else None
    return {"best_head_agrees": int(sum(agree)), "categories": len(valid), "profile_correlation": corr}


# ------------------------------------------------------------------------------------------ causal roles
@dataclasses.dataclass(frozen=True)
class CausalRoles:
    """Per head: the paired ablation effect on collisions and on arrivals (sequential verdicts), and the roles."""

    effects: dict[str, list[dict]]  # "collisions" / "arrivals" -> per head Verdict.to_dict()
    roles: dict[str, list[int]]
    reasons: dict[str, str]
    seeds: tuple[int, int]
    max_pairs: int
    measured: bool = True


def causal_roles(engine, agent, *, max_pairs: int = CAUSAL_MAX_PAIRS, batch_pairs: int = CAUSAL_BATCH_PAIRS,
                 alpha: float = CAUSAL_ALPHA, min_effect: float = CAUSAL_MIN_EFFECT,
                 progress: bool = False) -> CausalRoles:
    """Zero-ablate each head on paired calibration seeds: ``safety`` heads raise collisions, ``progress`` heads
    lower arrivals (sequential paired tests, Holm across heads; cached episodes make reruns free)."""
    from interp.probes.interventions import head_ablation
    from interp.simulation.rollout import run_sequential
    from interp.stats import SequentialDesign

    n_heads = agent.n_heads
    conditions = {"baseline": None, **{f"ablate head {h}": head_ablation([h], n_heads=n_heads) for h in range(n_heads)}}
    seeds = seedmap.episode_seeds("calibration", max_pairs)
    effects: dict[str, list[dict]] = {}
    roles: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    for role, metric, outcome, direction in (("safety", "collisions", "crashed", "increase"),
                                             ("progress", "arrivals", "arrived", "decrease")):
        design = SequentialDesign(alpha=alpha, direction=direction, max_pairs=max_pairs, min_effect=min_effect)
        result = run_sequential(engine, agent, conditions, seeds=seeds, design=design, batch_pairs=batch_pairs,
                                outcome=outcome, progress=progress,
                                claims={f"ablate head {h}": f"ablating head {h} {'raises' if direction == 'increase' else 'lowers'} "
                                                            f"the {metric[:-1]} rate" for h in range(n_heads)})
        per_head = [result.verdicts[f"ablate head {h}"].to_dict() for h in range(n_heads)]
        effects[metric] = per_head
        sign = 1.0 if direction == "increase" else -1.0
        heads = [h for h, v in enumerate(per_head) if v["verdict"] == "supported"]
        heads.sort(key=lambda h: -sign * (per_head[h]["effect"] or 0.0))
        roles[role] = heads
        if heads:
            v = per_head[heads[0]]
            reasons[role] = (f"head {heads[0]}: ablating it changes the {metric[:-1]} rate by {v['effect']:+.3f} "
                             f"(CI {v['ci'][0]:+.3f}..{v['ci'][1]:+.3f}, n={v['n']}, p={v['p_value']:.2g})")
        else:
            verdicts = ", ".join(f"head {h} {v['verdict']} ({v['effect']:+.3f}, n={v['n']})" for h, v in enumerate(per_head))
            reasons[role] = f"no head's ablation {'raises collisions' if role == 'safety' else 'lowers arrivals'}: {verdicts}"
    return CausalRoles(effects=effects, roles=roles, reasons=reasons, seeds=(seeds.start, seeds.stop),
                       max_pairs=max_pairs)


def unmeasured_causal(why: str) -> CausalRoles:
    """Causal roles declared unresolved without rollouts (e.g. the quick profile), with the reason."""
    return CausalRoles(effects={}, roles={r: [] for r in CAUSAL_ROLES},
                       reasons={r: f"not measured: {why}" for r in CAUSAL_ROLES}, seeds=(0, 0), max_pairs=0,
                       measured=False)


# ------------------------------------------------------------------------------------------ the role map
@dataclasses.dataclass(frozen=True)
class RoleMap:
    """Everything ``python -m interp roles --json`` writes: roles, per-head profiles and effects, the null."""

    identity: str
    n_heads: int
    attention: AttentionRoles
    causal: CausalRoles

    @property
    def roles(self) -> dict[str, list[int]]:
        return {**self.attention.roles, **self.causal.roles}

    @property
    def reasons(self) -> dict[str, str]:
        return {**self.attention.reasons, **self.causal.reasons}

    def to_dict(self) -> dict:
        att = self.attention
        heads = []
        for h in range(self.n_heads):
            profile = {c: {"halves": [_f(att.profile[0, h, i]), _f(att.profile[1, h, i])],
                           "margin": _f(att.margins[h, i])} for i, c in enumerate(att.categories)}
            effects = {metric: {k: v[h].get(k) for k in ("effect", "ci", "n", "p_value", "verdict")}
                       for metric, v in self.causal.effects.items()}
            heads.append({"head": h, "profile": profile, "effects": effects,
                          "roles": [r for r, hs in self.roles.items() if h in hs]})
        null = {c: {"max": [_f(att.null_max[0, i]), _f(att.null_max[1, i])],
                    "q95": [_f(att.null_q95[0, i]), _f(att.null_q95[1, i])],
                    "median": [_f(att.null_median[0, i]), _f(att.null_median[1, i])],
                    "scenes": [int(att.n_scenes[0, i]), int(att.n_scenes[1, i])]}
                for i, c in enumerate(att.categories)}
        return {"identity": self.identity, "n_heads": self.n_heads, "roles": self.roles, "reasons": self.reasons,
                "heads": heads,
                "null": {"networks": att.n_null, "init_seeds": list(att.null_seeds), "statistic":
                         "mean attention mass per category; max over heads, per calibration half", "categories": null},
                "causal": {"measured": self.causal.measured, "seeds": list(self.causal.seeds),
                           "max_pairs": self.causal.max_pairs},
                "stability": split_half_stability(att)}


def _f(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def find_roles(agent, obs: np.ndarray, masks: Mapping[str, np.ndarray], *, engine=None, causal: bool = True,
               skip_causal_reason: str = "", max_pairs: int = CAUSAL_MAX_PAIRS, n_null: int = N_NULL,
               progress: bool = False) -> RoleMap:
    """Attention roles on the calibration scenes, and (with an engine and ``causal``) causal roles by ablation."""
    att = attention_roles(agent.model, obs, masks, n_null=n_null)
    if causal and engine is not None:
        cz = causal_roles(engine, agent, max_pairs=max_pairs, progress=progress)
    else:
        cz = unmeasured_causal(skip_causal_reason or "causal roles were not requested (no rollouts)")
    return RoleMap(identity=agent.identity, n_heads=agent.n_heads, attention=att, causal=cz)


def format_roles(data: dict) -> str:
    """The text ``python -m interp roles`` prints, from ``RoleMap.to_dict()`` (also works on a cached dict)."""
    lines = [f"agent {data['identity']}: {data['n_heads']} heads"]
    for role, heads in data["roles"].items():
        held = ", ".join(f"head {h}" for h in heads) if heads else "UNRESOLVED"
        lines.append(f"  {role:<15} {held:<18} {data['reasons'].get(role, '')}")
    for entry in data.get("heads", []):
        effects = "; ".join(
            f"{metric} {v['effect']:+.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}] n={v['n']} {v['verdict']}"
            for metric, v in (entry.get("effects") or {}).items() if v.get("effect") is not None)
        lines.append(f"  head {entry['head']}: roles {', '.join(entry.get('roles') or []) or '-'}"
                     + (f"; ablated: {effects}" if effects else ""))
    st = data.get("stability") or {}
    corr = st.get("profile_correlation")
    lines.append(f"split-half stability: best head agrees on {st.get('best_head_agrees')}/{st.get('categories')} "
                 f"categories; profile correlation {corr:.3f}" if corr is not None else
                 "split-half stability: n/a")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ cache per identity
def _cache_dir() -> Path:
    from interp.simulation.cache import default_cache_dir

    return default_cache_dir() / "roles"


def _key(agent, part: str, **settings) -> str:
    payload = json.dumps({"v": CACHE_VERSION, "identity": agent.identity, "env": agent.env_config, "part": part,
                          **settings}, sort_keys=True, default=str)
    return f"{agent.identity}-{part}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def _load(key: str) -> dict | None:
    path = _cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _save(key: str, data: dict) -> None:
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, folder / f"{key}.json")
    except OSError:  # a read-only cache costs a recomputation next time, nothing else
        pass


def role_map(agent, calibration: Callable[[], tuple[np.ndarray, dict]], *, engine=None, causal: bool = False,
             skip_causal_reason: str = "", use_cache: bool = True, max_pairs: int = CAUSAL_MAX_PAIRS,
             progress: bool = False) -> dict:
    """The agent's role map (``RoleMap.to_dict()``), cached as JSON per checkpoint identity (and env config and
    settings) under the rollout cache folder, ``roles/``: attention roles always, causal roles only with
    ``causal`` and an engine (rollouts; their episodes are cached too). ``calibration()`` returns (observations
    [B, N, F], category masks) of the role-calibration scenes (``fixtures.role_scenes.calibration``); it is
    called only on a cache miss."""
    att_key = _key(agent, "attention", n_null=N_NULL, n_scenes=N_SCENES)
    data = _load(att_key) if use_cache else None
    if data is None:
        obs, masks = calibration()
        data = find_roles(agent, obs, masks, causal=False).to_dict()
        _save(att_key, data)
    if causal and engine is not None:
        cz_key = _key(agent, "causal", max_pairs=max_pairs, alpha=CAUSAL_ALPHA, min_effect=CAUSAL_MIN_EFFECT)
        cz = _load(cz_key) if use_cache else None
        if cz is None:  # episodes come from the rollout cache when they were simulated before
            result = causal_roles(engine, agent, max_pairs=max_pairs, progress=progress)
            cz = {"effects": result.effects, "roles": result.roles, "reasons": result.reasons,
                  "seeds": list(result.seeds), "max_pairs": result.max_pairs}
            _save(cz_key, cz)
        return merge_causal(data, cz)
    reason = skip_causal_reason or "causal roles need rollouts and were not requested in this run"
    return merge_causal(data, {"effects": {}, "roles": {r: [] for r in CAUSAL_ROLES},
                               "reasons": {r: f"not measured: {reason}" for r in CAUSAL_ROLES},
                               "seeds": [0, 0], "max_pairs": 0, "measured": False})


def cached_role_map(agent) -> dict | None:
    """The cached attention role map of ``agent`` (with its causal roles if those were cached), or None."""
    data = _load(_key(agent, "attention", n_null=N_NULL, n_scenes=N_SCENES))
    if data is None:
        return None
    cz = _load(_key(agent, "causal", max_pairs=CAUSAL_MAX_PAIRS, alpha=CAUSAL_ALPHA,
                    min_effect=CAUSAL_MIN_EFFECT))
    return merge_causal(data, cz) if cz else data


def merge_causal(data: dict, cz: dict) -> dict:
    """A role map with its causal part replaced by ``cz`` (effects per metric and head, roles, reasons)."""
    data = json.loads(json.dumps(data))
    data["roles"] = {**{r: h for r, h in data["roles"].items() if r not in CAUSAL_ROLES}, **cz["roles"]}
    data["reasons"] = {**{r: t for r, t in data["reasons"].items() if r not in CAUSAL_ROLES}, **cz["reasons"]}
    for entry in data["heads"]:
        h = entry["head"]
        entry["effects"] = {metric: {k: per_head[h].get(k) for k in ("effect", "ci", "n", "p_value", "verdict")}
                            for metric, per_head in cz["effects"].items()}
        entry["roles"] = [r for r, hs in data["roles"].items() if h in hs]
    data["causal"] = {"measured": cz.get("measured", True), "seeds": cz["seeds"], "max_pairs": cz["max_pairs"]}
    return data
