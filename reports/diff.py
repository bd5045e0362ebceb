"""Compare two evidence files (a baseline run and a new run): verdict changes and significant effect changes.

Effects are matched by (spec nodeid, effect name) and compared with a real test, never by overlapping CIs:

- **paired** when both runs recorded per-seed outcomes (``paired_seeds`` + ``outcomes``) with the same arms
  and share seeds: an exact test on the shared seeds. A single-arm effect (a rate; outcomes under
  ``treatment``) is exact McNemar: ``binomtest`` on the discordant pairs (0->1 vs 1->0). A two-arm effect
  (``treatment`` minus ``baseline`` per seed, e.g. an ablation's added collisions) gets the same exact sign
  test on the per-seed differences that changed.
- otherwise **unpaired** from value, CI and n: a pooled two-proportion z test when the effect is declared
  ``"scale": "proportion"``, else a Wald z test with standard errors read off each CI (``ci_level``,
  0.95 unless stated). Effects with no uncertainty recorded (zero-width CIs) or n = 0 are not tested.

A regression is a verdict that got worse (supported > inconclusive > refuted = vacuous = not-applicable >
no verdict), a significant change of an effect in its worse direction (the effect's ``better``: ``higher`` /
``lower``; effects without a direction are reported when they change but never count as regressions), or a
head role that resolved on the baseline and is missing in the new run. A role held by another head is reported
but is not a regression (head indices are arbitrary per training run).

Both runs are read through ``reports.schema.upgrade``, so a schema-1 file compares with a schema-2 file (its
``error`` verdicts whose reason says vacuous read as ``vacuous``).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from scipy import stats

from reports.schema import upgrade

VERDICT_RANK = {"supported": 3, "inconclusive": 2, "refuted": 1, "vacuous": 1, "not-applicable": 1, "unmeasured": 1, None: 0}
DEFAULT_ALPHA = 0.01


@dataclasses.dataclass(frozen=True)
class VerdictChange:
    """A spec whose verdict differs between the runs."""

    nodeid: str
    claim: str
    base: str
    new: str

    @property
    def worse(self) -> bool:
        return VERDICT_RANK[self.new] < VERDICT_RANK[self.base]

    @property
    def better(self) -> bool:
        return VERDICT_RANK[self.new] > VERDICT_RANK[self.base]


@dataclasses.dataclass(frozen=True)
class RoleChange:
    """A head role resolved on the baseline that is missing (lost: a regression) or held by other heads."""

    role: str
    base_heads: tuple[int, ...]
    new_heads: tuple[int, ...]

    @property
    def lost(self) -> bool:
        return not self.new_heads

    def describe(self) -> str:
        if self.lost:
            return f"role {self.role!r} lost (held by head(s) {list(self.base_heads)} on the baseline, unresolved now)"
        return f"role {self.role!r} held by head(s) {list(self.new_heads)} (baseline: {list(self.base_heads)})"


@dataclasses.dataclass(frozen=True)
class EffectComparison:
    """One effect measured in both runs, and the test that compared them."""

    nodeid: str
    name: str
    base_value: float
    base_ci: tuple[float | None, float | None]
    base_n: int
    new_value: float
    new_ci: tuple[float | None, float | None]
    new_n: int
    test: str  # "paired-mcnemar" | "paired-sign" | "two-proportion-z" | "wald-z" | "none"
    test_description: str
    p_value: float | None
    change: float  # new minus base (on the shared seeds for a paired test)
    significant: bool
    better: str | None
    detail: str

    @property
    def worse(self) -> bool:
        """Significant, and in the direction the effect declares worse."""
        if not self.significant or self.better is None or self.change == 0:
            return False
        return (self.change > 0) == (self.better == "lower")


@dataclasses.dataclass(frozen=True)
class EvidenceDiff:
    """Everything ``python -m reports diff`` reports; ``to_dict`` is its ``--json`` form."""

    base_run: dict
    new_run: dict
    alpha: float
    verdict_changes: tuple[VerdictChange, ...]
    effects: tuple[EffectComparison, ...]
    only_in_base: tuple[str, ...]
    only_in_new: tuple[str, ...]
    role_changes: tuple[RoleChange, ...] = ()

    @property
    def significant_effects(self) -> tuple[EffectComparison, ...]:
        return tuple(e for e in self.effects if e.significant)

    @property
    def regressions(self) -> tuple[str, ...]:
        """One line per regression (verdict got worse, or an effect significantly worsened)."""
        lines = [f"{c.nodeid}: verdict {c.base} -> {c.new}" for c in self.verdict_changes if c.worse]
        lines += [f"{e.nodeid}: effect {e.name!r} worsened ({_num(e.base_value)} -> {_num(e.new_value)}, "
                  f"{e.test}, p = {_p(e.p_value)})" for e in self.effects if e.worse]
        lines += [c.describe() for c in self.role_changes if c.lost]
        return tuple(lines)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_dict(self) -> dict:
        return {
            "base": self.base_run,
            "new": self.new_run,
            "alpha": self.alpha,
            "regressed": self.regressed,
            "regressions": list(self.regressions),
            "verdict_changes": [{**dataclasses.asdict(c), "worse": c.worse, "better": c.better}
                                for c in self.verdict_changes],
            "effects": [{**dataclasses.asdict(e), "base_ci": list(e.base_ci), "new_ci": list(e.new_ci),
                         "worse": e.worse} for e in self.effects],
            "only_in_base": list(self.only_in_base),
            "only_in_new": list(self.only_in_new),
            "role_changes": [{"role": c.role, "base_heads": list(c.base_heads), "new_heads": list(c.new_heads),
                              "lost": c.lost} for c in self.role_changes],
        }

    def format_text(self) -> str:
        return format_diff(self)


def diff_evidence(base: dict, new: dict, *, alpha: float = DEFAULT_ALPHA) -> EvidenceDiff:
    """Compare two validated evidence dicts (see the module docstring for the tests used)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    base, new = upgrade(base), upgrade(new)
    base_specs = {e["nodeid"]: e for e in base["specs"]}
    new_specs = {e["nodeid"]: e for e in new["specs"]}
    shared = [nodeid for nodeid in new_specs if nodeid in base_specs]
    verdict_changes = tuple(
        VerdictChange(nodeid, new_specs[nodeid]["claim"], base_specs[nodeid]["verdict"], new_specs[nodeid]["verdict"])
        for nodeid in shared if base_specs[nodeid]["verdict"] != new_specs[nodeid]["verdict"])
    effects = []
    for nodeid in shared:
        base_effects = {e["name"]: e for e in base_specs[nodeid]["effects"]}
        for effect in new_specs[nodeid]["effects"]:
            if effect["name"] in base_effects:
                effects.append(compare_effect(nodeid, base_effects[effect["name"]], effect, alpha=alpha))
    return EvidenceDiff(
        base_run=_run_summary(base["run"]), new_run=_run_summary(new["run"]), alpha=alpha,
        verdict_changes=verdict_changes, effects=tuple(effects),
        only_in_base=tuple(n for n in base_specs if n not in new_specs),
        only_in_new=tuple(n for n in new_specs if n not in base_specs),
        role_changes=role_changes(base["run"].get("head_roles"), new["run"].get("head_roles")))


