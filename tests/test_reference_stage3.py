"""The reference search's stage 3 on tiny real runs (two fake 4-head zoo runs of 3 episodes, a snapshot after
each): the selection rule, the confirmation gate (closed and open), the once-only final evaluation, resuming,
and the refusal of missing or unfinished runs. Only the counts are shrunk (episodes trained, K, seeds per
evaluation); the rule, the gate and the guard are the stage's own."""
from __future__ import annotations

import json

import pytest

from interp.training import reference_search as rs
from tests.tiny_runs import train_tiny

RUNS = ("4h-s1", "4h-s2")
STRICT = {"max_collision_rate": -1.0, "max_collision_upper95": -1.0, "min_arrival_rate": 2.0}  # nothing meets it
LOOSE = {"max_collision_rate": 1.0, "max_collision_upper95": 1.0, "min_arrival_rate": 0.0}  # everything meets it


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("project") / "runs" / "zoo"
    for seed, name in enumerate(RUNS, start=1):
        train_tiny(root / name, seed=seed)
    return root


@pytest.fixture
def small(monkeypatch, tmp_path):
    """Stage 3 with its counts shrunk: 3 trained episodes, K = 2, 3 seeds per evaluation; a private cache."""
    monkeypatch.setenv("HYPODRIVE_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in (("STAGE3_TRAINED", 3), ("AVERAGE_K", 2), ("STAGE3_EPISODES", 3), ("CONFIRM_EPISODES", 3),
                        ("FINAL_EPISODES", 3)):
        monkeypatch.setattr(rs, name, value)
    return tmp_path


def row(name, collisions, arrivals, episode=3500):
    return {"candidate": name, "collision_rate": collisions, "arrival_rate": arrivals, "episode": episode}


def test_the_rule_takes_the_fewest_collisions_among_candidates_that_arrive_often_enough():
    rows = [row("a/final", 0.08, 0.54), row("b/final", 0.09, 0.60), row("c/final", 0.12, 0.70)]
    assert rs.stage3_chosen(rows)["candidate"] == "b/final"  # a crashes less but arrives under 55 %


def test_the_rules_ties_go_to_more_arrivals_then_the_earlier_episode_then_the_name():
    assert rs.stage3_chosen([row("a", 0.1, 0.6), row("b", 0.1, 0.7)])["candidate"] == "b"
    assert rs.stage3_chosen([row("a", 0.1, 0.6, 3500), row("b", 0.1, 0.6, 3250)])["candidate"] == "b"
    assert rs.stage3_chosen([row("b/final", 0.1, 0.6), row("b/average-last-4", 0.1, 0.6)])["candidate"] == \
        "b/average-last-4"


def test_without_an_eligible_candidate_the_rule_takes_the_fewest_collisions_overall():
    assert rs.stage3_chosen([row("a", 0.3, 0.5), row("b", 0.2, 0.1)])["candidate"] == "b"


@pytest.mark.parametrize("figures, within", [
    ((0.10, 0.13, 0.55), True), ((0.101, 0.12, 0.6), False), ((0.09, 0.131, 0.6), False), ((0.09, 0.12, 0.549), False),
])
def test_within_the_bar_is_collisions_at_most_10_with_upper_bound_13_and_arrivals_at_least_55(figures, within):
    c, upper, a = figures
    assert rs.within_bar({"collision_rate": c, "collision_ci95": [0.0, upper], "arrival_rate": a}) is within


def test_a_closed_gate_leaves_the_final_block_unspent(zoo, small, monkeypatch):
    monkeypatch.setattr(rs, "BAR", STRICT)
    out, docs = small / "out", small / "docs" / "stage3.json"
    record = rs.stage3(zoo, out, runs=RUNS, docs_copy=docs)
    names = [r["candidate"] for r in record["validation"]]
    assert names == ["4h-s1/final", "4h-s1/average-last-2", "4h-s2/final", "4h-s2/average-last-2"]
    assert {r["seeds"] for r in record["validation"]} == {"400700..400702"}
    assert record["chosen"] == rs.stage3_chosen(record["validation"])["candidate"]
    assert record["confirmation"]["seeds"] == "500000..500002" and record["confirmation"]["within_bar"] is False
    assert record["final"] is None and not (out / rs.FINAL_GUARD).exists()
    assert json.loads(docs.read_text()) == json.loads((out / rs.STAGE3_FILE).read_text()) == record
    assert (out / "stage3" / "4h-s1-average-last-2.pt").is_file()


