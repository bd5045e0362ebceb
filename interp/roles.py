"""Head roles, found per head against random networks: by attention selectivity and by effect (ablation).

Head indices are arbitrary per training run, so specs name roles, never indices. This module decides which
heads hold which role; it is pure computation (no pytest, no plotting). ``python -m interp roles`` and the
spec plugin (``specs/support/roles.py``) both call :func:`find_roles`.

**Attention roles** (``ego``, the vehicle categories of ``fixtures.role_scenes`` and ``proximity``) mean
*selectivity beyond sharpness*: a head's preference for a category, in its own pre-softmax score units, given
the other categories and the distance (a within-scene regression with scene fixed effects), compared with random
networks of the same architecture tempered to the head's own entropy over the vehicles, with a max statistic
over heads x categories, replicated on two disjoint calibration halves. The rule and why it was chosen are in
``interp.role_selectivity``.

**Causal roles** (``safety``, ``progress``). Each head's output is zero-ablated (``attention_layer.hook_z``)
on paired episodes with the calibration seeds of ``interp.seeds`` (disjoint from every other range), and the
paired change is decided by the always-valid sequential test of ``interp.stats``, each outcome at alpha / 2 with
Holm across heads (family-wise error at most alpha across heads x the two outcomes): ``safety`` = ablating the head raises collisions, ``progress`` = ablating it lowers arrivals. Under a
small budget (the ``quick`` profile) an effect the budget cannot decide is *unmeasured*, not refuted.

A role held by several heads lists them strongest first; specs use the first.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from interp import role_selectivity as RS
from interp import seeds as seedmap
from interp.vocabulary import UNMEASURED

CATEGORIES = RS.CATEGORIES
MASK_CATEGORIES = ("ego", *RS.VEHICLE_CATEGORIES)  # the row masks the calibration scenes provide
ATTENTION_ROLES = CATEGORIES
CAUSAL_ROLES = ("safety", "progress")
ROLES = ATTENTION_ROLES + CAUSAL_ROLES
N_SCENES = 240  # role-calibration scenes (two halves of 120)
CAUSAL_ALPHA = 0.05
CAUSAL_MIN_EFFECT = 0.05
CAUSAL_MAX_PAIRS = 200
CAUSAL_BATCH_PAIRS = 50
# The quick profile's causal budget: decides a change of 20 points at >= 80 % power with Holm over up to 8 heads x
# 2 outcomes (alpha 0.05 / 16 at the first step), sized by interp.statistics.design.sequential_sample_size for a
# 41 % -> 61 % change with independent pairs (the least favourable pairing): 280 pairs, power 0.84, mean 180
# pairs used (4 heads: 240 pairs). Large effects stop far earlier (the sequential test), so quick stays cheap.
QUICK_CAUSAL = {"max_pairs": 280, "min_effect": 0.20, "batch_pairs": 20}
NULL_VERSION = 6  # bump when the null's stored statistics change (cached nulls are then rebuilt)
CACHE_VERSION = 9  # bump when the attention rule or the calibration family change (cached attention maps are ignored)
CAUSAL_CACHE_VERSION = 7  # bump when the causal rule changes (cached causal role maps are then ignored)


# ------------------------------------------------------------------------------------------ attention roles
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


def head_scores(model: torch.nn.Module, obs: np.ndarray | torch.Tensor) -> np.ndarray:
    """[B, H, N] each head's pre-softmax ego-attention scores (``attention_layer.hook_scores``; masked rows -1e9)."""
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    with torch.no_grad():
        _, cache = model.run_with_cache(x, "attention_layer.hook_scores")
    return cache["attention_layer.hook_scores"][:, :, 0, :].double().numpy()


def calibration_design(obs: np.ndarray, masks: Mapping[str, np.ndarray], distance: np.ndarray,
                       presence_idx: int = 0) -> RS.Design:
    """The selectivity design of the calibration scenes: vehicle rows are present rows with a known distance."""
    obs = np.asarray(obs)
    vehicles = (obs[:, :, presence_idx] >= 0.5) & np.isfinite(np.asarray(distance, dtype=float))
    return RS.build_design(masks, np.nan_to_num(np.asarray(distance, dtype=float)), vehicles)


_NULLS: dict[str, RS.Null] = {}  # in-process: one null per architecture, scenes and seeds