def _role_heads(value: Any) -> tuple[int, ...]:
    if isinstance(value, dict):
        heads = value.get("heads")
        if heads is None:
            heads = [] if value.get("head") is None else [value["head"]]
        return tuple(int(h) for h in heads)
    return () if value is None else (int(value),)


def role_changes(base: dict | None, new: dict | None) -> tuple[RoleChange, ...]:
    """Roles resolved on the baseline that the new run lost, or that other heads hold now (``run.head_roles``
    of each run: role -> {"head", "heads"?, "measured"?} or a head index). A role the new run did not resolve
    counts as lost, unless the new run did not measure it (``"measured": false``, e.g. causal roles under the
    quick profile): that is no evidence either way."""
    changes = []
    for role, value in (base or {}).items():
        base_heads = _role_heads(value)
        new_value = (new or {}).get(role)
        if not base_heads or (isinstance(new_value, dict) and new_value.get("measured") is False):
            continue
        new_heads = _role_heads(new_value)
        if set(new_heads) != set(base_heads) or not new_heads:
            changes.append(RoleChange(role, base_heads, new_heads))
    return tuple(changes)


def compare_effect(nodeid: str, base: dict, new: dict, *, alpha: float = DEFAULT_ALPHA) -> EffectComparison:
    """Compare one effect across runs: paired exact test where possible, else a z test from value, CI, n."""
    if base.get("value") is None or new.get("value") is None:  # not measurable in one of the runs
        test, description, p_value, change, detail = ("none", "not tested: no value in one of the runs", None, None,
                                                      "value missing")
    else:
        test, description, p_value, change, detail = _paired_test(base, new) or _unpaired_test(base, new)
    return EffectComparison(
        nodeid=nodeid, name=new["name"],
        base_value=base["value"], base_ci=tuple(base.get("ci") or (None, None)), base_n=base["n"],
        new_value=new["value"], new_ci=tuple(new.get("ci") or (None, None)), new_n=new["n"],
        test=test, test_description=description, p_value=p_value, change=change,
        significant=p_value is not None and p_value < alpha,
        better=new.get("better") or base.get("better"), detail=detail)


