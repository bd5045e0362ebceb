"""Findings: the claims an evidence run refuted, written next to the checkpoint they were found on.

``checkpoints/<name>/findings.json`` = {"identity": ..., "findings": {spec name: {claim, summary, evidence}}}.
The spec plugin turns each into a strict xfail for that identity only. Written by a person's decision
(``python -m reports findings``), never automatically: a refuted claim is a finding only once reviewed.
"""
from __future__ import annotations

from typing import Any


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
    """The refuted specs of one run, and those whose check could not bite on this checkpoint (vacuous: it also
    held on its negative control), optionally only those named in ``include``, keyed by spec name."""
    identity = evidence["run"]["checkpoint"]["identity"]
    found = {}
    for entry in evidence["specs"]:
        name = entry.get("data", {}).get("name") or entry["nodeid"].split("::")[-1]
        vacuous = "vacuous" in (entry.get("reason") or "")
        if entry.get("outcome") not in ("failed", "xfailed") or not (entry.get("verdict") == "refuted" or vacuous):
            continue
        if include is not None and name not in include:
            continue
        found[name] = {"claim": entry["claim"], "summary": _summary(entry), "nodeid": entry["nodeid"],
                       "kind": "vacuous on this checkpoint" if vacuous else "refuted",
                       "profile": evidence["run"].get("profile")}
    return {"identity": identity, "findings": found}