def null_for(model: torch.nn.Module, obs: np.ndarray, design: RS.Design, init_seeds: Sequence[int],
             chunk: int = 64) -> RS.Null:
    """The tempered null's raw material for ``model``'s architecture: per random network, its heads' statistics
    (and, for the first ``RS.TEMPERATURE_NETWORKS``, their vehicle scores); one forward pass each, in chunks so
    the scores never all sit in memory. Cached on disk per architecture, scenes and seeds."""
    key = hashlib.sha256(json.dumps(model.config, sort_keys=True, default=str).encode() + np.asarray(obs).tobytes()
                         + np.concatenate([o.ravel() for o in design.operators]).tobytes()
                         + json.dumps([int(s) for s in init_seeds]).encode()).hexdigest()
    if key in _NULLS:
        return _NULLS[key]
    cached = _load_null(key)
    if cached is None:
        with _building(key):  # another process building the same null: wait for it, then load its file
            cached = _load_null(key)
            if cached is None:
                cached = _build_null(model, obs, design, init_seeds, chunk)
                _save_null(key, cached)
    _NULLS.clear()  # one architecture at a time
    _NULLS[key] = cached
    return cached


def _build_null(model: torch.nn.Module, obs: np.ndarray, design: RS.Design, init_seeds: Sequence[int],
                chunk: int) -> RS.Null:
    """One forward pass per random network, in chunks so the scores never all sit in memory."""
    stats, raws, vscores, curves = [], [], [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny forward passes: threads only contend
    try:
        with RS.one_blas_thread():  # numpy's BLAS too (see there)
            for i in range(0, len(init_seeds), chunk):
                nets = random_networks(model, init_seeds[i:i + chunk])
                scores = np.stack([head_scores(net, obs) for net in nets])
                part = RS.make_null(design, np.moveaxis(scores, 2, 1), (0, 0),
                                    temperature_networks=RS.TEMPERATURE_NETWORKS - i)
                stats.append(part.stats)
                raws.append(part.raw)
                vscores.append(part.vehicle_scores)
                curves.append(part.curves)
    finally:
        torch.set_num_threads(threads)
    return RS.Null(stats=np.concatenate(stats, axis=1), raw=np.concatenate(raws, axis=1),
                   vehicle_scores=np.concatenate(vscores), curves=np.concatenate(curves),
                   seeds=(int(min(init_seeds)), int(max(init_seeds)) + 1))


@contextlib.contextmanager
def _building(key: str):
    """A lock file next to the null's file, so that pytest-xdist workers (or two runs) that need the same null
    build it once: building takes tens of seconds of a core (thousands of forward passes). A cache folder that cannot be written gets no lock (each
    process then builds its own, as before)."""
    path = _null_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path.with_name(f".{path.stem}.lock"))
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _null_path(key: str) -> Path:
    return _cache_dir() / f"null-v{NULL_VERSION}-{key[:24]}.npz"


def _load_null(key: str) -> RS.Null | None:
    try:
        with np.load(_null_path(key)) as f:
            return RS.Null(stats=f["stats"], raw=f["raw"], vehicle_scores=f["vehicle_scores"], curves=f["curves"],
                           seeds=tuple(int(s) for s in f["seeds"]))
    except (OSError, ValueError, KeyError):
        return None


def _save_null(key: str, null: RS.Null) -> None:
    """The null's statistics and vehicle scores on disk (tens of MB at most), written atomically."""
    path = _null_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, stats=null.stats, raw=null.raw, vehicle_scores=null.vehicle_scores, curves=null.curves,
                 seeds=np.array(null.seeds))
        os.replace(tmp, path)
    except OSError:  # a read-only cache costs a recomputation next time, nothing else
        pass


def attention_roles(model: torch.nn.Module, obs: np.ndarray, masks: Mapping[str, np.ndarray], distance: np.ndarray,
                    *, n_null: int | None = None, null_seeds: Sequence[int] | None = None) -> RS.Selectivity:
    """Attention roles of ``model`` on calibration scenes ``obs`` [B, N, F] with category masks (category ->
    [B, N] bool) and distances [B, N], against ``n_null`` (default: heads x categories / alpha) tempered random
    networks of its architecture."""
    n_heads = model.attention_layer.heads
    n = n_null if n_null is not None else RS.n_null(n_heads)
    if n < 1 / RS.ALPHA:
        raise ValueError(f"the tempered null needs at least {int(1 / RS.ALPHA)} random networks to reach "
                         f"p <= {RS.ALPHA}, got {n}")
    seeds = list(null_seeds) if null_seeds is not None else list(seedmap.init_seeds("role_null", n))
    design = calibration_design(obs, masks, distance, getattr(model, "presence_idx", 0))
    null = null_for(model, obs, design, seeds)
    return RS.test_selectivity(design, null, head_scores(model, obs), trained=trained_null_for(n_heads, obs, design))


