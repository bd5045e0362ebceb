"""Replay figures and the replay command state how each run really ended, checked against the rollout records,
on a seed where both runs arrive (so a title that assumes "plain survives, ablated crashes" is caught) and on a
discordant seed; and ``python -m interp replay --against`` replays the other agent's own episode."""
from __future__ import annotations

import json

import pytest

from interp import cli
from interp.probes.interventions import head_ablation
from interp.simulation.agent import load_agent, untrained_agent
from specs.support.filmstrip import ablation_pair_figures, discordant_pairs
from tests.planted import ROOT
from tests.reference_fixtures import agent, engine  # noqa: F401  (module fixtures)

REFERENCE = ROOT / "checkpoints" / "reference"
BOTH_ARRIVE, DISCORDANT, HEAD = 0, 3, 1

def _word(record) -> str:
    return "crashed" if record.crashed else ("arrived" if record.arrived else "neither crashed nor arrived")

@pytest.fixture(scope="module")
def records(agent, engine):
    """Seed -> (plain record, head-ablated record), from the rollout engine, not from the replay code."""
    runs = engine.run(agent, [BOTH_ARRIVE, DISCORDANT],
                      {"agent": None, "ablated": head_ablation([HEAD], n_heads=agent.n_heads)})
    by = {(r.seed, r.condition): r for r in runs}
    return {seed: (by[seed, "agent"], by[seed, "ablated"]) for seed in (BOTH_ARRIVE, DISCORDANT)}

def test_a_pair_where_both_runs_arrive_is_titled_so(agent, engine, records):
    plain, ablated = records[BOTH_ARRIVE]
    assert plain.arrived and ablated.arrived, "precondition: on this seed both runs arrive; pick another seed"
    (figure,), notes = ablation_pair_figures(agent, engine, [BOTH_ARRIVE], HEAD)
    assert not notes
    assert figure["title"] == f"seed {BOTH_ARRIVE}: agent arrived, head ablated: {HEAD} arrived"
    assert figure["caption"].startswith("not a discordant pair")

def test_a_discordant_pair_is_titled_with_the_plain_survival_and_the_ablated_crash(agent, engine, records):
    plain, ablated = records[DISCORDANT]
    assert discordant_pairs([plain, ablated], "agent", "ablated") == [DISCORDANT], "precondition: pick another seed"
    (figure,), notes = ablation_pair_figures(agent, engine, [DISCORDANT], HEAD)
    assert not notes
    assert figure["title"] == f"seed {DISCORDANT}: agent {_word(plain)}, head ablated: {HEAD} crashed"
    assert figure["caption"].startswith("a discordant pair")

@pytest.mark.parametrize("against", ["untrained", "checkpoints/reference-early"])
def test_replay_against_another_agent_replays_its_own_episode(tmp_path, capsys, engine, against):
    gif, data = tmp_path / "r.gif", tmp_path / "r.json"
    assert cli.main(["replay", "--checkpoint", str(REFERENCE), "--seed", str(BOTH_ARRIVE), "--against", against,
                     "--no-cache", "--out", str(gif), "--json", str(data)]) == 0
    out = capsys.readouterr().out
    replay = json.loads(data.read_text())
    assert [run["label"] for run in replay["runs"]] == ["agent", against]
    reference = load_agent(REFERENCE)
    other = (untrained_agent(reference.agent_config, reference.env_config) if against == "untrained"
             else load_agent(ROOT / against))
    (plain,) = engine.run(reference, [BOTH_ARRIVE])
    (theirs,) = engine.run(other, [BOTH_ARRIVE])
    assert replay["runs"][0]["actions"] == list(plain.actions)
    assert replay["runs"][1]["actions"] == list(theirs.actions)
    assert plain.actions != theirs.actions or against != "untrained", "precondition: the two agents differ here"
    for run, record in zip(replay["runs"], (plain, theirs)):
        assert (run["crashed"], run["arrived"]) == (record.crashed, record.arrived)
        assert f"[{run['label']}] seed {BOTH_ARRIVE}: {record.length} steps, {_word(record)};" in out
    assert gif.stat().st_size > 0 and ("diverge at step" in out) == (plain.actions != theirs.actions)
