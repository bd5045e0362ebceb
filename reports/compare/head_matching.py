"""How ``reports.compare.diff`` matches per-head effects between two runs: by head index within one lineage (one
training run), by role across lineages.

Head indices are arbitrary per training run. ``lineage_of`` decides from ``run.checkpoint.lineage``
(``interp.simulation.lineage``) and the identities whether two checkpoints come from one run; ``keyed_by_role``
renames each per-head effect by the roles its heads hold on their own agent (a role's first head, the one the
specs use), so that effects about the same role get one key; ``unmatched`` lists the per-head effects that
found no counterpart (never compared, never regressions).
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

from interp.vocabulary import head_indices, rename_heads

MATCH_INDEX, MATCH_ROLE = "index", "role"
MATCH_HEADS = (MATCH_INDEX, MATCH_ROLE)
NO_ROLE = "\x00no role:"  # key prefix of a per-head effect that cannot be matched by role


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Whether the two checkpoints come from one training run (``same`` None: the files do not say), and how
    per-head effects were matched because of it."""

    same: bool | None
    reason: str
    match_heads: str  # "index" | "role"
    chosen_by: str  # "lineage" | "override"

    def describe(self) -> str:
        how = ("by head index" if self.match_heads == MATCH_INDEX else
               "by role (head indices of different training runs mean nothing to each other)")
        why = "" if self.chosen_by == "lineage" else " (set by --match-heads)"
        return f"{self.reason}; per-head effects compared {how}{why}"


@dataclasses.dataclass(frozen=True)
class NotComparable:
    """A per-head effect with no counterpart in the other run: its heads hold no role the other run's do."""

    nodeid: str
    name: str
    side: str  # "base" | "new"
    roles: tuple[str, ...]

    def describe(self) -> str:
        held = (f"its head holds {', '.join(self.roles)}, which no head of the other run holds" if self.roles
                else "its head is the first holder of no role")
        return f"{self.nodeid} :: {self.name} (only in {self.side}; {held})"



def lineage_of(base_run: dict, new_run: dict, match_heads: str | None = None) -> Lineage:
    """Do the two runs' checkpoints come from one training run? From ``run.checkpoint.identity`` and
    ``run.checkpoint.lineage`` (``interp.simulation.lineage``); unknown when either file lacks the lineage."""
    b, n = base_run["checkpoint"], new_run["checkpoint"]
    bl, nl = b.get("lineage") or {}, n.get("lineage") or {}
    if b["identity"] == n["identity"]:
        same, reason = True, f"one lineage: the same weights (identity {b['identity']})"
    elif bl.get("run") and nl.get("run"):
        same = bl["run"] == nl["run"]
        if same:
            reason = (f"one lineage: training run {bl['run']} (seed {bl.get('train_seed')}), base at "
                      f"{bl.get('episodes')} episodes, new at {nl.get('episodes')}"
                      + "".join(f"; {side} edited ({x['edited']})" for side, x in (("base", bl), ("new", nl))
                                if x.get("edited")))
        else:
            reason = (f"different lineages: training runs {bl['run']} (seed {bl.get('train_seed')}) and "
                      f"{nl['run']} (seed {nl.get('train_seed')})")
    else:
        missing = " and ".join(side for side, x in (("base", bl), ("new", nl)) if not x.get("run"))
        same, reason = None, f"lineage unknown ({missing} records no training run)"
    chosen = match_heads or (MATCH_INDEX if same else MATCH_ROLE)
    return Lineage(same=same, reason=reason, match_heads=chosen,
                   chosen_by="lineage" if match_heads is None else "override")


def roles_by_head(run: dict) -> dict[int, tuple[str, ...]]:
    """head -> the roles it is the first holder of on this run's agent (``reports.zoo.aggregate.role_heads``, largest
    effect first; the head the specs use). One head per role and side, so a role names one effect per run."""
    from reports.zoo.aggregate import role_heads

    held: dict[int, list[str]] = {}
    for role, heads in role_heads(run).items():
        if heads:
            held.setdefault(int(heads[0]), []).append(role)
    return {head: tuple(sorted(roles)) for head, roles in held.items()}


def keyed_by_role(effects: Sequence[dict], roles: dict[int, tuple[str, ...]]) -> dict[str, tuple[dict, tuple]]:
    """Effects keyed for role matching: a per-head effect once per combination of its heads' roles (the head
    indices in its name replaced by the role), under a key that matches nothing when a head holds no role;
    effects that name no head by their name."""
    keyed: dict[str, tuple[dict, tuple]] = {}
    for effect in effects:
        heads = head_indices(effect["name"])
        if not heads:
            keyed[effect["name"]] = (effect, ())
            continue
        held = [roles.get(h, ()) for h in heads]
        if not all(held):
            keyed[NO_ROLE + effect["name"]] = (effect, tuple(sorted({r for rs in held for r in rs})))
            continue
        for combo in itertools.product(*held):
            mapping = dict(zip(heads, combo))
            keyed[rename_heads(effect["name"], mapping)] = (effect, tuple(sorted(set(combo))))
    return keyed


def unmatched(nodeid: str, side: str, mine: dict, theirs: dict) -> list[NotComparable]:
    """Per-head effects of one side that found no counterpart in the other (each effect once)."""
    matched = {id(effect) for key, (effect, _) in mine.items() if key in theirs and not key.startswith(NO_ROLE)}
    out, seen = [], set()
    for key, (effect, roles) in mine.items():
        if not head_indices(effect["name"]) or id(effect) in matched or id(effect) in seen:
            continue
        seen.add(id(effect))
        held = {r for k, (e, rs) in mine.items() if e is effect for r in rs}
        out.append(NotComparable(nodeid, effect["name"], side, tuple(sorted(held))))
    return out
