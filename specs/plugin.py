"""hypodrive's pytest plugin: the agent under test, budgets, head roles, evidence, findings and the report.

Loaded by the root ``conftest.py`` (``pytest_plugins``). One option group (``pytest --help``, "hypodrive").
Session state is one typed ``Session`` in ``config.stash``; no module globals. Each spec
records what it measured through the ``evidence`` fixture; the evidence travels on the test report
(``user_properties``, so it survives pytest-xdist), is summarised one line per spec at the end, and is
written as ``REPORT_DIR/evidence.json`` + ``index.html``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from interp.vocabulary import UNMEASURED
from specs.support.budget import PROFILES, Budget
from specs.support.evidence import EVIDENCE_KEY, SpecEvidence
from specs.support import findings as findings_mod

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "reference"
BUNDLED_SPECS_DIR = ROOT / "specs"  # the specs the bundled checkpoints' findings are about
SPECS_DIR = BUNDLED_SPECS_DIR  # tests under it are specs: each gets an evidence entry (a user's own folder may replace it)


@dataclasses.dataclass
class Session:
    """What one pytest process knows about the run (the xdist controller gathers the workers' evidence)."""

    budget: Budget
    started: float = dataclasses.field(default_factory=time.time)
    agent: Any = None  # the interp Agent under test, once loaded
    agent_error: Exception | None = None  # why it could not be loaded (the specs that need it report it)
    evidence: list[dict] = dataclasses.field(default_factory=list)  # one entry per spec, as evidence.json holds
    seeds: dict[str, str] = dataclasses.field(default_factory=dict)  # seed ranges used, by name
    head_roles: dict | None = None
    role_map: dict | None = None
    report: Any = None  # the written report's path, or why it was not written
    diff: dict | None = None  # the comparison with a baseline run


SESSION = pytest.StashKey[Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hypodrive", "hypodrive: specs about an ego-attention driving agent")
    group.addoption("--checkpoint", default=None,
                    help=f"checkpoint file or folder of the agent under test (default: {DEFAULT_CHECKPOINT.relative_to(ROOT)})")
    group.addoption("--agent-config", default=None, help="rl-agents agent config JSON (needed for rl-agents .tar files)")
    group.addoption("--env-config", default=None, help="rl-agents env config JSON (default: the checkpoint's own)")
    group.addoption("--profile", default="default", choices=sorted(PROFILES),
                    help="budget: quick (smoke, <= 3 min), default (<= 10 min cold), full (hundreds of paired episodes)")
    group.addoption("--report-dir", default=str(ROOT / "report"), help="where index.html and evidence.json go (default: report/)")
    group.addoption("--no-report", action="store_true", help="do not write the HTML/JSON report")
    group.addoption("--baseline-checkpoint", default=None,
                    help="compare against another checkpoint: the same specs run on it (in a subprocess, same profile) "
                         "and the report shows what regressed; pytest exits non-zero on a regression")
    group.addoption("--baseline-evidence", default=None,
                    help="compare against an earlier run's evidence.json instead of re-running a baseline checkpoint")
    group.addoption("--head-role", action="append", default=[], metavar="ROLE=H",
                    help="pin a head's role instead of resolving it, e.g. --head-role crossing=2")
    group.addoption("--fuzz-minutes", type=float, default=0.0,
                    help="run each fuzz campaign spec for M minutes per search mode (guided, then random); "
                         "0: only the small ci/dev fuzz examples")
    group.addoption("--fuzz-save-regressions", action="store_true",
                    help="save shrunk fuzz failures as scenario JSON under specs/regressions/ (replayed on every run)")
    group.addoption("--no-rollout-cache", action="store_true", help="simulate every episode even if cached")
    group.addoption("--seed-offset", type=int, default=0,
                    help="shift every behavioural spec's episode seeds by N (all stay below the training seeds, >= 1e6): "
                         "a second run on other seeds, e.g. to check that a diff stays quiet")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)  # tiny networks: one thread is fastest on a shared 2-core machine, and reproducible
    import fixtures.strategies  # noqa: F401  # registers hypothesis profiles (selected by --hypothesis-profile)

    config.addinivalue_line("markers", "spec_id(id): the spec's stable id for findings (keep the old name when renaming)")
    profile = config.getoption("--profile", default="default")
    config.stash[SESSION] = Session(budget=PROFILES[profile])
    config.pluginmanager.register(_EvidenceCollector(config), "hypodrive-evidence-collector")


def _session(config: pytest.Config) -> Session:
    return config.stash[SESSION]


# ------------------------------------------------------------------------------------------ the agent
def _load(config: pytest.Config, checkpoint: str | None):
    from interp.simulation.agent import load_agent

    path = checkpoint or str(DEFAULT_CHECKPOINT)
    return load_agent(path, config.getoption("--agent-config"), config.getoption("--env-config"))


@pytest.fixture(scope="session")
def agent(pytestconfig: pytest.Config):
    """The agent under test (``--checkpoint``; default the bundled reference agent)."""
    state = _session(pytestconfig)
    if state.agent is None:
        state.agent_error = None
        state.agent = _load(pytestconfig, pytestconfig.getoption("--checkpoint"))  # raises the real error
    return state.agent


@pytest.fixture(scope="session")
def seed_offset(pytestconfig: pytest.Config) -> int:
    offset = pytestconfig.getoption("--seed-offset")
    from interp.seeds import MAX_SEED_OFFSET

    if not 0 <= offset < MAX_SEED_OFFSET:  # each seed range (interp/seeds.py) is 100,000 wide
        raise pytest.UsageError(f"--seed-offset must lie in [0, {MAX_SEED_OFFSET}): shifted seeds must stay inside "
                                "their own range (interp/seeds.py)")
    return offset


@pytest.fixture(scope="session")
def budget(pytestconfig: pytest.Config) -> Budget:
    return _session(pytestconfig).budget


@pytest.fixture(scope="session")
def untrained(agent):
    """The negative control with the same architecture: default init under a fixed seed."""
    from interp.simulation.agent import untrained_agent

    return untrained_agent(agent.agent_config, agent.env_config, init_seed=0)


@pytest.fixture(scope="session")
def scene_builder(agent):
    from fixtures.builder import SceneBuilder

    return SceneBuilder(agent.env_config)


@pytest.fixture(scope="session")
def engine(pytestconfig: pytest.Config):
    """The rollout engine: env workers on all cores, records cached on disk unless --no-rollout-cache."""
    from interp.simulation.rollout import RolloutEngine

    cache = None if pytestconfig.getoption("--no-rollout-cache") else "default"
    with RolloutEngine(cache=cache) as eng:
        yield eng


def record_seeds(config: pytest.Config, name: str, seeds) -> None:
    """Note which seeds a spec used, for the report's run metadata."""
    from specs.support.evidence import seed_range

    text = seed_range(seeds)
    if text:
        _session(config).seeds[name] = text


@pytest.fixture(scope="session")
def calibration_scenes(scene_builder, budget):
    """Crossing scenes disjoint (other generator seed) from ``test_scenes``, for specs' own random-network controls
    (head roles use ``fixtures.role_scenes``' own calibration family)."""
    from specs.support.scenes import CALIBRATION_SEED, crossing_scenes

    return crossing_scenes(scene_builder, budget.calibration_scenes, CALIBRATION_SEED)


@pytest.fixture(scope="session")
def test_scenes(scene_builder, budget):
    """Crossing scenes (an observed nearest crossing vehicle) that mechanism specs test on."""
    from specs.support.scenes import TEST_SEED, crossing_scenes

    return crossing_scenes(scene_builder, budget.test_scenes, TEST_SEED)


def _roles_state(config: pytest.Config, data: dict) -> dict:
    """role -> RoleResolution from a role map, with ``--head-role`` pins; noted for the report."""
    from specs.support import roles

    state = _session(config)
    resolved = roles.resolutions(data, roles.parse_pins(config.getoption("--head-role")), data["n_heads"])
    state.role_map = data
    state.head_roles = {name: r.to_dict() for name, r in resolved.items()}
    return resolved


@pytest.fixture(scope="session")
def head_roles(pytestconfig, agent, scene_builder):
    """Role name -> RoleResolution for the agent under test: attention roles (``interp.roles``, cached per
    checkpoint identity); causal roles are added by the ``safety_head`` / ``progress_head`` fixtures."""
    from specs.support import roles

    return _roles_state(pytestconfig, roles.role_map(agent, builder=scene_builder,
                                                     use_cache=not pytestconfig.getoption("--no-rollout-cache")))


@pytest.fixture(scope="session")
def causal_head_roles(request, pytestconfig, agent, scene_builder, budget, head_roles):
    """Role name -> RoleResolution including the causal roles (rollouts on the calibration seeds, cached). Under
    the ``quick`` profile the budget decides only large effects (``interp.roles.QUICK_CAUSAL``); a role it
    cannot decide is *unmeasured* (specs needing it skip as ``unmeasured``, not ``not-applicable``)."""
    from specs.support import roles

    data = roles.role_map(agent, engine=request.getfixturevalue("engine"), causal=True, builder=scene_builder,
                          use_cache=not pytestconfig.getoption("--no-rollout-cache"), progress=True,
                          quick=budget.name == "quick")
    return _roles_state(pytestconfig, data)


@pytest.fixture(scope="session")
def crossing_head(head_roles) -> int:
    """The first head holding the ``crossing`` role; a spec needing it is not applicable if none does."""
    from specs.support.roles import require

    return require(head_roles["crossing"])


@pytest.fixture(scope="session")
def safety_head(causal_head_roles) -> int:
    """The head whose ablation raises collisions most (``safety``); not applicable if none does (unmeasured if
    the profile's budget could not decide it)."""
    from specs.support.roles import require

    return require(causal_head_roles["safety"])


@pytest.fixture(scope="session")
def progress_head(causal_head_roles) -> int:
    """The head whose ablation lowers arrivals most (``progress``); not applicable if none does (unmeasured if
    the profile's budget could not decide it)."""
    from specs.support.roles import require

    return require(causal_head_roles["progress"])


def pytest_report_header(config: pytest.Config) -> list[str]:
    budget = _session(config).budget
    checkpoint = config.getoption("--checkpoint") or str(DEFAULT_CHECKPOINT.relative_to(ROOT))
    lines = [f"hypodrive: checkpoint {checkpoint}, profile {budget.name}"]
    agent = _agent_if_loadable(config)
    if agent is not None:
        lines.append(f"hypodrive: agent identity {agent.identity} ({agent.format}, {agent.n_heads} heads)")
    else:  # the header must not hide the real error: the specs report it
        lines.append(f"hypodrive: agent not loadable: {_session(config).agent_error}")
    return lines


# ------------------------------------------------------------------------------------------ evidence
@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> SpecEvidence:
    """What a spec measured: claim, effects with CI and n, figures, verdict. Attached to the test report."""
    state = _session(request.config)
    agent = state.agent
    ev = SpecEvidence.for_item(request.node, checkpoint=agent.identity if agent else None, budget=state.budget)
    request.node.stash[EVIDENCE_KEY] = ev
    return ev


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not _is_spec(item) or report.when == "teardown" or item.stash.get(_RECORDED, False):
        return
    if report.when == "setup" and report.outcome == "passed":
        return
    # Every collected spec gets one entry: its call, or the setup that errored or skipped it (e.g. not-applicable).
    state = _session(item.config)
    ev = item.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        agent = state.agent
        ev = SpecEvidence.for_item(item, checkpoint=agent.identity if agent else None, budget=state.budget)
    entry = ev.to_dict(report)
    judged = findings_mod.apply(item, report, entry["verdict"])  # a known finding: expected only with its verdict
    if judged is not None:
        entry["outcome"] = "xfailed" if judged == "xfailed" else ("error" if report.when == "setup" else "failed")
        entry["reason"] = getattr(report, "wasxfail", None) or _reason_text(report)
    elif report.when == "setup" and report.outcome == "failed":
        entry["outcome"] = "error"
    item.stash[_RECORDED] = True
    roles = state.head_roles
    if roles:  # travels with the entry so the xdist controller can name the roles in the report
        entry["data"]["head_roles"] = roles
    report.user_properties.append(("hypodrive_evidence", json.dumps(entry)))


_RECORDED = pytest.StashKey[bool]()


def _is_spec(item: pytest.Item) -> bool:
    return str(item.fspath).startswith(str(SPECS_DIR))


def _reason_text(report) -> str:
    from specs.support.evidence import failure_reason

    return failure_reason(report) if report.longrepr is not None else ""


class _EvidenceCollector:
    """Gathers the evidence entries that travel on test reports (so the xdist controller sees every worker's)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in getattr(report, "user_properties", []):
            if key == "hypodrive_evidence":
                entry = json.loads(value)
                _session(self.config).evidence.append(entry)
                _session(self.config).seeds.update(entry.get("data", {}).get("seeds", {}))


def _agent_if_loadable(config: pytest.Config):
    """The agent under test, loaded once per process (xdist workers never see the report header), or None if it
    cannot be loaded (the specs that need it then report the error themselves)."""
    state = _session(config)
    if state.agent is None and state.agent_error is None:
        try:
            state.agent = _load(config, config.getoption("--checkpoint"))
        except Exception as err:
            state.agent_error = err
    return state.agent


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection: a deselected spec still defines its id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Known findings of the agent under test are expected (with their verdict), for that checkpoint identity only;
    a finding whose spec id no spec defines stops the run (it would otherwise be dropped in silence)."""
    if not any(_is_spec(item) for item in items):
        return  # a run of the machinery's tests only: no agent needed
    agent = _agent_if_loadable(config)
    if agent is None:
        return
    known = findings_mod.findings_for(agent.identity)
    defined = (findings_mod.defined_spec_ids(BUNDLED_SPECS_DIR) | findings_mod.defined_spec_ids(SPECS_DIR)
               | {findings_mod.spec_id(item) for item in items})  # a user's own spec folder keeps the bundled ids
    stale = findings_mod.stale_findings(known, defined)
    if stale:
        raise pytest.UsageError(
            f"{len(stale)} finding(s) of checkpoint {agent.identity} name a spec id that no spec under "
            f"{sorted({str(BUNDLED_SPECS_DIR), str(SPECS_DIR)})} "
            f"defines: {', '.join(stale)}. If the spec was renamed, give it @pytest.mark.spec_id(\"<old name>\"); "
            "if it was removed, remove the finding from that findings.json.")
    for item in items:
        finding = findings_mod.finding_for(known, item)
        if finding:  # expected only if the spec ends with this same verdict (see specs/support/findings.py)
            findings_mod.expect(item, finding["verdict"], agent.identity, finding["summary"], "findings.json",
                                finding.get("profile"))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = _session(config)
    if not state.evidence:
        return
    terminalreporter.section("hypodrive evidence")
    for entry in state.evidence:
        terminalreporter.write_line(SpecEvidence.summary_line(entry))
    unmeasured = [e.get("spec_id") or e["nodeid"].split("::")[-1] for e in state.evidence
                  if e.get("verdict") == UNMEASURED]
    if unmeasured:  # distinct from not-applicable: the budget, not the agent, left these open
        terminalreporter.write_line(f"unmeasured under profile {state.budget.name} ({len(unmeasured)}): "
                                    + ", ".join(unmeasured))
    from reports.run.multiplicity import across_claims, summary_line

    terminalreporter.write_line(summary_line(across_claims(state.evidence)))
    if state.diff:
        verdict = "REGRESSED" if state.diff.get("regressed") else "no regression"
        terminalreporter.write_line(f"hypodrive baseline comparison: {verdict} (see the report's comparison section)")
    if state.report:
        terminalreporter.write_line(f"hypodrive report: {state.report}")


def _write_report(config: pytest.Config, entries: list[dict]) -> Path | None:
    from reports.run.html import write_report
    from specs.support.run_info import run_metadata

    state = _session(config)
    out = Path(config.getoption("--report-dir"))
    from reports.schema import SCHEMA_VERSION

    from reports.run.multiplicity import across_claims

    run = run_metadata(config, state)
    run["multiplicity"] = across_claims(entries)
    if state.role_map:
        run["role_map"] = state.role_map
    evidence = {"schema": SCHEMA_VERSION, "run": run, "specs": entries}
    diff = _baseline_diff(config, evidence, out)
    if diff is not None:
        state.diff = diff
    return write_report(evidence, out, diff=diff)


def _baseline_diff(config: pytest.Config, evidence: dict, out: Path) -> dict | None:
    """Diff against ``--baseline-evidence``, or against the same specs run on ``--baseline-checkpoint``."""
    import subprocess
    import sys

    from reports.compare.diff import diff_evidence
    from reports.schema import load

    path = config.getoption("--baseline-evidence")
    checkpoint = config.getoption("--baseline-checkpoint")
    if path is None and checkpoint is not None:
        base_dir = out / "baseline"
        args = [sys.executable, "-m", "pytest", *_without_baseline_options(config.invocation_params.args),
                "--checkpoint", checkpoint, "--report-dir", str(base_dir), "-q"]
        subprocess.run(args, cwd=config.rootpath, check=False)
        path = base_dir / "evidence.json"
    if path is None:
        return None
    return diff_evidence(load(path), evidence).to_dict()


def _rescue_evidence(evidence) -> str:
    """Save the measured evidence in the temp folder when the report folder cannot take it; say where. The name
    carries the time and the process id, so a second rescue never overwrites a first one."""
    import os
    import tempfile

    from reports.atomic import write_files

    folder = Path(tempfile.gettempdir())
    name = f"hypodrive-evidence-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}-{os.getpid()}.json"
    try:
        write_files(folder, {name: json.dumps(evidence, indent=1, default=str)})
    except OSError:
        return " The evidence could not be saved elsewhere either."
    return f" The evidence measured in this run was saved to {folder / name}."


def _without_baseline_options(args) -> list[str]:
    """The invocation's arguments minus ``--baseline-*`` options and their values."""
    out, skip = [], False
    for arg in map(str, args):
        if skip:
            skip = False
        elif arg.startswith("--baseline"):
            skip = "=" not in arg
        else:
            out.append(arg)
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the report (controller only: under xdist the workers' evidence arrives here), then fail the run
    on a regression against the baseline even if every spec passed."""
    config = session.config
    state = _session(config)
    if hasattr(config, "workerinput") or not state.evidence or config.getoption("--no-report"):
        return
    _agent_if_loadable(config)  # the xdist controller never collected, so it has not loaded the agent yet
    if not state.head_roles:
        found = [e["data"]["head_roles"] for e in state.evidence if e["data"].get("head_roles")]
        state.head_roles = max(found, key=lambda r: sum(not isinstance(v, dict) or v.get("measured", True)
                                                            for v in r.values()), default=None)
    if state.head_roles and not state.role_map and state.agent is not None:
        from specs.support.roles import cached_role_map  # xdist controller: the workers cached it on disk

        state.role_map = cached_role_map(state.agent)
    from reports.schema import EvidenceError

    from reports.atomic import ReportWriteError, write_files

    try:
        state.report = _write_report(config, state.evidence)
    except ReportWriteError as err:  # full or read-only disk: nothing half-written; keep the evidence elsewhere
        state.report = f"NOT written: {err}{_rescue_evidence(state.evidence)}"
        session.exitstatus = session.exitstatus or 1
        return
    except EvidenceError as err:  # a spec recorded malformed evidence: keep what was measured, say what is wrong
        out = Path(config.getoption("--report-dir"))
        write_files(out, {"evidence.invalid.json": json.dumps(state.evidence, indent=1, default=str)})
        state.report = f"NOT written ({err}); raw evidence in {out / 'evidence.invalid.json'}"
        session.exitstatus = session.exitstatus or 1
        return
    diff = state.diff
    if diff and diff.get("regressed") and session.exitstatus == 0:
        session.exitstatus = 1
