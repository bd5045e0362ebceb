"""The zoo's bookkeeping: members claimed by lock files (a live process keeps its member, a dead one's lock is
taken over), bundled members skipped, and the command line's refusals."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from interp.cli import main
from interp.training import zoo


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    return tmp_path


def test_a_member_locked_by_a_live_process_is_left_to_it_and_a_dead_ones_lock_is_taken_over(dirs):
    member = zoo.MEMBERS[0]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (dirs / "runs").mkdir()
        (dirs / "runs" / f"{member.name}.lock").write_text(str(sleeper.pid))
        assert not zoo.claim(member)  # alive: another process trains it
    finally:
        sleeper.kill()
        sleeper.wait()
    assert zoo.claim(member)  # its process is gone: the lock is stale and taken over
    assert (dirs / "runs" / f"{member.name}.lock").read_text() == str(os.getpid())
    assert not zoo.claim(member)  # now held by this live process: a second claim is refused


def test_bundled_members_are_skipped(dirs):
    for member in zoo.MEMBERS:
        (dirs / "zoo" / member.name).mkdir(parents=True)
        (dirs / "zoo" / member.name / "agent.pt").write_bytes(b"")
    assert zoo.train(progress=False) == []


def test_the_command_line_refuses_unknown_members(capsys):
    assert main(["zoo", "bundle", "9h-s9"]) == 2
    assert "unknown zoo member" in capsys.readouterr().err


def test_the_bundled_zoo_has_twelve_members_with_validation_figures():
    from interp.simulation.agent import load_agent

    assert [p.name for p in zoo.bundled()] == [m.name for m in zoo.MEMBERS]
    for folder in zoo.bundled():
        agent = load_agent(folder / "agent.pt")
        meta = agent.metadata
        assert meta["zoo_member"] == folder.name and agent.n_heads == meta["heads"]
        assert meta["validation"]["n"] == zoo.VALIDATION_EPISODES and 0 <= meta["validation"]["collision_rate"] <= 1


def test_heldout_figures_cover_every_bundled_member_and_the_references(tmp_path, capsys):
    """``zoo heldout`` evaluates each agent on the held-out range (seeds 0..N-1) and writes one row per agent;
    the bundled heldout.json matches what the command computes on its first episodes' agents and identities."""
    import json

    from interp.seeds import first

    out = tmp_path / "heldout.json"
    assert main(["zoo", "heldout", "--episodes", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["agent"] for r in rows] == [p.name for p in zoo.bundled()] + ["reference", "reference-2h"]
    assert all(r["n"] == 2 and r["seeds"] == f"{first('heldout')}..{first('heldout') + 1}" for r in rows)
    bundled = json.loads((zoo.ZOO_DIR / "heldout.json").read_text())
    assert [(r["agent"], r["identity"]) for r in bundled] == [(r["agent"], r["identity"]) for r in rows]
    assert all(r["n"] == 500 for r in bundled)