def _paired_test(base: dict, new: dict) -> tuple[str, str, float, float, str] | None:
    if not (base.get("outcomes") and new.get("outcomes")):
        return None
    if set(base["outcomes"]) != set(new["outcomes"]):
        return None
    base_scores = _per_seed_scores(base)
    new_scores = _per_seed_scores(new)
    shared = sorted(set(base_scores) & set(new_scores))
    if not shared:
        return None
    deltas = [new_scores[s] - base_scores[s] for s in shared]
    up = sum(d > 0 for d in deltas)
    down = sum(d < 0 for d in deltas)
    p_value = float(stats.binomtest(up, up + down, 0.5).pvalue) if up + down else 1.0
    change = sum(deltas) / len(deltas)
    two_arm = "baseline" in new["outcomes"]
    if two_arm:
        return ("paired-sign", "exact paired sign test on per-seed (treatment - baseline) differences "
                "(scipy.stats.binomtest)", p_value, change,
                f"{up} seeds up vs {down} down of {len(shared)} shared seeds")
    base_rate = sum(base_scores[s] for s in shared) / len(shared)
    new_rate = sum(new_scores[s] for s in shared) / len(shared)
    return ("paired-mcnemar", "exact McNemar on shared seeds (scipy.stats.binomtest on discordant pairs)",
            p_value, change, f"discordant pairs 0->1: {up}, 1->0: {down} on {len(shared)} shared seeds "
            f"(rate {_num(base_rate)} -> {_num(new_rate)} on those seeds)")


def _per_seed_scores(effect: dict) -> dict[int, int]:
    treatment = effect["outcomes"]["treatment"]
    baseline = effect["outcomes"].get("baseline") or [0] * len(treatment)
    return {seed: int(t) - int(b) for seed, t, b in zip(effect["paired_seeds"], treatment, baseline)}


def _unpaired_test(base: dict, new: dict) -> tuple[str, str, float | None, float, str]:
    change = new["value"] - base["value"]
    if base["n"] == 0 or new["n"] == 0:
        return "none", "not tested (n = 0 in one run)", None, change, ""
    if "proportion" in (base.get("scale"), new.get("scale")) and all(0 <= e["value"] <= 1 for e in (base, new)):
        return _two_proportion(base, new, change)
    base_se, new_se = _se_from_ci(base), _se_from_ci(new)
    if base_se is None or new_se is None:
        return "none", "not tested (a CI has no finite bound)", None, change, ""
    se = math.hypot(base_se, new_se)
    if se == 0:
        return "none", "not tested (no uncertainty recorded: zero-width CIs)", None, change, ""
    z = change / se
    p_value = float(2 * stats.norm.sf(abs(z)))
    return ("wald-z", "unpaired z test, standard errors from each run's CI (no shared paired seeds)",
            p_value, change, f"z = {z:.2f}, SE base {_num(base_se)}, new {_num(new_se)}")


