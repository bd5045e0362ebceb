"""The ``evidence`` a spec records: its claim, effects with CI and n, figures, notes and statistical verdict."""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import pytest

from interp.evidence import jsonable
from interp.vocabulary import UNMEASURED, UNSETTLED_BY_CHECK
from reports.schema import EFFECT_OPTIONAL, KINDS, VERDICTS, validate_effect, validate_figure
from specs.support.budget import Budget

EFFECT_FIELDS = EFFECT_OPTIONAL  # the schema's optional effect fields, kept as fields (reports/schema.py)
NOT_APPLICABLE_PREFIX = "not-applicable:"
UNMEASURED_PREFIX = "unmeasured:"


def seed_range(seeds) -> str | None:
    """How the report names a run of seeds: ``"first..last (n)"`` (None for no seeds)."""
    seeds = list(seeds)
    return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})" if seeds else None


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) else f"{value:.4g}"
    return text if len(text) < 80 else text[:77] + "..."


def failure_reason(report) -> str:
    """The failure or skip message, without the traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:  # a skip: (path, line, reason)
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr).splitlines()[-1][:500]


@dataclasses.dataclass
class SpecEvidence:
    nodeid: str
    name: str
    claim: str
    kind: str
    checkpoint: str | None
    budget: Budget
    effects: list[dict] = dataclasses.field(default_factory=list)
    figures: list[dict] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    controls: list[dict] = dataclasses.field(default_factory=list)
    verdict: str | None = None
    data: dict = dataclasses.field(default_factory=dict)
    near_ties: dict[str, int] | None = None
    spec_id: str | None = None
    ended: bool = False  # the spec's own decision raised its failure/skip (conclude, refute, conclude_inconclusive)

    @classmethod
    def for_item(cls, item: pytest.Item, checkpoint: str | None, budget: Budget) -> "SpecEvidence":
        """The claim is the test's docstring (first paragraph); the kind its marker."""
        doc = inspect.getdoc(getattr(item, "function", None)) or item.name
        claim = " ".join(doc.split("\n\n")[0].split())
        kind = next((k for k in KINDS if item.get_closest_marker(k)), "other")
        from specs.support.findings import spec_id

        return cls(nodeid=item.nodeid, name=getattr(item, "originalname", item.name), claim=claim, kind=kind,
                   checkpoint=checkpoint, budget=budget, spec_id=spec_id(item))

    def effect(self, name: str, value: float, ci: tuple[float, float] | None, n: int, p_value: float | None = None,
               **extra: Any) -> None:
        """A measured quantity: point estimate, 95 % CI (or the stated level), sample size, optional p-value.

        Keys the report schema knows (``reports.schema.EFFECT_OPTIONAL``: better, scale, unit, rule,
        paired_seeds, outcomes, ci_level, note, verdict, meaning, worse_direction) are kept as fields; any
        other keyword is appended to the effect's note as ``key=value``. The effect is checked against the schema here, so a malformed one
        fails this spec at once with an ``EvidenceError`` naming the field.
        """
        known = {k: extra.pop(k) for k in list(extra) if k in EFFECT_FIELDS}
        if extra:
            text = ", ".join(f"{k}={_short(v)}" for k, v in extra.items())
            known["note"] = f"{known['note']}; {text}" if known.get("note") else text
        effect = jsonable({"name": name, "value": value, "ci": list(ci) if ci is not None else None,
                           "n": n, "p_value": p_value, **known})
        validate_effect(effect)
        if any(e.get("name") == effect["name"] for e in self.effects):
            from reports.schema import EvidenceError

            raise EvidenceError(f"invalid effect: name {effect['name']!r} already recorded by this spec; the diff "
                                "matches effects by name")
        self.effects.append(effect)

    def record(self, verdict, name: str | None = None, **extra: Any) -> None:
        """Record an ``interp.stats.Verdict`` as an effect, and as this spec's statistical verdict."""
        data = verdict.to_dict()
        self.effect(name or data.get("claim") or "effect", data.get("effect"), data.get("ci"), data.get("n"),
                    data.get("p_value"), rule=data.get("decision_rule"), verdict=data.get("verdict"), **extra)
        self.verdict = data.get("verdict")  # the last recorded; a spec deciding several effects sets its own

    def judge(self, check, *, effect: str, controls: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """The check -> control -> conclude pattern in one call.

        ``check`` is a ``specs.support.claims.Check`` on the agent: its ``numbers`` (``value`` or ``share``,
        ``ci``, ``n``, optional ``p_value``) become the effect named ``effect`` (``fields`` as for ``effect``).
        ``controls`` maps a negative control's name to the same check run on it. Then ``conclude``: refuted if
        the check fails; vacuous if it also held on a control; else supported.
        """
        numbers = check.numbers
        value = numbers.get("value", numbers.get("share"))
        self.effect(effect, value, numbers.get("ci"), numbers.get("n"), numbers.get("p_value"), **fields)
        for name, control in (controls or {}).items():
            self.control(name, control.holds, control.summary)
        self.conclude(check.holds, check.summary)

    def conclude_family(self, verdicts, summary: str, failure: str) -> None:
        """A family of per-head statistical verdicts (already Holm-adjusted) decides the spec: supported if any
        head's claim is, refuted if every head's is, inconclusive otherwise; the recorded controls are judged by
        ``conclude``. ``failure`` heads the message when no head supports the claim."""
        verdicts = [v.verdict for v in verdicts]
        self.verdict = "supported" if "supported" in verdicts else (
            "refuted" if verdicts and all(v == "refuted" for v in verdicts) else "inconclusive")
        if self.verdict == "inconclusive":
            self.conclude_inconclusive(summary)
        self.conclude(self.verdict == "supported", f"{failure}:\n{summary}")

    def seeds(self, name: str, seeds) -> None:
        """Note which episode seeds this spec used (a range per name), for the run metadata of the report."""
        text = seed_range(seeds)
        if text:
            self.data.setdefault("seeds", {})[name] = text

    def episodes(self, records) -> None:
        """Count the rollout episodes behind this verdict and those with a step decided on a near-tie
        (``interp.model.policy``): the part of the evidence another CPU might produce differently."""
        records = list(records)
        ties = self.near_ties or {"episodes": 0, "with_near_tie": 0}
        self.near_ties = {"episodes": ties["episodes"] + len(records),
                          "with_near_tie": ties["with_near_tie"] + sum(r.near_ties > 0 for r in records)}

    def control(self, name: str, holds: bool, detail: str) -> None:
        """Record a negative control: the spec's check run where it must fail (``conclude`` judges it)."""
        self.controls.append({"name": name, "rejected": not holds, "detail": detail})

    def conclude(self, holds: bool, message: str) -> None:
        """The spec's outcome: refuted if its check fails on the agent; else vacuous (a failure too) if the
        check also held on any recorded negative control; else supported."""
        if not holds:
            self.refute(message)
        vacuous = [c for c in self.controls if not c["rejected"]]
        if vacuous:
            self.verdict, self.ended = "vacuous", True
            pytest.fail("vacuous: the check also holds on its negative control "
                        + "; ".join(f"{c['name']}: {c['detail']}" for c in vacuous), pytrace=False)
        self.verdict = self.verdict or "supported"

    def refute(self, message: str) -> None:
        """The check failed on the agent: verdict refuted (unless a recorded statistical verdict says more)."""
        if self.verdict not in UNSETTLED_BY_CHECK:
            self.verdict = "refuted"
        self.ended = True
        pytest.fail(f"{self.verdict}: {message}", pytrace=False)

    def not_applicable(self, why: str) -> None:
        """The spec's precondition does not hold on this agent (e.g. a head role did not resolve): a skip."""
        self.verdict, self.ended = "not-applicable", True
        pytest.skip(f"{NOT_APPLICABLE_PREFIX} {why}")

    def figure(self, kind: str, **spec: Any) -> None:
        """A declarative figure (``reports.schema.FIGURE_KINDS``); checked here, so a malformed one fails this
        spec at once with an ``EvidenceError`` naming the field."""
        figure = jsonable({"kind": kind, **spec})
        validate_figure(figure)
        self.figures.append(figure)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def conclude_inconclusive(self, why: str) -> None:
        """Budget exhausted without a decision: a skip (with the evidence as reason), a failure under ``full``."""
        self.verdict, self.ended = "inconclusive", True
        message = f"inconclusive within the {self.budget.name} budget: {why}"
        if self.budget.inconclusive_fails:
            pytest.fail(message)
        pytest.skip(message)

    def to_dict(self, report: pytest.TestReport | None = None) -> dict:
        outcome = report.outcome if report is not None else None
        if report is not None and hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        verdict = entry_verdict(self.verdict, self.ended, outcome, report)
        entry = {"nodeid": self.nodeid, "claim": self.claim, "kind": self.kind, "checkpoint": self.checkpoint,
                 "verdict": verdict, "outcome": outcome, "effects": self.effects, "figures": self.figures,
                 "notes": "\n".join(self.notes), "controls": self.controls,
                 "data": jsonable({"name": self.name, "profile": self.budget.name, **self.data})}
        if self.near_ties is not None:
            entry["near_ties"] = dict(self.near_ties)
        if self.spec_id is not None:
            entry["spec_id"] = self.spec_id
        if report is not None:
            entry["duration_s"] = round(report.duration, 3)
            if report.outcome != "passed" and report.longrepr is not None:
                entry["reason"] = failure_reason(report)
        return entry

    @staticmethod
    def summary_line(entry: dict) -> str:
        effects = "; ".join(_format_effect(e) for e in entry.get("effects", [])[:2])
        name = entry.get("nodeid", "").split("::")[-1] or entry.get("data", {}).get("name")  # params shown
        ties = entry.get("near_ties")
        tie_text = f" (near-tie episodes {ties['with_near_tie']}/{ties['episodes']})" if ties else ""
        if not effects and entry.get("reason"):
            effects = entry["reason"].splitlines()[0][:160]
        verdict = entry.get("verdict") or "no verdict"
        return f"[{entry.get('outcome')}/{verdict}] {name}: {effects}{tie_text}"


def entry_verdict(verdict: str | None, ended: bool, outcome: str | None, report=None) -> str | None:
    """The verdict an entry records (``reports.schema.VERDICTS`` or None: the spec did not reach one).

    A pass is ``supported`` unless the spec recorded otherwise; a failure or skip keeps a verdict only if the
    spec's own decision raised it (``conclude``, ``refute``, ``conclude_inconclusive``, ``not_applicable``):
    an exception, even after a verdict was recorded, leaves no verdict. A skip whose reason starts with
    ``not-applicable:`` (e.g. from a role fixture) is ``not-applicable``; one starting ``unmeasured:`` (a causal
    role the profile's budget could not decide) is ``unmeasured``."""
    if outcome == "passed":
        return verdict if verdict in VERDICTS else "supported"
    if outcome == "skipped" and report is not None and failure_reason(report).startswith(NOT_APPLICABLE_PREFIX):
        return "not-applicable"
    if outcome == "skipped" and report is not None and failure_reason(report).startswith(UNMEASURED_PREFIX):
        return UNMEASURED
    if outcome == "xfailed":  # a known finding that reproduced (verdict matched by specs.support.findings)
        return verdict
    if ended and verdict in VERDICTS:
        return verdict
    return None


def _format_effect(e: dict) -> str:
    ci = e.get("ci")
    ci_text = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else ""
    p = f" p={e['p_value']:.2g}" if e.get("p_value") is not None else ""
    value = e.get("value")
    value_text = f"{value:.3g}" if isinstance(value, (int, float)) else str(value)
    return f"{e.get('name')}={value_text}{ci_text} n={e.get('n')}{p}"


EVIDENCE_KEY = pytest.StashKey[SpecEvidence]()
