"""Heads by role, not by number: the spec side of ``interp.roles``, cached per checkpoint identity.

``interp.roles`` decides which heads hold which role (attention roles against random networks on two disjoint
calibration halves; causal roles ``safety`` / ``progress`` by paired zero-ablation on calibration seeds). This
module builds the calibration scenes, caches the role map as JSON per checkpoint identity (in the rollout
cache folder, ``roles/``), applies ``--head-role ROLE=H`` pins, and turns each role into a
:class:`RoleResolution` the specs read. A spec whose role did not resolve is *not applicable* to the agent: the
fixture skips it with a reason starting ``not-applicable:`` (never a pytest ERROR), and the report lists it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from interp import roles as R

ROLES = R.ROLES
NOT_APPLICABLE = "not-applicable"
CACHE_VERSION = 1  # bump when interp.roles' rule or the calibration family changes


@dataclasses.dataclass(frozen=True)
class HeadShare:
    """A head's score for one role: mean attention mass on the category over both halves (attention roles),
    or the ablation effect (causal roles)."""

    head: int
    share: float


@dataclasses.dataclass(frozen=True)
class RoleResolution:
    role: str
    heads: tuple[int, ...]
    shares: tuple[HeadShare, ...] = ()
    pinned: bool = False
    reason: str = ""

    @property
    def head(self) -> int | None:
        """The head specs use: the first (largest effect) of the heads holding the role, or None."""
        return self.heads[0] if self.heads else None

    def to_dict(self) -> dict:
        return {"role": self.role, "head": self.head, "heads": list(self.heads), "pinned": self.pinned,
                "reason": self.reason, "shares": [dataclasses.asdict(s) for s in self.shares]}


def parse_pins(values: list[str]) -> dict[str, int]:
    pins = {}
    for value in values:
        role, sep, head = value.partition("=")
        if not sep or role not in ROLES or not head.strip().lstrip("-").isdigit():
            raise ValueError(f"--head-role {value!r}: expected ROLE=H with ROLE one of {ROLES}, e.g. crossing=2")
        pins[role] = int(head)
    return pins


def pinned(role: str, head: int, n_heads: int) -> RoleResolution:
    if not 0 <= head < n_heads:
        raise ValueError(f"--head-role {role}={head}: this agent has heads 0..{n_heads - 1}")
    return RoleResolution(role, (head,), pinned=True, reason=f"pinned by --head-role {role}={head}")


def resolutions(data: dict, pins: dict[str, int], n_heads: int) -> dict[str, RoleResolution]:
    """role -> RoleResolution from a role map dict (``RoleMap.to_dict()``), with pins applied."""
    out = {}
    for role, heads in data["roles"].items():
        if role in pins:
            out[role] = pinned(role, pins[role], n_heads)
            continue
        shares = []
        for entry in data["heads"]:
            if role in entry["profile"]:
                vals = [v for v in entry["profile"][role]["halves"] if v is not None]
                shares.append(HeadShare(entry["head"], sum(vals) / len(vals) if vals else float("nan")))
            elif role in R.CAUSAL_ROLES and entry["effects"]:
                metric = "collisions" if role == "safety" else "arrivals"
                effect = entry["effects"].get(metric, {}).get("effect")
                shares.append(HeadShare(entry["head"], float("nan") if effect is None else effect))
        out[role] = RoleResolution(role, tuple(heads), tuple(shares), reason=data["reasons"].get(role, ""))
    for role in pins:
        out.setdefault(role, pinned(role, pins[role], n_heads))
    return out


def require(resolution: RoleResolution) -> int:
    """The head of a resolved role; a spec needing an unresolved role is not applicable (a skip with reason)."""
    if resolution.head is None:
        pytest.skip(f"{NOT_APPLICABLE}: the {resolution.role} role did not resolve on this agent: {resolution.reason}")
    return resolution.head


# ------------------------------------------------------------------------------------------ computing + cache
def _cache_dir() -> Path:
    from interp.cache import default_cache_dir

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


def calibration(agent, builder=None):
    """(observations [B, N, F], category masks) of the role-calibration scenes for this agent's env."""
    import numpy as np

    from fixtures.builder import SceneBuilder
    from fixtures.role_scenes import role_scenes, row_categories
    from interp.seeds import SCENES

    builder = builder or SceneBuilder(agent.env_config, snapshot=False)
    scenes = role_scenes(builder, R.N_SCENES, SCENES["roles"])
    return np.stack([s.observation for s in scenes]).astype(np.float32), row_categories(scenes, R.CATEGORIES)


