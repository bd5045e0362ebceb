"""The evidence contract (reports/schema.py) as the spec side, the diff and the findings use it: one vocabulary,
version 1 files upgraded, effects and figures checked when recorded, verdicts from outcomes, findings judged on
their verdict, lost head roles as regressions."""
from __future__ import annotations

import copy
import json

import pytest

from reports import schema
from reports.compare.diff import diff_evidence, role_changes
from reports.run.findings import findings_from_evidence
from specs.support import evidence as ev_mod
from specs.support import findings as F
from specs.support.budget import PROFILES
from specs.support.evidence import SpecEvidence, entry_verdict


def _entry(nodeid: str, verdict, outcome: str, reason: str | None = None, **extra) -> dict:
    entry = {"nodeid": nodeid, "claim": "c", "verdict": verdict, "outcome": outcome, "kind": "mechanism",
             "checkpoint": "abc", "effects": [], "figures": [], "notes": "", **extra}
    if reason is not None:
        entry["reason"] = reason
    return entry


def _run(specs, schema_version=schema.SCHEMA_VERSION, roles=None) -> dict:
    run = {"checkpoint": {"identity": "abc"}, "profile": "quick"}
    if roles is not None:
        run["head_roles"] = roles
    return {"schema": schema_version, "run": run, "specs": specs}


def test_the_spec_side_takes_its_vocabulary_from_the_schema():
    assert schema.VERDICTS == ("supported", "refuted", "inconclusive", "vacuous", "not-applicable", "unmeasured")
    assert ev_mod.KINDS is schema.KINDS and ev_mod.EFFECT_FIELDS == schema.EFFECT_OPTIONAL
    assert "verdict" in schema.EFFECT_OPTIONAL and "replay" in schema.FIGURE_KINDS
    assert schema.SCHEMA_VERSION == 2


def test_version_1_files_are_upgraded_mapping_vacuous_errors_to_vacuous(tmp_path):
    old = _run([_entry("a::vac", "error", "failed", "vacuous: the check also holds on its negative control x"),
                _entry("a::boom", "error", "failed", "ValueError: boom"),
                _entry("a::known", "xfail", "xfailed")], schema_version=1)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = schema.load(path)
    assert loaded["schema"] == 2
    assert [e["verdict"] for e in loaded["specs"]] == ["vacuous", None, "refuted"]
    with pytest.raises(schema.EvidenceError, match="'error' is not one of"):
        schema.validate({**old, "schema": 2})  # the current version has no 'error' verdict


def test_diff_reads_an_old_and_a_new_file_and_ranks_the_new_verdicts():
    old = _run([_entry("a::vac", "error", "failed", "vacuous: held on control"),
                _entry("a::s", "supported", "passed")], schema_version=1)
    new = _run([_entry("a::vac", "vacuous", "failed"), _entry("a::s", "not-applicable", "skipped")])
    diff = diff_evidence(old, new)
    assert [(c.nodeid, c.base, c.new, c.worse) for c in diff.verdict_changes] == [
        ("a::s", "supported", "not-applicable", True)]
    assert diff.regressed


def test_a_lost_role_is_a_regression_and_a_moved_role_is_reported():
    base = {"crossing": {"head": 1, "heads": [1]}, "safety": {"head": 2, "heads": [2, 0]}, "far": {"head": None}}
    new = {"crossing": {"head": None, "heads": []}, "safety": {"head": 3, "heads": [3]}}
    changes = {c.role: c for c in role_changes(base, new)}
    assert set(changes) == {"crossing", "safety"}
    assert changes["crossing"].lost and not changes["safety"].lost
    diff = diff_evidence(_run([], roles=base), _run([], roles=new))
    assert diff.regressed and any("role 'crossing' lost" in r for r in diff.regressions)
    assert "Head role changes (2)" in diff.format_text()
    assert not diff_evidence(_run([], roles=base), _run([], roles=copy.deepcopy(base))).role_changes
    unmeasured = {**base, "safety": {"head": None, "heads": [], "measured": False}}  # e.g. a quick run
    assert [c.role for c in role_changes(base, unmeasured)] == []


def test_findings_are_written_keyed_by_spec_id_with_their_verdict():
    evidence = _run([_entry("s.py::test_a", "refuted", "failed", spec_id="test_a"),
                     _entry("s.py::test_b", "vacuous", "xfailed", spec_id="old_b"),
                     _entry("s.py::test_c", None, "failed"), _entry("s.py::test_d", "not-applicable", "skipped"),
                     _entry("s.py::test_e[one]", "refuted", "failed", spec_id="test_e"),
                     _entry("s.py::test_e[two]", "supported", "passed", spec_id="test_e")])
    found = findings_from_evidence(evidence)
    assert found["format"] == 2
    assert {k: v["verdict"] for k, v in found["findings"].items()} == {
        "test_a": "refuted", "old_b": "vacuous", "test_e[one]": "refuted"}  # one parametrization, not its spec


def test_bundled_findings_load_in_format_2_and_format_1_is_read_too(tmp_path):
    for data in F.all_findings().values():
        assert all(f["verdict"] in F.FINDING_VERDICTS for f in data.values())
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "findings.json").write_text(json.dumps({"identity": "id1", "findings": {
        "t1": {"kind": "refuted", "summary": "s"}, "t2": {"kind": "vacuous on this checkpoint", "summary": "s"}}}))
    assert {k: v["verdict"] for k, v in F.findings_for("id1", tmp_path).items()} == {"t1": "refuted", "t2": "vacuous"}


