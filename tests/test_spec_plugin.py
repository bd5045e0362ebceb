"""The spec plugin end to end, in a subprocess on a throwaway spec file: findings are expected only with their
verdict (an exception, a turn to vacuous or not-applicable, or a pass fails the run), a renamed spec keeps its
finding through its ``spec_id``, malformed figures and effects fail the spec at once naming the field, and every
collected spec (errors, skips and not-applicable ones included) is listed in evidence.json."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = '''
from pathlib import Path

import specs.plugin as _plugin
import specs.support.findings as _findings

_plugin.SPECS_DIR = Path(__file__).parent / "specs"  # the specs under this folder get evidence entries
_findings.CHECKPOINTS = Path(__file__).parent / "checkpoints"
pytest_plugins = ["specs.plugin"]
'''

SPECS = '''
import pytest

pytestmark = pytest.mark.mechanism


@pytest.fixture
def broken():
    raise RuntimeError("setup broke")


@pytest.fixture
def missing_role():
    from specs.support.roles import RoleResolution, require

    return require(RoleResolution("crossing", (), reason="no head beats the null maximum"))


def test_refuted_as_recorded(agent, evidence):
    """A: refuted, as its finding says."""
    evidence.conclude(False, "check failed")


def test_turns_vacuous(agent, evidence):
    """B: recorded refuted, now vacuous."""
    evidence.control("a control", True, "held too")
    evidence.conclude(True, "held")


def test_raises(agent, evidence):
    """C: recorded refuted, now raises."""
    raise ValueError("boom")


def test_now_passes(agent, evidence):
    """D: recorded refuted, now passes."""
    evidence.conclude(True, "fine")


def test_expected_but_not_applicable(missing_role, evidence):
    """E: recorded refuted, now its role is missing."""


@pytest.mark.spec_id("test_old_name")
def test_renamed(agent, evidence):
    """F: renamed, finding kept by its spec id."""
    evidence.conclude(False, "still refuted")


def test_not_applicable_plain(missing_role, evidence):
    """G: no finding, role missing."""


def test_setup_error(broken, evidence):
    """H: no finding, its fixture breaks."""


def test_bad_figure(agent, evidence):
    """I: a forest figure without its xlabel."""
    evidence.figure("forest", rows=[{"label": "a", "value": 0.1, "ci": [0.0, 1.0]}])
    evidence.conclude(True, "never reached")


def test_bad_effect(agent, evidence):
    """J: an effect whose CI is upside down."""
    evidence.effect("x", 0.5, (0.6, 0.4), 10)
    evidence.conclude(True, "never reached")


def test_plain_skip(evidence):
    """K: skipped for no reason of the agent."""
    pytest.skip("opt-in")
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "specs").mkdir()
    (folder / "specs" / "test_plugin_cases.py").write_text(textwrap.dedent(SPECS))
    identity = json.loads((ROOT / "checkpoints" / "reference" / "findings.json").read_text())["identity"]
    found = {name: {"verdict": "refuted", "claim": name, "summary": "recorded", "nodeid": name}
             for name in ("test_refuted_as_recorded", "test_turns_vacuous", "test_raises", "test_now_passes",
                          "test_expected_but_not_applicable", "test_old_name")}
    (folder / "checkpoints" / "x").mkdir(parents=True)
    (folder / "checkpoints" / "x" / "findings.json").write_text(json.dumps({"identity": identity, "format": 2,
                                                                          "findings": found}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPODRIVE_ROOT": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "specs/test_plugin_cases.py", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "--report-dir=report", "-rA", "-q"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    evidence = json.loads((folder / "report" / "evidence.json").read_text())
    by_name = {e["nodeid"].split("::")[-1]: e for e in evidence["specs"]}
    return proc, evidence, by_name


def test_every_collected_spec_is_listed_with_its_verdict(run):
    proc, evidence, by_name = run
    assert evidence["schema"] == 2
    assert len(by_name) == 11, (sorted(by_name), proc.stdout[-3000:])
    assert by_name["test_not_applicable_plain"]["verdict"] == "not-applicable"
    assert by_name["test_not_applicable_plain"]["outcome"] == "skipped"
    assert by_name["test_setup_error"]["outcome"] == "error" and by_name["test_setup_error"]["verdict"] is None
    assert by_name["test_plain_skip"]["outcome"] == "skipped" and by_name["test_plain_skip"]["verdict"] is None
    assert "hypodrive evidence" in proc.stdout and "test_not_applicable_plain" in proc.stdout.split("hypodrive evidence")[1]


def test_a_finding_is_expected_only_with_its_verdict(run):
    proc, _, by_name = run
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert by_name["test_refuted_as_recorded"]["outcome"] == "xfailed"
    assert by_name["test_refuted_as_recorded"]["verdict"] == "refuted"
    assert by_name["test_renamed"]["outcome"] == "xfailed"  # found through its spec id
    for name, got in (("test_turns_vacuous", "verdict vacuous"), ("test_raises", "an exception and no verdict"),
                      ("test_now_passes", "passed (supported)"), ("test_expected_but_not_applicable", "not-applicable")):
        entry = by_name[name]
        assert entry["outcome"] in ("failed", "error"), (name, entry)
        assert "expected verdict refuted" in entry["reason"] and got in entry["reason"], (name, entry["reason"])
    assert by_name["test_turns_vacuous"]["verdict"] == "vacuous"


def test_malformed_figures_and_effects_fail_the_spec_at_once_naming_the_field(run):
    _, _, by_name = run
    figure, effect = by_name["test_bad_figure"], by_name["test_bad_effect"]
    assert figure["outcome"] == "failed" and "xlabel" in figure["reason"] and figure["verdict"] is None
    assert effect["outcome"] == "failed" and "effect.ci" in effect["reason"] and "above hi" in effect["reason"]

