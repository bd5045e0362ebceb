"""Findings: claims refuted on a bundled checkpoint, recorded against its identity.

``checkpoints/<name>/findings.json`` maps spec names to {claim, summary}; the file names the identity it
belongs to. The plugin marks those specs ``xfail(strict=True)`` only when the agent under test has that
identity, so on any other checkpoint the spec runs plainly, and if the finding ever stops reproducing
the strict xfail turns red.
"""
from __future__ import annotations

import json
from pathlib import Path

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def all_findings() -> dict[str, dict]:
    """identity -> {spec name -> finding}."""
    found: dict[str, dict] = {}
    for path in sorted(CHECKPOINTS.glob("*/findings.json")):
        data = json.loads(path.read_text())
        found.setdefault(data["identity"], {}).update(data.get("findings", {}))
    return found


def findings_for(identity: str) -> dict[str, dict]:
    return all_findings().get(identity, {})
