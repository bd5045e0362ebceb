"""The zoo's bookkeeping: members claimed by lock files (a live process keeps its member, a dead one's lock is
taken over), members bundled at the zoo's budget skipped (a shorter bundle of the same name is not), every member
on its own training seed, and the command line's refusals."""
from __future__ import annotations

import json
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


def _fake_bundle(dirs, member, episodes: int) -> None:
    folder = dirs / "zoo" / member.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.pt").write_bytes(b"")
    (folder / "metadata.json").write_text(json.dumps({"episodes": episodes}))


def test_members_bundled_at_the_zoos_budget_are_skipped(dirs):
    for member in zoo.MEMBERS:
        _fake_bundle(dirs, member, zoo.EPISODES)
    assert zoo.train(progress=False) == []


def test_a_shorter_bundle_of_the_same_name_is_trained_again(dirs):
    member = zoo.MEMBERS[0]
    _fake_bundle(dirs, member, zoo.EPISODES - 1)
    assert not zoo.is_bundled(member)
    (dirs / "zoo" / member.name / "metadata.json").write_text("{not json")
    assert not zoo.is_bundled(member)  # unreadable metadata: not taken for a finished bundle
    _fake_bundle(dirs, member, zoo.EPISODES)
    assert zoo.is_bundled(member)


def test_every_member_has_its_own_training_seed_and_none_is_the_references():
    """One seed would give members of different head counts the same initial network (parameter shapes do not
    depend on the head count) and the same training env seeds. The bundled ``reference`` *is* member 4h-s3 (the
    same weights); the earlier references' seed is no member's."""
    import torch

    from interp.simulation.agent import load_agent

    seeds = [m.seed for m in zoo.MEMBERS]
    references = {load_agent(zoo.PROJECT_ROOT / "checkpoints" / name).metadata["seed"]
                  for name in ("reference-v1", "reference-2h")}
    assert len(set(seeds)) == len(seeds) == 12 and not set(seeds) & references
    reference = load_agent(zoo.PROJECT_ROOT / "checkpoints" / "reference")
    assert reference.identity == load_agent(zoo.ZOO_DIR / "4h-s3").identity and reference.metadata["seed"] == 3
    assert sorted(m.heads for m in zoo.MEMBERS).count(4) == 8
    # the failure it guards: two head counts on one seed start from identical weights
    from interp.model.config import load_env_config
    from interp.simulation.agent import build_model

    def init(heads: int):
        torch.manual_seed(1)
        network, _ = build_model(zoo.agent_config(heads), load_env_config(zoo.ENV_CONFIG))
        return network.state_dict()

    two, four = init(2), init(4)
    assert two.keys() == four.keys() and all(torch.equal(two[k], four[k]) for k in two)


def test_the_command_line_refuses_unknown_members(capsys):
    assert main(["zoo", "bundle", "9h-s9"]) == 2
    assert "unknown zoo member" in capsys.readouterr().err


def test_every_bundled_member_is_at_full_budget_on_its_seed_with_validation_figures():
    """``checkpoints/zoo`` holds only members of ``MEMBERS`` trained to ``EPISODES`` on their own seed (the zoo
    is bundled as members finish; ``python -m interp zoo status`` lists what is left)."""
    from interp.simulation.agent import load_agent

    by_name = {m.name: m for m in zoo.MEMBERS}
    folders = sorted(p.name for p in zoo.ZOO_DIR.iterdir() if p.is_dir())
    assert folders == sorted(p.name for p in zoo.bundled()), "a folder under checkpoints/zoo that is no member"
    for folder in zoo.bundled():
        agent = load_agent(folder / "agent.pt")
        meta = agent.metadata
        member = by_name[folder.name]
        assert meta["zoo_member"] == folder.name and agent.n_heads == meta["heads"] == member.heads
        assert meta["train_seed"] == meta["seed"] == member.seed and meta["episodes"] == zoo.EPISODES
        assert meta["validation"]["n"] == zoo.VALIDATION_EPISODES and 0 <= meta["validation"]["collision_rate"] <= 1


