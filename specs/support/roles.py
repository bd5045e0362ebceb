"""Heads by role, not by number: a role resolves to a head only if that head beats chance on calibration scenes.

Head indices are arbitrary per training run. The ``crossing`` role is the head whose attention argmax
most often falls on the nearest crossing vehicle, on a calibration scene set disjoint from the scenes the
specs then test on. It resolves only if the lower end of that head's 95 % Wilson interval is above the
chance level (the mean over scenes of 1 / number of present rows): on random weights no role should
resolve, and the specs needing it then fail with this module's reason.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from interp.attention import argmax_share

ROLES = ("crossing",)


@dataclasses.dataclass(frozen=True)
class HeadShare:
    head: int
    hits: int
    n: int
    share: float
    ci: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class RoleResolution:
    role: str
    head: int | None
    chance: float
    shares: tuple[HeadShare, ...]
    pinned: bool = False
    reason: str = ""

    def to_dict(self) -> dict:
        return {"role": self.role, "head": self.head, "chance": self.chance, "pinned": self.pinned,
                "reason": self.reason, "shares": [dataclasses.asdict(s) for s in self.shares]}


def resolve_crossing(model, obs: np.ndarray, target_rows: np.ndarray) -> RoleResolution:
    """The head with the highest argmax share on the nearest crossing vehicle, if it beats chance."""
    ev = argmax_share(model, obs, target_rows)
    shares = tuple(HeadShare(h, int(ev.hits[h]), ev.n, float(ev.share[h]), (float(ev.ci_low[h]), float(ev.ci_high[h])))
                   for h in range(len(ev.share)))
    best = shares[ev.best_head]
    if ev.beats_chance[ev.best_head]:
        return RoleResolution("crossing", best.head, ev.chance, shares,
                              reason=f"head {best.head}: argmax on the nearest crossing vehicle in {best.hits}/{best.n} "
                                     f"calibration scenes (95% CI {best.ci[0]:.2f}-{best.ci[1]:.2f} > chance {ev.chance:.2f})")
    return RoleResolution("crossing", None, ev.chance, shares,
                          reason=f"no head beats chance: best head {best.head} hits {best.hits}/{best.n} (95% CI "
                                 f"{best.ci[0]:.2f}-{best.ci[1]:.2f}) vs chance {ev.chance:.2f}; pin one with --head-role "
                                 "crossing=H if you know it")


def pinned(role: str, head: int, n_heads: int) -> RoleResolution:
    if not 0 <= head < n_heads:
        raise ValueError(f"--head-role {role}={head}: this agent has heads 0..{n_heads - 1}")
    return RoleResolution(role, head, float("nan"), (), pinned=True, reason=f"pinned by --head-role {role}={head}")


def parse_pins(values: list[str]) -> dict[str, int]:
    pins = {}
    for value in values:
        role, sep, head = value.partition("=")
        if not sep or role not in ROLES or not head.strip().lstrip("-").isdigit():
            raise ValueError(f"--head-role {value!r}: expected ROLE=H with ROLE one of {ROLES}, e.g. crossing=2")
        pins[role] = int(head)
    return pins
