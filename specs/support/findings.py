"""Findings: claims refuted (or vacuous) on a bundled checkpoint, recorded against its identity and matched on
their verdict.

``checkpoints/<name>/findings.json`` = ``{"identity", "format": 2, "findings": {spec id: {"verdict", "claim",
"summary", "nodeid", "profile"}}}``. A finding is *expected* only on the agent with that identity, and only if
the spec ends with that same verdict (``refuted`` or ``vacuous``); then it is reported as an expected failure
(xfailed). Anything else fails the run: a pass (the finding no longer reproduces), a different verdict (e.g.
refuted -> vacuous, or not-applicable), an exception or a setup error. On any other checkpoint the spec runs
plainly. Saved fuzz regressions (``specs/regressions/``) follow the same rule with verdict ``refuted``.

**Spec ids.** A finding is keyed by the spec's stable id: the function's name, unless the spec says
``@pytest.mark.spec_id("...")``. A finding of one parametrization only (e.g. one saved fuzz scene) is keyed
``spec id[parameter id]``; it takes precedence over a finding of the whole spec. Renaming a spec keeps its
findings if the renamed function carries its old id in that marker. Format 1 files (``"kind": "refuted"`` /
``"vacuous on this checkpoint"``, no ``verdict``) are read as format 2.

**Budgets.** A finding records the profile it was found under. A run under a *smaller* budget (``quick`` below
``default`` below ``full``) that ends ``inconclusive`` or ``unmeasured`` does not contradict it: that budget cannot
decide the claim, so the spec keeps its own outcome (a skip) with a note naming the finding. For a ``vacuous``
finding the same holds for ``supported``: vacuity rests on evidence that the negative control holds too, and a
smaller budget that does not find that evidence says nothing against it (the spec keeps its pass). Any other verdict is
judged as above, so a smaller budget that decides the claim the other way still fails the run; under the same or a
larger budget, an undecided spec fails it too (the finding did not reproduce).

**Stale findings.** A finding whose spec id no spec under ``specs/`` defines would never be expected, so it would
be dropped in silence (a spec renamed without its ``spec_id`` marker). ``defined_spec_ids`` reads the ids from the
spec files' source, not from the collected items, so a run narrowed by a path, ``-m`` or ``-k`` still sees them all;
the plugin stops such a run with a usage error that names the stale ids.
"""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from interp.vocabulary import (FINDING_VERDICTS, INCONCLUSIVE, REFUTED, SUPPORTED, UNMEASURED, VACUOUS, finding_key,
                              finding_spec_id)
from specs.support.budget import PROFILES

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
FORMAT = 2
EXPECTED_KEY = pytest.StashKey["Expected"]()


@dataclasses.dataclass(frozen=True)
class Expected:
    """A finding this spec must reproduce on the agent under test: the same verdict, nothing else."""

    verdict: str
    identity: str
    summary: str
    source: str  # "findings.json" file or saved regression it came from
    profile: str | None = None  # the budget it was found under (None: any budget must reproduce it)


def _smaller_budget(run_profile: str | None, found_profile: str | None) -> bool:
    """True when ``run_profile`` is a smaller budget than the one the finding was found under."""
    order = list(PROFILES)
    return (run_profile in order and found_profile in order
            and order.index(run_profile) < order.index(found_profile))


def spec_id(item: pytest.Item) -> str:
    """A spec's stable id: its ``spec_id`` marker's argument, else the test function's name."""
    marker = item.get_closest_marker("spec_id")
    if marker is not None and marker.args:
        return str(marker.args[0])
    return getattr(item, "originalname", None) or item.name