def role_map(agent, *, engine=None, causal: bool = False, skip_causal_reason: str = "", builder=None,
             use_cache: bool = True, max_pairs: int = R.CAUSAL_MAX_PAIRS, progress: bool = False) -> dict:
    """The agent's role map (``RoleMap.to_dict()``), cached per checkpoint identity: attention roles always,
    causal roles only with ``causal`` and an engine (rollouts; their episodes are cached too)."""
    att_key = _key(agent, "attention", n_null=R.N_NULL, n_scenes=R.N_SCENES)
    data = _load(att_key) if use_cache else None
    if data is None:
        obs, masks = calibration(agent, builder)
        data = R.find_roles(agent, obs, masks, causal=False).to_dict()
        _save(att_key, data)
    if causal and engine is not None:
        cz_key = _key(agent, "causal", max_pairs=max_pairs, alpha=R.CAUSAL_ALPHA, min_effect=R.CAUSAL_MIN_EFFECT)
        cz = _load(cz_key) if use_cache else None
        if cz is None:
            result = R.causal_roles(engine, agent, max_pairs=max_pairs, progress=progress)
            cz = {"effects": result.effects, "roles": result.roles, "reasons": result.reasons,
                  "seeds": list(result.seeds), "max_pairs": result.max_pairs}
            _save(cz_key, cz)
        return merge_causal(data, cz)
    reason = skip_causal_reason or "causal roles need rollouts and were not requested in this run"
    return merge_causal(data, {"effects": {}, "roles": {r: [] for r in R.CAUSAL_ROLES},
                               "reasons": {r: f"not measured: {reason}" for r in R.CAUSAL_ROLES},
                               "seeds": [0, 0], "max_pairs": 0, "measured": False})


def cached_role_map(agent) -> dict | None:
    """The cached attention role map of ``agent`` (with its causal roles if those were cached), or None."""
    data = _load(_key(agent, "attention", n_null=R.N_NULL, n_scenes=R.N_SCENES))
    if data is None:
        return None
    cz = _load(_key(agent, "causal", max_pairs=R.CAUSAL_MAX_PAIRS, alpha=R.CAUSAL_ALPHA,
                    min_effect=R.CAUSAL_MIN_EFFECT))
    return merge_causal(data, cz) if cz else data


def merge_causal(data: dict, cz: dict) -> dict:
    """A role map with its causal part replaced by ``cz`` (effects per metric and head, roles, reasons)."""
    data = json.loads(json.dumps(data))
    data["roles"] = {**{r: h for r, h in data["roles"].items() if r not in R.CAUSAL_ROLES}, **cz["roles"]}
    data["reasons"] = {**{r: t for r, t in data["reasons"].items() if r not in R.CAUSAL_ROLES}, **cz["reasons"]}
    for entry in data["heads"]:
        h = entry["head"]
        entry["effects"] = {metric: {k: per_head[h].get(k) for k in ("effect", "ci", "n", "p_value", "verdict")}
                            for metric, per_head in cz["effects"].items()}
        entry["roles"] = [r for r, hs in data["roles"].items() if h in hs]
    data["causal"] = {"measured": cz.get("measured", True), "seeds": cz["seeds"], "max_pairs": cz["max_pairs"]}
    return data