def trained_null_for(n_heads: int, obs: np.ndarray, design: RS.Design):
    """The architecture's trained null (``interp.role_trained_null``) where it is complete and was computed on these
    calibration scenes; None otherwise (the role map then says the rule ran against the initialised null only)."""
    from interp import role_trained_null as TN

    null = TN.load(n_heads)
    if null is None or not null.complete(RS.N_TESTS, RS.ALPHA):
        return None
    if null.digest != TN.design_digest(obs, design.vehicles, design.categories):
        raise ValueError(f"{null.path} was computed on other calibration scenes than these; regrow it with "
                         "benchmarks/role_trained_null.py (or restore the scenes it was computed on)")
    return null


def trained_null_status(n_heads: int, null=None) -> dict:
    """What the role map reports about the architecture's trained null: networks stored, needed, applied (``null``:
    the already loaded ``TN.load(n_heads)``, to read the file once)."""
    from interp import role_trained_null as TN

    null = TN.load(n_heads) if null is None else null
    need = TN.networks_needed(RS.N_TESTS, RS.ALPHA)
    have = 0 if null is None else null.n_networks
    return {"networks": have, "needed": need, "applied": have >= need, "recipe": TN.RECIPE,
            "init_seeds_from": seedmap.INITS["role_null_trained"][0],
            "env_seeds": list(seedmap.EPISODES["role_null_training"])}


def split_half_stability(att: RS.Selectivity) -> dict[str, Any]:
    """How far the two halves agree: the most selective head per category, and the correlation of the H x C
    quantiles among the tempered nulls (unit-free, unlike the statistics)."""
    valid = [c for c in range(len(att.categories)) if att.testable[:, c].all()]
    agree = [int(np.argmax(att.quantile[0, :, c]) == np.argmax(att.quantile[1, :, c])) for c in valid]
    a, b = att.quantile[0][:, valid].ravel(), att.quantile[1][:, valid].ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and np.std(a) > 0 and np.std(b) > 0 else None
    return {"best_head_agrees": int(sum(agree)), "categories": len(valid), "quantile_correlation": corr}


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
                 alpha: float = CAUSAL_ALPHA, min_effect: float = CAUSAL_MIN_EFFECT, decides_only: bool = False,
                 progress: bool = False) -> CausalRoles:
    """Zero-ablate each head on paired calibration seeds: ``safety`` heads raise collisions, ``progress`` heads
    lower arrivals (cached episodes make reruns free).

    Each outcome runs a sequential paired family at ``alpha / 2`` (Holm across heads at every look), so the
    family-wise error across heads x the two outcomes is at most ``alpha`` (see :func:`decide_causal`). With ``decides_only`` (a small budget sized for effects of ``min_effect``), a
    head that is not supported gets the verdict ``unmeasured``: the budget cannot tell a smaller effect from none."""
    from interp.probes.interventions import head_ablation
    from interp.simulation.rollout import run_sequential
    from interp.stats import SequentialDesign

    n_heads = agent.n_heads
    conditions = {"baseline": None, **{f"ablate head {h}": head_ablation([h], n_heads=n_heads) for h in range(n_heads)}}
    seeds = seedmap.episode_seeds("calibration", max_pairs)
    effects: dict[str, list[dict]] = {}
    outcomes = (("safety", "collisions", "crashed", "increase"), ("progress", "arrivals", "arrived", "decrease"))
    for role, metric, outcome, direction in outcomes:
        design = SequentialDesign(alpha=alpha / len(outcomes), direction=direction, max_pairs=max_pairs,
                                  min_effect=min_effect)
        result = run_sequential(engine, agent, conditions, seeds=seeds, design=design, batch_pairs=batch_pairs,
                                outcome=outcome, progress=progress,
                                claims={f"ablate head {h}": f"ablating head {h} {'raises' if direction == 'increase' else 'lowers'} "
                                                            f"the {metric[:-1]} rate" for h in range(n_heads)})
        effects[metric] = [result.verdicts[f"ablate head {h}"].to_dict() for h in range(n_heads)]
    return decide_causal(effects, alpha=alpha, min_effect=min_effect, decides_only=decides_only,
                         seeds=(seeds.start, seeds.stop), max_pairs=max_pairs)


