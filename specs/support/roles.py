"""Heads by role, not by number: the spec side of ``interp.roles``, cached per checkpoint identity.

``interp.roles`` decides which heads hold which role (attention roles by selectivity beyond sharpness against
tempered random networks on two disjoint calibration halves; causal roles ``safety`` / ``progress`` by paired zero-ablation on calibration seeds). This
module builds the calibration scenes, caches the role map as JSON per checkpoint identity (in the rollout
cache folder, ``roles/``), applies ``--head-role ROLE=H`` pins, and turns each role into a
:class:`RoleResolution` the specs read. A spec whose role did not resolve is *not applicable* to the agent: the
fixture skips it with a reason starting ``not-applicable:`` (never a pytest ERROR), and the report lists it.
"""
from __future__ import annotations

import dataclasses

import pytest

from interp import roles as R
from interp.vocabulary import NOT_APPLICABLE, UNMEASURED  # re-exported for the specs

ROLES = R.ROLES


@dataclasses.dataclass(frozen=True)
class HeadShare:
    """A head's score for one role: its selectivity statistic averaged over both halves (attention roles; score
    units, per metre for ``proximity``), or the ablation effect (causal roles)."""

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
                "measured": not self.reason.startswith(("not measured", UNMEASURED)), "reason": self.reason,
                "shares": [dataclasses.asdict(s) for s in self.shares]}


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
        shares = []
        for entry in data["heads"]:
            if role in entry.get("selectivity", {}):
                vals = [v for v in entry["selectivity"][role]["statistic"] if v is not None]
                shares.append(HeadShare(entry["head"], sum(vals) / len(vals) if vals else float("nan")))
            elif role in R.CAUSAL_ROLES and entry["effects"]:
                metric = "collisions" if role == "safety" else "arrivals"
                effect = entry["effects"].get(metric, {}).get("effect")
                shares.append(HeadShare(entry["head"], float("nan") if effect is None else effect))
        shares = [s for s in shares if s.share == s.share]  # NaN: the category never seen (e.g. behind)
        if role in pins:  # the pinned head, with the measured shares kept for specs that compare heads
            out[role] = dataclasses.replace(pinned(role, pins[role], n_heads), shares=tuple(shares))
        else:
            out[role] = RoleResolution(role, tuple(heads), tuple(shares), reason=data["reasons"].get(role, ""))
    for role in pins:
        out.setdefault(role, pinned(role, pins[role], n_heads))
    return out


def require(resolution: RoleResolution) -> int:
    """The head of a resolved role; a spec needing an unresolved role is not applicable (a skip with reason), or
    ``unmeasured`` when the profile's budget could not decide the role (a causal role under ``quick``)."""
    if resolution.head is None and resolution.reason.startswith(UNMEASURED):
        pytest.skip(f"{UNMEASURED}: the {resolution.role} role was not decided on this agent: {resolution.reason}")
    if resolution.head is None:
        pytest.skip(f"{NOT_APPLICABLE}: the {resolution.role} role did not resolve on this agent: {resolution.reason}")
    return resolution.head


# ------------------------------------------------------------------------------------------ computing + cache
def role_map(agent, *, engine=None, causal: bool = False, skip_causal_reason: str = "", builder=None,
             use_cache: bool = True, progress: bool = False, quick: bool = False) -> dict:
    """The agent's role map (``interp.roles.role_map``), calibration scenes from ``fixtures.role_scenes``;
    ``quick``: causal roles on the quick budget (large effects decided, smaller ones unmeasured)."""
    from fixtures.role_scenes import calibration

    return R.role_map(agent, lambda: calibration(agent.env_config, builder), engine=engine, causal=causal,
                      skip_causal_reason=skip_causal_reason, use_cache=use_cache, progress=progress, quick=quick)


cached_role_map = R.cached_role_map