@pytest.mark.parametrize("when, outcome, verdict, expected", [
    ("call", "failed", "refuted", "xfailed"),
    ("call", "failed", "vacuous", "failed"),
    ("call", "failed", None, "failed"),
    ("call", "passed", "supported", "failed"),
    ("call", "skipped", "not-applicable", "failed"),
    ("call", "skipped", "inconclusive", "failed"),
    ("setup", "failed", None, "failed"),
    ("setup", "skipped", "not-applicable", "failed"),
])
def test_a_finding_is_expected_only_with_its_own_verdict(when, outcome, verdict, expected):
    got, why = F.judge(F.Expected("refuted", "id", "summary", "findings.json"), when, outcome, verdict)
    assert got == expected
    assert ("reproduced" in why) == (expected == "xfailed")


class _Report:
    def __init__(self, outcome, longrepr=None):
        self.outcome, self.longrepr = outcome, longrepr


@pytest.mark.parametrize("verdict, ended, outcome, reason, expected", [
    (None, False, "passed", None, "supported"),
    ("refuted", True, "failed", None, "refuted"),
    ("vacuous", True, "failed", None, "vacuous"),
    ("supported", False, "failed", None, None),  # recorded, then an exception: no verdict
    ("inconclusive", True, "skipped", None, "inconclusive"),
    (None, False, "skipped", ("f", 1, "Skipped: not-applicable: the crossing role did not resolve"), "not-applicable"),
    (None, False, "skipped", ("f", 1, "Skipped: opt-in"), None),
])
def test_an_entry_keeps_a_verdict_only_when_the_spec_itself_decided(verdict, ended, outcome, reason, expected):
    assert entry_verdict(verdict, ended, outcome, _Report(outcome, reason) if reason else None) == expected


def _evidence() -> SpecEvidence:
    return SpecEvidence("s.py::t", "t", "claim", "mechanism", "abc", PROFILES["quick"])


@pytest.mark.parametrize("call, field", [
    (lambda e: e.effect("x", 0.5, (0.6, 0.4), 10), "effect.ci"),
    (lambda e: e.effect("x", 0.5, (0.4, 0.6), -1), "effect.n"),
    (lambda e: e.effect("x", 0.5, None, 10, better="up"), "effect.better"),
    (lambda e: e.effect("x", 0.5, None, 10, verdict="maybe"), "effect.verdict"),
    (lambda e: e.figure("forest", rows=[{"label": "a", "value": 0.1, "ci": [0, 1]}]), "'xlabel'"),
    (lambda e: e.figure("bars", labels=["a", "b"], values=[1.0]), "figure.values"),
    (lambda e: e.figure("pie", values=[1]), "figure.kind"),
])
def test_a_malformed_effect_or_figure_fails_when_recorded_naming_the_field(call, field):
    ev = _evidence()
    with pytest.raises(schema.EvidenceError, match=field.replace(".", r"\.").replace("'", "'")):
        call(ev)
    assert not ev.effects and not ev.figures


def test_a_well_formed_effect_with_its_own_verdict_is_kept():
    ev = _evidence()
    ev.effect("x", 0.5, (0.4, 0.6), 10, verdict="supported", better="higher", extra_thing=3)
    assert ev.effects[0]["verdict"] == "supported" and "extra_thing=3" in ev.effects[0]["note"]
    with pytest.raises(schema.EvidenceError, match="already recorded"):
        ev.effect("x", 0.1, None, 1)


def test_conclude_marks_vacuous_and_refuted():
    ev = _evidence()
    ev.control("a control", True, "held")
    with pytest.raises(pytest.fail.Exception, match="^vacuous"):
        ev.conclude(True, "held")
    assert ev.verdict == "vacuous" and ev.ended
    ev = _evidence()
    with pytest.raises(pytest.fail.Exception, match="^refuted"):
        ev.conclude(False, "no")
    assert ev.verdict == "refuted"


@pytest.mark.parametrize("heads, expected, outcome", [
    (("refuted", "supported"), "supported", None),  # one head suffices
    (("refuted", "refuted"), "refuted", pytest.fail.Exception),  # every head refuted
    (("refuted", "inconclusive"), "inconclusive", pytest.skip.Exception),  # one head undecided
    ((), "inconclusive", pytest.skip.Exception),  # no head decided anything: never refuted by default
])
def test_a_family_of_head_verdicts_decides_the_spec(heads, expected, outcome):
    from types import SimpleNamespace

    ev = _evidence()
    verdicts = [SimpleNamespace(verdict=v) for v in heads]
    if outcome is None:
        ev.conclude_family(verdicts, "summary", "no head")
    else:
        with pytest.raises(outcome, match="summary"):
            ev.conclude_family(verdicts, "summary", "no head")
    assert ev.verdict == expected


def test_a_supported_family_with_a_control_that_holds_is_vacuous():
    from types import SimpleNamespace

    ev = _evidence()
    ev.control("A/A", True, "the plain agent 'beat' itself")
    with pytest.raises(pytest.fail.Exception, match="^vacuous"):
        ev.conclude_family([SimpleNamespace(verdict="supported")], "summary", "no head")
    assert ev.verdict == "vacuous"