def test_heldout_figures_cover_every_bundled_member_and_the_references(tmp_path, capsys):
    """``zoo heldout`` evaluates each agent on the held-out range (seeds 0..N-1) and writes one row per agent;
    the bundled heldout.json matches what the command computes on its first episodes' agents and identities."""
    import json

    from interp.seeds import first

    out = tmp_path / "heldout.json"
    assert main(["zoo", "heldout", "--episodes", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    # one row per identity: `reference` is member 4h-s3, so its row is 4h-s3's
    assert [r["agent"] for r in rows] == [p.name for p in zoo.bundled()] + ["reference-v1", "reference-2h"]
    assert all(r["n"] == 2 and r["seeds"] == f"{first('heldout')}..{first('heldout') + 1}" for r in rows)
    bundled = json.loads((zoo.ZOO_DIR / "heldout.json").read_text())
    assert [(r["agent"], r["identity"]) for r in bundled] == [(r["agent"], r["identity"]) for r in rows]
    assert all(r["n"] == 500 for r in bundled)


def test_status_tells_bundled_stopped_and_not_started_members_apart(dirs, capsys):
    first, second = zoo.MEMBERS[:2]
    _fake_bundle(dirs, first, zoo.EPISODES)
    run = dirs / "runs" / second.name
    run.mkdir(parents=True)
    (run / "history.json").write_text(json.dumps([{"episode": i} for i in range(250)]))
    (dirs / "runs" / f"{second.name}.lock").write_text("999999999")  # no such process: stopped, resumable
    rows = {r["member"]: r for r in zoo.status()}
    assert (rows[first.name]["state"], rows[first.name]["episodes"]) == ("bundled", zoo.EPISODES)
    assert (rows[second.name]["state"], rows[second.name]["episodes"]) == ("stopped (resumable)", 250)
    assert {r["state"] for name, r in rows.items() if name not in (first.name, second.name)} == {"not started"}
    assert main(["zoo", "status"]) == 0
    assert f"1 of {len(zoo.MEMBERS)} members bundled" in capsys.readouterr().out


def test_the_documented_four_head_median_is_the_one_in_heldout_json():
    """The architecture page's headline figure (the 4-head members' median held-out collision rate against the
    16 % goal) is recomputed from ``checkpoints/zoo/heldout.json``, so it cannot drift from the bundled zoo."""
    import json
    import re
    import statistics
    from pathlib import Path

    rows = json.loads(Path("checkpoints/zoo/heldout.json").read_text())
    rates = [r["collision_rate"] for r in rows if r["agent"].startswith("4h-")]
    page = Path("docs/results/architecture.md").read_text()
    shown = re.search(r"median held-out collision rate is \*\*([0-9.]+) %\*\* \(range ([0-9.]+)–([0-9.]+) %", page)
    assert shown, "the architecture page no longer states the 4-head median"
    assert len(rates) == 8
    assert float(shown.group(1)) == round(100 * statistics.median(rates), 1)
    assert (float(shown.group(2)), float(shown.group(3))) == (round(100 * min(rates), 1), round(100 * max(rates), 1))


def test_zoo_run_covers_an_agent_bundled_twice_once():
    """``reference`` is zoo member 4h-s3 (one identity): a zoo run with the references runs and counts it once; the
    references with their own identity are all covered."""
    import argparse

    from interp.zoo_cli import zoo_agents

    covered = zoo_agents(argparse.Namespace(no_zoo=False, with_references=True, agents=None))
    names = [name for name, _ in covered]
    assert "4h-s3" in names and "reference" not in names, names
    assert {"reference-v1", "reference-2h"} <= set(names), names
    identities = [json.loads((path / "metadata.json").read_text())["identity"] for _, path in covered]
    assert len(identities) == len(set(identities))
    # control: without the zoo, the reference is covered under its own name
    alone = zoo_agents(argparse.Namespace(no_zoo=True, with_references=True, agents=None))
    assert [name for name, _ in alone] == ["reference", "reference-v1", "reference-2h"]
