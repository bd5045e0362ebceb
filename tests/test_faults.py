"""Faults, each with what happens and what is lost (nothing): a worker killed mid-run, a corrupted cache
entry, Ctrl-C and a resumed rerun, two runs sharing one cache, a report on a full or read-only disk.
The fault table (docs/how-it-works/faults.md) names these tests, row by row; tests/test_fault_table.py checks
that each named test exists."""
from __future__ import annotations

import pytest

from interp.simulation.rollout import RolloutEngine, Start
from tests.rollout_support import KillWorker, near_tie_agent, short_env

SEEDS = [3, 4, 5, 6, 7]


@pytest.fixture(scope="module")
def agent():
    return near_tie_agent(duration=4)


def _starts(marker, always: bool = False) -> list:
    return [SEEDS[0], Start(SEEDS[1], setup=KillWorker(marker, always)), *SEEDS[2:]]


def test_a_worker_killed_mid_run_has_its_episodes_rerun_with_identical_records(agent, tmp_path):
    marker = tmp_path / "killed"
    marker.touch()  # the reference run: the set-up does not kill
    with RolloutEngine(workers=2, slots=4, cache=None) as engine:
        expected = engine.run(agent, _starts(marker))
    marker.unlink()
    with RolloutEngine(workers=2, slots=4, cache=None) as engine:
        with pytest.warns(RuntimeWarning, match="died mid-command.*rerunning"):
            got = engine.run(agent, _starts(marker))
        assert engine.stats.restarts == 1
    assert marker.exists() and got == expected


def test_a_worker_that_keeps_dying_fails_the_run_with_a_message_that_says_so(agent, tmp_path):
    with RolloutEngine(workers=1, slots=2, cache=None) as engine:
        with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="giving up.*rerun to resume"):
            engine.run(agent, _starts(tmp_path / "m", always=True))


def _overwrite_record_bytes(cache_dir) -> int:
    """Overwrite bytes inside every stored record, in the database files themselves (as a bad disk would)."""
    from interp.simulation.cache import ENTRY_MAGIC

    hits = 0
    for path in cache_dir.iterdir():
        if path.is_file() and path.name.startswith("cache.db"):
            data = bytearray(path.read_bytes())
            start = data.find(ENTRY_MAGIC)
            while start >= 0:
                at = start + len(ENTRY_MAGIC) + 32 + 40  # inside the payload, past the checksum
                data[at:at + 4] = bytes(255 - b for b in data[at:at + 4])
                hits += 1
                start = data.find(ENTRY_MAGIC, start + 1)
            path.write_bytes(bytes(data))
    return hits


def test_a_corrupted_cache_entry_is_detected_recomputed_and_replaced(agent, tmp_path):
    from interp.simulation.cache import CacheCorruptionWarning

    with RolloutEngine(workers=0, slots=2, cache=tmp_path / "c") as engine:
        expected = engine.run(agent, SEEDS[:3])
    assert _overwrite_record_bytes(tmp_path / "c") >= 1
    with RolloutEngine(workers=0, slots=2, cache=tmp_path / "c") as engine:
        with pytest.warns(CacheCorruptionWarning, match="corrupt"):
            got = engine.run(agent, SEEDS[:3])
        assert engine.stats.simulated >= 1  # recomputed, not served
    assert got == expected
    with RolloutEngine(workers=0, slots=2, cache=tmp_path / "c") as engine:  # the recomputed records replaced them
        assert engine.run(agent, SEEDS[:3]) == expected and engine.stats.cached == 3