def decide_causal(effects: dict[str, list[dict]], *, alpha: float = CAUSAL_ALPHA,
                  min_effect: float = CAUSAL_MIN_EFFECT, decides_only: bool = False,
                  seeds: tuple[int, int] = (0, 0), max_pairs: int = 0) -> CausalRoles:
    """Causal roles from per-outcome, per-head sequential verdicts (``Verdict.to_dict()``, each outcome's family
    run at ``alpha / 2`` with Holm across heads): a head holds a role when its family supports it, which bounds the
    family-wise error across heads x outcomes by ``alpha`` (Holm within an outcome, Bonferroni across the two; the
    families report only Holm-adjusted p-values, so a joint Holm step cannot be recomputed from them).
    ``p_holm`` is that adjusted p-value x 2. ``unmeasured`` for heads a ``decides_only`` budget did not support."""
    outcomes = (("safety", "collisions", 1.0), ("progress", "arrivals", -1.0))
    effects = json.loads(json.dumps(effects))
    for _, metric, _ in outcomes:
        for v in effects[metric]:
            p = v.get("p_value")
            v["p_holm"] = None if p is None else min(1.0, len(outcomes) * float(p))
            if decides_only and v["verdict"] != "supported":
                v["verdict"] = UNMEASURED
    roles: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    for role, metric, sign in outcomes:
        per_head = effects[metric]
        heads = [h for h, v in enumerate(per_head) if v["verdict"] == "supported"]
        heads.sort(key=lambda h: -sign * (per_head[h]["effect"] or 0.0))
        roles[role] = heads
        verdicts = ", ".join(f"head {h} {v['verdict']} ({(v['effect'] or 0.0):+.3f}, n={v['n']})"
                             for h, v in enumerate(per_head))
        if heads:
            v = per_head[heads[0]]
            reasons[role] = (f"head {heads[0]}: ablating it changes the {metric[:-1]} rate by {v['effect']:+.3f} "
                             f"(CI {v['ci'][0]:+.3f}..{v['ci'][1]:+.3f}, n={v['n']}, Holm p={v['p_holm']:.2g} "
                             f"across heads x outcomes)")
        elif decides_only:
            reasons[role] = (f"unmeasured: this budget ({max_pairs} pairs) decides only changes of at least "
                             f"{min_effect:.0%}; no head's ablation reached one: {verdicts}")
        else:
            reasons[role] = (f"no head's ablation {'raises collisions' if role == 'safety' else 'lowers arrivals'}: "
                             f"{verdicts}")
    return CausalRoles(effects=effects, roles=roles, reasons=reasons, seeds=seeds, max_pairs=max_pairs)


def unmeasured_causal(why: str) -> CausalRoles:
    """Causal roles declared unresolved without rollouts (e.g. the quick profile), with the reason."""
    return CausalRoles(effects={}, roles={r: [] for r in CAUSAL_ROLES},
                       reasons={r: f"not measured: {why}" for r in CAUSAL_ROLES}, seeds=(0, 0), max_pairs=0,
                       measured=False)


