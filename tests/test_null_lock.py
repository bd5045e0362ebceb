"""The role null is built once when two processes need it at once (pytest-xdist workers, two runs sharing a cache):
the second waits on the first's lock and loads the file it wrote, instead of spending the same forward passes.

Real processes (``subprocess``), a real lock file, a real (small) null of the 2-head reference's architecture."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
SEEDS = "list(range(100_000, 100_004))"  # a 4-network null: enough to have a key and a file, quick to build
# A second process: builds the same null, with building replaced by an error, so it can only succeed by loading.
CHILD = f"""
import sys
from interp import roles as R
from fixtures.role_scenes import calibration
from interp.simulation.agent import load_agent

agent = load_agent("checkpoints/reference-2h")
obs, masks, distance = calibration(agent.env_config)
design = R.calibration_design(obs, masks, distance)
if sys.argv[1] == "no-build":
    def refuse(*a, **k):
        raise SystemExit("built the null instead of loading it")
    R._build_null = refuse
print("calling null_for", flush=True)
R.null_for(agent.model, obs, design, {SEEDS})
print("null ready")
"""


def _run_child(mode: str, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "HYPODRIVE_CACHE_DIR": str(cache)})


def _started(mode: str, cache: Path) -> subprocess.Popen:
    """A child that has reached ``null_for`` (its imports and scenes done) and had 2 s more to finish there."""
    child = _run_child(mode, cache)
    assert child.stdout.readline().strip() == "calling null_for"
    time.sleep(2)
    return child


def _lock_and_key(cache: Path) -> tuple[FileLock, Path]:
    """The lock and the null file the children will use (built here first to learn the file's name)."""
    build = _run_child("build", cache)
    assert build.wait(timeout=300) == 0, build.stdout.read()
    (null_file,) = (cache / "roles").glob("null-*.npz")
    return FileLock(null_file.with_name(f".{null_file.stem}.lock")), null_file


def test_a_process_that_finds_the_null_being_built_waits_and_loads_it(tmp_path):
    lock, null_file = _lock_and_key(tmp_path)
    data = null_file.read_bytes()
    null_file.unlink()  # as if the holder were still building it
    with lock:
        child = _started("no-build", tmp_path)
        assert child.poll() is None, f"did not wait for the lock: {child.stdout.read()}"
        null_file.write_bytes(data)  # the holder finishes and writes the file
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0 and "null ready" in out, out


def test_control_without_the_holders_file_the_waiting_process_builds_it_itself(tmp_path):
    """The control: the holder releases without writing the file, so the waiting process must build; with
    building refused it fails, so the test above passes only by loading what the holder wrote."""
    lock, null_file = _lock_and_key(tmp_path)
    null_file.unlink()
    with lock:
        child = _started("no-build", tmp_path)
        assert child.poll() is None
    out, _ = child.communicate(timeout=300)
    assert child.returncode != 0 and "built the null instead of loading it" in out, out


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a folder the user cannot write")
def test_a_cache_folder_that_cannot_be_written_builds_without_a_lock(tmp_path):
    cache = tmp_path / "read-only"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        child = _run_child("build", cache)
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0 and "null ready" in out, out
    finally:
        cache.chmod(0o700)
