"""The rollout engine: determinism whatever the pool layout (planted near-tie), common random numbers,
traces with row identities, scenario starts, the sequential runner and the evaluate command.

Episodes here run on the reference env config with a short ``duration`` (a few steps each), so the whole
file costs a few dozen simulated steps per layout.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.simulation.agent import load_agent, save_agent
from interp.probes.interventions import head_ablation
from interp.model import policy
from interp.simulation.rollout import (Condition, EpisodeRecord, RolloutEngine, Start, as_condition,
                            records_by_condition, run_sequential)
from interp.stats import SequentialDesign
from interp.simulation.workers import EnvPool, Reset, Step
from tests.rollout_support import FASTER, SLOWER, EmptyRoad, FailingSetup, near_tie_agent, random_obs
from tests.rollout_support import force as _force

SEEDS = [3, 4, 5, 6]


@pytest.fixture(scope="module")
def tie():
    return near_tie_agent()


@pytest.fixture(scope="module")
def reference_records(tie):
    """The reference layout: everything in this process, one slot (one episode at a time)."""
    with RolloutEngine(workers=0, slots=1, cache=None) as engine:
        return engine.run(tie, SEEDS, trace=True)


# ----------------------------------------------------------------------------------- layout independence

def test_a_rows_decision_does_not_depend_on_the_other_rows_or_their_order(tie):
    """``interp.model.policy`` runs each row alone, so a row's Q-values are the same whatever shares the call.

    Why this cannot pass by platform luck: every row goes through a batch of one, the same kernel call with
    the same shape in every arrangement, so the comparison is of one computation with itself, on any CPU;
    the control below shows that the batched forward it replaces does not give that guarantee for free.
    """
    x = random_obs(24, seed=0).numpy()
    alone = np.stack([policy.q_rows(tie.model, x[i])[0][0] for i in range(len(x))])
    order = np.random.default_rng(1).permutation(len(x))
    np.testing.assert_array_equal(policy.q_rows(tie.model, x)[0], alone)
    np.testing.assert_array_equal(policy.q_rows(tie.model, x[order])[0], alone[order])
    np.testing.assert_array_equal(policy.q_rows(tie.model, np.concatenate([x[:3] * 0.5, x]))[0][3:], alone)


def test_the_planted_near_tie_resolves_by_the_rule_and_is_counted_on_every_step(tie, reference_records):
    """SLOWER and FASTER tied within ~1e-7: the rule gives the tie to the lowest index (SLOWER), whatever the
    rounding, and every step is flagged as a near-tie."""
    for record in reference_records:
        assert set(record.actions) == {SLOWER}
        assert record.near_ties == record.length > 0


# ----------------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("workers, slots", [(1, 2), (2, 3), (4, 4)])
def test_planted_near_tie_records_identical_with_1_2_4_workers(tie, reference_records, workers, slots):
    """Guard against kernel luck: SLOWER and FASTER are tied to within ~1e-7, so any layout-dependent rounding
    would show; rows are computed alone (one kernel call shape) and ties resolve by rule, on any CPU."""
    with RolloutEngine(workers=workers, slots=slots, cache=None) as engine:
        records = engine.run(tie, SEEDS, trace=True)
    assert records == reference_records


def test_planted_near_tie_partly_cached_run_equals_fresh_run(tie, reference_records, tmp_path):
    """Cache hits change which episodes share a step; records must not change."""
    with RolloutEngine(workers=0, slots=3, cache=tmp_path / "cache") as engine:
        engine.run(tie, [SEEDS[1], SEEDS[3]], trace=True)
        records = engine.run(tie, SEEDS, trace=True)
        assert engine.stats.cached == 2
    assert records == reference_records


# ----------------------------------------------------------------------------------- conditions, traces

def test_conditions_run_on_common_seeds_and_interventions_act(tie):
    conditions = {"baseline": None, "faster": Condition("x", hooks=[("hook_q", _force(FASTER))],
                                                        description={"kind": "force", "action": FASTER})}
    with RolloutEngine(workers=0, slots=4, cache=None) as engine:
        records = engine.run(tie, SEEDS[:2], conditions, trace=True)
    assert [(r.seed, r.condition) for r in records] == [(s, c) for s in SEEDS[:2] for c in ("baseline", "faster")]
    grouped = records_by_condition(records)
    for base, forced in zip(grouped["baseline"], grouped["faster"]):
        np.testing.assert_array_equal(base.trace.obs[0], forced.trace.obs[0])  # same seed, same first scene
        assert set(forced.actions) == {FASTER}


def test_trace_rows_name_the_vehicle_behind_each_row(reference_records):
    for record in reference_records:
        t = record.trace
        n_heads = 4
        assert t.obs.shape == (record.length, 15, 7) and t.q.shape == (record.length, 3)
        assert t.attention.shape == (record.length, n_heads, 15) and t.rows.shape == (record.length, 15)
        assert (t.rows[:, 0] == 0).all()  # the ego is row 0 and the first vehicle seen
        np.testing.assert_array_equal(t.rows >= 0, t.obs[:, :, 0] > 0)  # empty rows exactly where presence is 0
        assert np.allclose(t.attention[t.obs[:, None, :, 0].repeat(n_heads, 1) == 0], 0)  # absent rows: no attention
        np.testing.assert_allclose(t.attention.sum(-1), 1, atol=1e-5)
        assert policy.choose(t.q)[0].tolist() == list(record.actions)
        seen = [v for step in t.rows for v in step if v >= 0]
        assert sorted(set(seen)) == list(range(len(set(seen))))  # numbered 0.. in order of first sight


def test_trace_does_not_change_the_episodes(tie, reference_records):
    with RolloutEngine(workers=0, slots=2, cache=None) as engine:
        plain = engine.run(tie, SEEDS)
    assert plain == [r.without_trace() for r in reference_records]


def test_record_round_trips_through_a_dict(reference_records):
    record = reference_records[0]
    assert EpisodeRecord.from_dict(record.to_dict()) == record
    assert json.loads(json.dumps(record.to_dict(trace=False)))["return"] == record.ret


def test_as_condition_accepts_every_form(tie):
    ablation = head_ablation([1], n_heads=4)
    assert as_condition("a", ablation).description == ablation.describe()
    assert as_condition("b", None).is_plain
    assert as_condition("c", tie).agent is tie
    hooks = [("hook_q", _force(SLOWER))]
    assert not as_condition("d", hooks).cacheable
    assert as_condition("e", (hooks, {"kind": "force"})).cacheable
    with pytest.raises(TypeError, match="cannot run"):
        as_condition("f", 3.5)


def test_scenario_start_runs_its_setup_in_a_worker(tie):
    with RolloutEngine(workers=1, slots=2, cache=None) as engine:
        plain, empty = engine.run(tie, [SEEDS[0], Start(SEEDS[0], setup=EmptyRoad())], trace=True)
    assert plain.scenario is None and empty.scenario is not None
    assert empty.trace.obs[0, 1:, 0].sum() == 0 and plain.trace.obs[0, 1:, 0].sum() > 0
    assert (empty.trace.rows[0, 1:] == -1).all()
    assert Start(0, setup=EmptyRoad()).description == {"seed": 0, "setup": {"scene": "empty road"}}
    assert Start(0, setup=lambda env: None).description is None  # unnamed set-up: never cached


def test_env_pool_send_receive_keeps_workers_apart_and_run_is_lock_step(tie):
    with EnvPool(tie.env_config, 2, 1, record_rows=True) as pool:
        pool.send({0: Reset(seed=1)})
        with pytest.raises(RuntimeError, match="still busy"):
            pool.send({1: Reset(seed=2)})  # slot 1 lives on the same (busy) worker
        first = pool.receive()
        assert set(first) == {0} and not pool.busy and first[0].rows[0] == 0
        both = pool.run({0: Step(SLOWER), 1: Reset(seed=2)})
        assert set(both) == {0, 1} and not pool.busy
    with EnvPool(tie.env_config, 2, 0) as local:  # in-process: the same API
        assert set(local.run({0: Reset(seed=1), 1: Reset(seed=2)})) == {0, 1}
        np.testing.assert_array_equal(local.run({0: Step(SLOWER)})[0].obs, both[0].obs)


def test_a_failing_setup_reports_the_workers_traceback(tie):
    with RolloutEngine(workers=1, slots=1, cache=None) as engine:
        with pytest.raises(RuntimeError, match="planted set-up failure"):
            engine.run(tie, [Start(1, setup=FailingSetup())])


# ----------------------------------------------------------------------------------- sequential runner

def test_run_sequential_decides_a_planted_effect_and_a_planted_null_with_holm(tmp_path):
    """Baseline always SLOWER; 'faster' always FASTER (every pair discordant: supported); 'same' always
    SLOWER under another hook (every pair concordant: refuted against a 0.5 effect). One look of 10 pairs
    settles both (Holm over two); a rerun is served from the cache and reaches the same verdicts."""
    agent = near_tie_agent(duration=1)
    conditions = {
        "baseline": Condition("baseline", hooks=[("hook_q", _force(SLOWER))], description={"force": SLOWER}),
        "faster": Condition("faster", hooks=[("hook_q", _force(FASTER))], description={"force": FASTER}),
        "same": Condition("same", hooks=[("hook_q", _force(SLOWER))], description={"force": SLOWER, "copy": 1}),
    }
    design = SequentialDesign(alpha=0.05, direction="increase", max_pairs=30, min_effect=0.5)
    faster_first = lambda r: r.actions[0] == FASTER  # noqa: E731
    with RolloutEngine(workers=2, slots=8, cache=tmp_path / "cache") as engine:
        result = run_sequential(engine, agent, conditions, seeds=range(100, 200), design=design, batch_pairs=10,
                                outcome=faster_first)
        assert result.batches == 1 and result.n_pairs == 10 and len(result.records) == 30
        assert result.verdicts["faster"].verdict == "supported"
        assert result.verdicts["same"].verdict == "refuted"
        assert "Holm" in result.verdicts["faster"].decision_rule
        simulated = engine.stats.simulated
        again = run_sequential(engine, agent, conditions, seeds=range(100, 200), design=design, batch_pairs=10,
                               outcome=faster_first)
        assert engine.stats.simulated == simulated  # nothing simulated the second time
    assert {k: v.to_dict() for k, v in again.verdicts.items()} == {k: v.to_dict() for k, v in result.verdicts.items()}


def test_run_sequential_stops_inconclusive_when_seeds_run_out():
    agent = near_tie_agent(duration=1)
    conditions = {"baseline": None, "faster": ([("hook_q", _force(FASTER))], {"force": FASTER})}
    with RolloutEngine(workers=0, slots=4, cache=None) as engine:
        result = run_sequential(engine, agent, conditions, seeds=[7, 8], batch_pairs=5,
                                design=SequentialDesign(max_pairs=50), outcome="crashed")
    assert result.n_pairs == 2 and result.verdicts["faster"].verdict == "inconclusive"
    assert "stopped by the caller" in result.verdicts["faster"].decision_rule


def test_run_sequential_refuses_bad_setups(tie):
    with RolloutEngine(workers=0, cache=None) as engine:
        with pytest.raises(ValueError, match="baseline"):
            run_sequential(engine, tie, {"a": None, "b": None}, seeds=[1])
        with pytest.raises(ValueError, match="treatment"):
            run_sequential(engine, tie, {"baseline": None}, seeds=[1])


# ----------------------------------------------------------------------------------- command line

def test_evaluate_command_compares_an_ablation_on_paired_seeds(tmp_path, capsys):
    from interp.cli import main

    agent = near_tie_agent(duration=1)
    save_agent(agent, tmp_path / "agent.pt")
    assert load_agent(tmp_path / "agent.pt").identity == agent.identity
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--checkpoint", str(tmp_path / "agent.pt"), "--episodes", "3", "--seed", "10",
                 "--workers", "0", "--ablate-head", "1", "--compare", "--cache-dir", str(tmp_path / "c"),
                 "--no-progress", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "[agent] n=3" in text and "[ablate_heads=1] n=3" in text and "[ablate_heads=1 vs agent]" in text
    data = json.loads(out.read_text())
    assert len(data["episodes"]) == 6 and data["verdicts"]["ablate_heads=1"]["n"] == 3
    main(["evaluate", "--checkpoint", str(tmp_path / "agent.pt"), "--episodes", "3", "--seed", "10", "--workers", "0",
          "--ablate-head", "1", "--compare", "--cache-dir", str(tmp_path / "c"), "--no-progress"])
    assert "simulated 0 episodes, 6 from the cache" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "agent.pt"), "--compare", "--no-cache"]) == 2
    assert main(["evaluate", "--checkpoint", str(tmp_path / "agent.pt"), "--episodes", "4", "--seed", "10",
                 "--workers", "0", "--ablate-head", "1", "--compare", "--sequential", "--batch", "3",
                 "--cache-dir", str(tmp_path / "c"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "6 from the cache" in text and "sequential paired" in text and "INCONCLUSIVE  n=4" in text