# ------------------------------------------------------------------------------------------ the role map
@dataclasses.dataclass(frozen=True)
class RoleMap:
    """Everything ``python -m interp roles --json`` writes: roles, per-head selectivity and effects, the null."""

    identity: str
    n_heads: int
    attention: RS.Selectivity
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
            selectivity = {c: {"statistic": [_f(att.statistic[0, h, i]), _f(att.statistic[1, h, i])],
                               "p_value": _f(np.nanmax(att.p_adjusted[:, h, i]))
                               if np.isfinite(att.p_adjusted[:, h, i]).all() else None,
                               "p_adjusted": [_f(att.p_adjusted[0, h, i]), _f(att.p_adjusted[1, h, i])],
                               "p_raw": [_f(att.p_raw[0, h, i]), _f(att.p_raw[1, h, i])],
                               "p_trained": ([_f(att.p_trained[0, h, i]), _f(att.p_trained[1, h, i])]
                                             if att.p_trained is not None else None),
                               "quantile": [_f(att.quantile[0, h, i]), _f(att.quantile[1, h, i])],
                               "null_median": [_f(att.null_median[0, h, i]), _f(att.null_median[1, h, i])],
                               "null_q95": [_f(att.null_q95[0, h, i]), _f(att.null_q95[1, h, i])]}
                           for i, c in enumerate(att.categories)}
            effects = {metric: {k: v[h].get(k) for k in ("effect", "ci", "n", "p_value", "p_holm", "verdict")}
                       for metric, v in self.causal.effects.items()}
            heads.append({"head": h, "entropy": _f(att.entropy[h]),
                          "null_temperature_median": _f(float(np.exp(np.median(att.null_log_temperature[:, h])))),
                          "selectivity": selectivity, "effects": effects,
                          "roles": [r for r, hs in self.roles.items() if h in hs]})
        null = {c: {"testable": [bool(att.testable[0, i]), bool(att.testable[1, i])],
                    "scenes": [int(att.n_scenes[0, i]), int(att.n_scenes[1, i])]}
                for i, c in enumerate(att.categories)}
        return {"identity": self.identity, "n_heads": self.n_heads, "roles": self.roles, "reasons": self.reasons,
                "heads": heads,
                "null": {"networks": att.n_null, "init_seeds": list(att.null_seeds), "alpha": RS.ALPHA,
                         "statistic": "within-scene fit of the head's pre-softmax scores on category indicators and "
                                      "distance (scene fixed effects); ego: ego minus mean vehicle score",
                         "test": "Monte-Carlo max statistic (min-p over heads x categories) against random networks "
                                 "of the same architecture tempered to each head's vehicle entropy; both halves; "
                                 "where the trained null is applied, also Bonferroni over heads x tests against "
                                 "the pooled heads of networks trained without task information (the larger p)",
                         "trained": {**trained_null_status(self.n_heads), "applied": att.p_trained is not None},
                         "categories": null},
                "causal": {"measured": self.causal.measured, "seeds": list(self.causal.seeds),
                           "max_pairs": self.causal.max_pairs},
                "stability": split_half_stability(att)}