def test_an_open_gate_evaluates_the_choice_once_and_never_again(zoo, small, monkeypatch):
    monkeypatch.setattr(rs, "BAR", LOOSE)
    out, docs = small / "out", small / "docs" / "stage3.json"
    record = rs.stage3(zoo, out, runs=RUNS, docs_copy=docs)
    assert record["confirmation"]["within_bar"] is True
    assert record["final"]["seeds"] == "600000..600002" and record["final"]["candidate"] == record["chosen"]
    guard = json.loads((out / rs.FINAL_GUARD).read_text())
    assert guard["identity"] == record["final"]["identity"] and guard["figures"]["n"] == 3
    again = rs.stage3(zoo, out, runs=RUNS, docs_copy=docs)  # resumed: every figure kept, nothing re-evaluated
    assert again == record  # wall times included: a recomputed figure would carry a new one
    agent = next(c for c in rs.stage3_candidates(zoo, RUNS) if c.name == record["chosen"]).load()
    with pytest.raises(rs.Stage3Error, match="already evaluated, on"):  # the guard file alone refuses
        rs.final_once(agent, record["chosen"], out, docs_copy=None)
    (out / rs.FINAL_GUARD).unlink()  # even without the guard, the committed copy's final result refuses
    with pytest.raises(rs.Stage3Error, match="already evaluated"):
        rs.final_once(agent, record["chosen"], out, docs_copy=docs)


def test_an_interrupted_final_may_be_finished_only_for_the_same_agent(zoo, small):
    first, other = (c.load() for c in rs.stage3_candidates(zoo, RUNS)[:2])
    out = small / "out"
    out.mkdir()
    (out / rs.FINAL_GUARD).write_text(json.dumps({"candidate": "4h-s1/final", "identity": first.identity,
                                                  "figures": None}))
    with pytest.raises(rs.Stage3Error, match="cannot be given to another agent"):
        rs.final_once(other, "4h-s1/average-last-2", out)
    assert rs.final_once(first, "4h-s1/final", out)["n"] == 3


def test_a_missing_or_unfinished_run_stops_the_stage_by_name(zoo, small, tmp_path):
    with pytest.raises(rs.Stage3Error, match=r"4h-s9 \(no such run folder\)"):
        rs.stage3(zoo, small / "out", runs=("4h-s1", "4h-s9"), docs_copy=None)
    (zoo / "4h-s2.lock").write_text("1")
    try:
        with pytest.raises(rs.Stage3Error, match=r"4h-s2 \(a lock file says it is still training\)"):
            rs.stage3_candidates(zoo, RUNS)
    finally:
        (zoo / "4h-s2.lock").unlink()
    assert not (small / "out" / rs.STAGE3_FILE).exists()


def test_a_run_trained_short_of_the_budget_is_not_a_candidate(zoo, small, monkeypatch):
    monkeypatch.setattr(rs, "STAGE3_TRAINED", 3500)
    with pytest.raises(rs.Stage3Error, match="3 of 3500 episodes trained"):
        rs.stage3_candidates(zoo, RUNS)


def test_a_run_whose_files_changed_since_its_figures_is_refused(zoo, small, monkeypatch):
    monkeypatch.setattr(rs, "BAR", STRICT)
    out = small / "out"
    rs.stage3(zoo, out, runs=RUNS, docs_copy=None)
    record = json.loads((out / rs.STAGE3_FILE).read_text())
    record["validation"][0]["identity"] = "0" * 16  # as if 4h-s1's agent.pt had been retrained since
    (out / rs.STAGE3_FILE).write_text(json.dumps(record))
    with pytest.raises(rs.Stage3Error, match="the run changed"):
        rs.stage3(zoo, out, runs=RUNS, docs_copy=None)


def test_validating_the_ready_runs_makes_no_choice_and_the_full_stage_keeps_those_figures(zoo, small, monkeypatch):
    monkeypatch.setattr(rs, "BAR", STRICT)
    out = small / "out"
    (zoo / "4h-s2.lock").write_text("1")  # 4h-s2 still training
    try:
        early = rs.stage3(zoo, out, runs=RUNS, docs_copy=None, validate_only=True)
    finally:
        (zoo / "4h-s2.lock").unlink()
    assert [r["candidate"] for r in early["validation"]] == ["4h-s1/final", "4h-s1/average-last-2"]
    assert "chosen" not in early and "confirmation" not in early
    record = rs.stage3(zoo, out, runs=RUNS, docs_copy=None)
    assert record["validation"][:2] == early["validation"]  # kept, not re-evaluated (wall times included)
    assert len(record["validation"]) == 4 and record["chosen"]
