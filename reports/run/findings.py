"""Findings: the claims an evidence run refuted (or found vacuous), written next to the checkpoint they were
found on.

``checkpoints/<name>/findings.json`` = ``{"identity", "format": 2, "findings": {spec id: {"verdict", "claim",
"summary", "nodeid", "profile"}}}``. The spec plugin expects each for that identity only, and only with that
same verdict (``specs/support/findings.py``). Written by a person's decision (``python -m reports findings``),
never automatically: a refuted claim is a finding only once reviewed.
"""
from __future__ import annotations

from typing import Any

from interp.vocabulary import FINDING_VERDICTS, finding_key  # noqa: F401  (FINDING_VERDICTS re-exported)

FORMAT = 2


def _summary(entry: dict) -> str:
    effects = entry.get("effects", [])[:2]
    parts = []
    for e in effects:
        ci = e.get("ci")
        ci_text = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else ""
        value = e.get("value")
        value_text = f"{value:.3g}" if isinstance(value, (int, float)) else str(value)
        parts.append(f"{e.get('name')} = {value_text}{ci_text} (n={e.get('n')})")
    reason = entry.get("reason") or ""
    return "; ".join(parts) + (f". {reason}" if reason else "")


def findings_from_evidence(evidence: dict, *, include: set[str] | None = None) -> dict[str, Any]:
    """The specs of one run (a validated, current-schema evidence dict) that ended refuted or vacuous, optionally
    only those named in ``include`` (spec ids or function names), keyed by spec id; a parametrized spec's finding
    by ``spec id[parameter id]`` (one parametrization's verdict says nothing of the others)."""
    identity = evidence["run"]["checkpoint"]["identity"]
    found = {}
    for entry in evidence["specs"]:
        name = entry.get("spec_id") or entry.get("data", {}).get("name") or entry["nodeid"].split("::")[-1]
        if entry.get("outcome") not in ("failed", "xfailed") or entry.get("verdict") not in FINDING_VERDICTS:
            continue
        if include is not None and name not in include:
            continue
        nodeid = entry["nodeid"]
        if nodeid.endswith("]") and "[" in nodeid.split("::")[-1]:
            name = finding_key(name, nodeid.split("::")[-1].split("[", 1)[1][:-1])
        found[name] = {"verdict": entry["verdict"], "claim": entry["claim"], "summary": _summary(entry),
                       "nodeid": entry["nodeid"], "profile": evidence["run"].get("profile")}
    return {"identity": identity, "format": FORMAT, "findings": found}