def _f(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def find_roles(agent, obs: np.ndarray, masks: Mapping[str, np.ndarray], distance: np.ndarray, *, engine=None,
               causal: bool = True, skip_causal_reason: str = "", max_pairs: int = CAUSAL_MAX_PAIRS,
               n_null: int | None = None, progress: bool = False) -> RoleMap:
    """Attention roles on the calibration scenes, and (with an engine and ``causal``) causal roles by ablation."""
    att = attention_roles(agent.model, obs, masks, distance, n_null=n_null)
    if causal and engine is not None:
        cz = causal_roles(engine, agent, max_pairs=max_pairs, progress=progress)
    else:
        cz = unmeasured_causal(skip_causal_reason or "causal roles were not requested (no rollouts)")
    return RoleMap(identity=agent.identity, n_heads=agent.n_heads, attention=att, causal=cz)


# Printed under a role map that holds an attention role: what the rule guarantees, and the measured limit of it.
ATTENTION_ROLE_MEANING = ("note: an attention role is a preference beyond random networks of this architecture, not "
                          "necessarily one the task taught (networks trained on shuffled rewards get one too; "
                          "docs/guide/roles.md, 'What the rule has been tested against')")
# ... and where the architecture's trained null was applied (interp.role_trained_null).
ATTENTION_ROLE_MEANING_TRAINED = ("note: an attention role is a preference beyond random networks of this "
                                  "architecture and beyond networks of it trained without task information "
                                  "(shuffled rewards, gamma 0; docs/guide/roles.md)")


def role_meaning(data: dict) -> str:
    """The note printed under a role map that holds an attention role, by whether the trained null was applied."""
    trained = (data.get("null") or {}).get("trained") or {}
    if trained.get("applied"):
        return ATTENTION_ROLE_MEANING_TRAINED
    have = f" (this architecture's trained null holds {trained['networks']} of {trained['needed']} networks)" \
        if "networks" in trained else ""
    return ATTENTION_ROLE_MEANING + have


def format_roles(data: dict) -> str:
    """The text ``python -m interp roles`` prints, from ``RoleMap.to_dict()`` (also works on a cached dict)."""
    lines = [f"agent {data['identity']}: {data['n_heads']} heads"]
    for role, heads in data["roles"].items():
        reason = data["reasons"].get(role, "")
        unmeasured = reason.startswith(("unmeasured", "not measured"))  # no verdict, which is not "no role"
        held = ", ".join(f"head {h}" for h in heads) if heads else ("UNMEASURED" if unmeasured else "UNRESOLVED")
        lines.append(f"  {role:<15} {held:<18} {reason}")
    for entry in data.get("heads", []):
        effects = "; ".join(
            f"{metric} {v['effect']:+.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}] n={v['n']} {v['verdict']}"
            for metric, v in (entry.get("effects") or {}).items() if v.get("effect") is not None)
        lines.append(f"  head {entry['head']}: roles {', '.join(entry.get('roles') or []) or '-'}"
                     + (f"; ablated: {effects}" if effects else ""))
    st = data.get("stability") or {}
    corr = st.get("quantile_correlation")
    lines.append(f"split-half stability: most selective head agrees on {st.get('best_head_agrees')}/"
                 f"{st.get('categories')} categories; null-quantile correlation {corr:.3f}" if corr is not None else
                 "split-half stability: n/a")
    if any(data["roles"].get(c) for c in RS.CATEGORIES):
        lines.append(role_meaning(data))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ cache per identity
def _cache_dir() -> Path:
    from interp.simulation.cache import default_cache_dir

    return default_cache_dir() / "roles"


def _key(agent, part: str, **settings) -> str:
    version = CACHE_VERSION if part == "attention" else CAUSAL_CACHE_VERSION
    payload = json.dumps({"v": version, "identity": agent.identity, "env": agent.env_config, "part": part,
                          **settings}, sort_keys=True, default=str)
    return f"{agent.identity}-{part}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def _attention_key(agent) -> str:
    """The cache key of an attention role map: the rule's settings and the trained null it was tested against (a
    trained null that grows to completion, or is regrown, makes earlier maps stale)."""
    from interp import role_trained_null as TN

    trained = TN.load(agent.n_heads)
    status = trained_null_status(agent.n_heads, trained)
    return _key(agent, "attention", n_null=RS.n_null(agent.n_heads), n_scenes=N_SCENES,
                trained_null=[status["applied"], trained.digest if trained is not None and status["applied"] else None,
                              status["networks"] if status["applied"] else 0])


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
             progress: bool = False, quick: bool = False) -> dict:
    """The agent's role map (``RoleMap.to_dict()``), cached as JSON per checkpoint identity (and env config and
    settings) under the rollout cache folder, ``roles/``: attention roles always, causal roles only with
    ``causal`` and an engine (rollouts; their episodes are cached too). ``calibration()`` returns (observations
    [B, N, F], category masks, distances [B, N]) of the role-calibration scenes (``fixtures.role_scenes.calibration``); it is
    called only on a cache miss. ``quick``: causal roles on ``QUICK_CAUSAL``'s budget (large effects decided,
    smaller ones ``unmeasured``)."""
    att_key = _attention_key(agent)
    data = _load(att_key) if use_cache else None
    if data is None:
        obs, masks, distance = calibration()
        data = find_roles(agent, obs, masks, distance, causal=False).to_dict()
        _save(att_key, data)
    if causal and engine is not None:
        settings = ({**QUICK_CAUSAL, "decides_only": True} if quick else
                    {"max_pairs": max_pairs, "min_effect": CAUSAL_MIN_EFFECT, "batch_pairs": CAUSAL_BATCH_PAIRS})
        cz_key = _key(agent, "causal", alpha=CAUSAL_ALPHA, **settings)
        cz = _load(cz_key) if use_cache else None
        if cz is None:  # episodes come from the rollout cache when they were simulated before
            result = causal_roles(engine, agent, progress=progress, **settings)
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
    data = _load(_attention_key(agent))
    if data is None:
        return None
    cz = _load(_key(agent, "causal", alpha=CAUSAL_ALPHA, max_pairs=CAUSAL_MAX_PAIRS, min_effect=CAUSAL_MIN_EFFECT,
                    batch_pairs=CAUSAL_BATCH_PAIRS))
    return merge_causal(data, cz) if cz else data


def merge_causal(data: dict, cz: dict) -> dict:
    """A role map with its causal part replaced by ``cz`` (effects per metric and head, roles, reasons)."""
    data = json.loads(json.dumps(data))
    data["roles"] = {**{r: h for r, h in data["roles"].items() if r not in CAUSAL_ROLES}, **cz["roles"]}
    data["reasons"] = {**{r: t for r, t in data["reasons"].items() if r not in CAUSAL_ROLES}, **cz["reasons"]}
    for entry in data["heads"]:
        h = entry["head"]
        entry["effects"] = {metric: {k: per_head[h].get(k) for k in ("effect", "ci", "n", "p_value", "p_holm", "verdict")}
                            for metric, per_head in cz["effects"].items()}
        entry["roles"] = [r for r, hs in data["roles"].items() if h in hs]
    data["causal"] = {"measured": cz.get("measured", True), "seeds": cz["seeds"], "max_pairs": cz["max_pairs"]}
    return data