def finding_for(known: dict[str, dict], item: pytest.Item) -> dict | None:
    """The finding ``item`` must reproduce: the one keyed to its own parametrization (``id[param]``), else the
    spec's."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and finding_key(spec_id(item), callspec.id) in known:
        return known[finding_key(spec_id(item), callspec.id)]
    return known.get(spec_id(item))


def _marker_ids(decorators: list[ast.expr]) -> set[str]:
    """The string arguments of ``@pytest.mark.spec_id("...")`` decorators."""
    out = set()
    for dec in decorators:
        if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "spec_id"
                and dec.args and isinstance(dec.args[0], ast.Constant) and isinstance(dec.args[0].value, str)):
            out.add(dec.args[0].value)
    return out


def defined_spec_ids(folder: Path) -> set[str]:
    """Every spec id defined under ``folder``: the names of its ``test_*`` functions and their ``spec_id`` markers.
    Hand-written AST scan: a source scan sees the specs a ``-k``/``-m``/path selection leaves out."""
    ids: set[str] = set()
    for path in sorted(Path(folder).rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                ids.add(node.name)
                ids |= _marker_ids(node.decorator_list)
    return ids


def stale_findings(known: dict[str, dict], ids: set[str]) -> list[str]:
    """The spec ids of ``known`` findings that no spec defines, each with the file it comes from (a
    parametrization's key ``id[param]`` counts as its spec's id)."""
    return [f"{name} ({finding.get('_source', 'findings.json')})" for name, finding in sorted(known.items())
            if finding_spec_id(name) not in ids]


def _verdict_of(finding: dict) -> str:
    verdict = finding.get("verdict")
    if verdict is None:  # format 1
        verdict = VACUOUS if VACUOUS in str(finding.get("kind", "")) else REFUTED
    if verdict not in FINDING_VERDICTS:
        raise ValueError(f"a finding's verdict must be one of {FINDING_VERDICTS}, got {verdict!r}")
    return verdict


def read_findings(path: Path) -> dict:
    """One findings file as format 2 (format 1 upgraded in memory)."""
    data = json.loads(Path(path).read_text())
    findings = {name: {**f, "verdict": _verdict_of(f)} for name, f in data.get("findings", {}).items()}
    for f in findings.values():
        f.pop("kind", None)
    return {"identity": data["identity"], "format": FORMAT, "findings": findings}


def all_findings(folder: Path | None = None) -> dict[str, dict]:
    """identity -> {spec id -> finding} over every ``findings.json`` under ``folder`` (default: the bundled
    checkpoints, zoo members one level deeper included)."""
    found: dict[str, dict] = {}
    for path in sorted(Path(folder or CHECKPOINTS).rglob("findings.json")):
        data = read_findings(path)
        found.setdefault(data["identity"], {}).update(
            {k: {**v, "_source": str(path)} for k, v in data["findings"].items()})
    return found


def findings_for(identity: str, folder: Path | None = None) -> dict[str, dict]:
    return all_findings(folder).get(identity, {})


def expect(item: pytest.Item, verdict: str, identity: str, summary: str, source: str,
           profile: str | None = None) -> None:
    """Mark ``item`` as expected to end with ``verdict`` (a finding or a saved fuzz failure), found under
    ``profile``."""
    item.stash[EXPECTED_KEY] = Expected(verdict, identity, summary, source, profile)


def expected(item: pytest.Item) -> Expected | None:
    return item.stash.get(EXPECTED_KEY, None)


def judge(expected: Expected, when: str, outcome: str, verdict: str | None,
          run_profile: str | None = None) -> tuple[str, str]:
    """What a spec with an expected finding really did: ("xfailed", why) if it ended with the expected verdict
    in its call phase; ("undecided", why) if a smaller budget than the finding's left it undecided (the spec keeps
    its own outcome); else ("failed", why). ``outcome`` is pytest's (passed / failed / skipped), ``verdict`` the
    evidence entry's (None: no verdict, e.g. an exception)."""
    label = f"known finding on {expected.identity} ({expected.verdict}; {expected.source})"
    if when == "call" and outcome == "failed" and verdict == expected.verdict:
        return "xfailed", f"{label}: reproduced. {expected.summary}"
    undecided = (INCONCLUSIVE, UNMEASURED)
    if expected.verdict == VACUOUS:  # vacuity needs evidence that the control holds; its absence contradicts nothing
        undecided += (SUPPORTED,)
    if verdict in undecided and _smaller_budget(run_profile, expected.profile):
        return "undecided", (f"{label}, found under the {expected.profile} profile: {verdict} under {run_profile}, a "
                             "budget too small to decide it (not a contradiction)")
    if outcome == "passed" and when == "call":
        got = "passed (supported): the finding no longer reproduces"
    elif verdict is None:
        got = f"{'an error in ' + when if when != 'call' else 'an exception'} and no verdict"
    else:
        got = f"verdict {verdict}"
    return "failed", f"{label}: expected verdict {expected.verdict}, got {got}"


def _run_profile(item: pytest.Item) -> str | None:
    try:
        return item.config.getoption("--profile")
    except ValueError:  # a pytest run without the spec plugin's options
        return None


def apply(item: pytest.Item, report: pytest.TestReport, verdict: str | None) -> str | None:
    """Turn ``report`` into an expected failure or a failure according to ``judge`` (in place). Returns the new
    outcome ("xfailed" / "failed") or None when the item expects nothing or the phase is irrelevant."""
    exp = expected(item)
    if exp is None or report.when == "teardown" or (report.when == "setup" and report.outcome == "passed"):
        return None
    outcome, why = judge(exp, report.when, report.outcome, verdict, _run_profile(item))
    if outcome == "undecided":
        report.sections.append(("hypodrive finding", why))
        return None
    if outcome == "xfailed":
        report.outcome = "skipped"
        report.wasxfail = why
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        if report.outcome != "failed" or report.longrepr is None:
            report.longrepr = why
        elif crash is not None:  # keep the traceback; say first why it fails the run
            crash.message = f"{why}\n{crash.message}"
        else:
            report.sections.append(("hypodrive finding", why))
        report.outcome = "failed"
    return outcome
