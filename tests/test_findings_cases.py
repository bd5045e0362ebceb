"""Each way a recorded finding can go, on its own, in its own pytest run: the run's exit code says it.

A finding is a claim recorded as refuted on one checkpoint. Reproduced (the same verdict) it is an expected failure
and the run passes (exit 0); anything else fails the run (exit 1): the spec raises, turns vacuous, passes, or gets
another verdict (not-applicable). One throwaway spec per run, so no other failing test can make the exit code.
A finding whose spec id no spec under ``specs/`` defines stops the run, naming it, also when ``-k`` or ``-m``
selects other specs; a finding for a spec that ``-k`` deselects is not stale."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_spec_plugin import CONFTEST

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = json.loads((ROOT / "checkpoints" / "reference" / "findings.json").read_text())["identity"]

BODIES = {
    "reproduced": 'evidence.conclude(False, "check failed")',
    "raises": 'raise ValueError("boom")',
    "vacuous": 'evidence.control("a control", True, "held too")\n    evidence.conclude(True, "held")',
    "passes": 'evidence.conclude(True, "fine")',
}


def _run(tmp_path: Path, spec: str, findings: dict[str, str], *args: str,
         other_file: str | None = None, found_under: str | None = None) -> subprocess.CompletedProcess:
    """pytest on one throwaway spec file, with ``findings`` (spec id -> verdict) recorded for the reference
    (under profile ``found_under``); ``other_file``: a second spec file under specs/ that the run does not select."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "test_case.py").write_text(textwrap.dedent(spec))
    if other_file is not None:
        (tmp_path / "specs" / "test_elsewhere.py").write_text(textwrap.dedent(other_file))
    (tmp_path / "checkpoints" / "x").mkdir(parents=True)
    found = {name: {"verdict": verdict, "claim": name, "summary": "recorded", "nodeid": name, "profile": found_under}
             for name, verdict in findings.items()}
    (tmp_path / "checkpoints" / "x" / "findings.json").write_text(
        json.dumps({"identity": IDENTITY, "format": 2, "findings": found}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPODRIVE_ROOT": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "specs/test_case.py", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "--report-dir=report", "-rA", "-q", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _one_spec(body: str) -> str:
    return f'''
import pytest

pytestmark = pytest.mark.mechanism


def test_case(agent, evidence):
    {body}
'''


def _entry(tmp_path: Path) -> dict:
    (entry,) = json.loads((tmp_path / "report" / "evidence.json").read_text())["specs"]
    return entry


def test_a_reproduced_finding_passes_the_run(tmp_path):
    proc = _run(tmp_path, _one_spec(BODIES["reproduced"]), {"test_case": "refuted"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert _entry(tmp_path)["outcome"] == "xfailed" and "1 xfailed" in proc.stdout


def test_control_the_same_spec_without_its_finding_fails_the_run(tmp_path):
    # the planted refutation is a real failure: only the recorded finding turns it into an expected one
    proc = _run(tmp_path, _one_spec(BODIES["reproduced"]), {})
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert _entry(tmp_path)["outcome"] == "failed" and _entry(tmp_path)["verdict"] == "refuted"


@pytest.mark.parametrize("case, got", [("raises", "an exception and no verdict"), ("vacuous", "verdict vacuous"),
                                       ("passes", "passed (supported)")])
def test_a_finding_that_does_not_reproduce_fails_the_run_on_its_own(tmp_path, case, got):
    proc = _run(tmp_path, _one_spec(BODIES[case]), {"test_case": "refuted"})
    assert proc.returncode == 1, proc.stdout[-3000:]
    entry = _entry(tmp_path)
    assert entry["outcome"] == "failed", entry
    assert "expected verdict refuted" in entry["reason"] and got in entry["reason"], entry["reason"]


def _needs_role(role: str, reason: str) -> str:
    """A throwaway spec that needs ``role``, which the agent does not hold for ``reason`` (not-applicable, or
    unmeasured when the reason says so)."""
    return f'''
import pytest

pytestmark = pytest.mark.mechanism


@pytest.fixture
def role_head():
    from specs.support.roles import RoleResolution, require

    return require(RoleResolution({role!r}, (), reason={reason!r}))


def test_case(role_head, evidence):
    pass
'''


def test_a_finding_that_gets_another_verdict_fails_the_run_on_its_own(tmp_path):
    proc = _run(tmp_path, _needs_role("crossing", "no head beats the null maximum"), {"test_case": "refuted"})
    assert proc.returncode == 1, proc.stdout[-3000:]
    entry = _entry(tmp_path)
    assert entry["outcome"] in ("failed", "error") and "not-applicable" in entry["reason"], entry


TWO_SPECS = f'''
import pytest

pytestmark = pytest.mark.mechanism


def test_case(agent, evidence):
    {BODIES["reproduced"]}


@pytest.mark.slow
@pytest.mark.spec_id("test_old_name")
def test_other(agent, evidence):
    {BODIES["reproduced"]}
'''


def test_a_finding_whose_spec_id_no_spec_defines_fails_the_run_naming_it(tmp_path):
    proc = _run(tmp_path, TWO_SPECS, {"test_case": "refuted", "test_renamed_without_its_id": "refuted"})
    assert proc.returncode == 4, proc.stdout[-3000:]  # pytest's usage error, before any spec runs
    out = proc.stdout + proc.stderr
    assert "test_renamed_without_its_id" in out and "spec_id" in out, out[-3000:]
    assert "test_case (" not in out.split("defines:")[-1]  # only the stale id is named


@pytest.mark.parametrize("select", [["-k", "test_case"], ["-m", "not slow"]])
def test_a_narrowed_run_sees_every_defined_spec_id(tmp_path, select):
    # test_other (id test_old_name) is deselected by -k or by -m: its finding is not stale
    proc = _run(tmp_path, TWO_SPECS, {"test_case": "refuted", "test_old_name": "refuted"}, *select)
    assert "no spec under" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_a_run_of_one_spec_file_sees_the_spec_ids_of_the_others(tmp_path):
    # specs/test_elsewhere.py is never collected: only reading the spec files' source finds its spec_id
    elsewhere = TWO_SPECS.replace("def test_case(", "def test_unused(")
    proc = _run(tmp_path, _one_spec(BODIES["reproduced"]), {"test_case": "refuted", "test_old_name": "refuted"},
                other_file=elsewhere)
    assert "no spec under" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_a_narrowed_run_still_stops_on_a_stale_finding(tmp_path):
    proc = _run(tmp_path, TWO_SPECS, {"test_case": "refuted", "test_gone": "refuted"}, "-k", "test_case")
    assert proc.returncode == 4 and "test_gone" in proc.stdout + proc.stderr, proc.stdout[-3000:]


PARAMETRIZED = f'''
import pytest

pytestmark = pytest.mark.mechanism


@pytest.mark.parametrize("fails", [True, False], ids=["bad", "good"])
def test_case(fails, agent, evidence):
    evidence.conclude(not fails, "check failed" if fails else "fine")
'''


def test_a_finding_of_one_parametrization_is_expected_there_only(tmp_path):
    proc = _run(tmp_path, PARAMETRIZED, {"test_case[bad]": "refuted"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed" in proc.stdout and "1 xfailed" in proc.stdout, proc.stdout[-3000:]


def test_control_a_finding_of_the_other_parametrization_fails_the_run(tmp_path):
    # keyed to the parametrization that passes: that one fails the run (the finding does not reproduce), and the
    # refuted one is a plain failure
    proc = _run(tmp_path, PARAMETRIZED, {"test_case[good]": "refuted"})
    assert proc.returncode == 1 and "2 failed" in proc.stdout, proc.stdout[-3000:]


def test_a_parametrization_key_of_an_undefined_spec_is_stale(tmp_path):
    proc = _run(tmp_path, PARAMETRIZED, {"test_gone[bad]": "refuted"})
    assert proc.returncode == 4 and "test_gone[bad]" in proc.stdout + proc.stderr, proc.stdout[-3000:]


UNDECIDED = _one_spec('evidence.conclude_inconclusive("the budget ran out")')


def test_a_smaller_budget_that_cannot_decide_a_finding_does_not_contradict_it(tmp_path):
    proc = _run(tmp_path, UNDECIDED, {"test_case": "refuted"}, "--profile=quick", found_under="default")
    assert proc.returncode == 0, proc.stdout[-3000:]
    entry = _entry(tmp_path)
    assert entry["outcome"] == "skipped" and entry["verdict"] == "inconclusive", entry


@pytest.mark.parametrize("run, found", [("full", "default"), ("quick", "quick"), ("quick", None)])
def test_control_an_undecided_spec_at_the_findings_own_budget_or_larger_fails_the_run(tmp_path, run, found):
    proc = _run(tmp_path, UNDECIDED, {"test_case": "refuted"}, f"--profile={run}", found_under=found)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "expected verdict refuted" in _entry(tmp_path)["reason"]


def test_a_smaller_budget_that_decides_the_other_way_still_fails_the_run(tmp_path):
    proc = _run(tmp_path, _one_spec(BODIES["passes"]), {"test_case": "refuted"}, "--profile=quick",
                found_under="default")
    assert proc.returncode == 1 and "passed (supported)" in _entry(tmp_path)["reason"], proc.stdout[-3000:]


def test_a_vacuous_finding_is_not_contradicted_by_a_smaller_budget_that_misses_the_controls_evidence(tmp_path):
    proc = _run(tmp_path, _one_spec(BODIES["passes"]), {"test_case": "vacuous"}, "--profile=quick",
                found_under="default")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert _entry(tmp_path)["outcome"] == "passed"


@pytest.mark.parametrize("run, body", [("default", "passes"), ("quick", "reproduced")])
def test_control_a_vacuous_finding_still_fails_at_its_own_budget_or_when_the_check_itself_fails(tmp_path, run, body):
    proc = _run(tmp_path, _one_spec(BODIES[body]), {"test_case": "vacuous"}, f"--profile={run}",
                found_under="default")
    assert proc.returncode == 1, proc.stdout[-3000:]


def test_an_unmeasured_spec_is_listed_in_the_summary_by_its_spec_id(tmp_path):
    """A spec needing a causal role the budget could not decide ends ``unmeasured`` (a skip), and the run's
    summary names it by its spec id."""
    proc = _run(tmp_path, _needs_role("safety", "unmeasured: this budget decides only large changes"), {})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert _entry(tmp_path)["verdict"] == "unmeasured"
    assert "unmeasured under profile default (1): test_case" in proc.stdout, proc.stdout[-3000:]