def test_control_an_intact_cache_is_served_without_warnings(agent, tmp_path):
    import warnings

    with RolloutEngine(workers=0, slots=2, cache=tmp_path / "c") as engine:
        expected = engine.run(agent, SEEDS[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RolloutEngine(workers=0, slots=2, cache=tmp_path / "c") as engine:
            assert engine.run(agent, SEEDS[:3]) == expected and engine.stats.cached == 3


def _cached_entries(directory) -> int:
    from interp.simulation.cache import RolloutCache

    if not directory.exists():
        return 0
    with RolloutCache(directory) as cache:
        return len(cache)


def _interrupt_when_cached(args: list[str], cache_dir, at_least: int, env: dict | None = None):
    """Start ``args``, send SIGINT (Ctrl-C) once ``at_least`` records are cached; return the process."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.planted import ROOT

    def as_in_a_terminal() -> None:
        # Ctrl-C's default handling, as in a terminal: a test process before us (e.g. a Ray or xdist worker) may
        # have set SIGINT to SIG_IGN, which a child inherits; Python then installs no KeyboardInterrupt handler.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})}, preexec_fn=as_in_a_terminal)
    for _ in range(1200):  # polls, not a wall-clock bound on the test's outcome
        if proc.poll() is not None or _cached_entries(cache_dir) >= at_least:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted: give it more episodes"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    return proc


def test_ctrl_c_in_evaluate_then_a_rerun_resumes_from_the_cache_and_gives_the_same_result(tmp_path):
    import json

    from interp.cli import main
    from tests.planted import ROOT

    reference = str(ROOT / "checkpoints" / "reference")
    common = ["evaluate", "--checkpoint", reference, "--episodes", "24", "--seed", "300", "--workers", "1",
              "--no-progress"]
    cache = tmp_path / "cache"
    proc = _interrupt_when_cached(["-m", "interp", *common, "--cache-dir", str(cache)], cache, at_least=3)
    assert proc.returncode == 130
    cached = _cached_entries(cache)
    assert 3 <= cached < 24
    assert main([*common, "--cache-dir", str(cache), "--json", str(tmp_path / "resumed.json")]) == 0
    assert main([*common, "--no-cache", "--json", str(tmp_path / "clean.json")]) == 0
    resumed, clean = (json.loads((tmp_path / f"{n}.json").read_text())["episodes"] for n in ("resumed", "clean"))
    assert resumed == clean and _cached_entries(cache) == 24


@pytest.mark.slow
def test_ctrl_c_in_pytest_specs_then_a_rerun_resumes_and_reaches_the_same_verdict(tmp_path, request):
    """The held-out collision spec, interrupted mid-rollout, then rerun on the same cache: the same evidence
    (verdict and effects) as an uninterrupted run on a fresh cache. About 65 s (three pytest runs): opt-in
    with ``-m slow``."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("three pytest runs (~65 s): run with -m slow")
    import json
    import subprocess
    import sys

    from tests.planted import ROOT

    spec = ["-m", "pytest", "specs/test_behavior.py", "-k", "collision_rate", "--profile", "quick", "-q",
            "-p", "no:randomly"]
    cache, fresh = tmp_path / "cache", tmp_path / "fresh"
    proc = _interrupt_when_cached([*spec, f"--report-dir={tmp_path / 'r0'}"], cache, at_least=5,
                                  env={"HYPODRIVE_CACHE_DIR": str(cache)})
    assert proc.returncode != 0 and _cached_entries(cache) >= 5
    import os

    for name, directory in (("resumed", cache), ("clean", fresh)):
        subprocess.run([sys.executable, *spec, f"--report-dir={tmp_path / name}"], cwd=ROOT, check=False,
                       capture_output=True, env={**os.environ, "HYPODRIVE_CACHE_DIR": str(directory)}, timeout=600)
    resumed, clean = (json.loads((tmp_path / n / "evidence.json").read_text())["specs"] for n in ("resumed", "clean"))
    assert [(s["verdict"], s["effects"]) for s in resumed] == [(s["verdict"], s["effects"]) for s in clean]
    assert resumed and resumed[0]["effects"]


def _write_report_limited(out, *limit: str):
    import subprocess
    import sys

    from tests.planted import ROOT

    return subprocess.run([sys.executable, "-m", "tests.report_writer", str(out), *limit], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _earlier_report(folder):
    folder.mkdir()
    for name in ("evidence.json", "index.html"):
        (folder / name).write_text(f"earlier {name}\n")
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_a_report_past_a_file_size_limit_fails_clearly_and_leaves_the_earlier_report_whole(tmp_path):
    # RLIMIT_FSIZE: "file too large" (EFBIG), not a full disk; the full disk is the tmpfs and ENOSPC tests below
    out = tmp_path / "report"
    before = _earlier_report(out)
    done = _write_report_limited(out, "fsize", "4096")  # every file this process writes stops at 4 kB
    assert done.returncode == 3, done.stderr
    assert "could not write the report" in done.stdout and "File too large" in done.stdout
    assert "--report-dir" in done.stdout
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # no half file, no temp file left


def test_a_report_in_a_read_only_folder_fails_clearly_and_changes_nothing(tmp_path):
    import os

    out = tmp_path / "report"
    before = _earlier_report(out)
    os.chmod(tmp_path, 0o755)
    os.chmod(out, 0o555)
    try:
        done = _write_report_limited(out, "user")
    finally:
        os.chmod(out, 0o755)
    assert done.returncode == 3, done.stderr
    assert "could not write the report" in done.stdout and "Permission denied" in done.stdout
    assert {p.name: p.read_text() for p in out.iterdir()} == before


def test_control_the_same_writer_without_a_limit_writes_both_files(tmp_path):
    out = tmp_path / "report"
    _earlier_report(out)
    done = _write_report_limited(out, "none")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "evidence.json").read_text().startswith("{") and "<html" in (out / "index.html").read_text()


def test_two_runs_sharing_one_cache_at_once_get_the_same_records(tmp_path):
    import json
    import subprocess
    import sys

    from interp.cli import main
    from tests.planted import ROOT

    common = ["-m", "interp", "evaluate", "--checkpoint", str(ROOT / "checkpoints" / "reference"), "--episodes", "8",
              "--seed", "400", "--workers", "1", "--no-progress", "--cache-dir", str(tmp_path / "shared")]
    procs = [subprocess.Popen([sys.executable, *common, "--json", str(tmp_path / f"run{i}.json")], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert main(common[2:-2] + ["--no-cache", "--json", str(tmp_path / "alone.json")]) == 0
    runs = [json.loads((tmp_path / f"{name}.json").read_text())["episodes"] for name in ("run0", "run1", "alone")]
    assert runs[0] == runs[1] == runs[2]


def test_a_failed_merge_names_its_own_out_option_not_pytests(tmp_path):
    """``python -m reports merge`` writes with ``--out``; its full-disk error must say that, not --report-dir."""
    import os

    from reports.__main__ import main as reports_main
    from reports.atomic import ReportWriteError
    from reports.schema import save
    from tests.test_reports import synthetic_run

    part = tmp_path / "part.json"
    save(synthetic_run(0, 1), part)
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        if os.access(locked, os.W_OK):  # root ignores the mode: a file in the folder's place blocks mkdir instead
            os.chmod(locked, 0o755)
            locked.rmdir()
            locked.write_text("not a folder")
        import pytest

        with pytest.raises(ReportWriteError) as err:
            reports_main(["merge", str(part), "--out", str(locked / "sub" / "evidence.json")])
    finally:
        if locked.is_dir():
            os.chmod(locked, 0o755)
    assert "--out" in str(err.value) and "--report-dir" not in str(err.value)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real, small filesystem (tmpfs, 1 MiB) mounted for the test; skipped where mounting is not allowed."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk) -> int:
    """Write a filler file until the filesystem says ENOSPC; return its size."""
    import errno

    chunk = b"\0" * 4096
    written = 0
    with open(disk / "filler", "wb", buffering=0) as fh:  # unbuffered: each write reaches the filesystem
        try:
            while True:
                written += fh.write(chunk)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return written


def test_a_report_on_a_real_full_disk_fails_clearly_and_leaves_the_earlier_report_whole(small_tmpfs):
    from reports.atomic import ReportWriteError
    from reports.run.html import write_report
    from tests.test_reports import synthetic_run

    out = small_tmpfs / "report"
    before = _earlier_report(out)
    assert _fill(small_tmpfs) > 0
    with pytest.raises(ReportWriteError) as err:
        write_report(synthetic_run(0, 1), out)
    assert "could not write the report" in str(err.value) and "(ENOSPC)" in str(err.value)
    assert "--report-dir" in str(err.value)
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # no half file, no temp file left
    # control: the same disk with room again takes the same report
    (small_tmpfs / "filler").unlink()
    write_report(synthetic_run(0, 1), out)
    assert (out / "evidence.json").read_text().startswith("{") and "<html" in (out / "index.html").read_text()


def test_a_report_whose_write_call_hits_enospc_fails_clearly_and_leaves_the_earlier_report_whole(tmp_path,
                                                                                                monkeypatch):
    # the same fault injected at the writer's write call: runs where no tmpfs can be mounted
    import builtins

    import interp.atomic
    from tests.full_disk import FullDiskFile
    from reports.atomic import ReportWriteError
    from reports.run.html import write_report
    from tests.test_reports import synthetic_run

    out = tmp_path / "report"
    before = _earlier_report(out)
    writes = []

    def full_open(path, mode="r", *args, **kwargs):
        writes.append(path)
        return FullDiskFile(builtins.open(path, mode, *args, **kwargs))

    monkeypatch.setattr(interp.atomic, "open", full_open, raising=False)
    with pytest.raises(ReportWriteError) as err:
        write_report(synthetic_run(0, 1), out)
    assert writes, "precondition: the writer's write call went through the injected file"
    assert "No space left on device (ENOSPC)" in str(err.value)
    assert {p.name: p.read_text() for p in out.iterdir()} == before


def test_the_plugin_rescues_the_evidence_in_the_temp_folder(tmp_path, monkeypatch):
    import json
    import tempfile

    from specs.plugin import _rescue_evidence

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    evidence = [{"nodeid": "specs/x.py::test_a", "verdict": "refuted", "effects": [{"value": 0.25}]}]
    message = _rescue_evidence(evidence)
    (saved,) = tmp_path.glob("hypodrive-evidence-*.json")
    assert f"saved to {saved}" in message
    assert json.loads(saved.read_text()) == evidence
    assert _rescue_evidence(evidence) != message, "a second rescue must not overwrite the first"
    assert len(list(tmp_path.glob("hypodrive-evidence-*.json"))) == 2


def test_the_plugin_says_so_when_the_evidence_cannot_be_rescued_either(tmp_path, monkeypatch):
    import tempfile

    from specs.plugin import _rescue_evidence

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    assert _rescue_evidence([{"nodeid": "x"}]) == " The evidence could not be saved elsewhere either."


def _spec_run(tmp_path, report_dir: str):
    import os
    import subprocess
    import sys
    import textwrap

    from tests.planted import ROOT
    from tests.test_spec_plugin import CONFTEST

    folder = tmp_path / "run"
    (folder / "specs").mkdir(parents=True)
    (folder / "tmp").mkdir()
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "specs" / "test_case.py").write_text(textwrap.dedent('''
        import pytest

        pytestmark = pytest.mark.mechanism


        def test_case(agent, evidence):
            evidence.effect("share", 0.75, (0.5, 0.9), 12)
            evidence.conclude(True, "held")
        '''))
    (folder / "checkpoints").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPODRIVE_ROOT": str(ROOT), "TMPDIR": str(folder / "tmp")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "specs/test_case.py", "-p", "no:cacheprovider",
                           "-p", "no:randomly", f"--report-dir={report_dir}", "-q"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    return folder, proc


def test_a_spec_run_whose_report_cannot_be_written_fails_and_keeps_its_evidence(tmp_path):
    import json
    import re

    (tmp_path / "blocker").write_text("a file where the report folder should go")
    folder, proc = _spec_run(tmp_path, str(tmp_path / "blocker" / "report"))
    assert proc.returncode == 1, proc.stdout[-3000:]  # the spec passed: only the lost report fails the run
    assert "hypodrive report: NOT written: could not write the report" in proc.stdout, proc.stdout[-3000:]
    saved = re.search(r"saved to (\S+\.json)", proc.stdout)
    assert saved and saved.group(1).startswith(str(folder / "tmp")), proc.stdout[-3000:]
    (entry,) = json.loads(open(saved.group(1)).read())
    assert entry["nodeid"].endswith("test_case") and entry["verdict"] == "supported"
    assert entry["effects"][0]["value"] == 0.75


def test_control_the_same_spec_run_with_a_writable_report_folder_passes(tmp_path):
    folder, proc = _spec_run(tmp_path, "report")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (folder / "report" / "evidence.json").exists() and not list((folder / "tmp").glob("hypodrive-*"))


def test_two_runs_sharing_one_cache_read_each_others_entries(tmp_path):
    """Run 1 (this process) keeps its cache open while run 2 (another process) uses the same folder: run 2 is
    served run 1's episodes, and run 1 then is served the episodes run 2 simulated; the records equal a cache-less
    run's."""
    import re
    import subprocess
    import sys

    from interp.simulation.agent import load_agent
    from tests.planted import ROOT

    checkpoint = ROOT / "checkpoints" / "reference"
    agent = load_agent(checkpoint)
    first, second = list(range(400, 403)), list(range(403, 406))
    with RolloutEngine(workers=0, slots=2, cache=tmp_path / "shared") as run1:
        mine = run1.run(agent, first)
        assert (run1.stats.simulated, run1.stats.cached) == (3, 0)
        other = subprocess.run([sys.executable, "-m", "interp", "evaluate", "--checkpoint", str(checkpoint),
                                "--episodes", "6", "--seed", "400", "--workers", "0", "--no-progress",
                                "--cache-dir", str(tmp_path / "shared")],
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert other.returncode == 0, other.stderr[-3000:]
        assert re.search(r"simulated 3 episodes, 3 from the cache", other.stdout), other.stdout[-2000:]
        theirs = run1.run(agent, second)
        assert (run1.stats.simulated, run1.stats.cached) == (3, 3), "run 1 did not read run 2's entries"
    with RolloutEngine(workers=0, slots=2, cache=None) as alone:
        assert mine + theirs == alone.run(agent, first + second)