def _two_proportion(base: dict, new: dict, change: float) -> tuple[str, str, float, float, str]:
    n1, n2 = base["n"], new["n"]
    pooled = (base["value"] * n1 + new["value"] * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        p_value, z = (1.0, 0.0) if change == 0 else (0.0, math.inf)
    else:
        z = change / se
        p_value = float(2 * stats.norm.sf(abs(z)))
    return ("two-proportion-z", "unpaired pooled two-proportion z test (no shared paired seeds)", p_value, change,
            f"z = {z:.2f}, n = {n1} vs {n2}")


def _se_from_ci(effect: dict) -> float | None:
    lo, hi = effect.get("ci") or (None, None)
    z = stats.norm.ppf(0.5 + effect.get("ci_level", 0.95) / 2)
    value = effect["value"]
    if lo is not None and hi is not None:
        return (hi - lo) / (2 * z)
    if lo is not None:
        return (value - lo) / z
    if hi is not None:
        return (hi - value) / z
    return None


def _run_summary(run: dict) -> dict:
    return {"checkpoint": run["checkpoint"]["identity"], "source": run["checkpoint"].get("source"),
            "profile": run.get("profile"), "finished": run.get("finished")}


# ------------------------------------------------------------------------------------------------- text


def format_diff(diff: EvidenceDiff) -> str:
    """The human-readable report printed by ``python -m reports diff``."""
    lines = [f"base: checkpoint {diff.base_run['checkpoint']} ({diff.base_run.get('source') or '?'}, "
             f"profile {diff.base_run.get('profile')})",
             f"new:  checkpoint {diff.new_run['checkpoint']} ({diff.new_run.get('source') or '?'}, "
             f"profile {diff.new_run.get('profile')})",
             f"alpha = {diff.alpha:g} (two-sided, per effect)", ""]
    lines.append(f"Verdict changes ({len(diff.verdict_changes)}):")
    for change in diff.verdict_changes:
        tag = "REGRESSION" if change.worse else ("improved" if change.better else "changed")
        lines.append(f"  {tag:<10}  {change.nodeid}: {change.base} -> {change.new}")
        lines.append(f"              claim: {change.claim}")
    if not diff.verdict_changes:
        lines.append("  none")
    significant = diff.significant_effects
    lines += ["", f"Significant effect changes ({len(significant)} of {len(diff.effects)} effects compared):"]
    for effect in significant:
        tag = "REGRESSION" if effect.worse else ("changed" if effect.better is None else "improved")
        lines.append(f"  {tag:<10}  {effect.nodeid} :: {effect.name}")
        lines.append(f"              {_estimate(effect.base_value, effect.base_ci, effect.base_n)} -> "
                     f"{_estimate(effect.new_value, effect.new_ci, effect.new_n)}  (change {effect.change:+.3g})")
        lines.append(f"              {effect.test_description}: {effect.detail}; p = {_p(effect.p_value)}")
    if not significant:
        lines.append("  none")
    counts: dict[str, int] = {}
    for effect in diff.effects:
        counts[effect.test] = counts.get(effect.test, 0) + 1
    if counts:
        lines.append("  tests used: " + ", ".join(f"{test} x{n}" for test, n in sorted(counts.items())))
    if diff.role_changes:
        lines += ["", f"Head role changes ({len(diff.role_changes)}):"]
        lines += [f"  {'REGRESSION' if c.lost else 'changed':<10}  {c.describe()}" for c in diff.role_changes]
    if diff.only_in_base:
        lines += ["", f"Specs only in base ({len(diff.only_in_base)}): " + ", ".join(diff.only_in_base)]
    if diff.only_in_new:
        lines += ["", f"Specs only in new ({len(diff.only_in_new)}): " + ", ".join(diff.only_in_new)]
    lines.append("")
    if diff.regressed:
        lines.append(f"RESULT: REGRESSION ({len(diff.regressions)})")
        lines += [f"  - {r}" for r in diff.regressions]
    else:
        lines.append("RESULT: no regression")
    return "\n".join(lines)


def _estimate(value: float, ci: Sequence[Any], n: int) -> str:
    return f"{_num(value)} [{_num(ci[0])}, {_num(ci[1])}] n={n}"


def _num(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.3g}"


def _p(p_value: float | None) -> str:
    return "n/a" if p_value is None else f"{p_value:.2g}"
