"""Faults, each with what happens and what is lost (nothing): a worker killed mid-run, a corrupted cache
entry, Ctrl-C and a resumed rerun, two runs sharing one cache, a report on a full or read-only disk.
The README's fault table points here, row by row."""
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


def test_a_report_on_a_full_disk_fails_clearly_and_leaves_the_earlier_report_whole(tmp_path):
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
