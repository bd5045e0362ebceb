"""Known answers of the data-set controls (``specs.support.controls``): the A/A controls on a real rollout engine
with planted baseline records, and the added-vehicle control on real scenes from the scene builder.

The A/A controls hold only when the sequential test calls a difference between the baseline records and the plain
agent's own episodes on the seeds after ``first_seed``. Here the episodes are real one-step episodes (the planted
near-tie agent of ``tests/rollout_support.py``: it never crashes in one step and decides every step on a near-tie);
the baseline records are the same episodes with a planted outcome, so each case has a known verdict.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fixtures.builder import SceneBuilder
from fixtures.scenario import EgoSpec, Scenario, VehicleSpec
from interp.simulation.rollout import RolloutEngine
from interp.statistics.graded import GradedDesign
from specs.support import controls
from tests.planted import ENV_CONFIG_PATH
from tests.rollout_support import near_tie_agent

PAIRS = 12  # baseline records per case


class _SeenEngine(RolloutEngine):
    """The real engine, keeping the seeds each run was asked for (which seeds the control draws is its contract)."""

    def __init__(self) -> None:
        super().__init__(workers=0, slots=4, cache=None)
        self.asked: list[list[int]] = []

    def run(self, agent, starts, *args, **kwargs):
        starts = list(starts)
        self.asked.append(starts)
        return super().run(agent, starts, *args, **kwargs)


@pytest.fixture(scope="module")
def agent():
    return near_tie_agent(duration=1)


@pytest.fixture(scope="module")
def engine():
    with _SeenEngine() as e:
        yield e


@pytest.fixture(scope="module")
def plain(agent, engine):
    """Real one-step episodes of the planted agent on seeds 0..PAIRS-1: none crashed, each with a near-tie."""
    records = engine.run(agent, range(PAIRS))
    assert all(not r.crashed and r.near_ties == 1 for r in records)
    return records


def _planted(records, **fields):
    return [dataclasses.replace(r, **fields) for r in records]


def _aa(engine, *args, **kwargs):
    engine.asked.clear()
    holds, detail = controls.aa_control(engine, *args, **kwargs)
    return holds, detail, engine.asked


def test_aa_control_defaults_compare_crashes_upwards_on_the_next_seeds(agent, engine, plain):
    # nobody crashes in either arm: every pair concordant, nothing to call a rise; the test uses all 12 pairs
    holds, detail, asked = _aa(engine, agent, plain, 500, alpha=0.05, min_effect=0.3, batch_pairs=4)
    assert asked == [list(range(500, 500 + PAIRS))]
    assert holds is False
    assert detail.startswith("A/A on disjoint seeds: INCONCLUSIVE  n=12  ") and "discordant b=0 c=0" in detail
    assert "against 'does not raise the rate'" in detail and ">= 0.3" in detail and "p <= 0.05 " in detail
    assert "inconclusive at 12 pairs" in detail and "stopped by the caller" not in detail


def test_aa_control_holds_when_the_baseline_differs_in_the_tested_direction(agent, engine, plain):
    # planted: every baseline episode crashed, the agent's own episodes do not: 12 discordant pairs, all a drop
    crashed = _planted(plain, crashed=True)
    holds, detail, asked = _aa(engine, agent, crashed, 700, alpha=0.01, min_effect=0.05, batch_pairs=1,
                               direction="decrease")
    assert asked == [list(range(700, 700 + PAIRS))]
    assert holds is True
    # the mixture SPRT's always-valid p falls to <= 0.01 at the 9th discordant pair (one pair per look): it stops
    assert "SUPPORTED  n=9  " in detail and "discordant b=9 c=0" in detail
    assert "p <= 0.01 against 'does not lower the rate'" in detail and "inconclusive at 12 pairs" in detail
    # the same data at alpha 0.05 stop at the 7th pair: the level is the one passed in
    assert "SUPPORTED  n=7  " in _aa(engine, agent, crashed, 700, alpha=0.05, min_effect=0.05, batch_pairs=1,
                                     direction="decrease")[1]
    # a drop is no rise: tested upwards, the same data refute the claim (the control does not hold)
    up, detail_up, _ = _aa(engine, agent, crashed, 700, alpha=0.01, min_effect=0.05, batch_pairs=1)
    assert up is False and "REFUTED" in detail_up and "'does not raise the rate'" in detail_up


def test_aa_control_reads_the_outcome_it_is_given(agent, engine, plain):
    # planted: the baseline had no near-tie, the agent's own episodes each have one: a rise in `near_ties`
    holds, detail, _ = _aa(engine, agent, _planted(plain, near_ties=0), 900, alpha=0.05, min_effect=0.05,
                           batch_pairs=1, outcome="near_ties")
    assert holds is True and "SUPPORTED  n=7  " in detail and "discordant b=0 c=7" in detail
    # the same records read on crashes: no difference at all
    holds, detail, _ = _aa(engine, agent, _planted(plain, near_ties=0), 900, alpha=0.05, min_effect=0.05,
                           batch_pairs=1)
    assert holds is False and "discordant b=0 c=0" in detail


def test_graded_aa_control_known_answers(agent, engine, plain):
    design = GradedDesign(scale=1.0, min_effect=0.3, alpha=0.05, direction="decrease", max_pairs=400)
    worst = _planted(plain, near_ties=0)  # planted graded outcome 1 - near_ties: baseline 1.0, the agent's own 0.0

    def outcome(r):
        return 1.0 - r.near_ties

    engine.asked.clear()
    holds, detail = controls.graded_aa_control(engine, agent, worst, 300, design=design, batch_pairs=1, outcome=outcome)
    assert engine.asked == [list(range(300, 300 + PAIRS))]
    # every pair a full drop: the betting e-value passes 1 / 0.05 at the 7th pair, before the seeds run out
    assert holds is True and detail.startswith("A/A on disjoint seeds: SUPPORTED  n=7  ")
    assert "inconclusive at 12 pairs" in detail and ">= 0.3" in detail and "p <= 0.05 against 'does not lower the mean'" in detail
    # the same outcome in both arms: nothing to call, all 12 pairs used, and the batch size does not matter
    same, detail_same = controls.graded_aa_control(engine, agent, plain, 300, design=design, batch_pairs=5,
                                                   outcome=outcome)
    assert same is False and detail_same.startswith("A/A on disjoint seeds: INCONCLUSIVE  n=12  ") and "stopped by the caller" not in detail_same
    # tested upwards, a drop does not hold
    up = dataclasses.replace(design, direction="increase")
    assert controls.graded_aa_control(engine, agent, worst, 300, design=up, batch_pairs=1, outcome=outcome)[0] is False


# ------------------------------------------------------------------------------------------ added vehicle
FAR = VehicleSpec("right", 80.0, speed=6.0, turn="right", name="extra")  # far; its path never meets the ego's
NEAR = VehicleSpec("left", 4.0, speed=8.0, turn="straight", reference="conflict", name="extra")  # crosses the ego


@pytest.fixture(scope="module")
def scenes(builder):
    ego = EgoSpec(distance=30.0, speed=9.0, turn="left")
    made = [Scenario(ego=ego, vehicles=(VehicleSpec("left", d, speed=7.0, turn="straight", reference="conflict",
                                                    name="crossing"),)) for d in (25.0, 40.0)]
    return [builder.build(s, allow_unobserved=True) for s in made]


def test_added_vehicle_pairs_are_the_scene_and_the_scene_with_the_extra_car(builder, scenes):
    pairs = controls.with_extra_vehicle(builder, scenes, FAR, conflicting=False)
    assert len(pairs) == len(scenes)
    for scene, (before, after) in zip(scenes, pairs):
        assert before is scene.observation
        rebuilt = builder.build(dataclasses.replace(scene.scenario, vehicles=(*scene.scenario.vehicles, FAR)),
                                allow_unobserved=True)
        np.testing.assert_array_equal(after, rebuilt.observation)
        assert (after[:, 0] > 0.5).sum() == (before[:, 0] > 0.5).sum() + 1  # one more vehicle observed
    # the far car does not conflict with the ego: asked for a conflicting one, no scene qualifies
    assert controls.with_extra_vehicle(builder, scenes, FAR, conflicting=True) == []
    # the near crossing car does, and only as a conflicting one
    assert len(controls.with_extra_vehicle(builder, scenes, NEAR, conflicting=True)) == len(scenes)
    assert controls.with_extra_vehicle(builder, scenes, NEAR, conflicting=False) == []


def test_added_vehicle_skips_a_scene_it_cannot_be_added_to_and_goes_on(builder, scenes):
    # the extra car on top of a car already there cannot be built (overlap): that scene is skipped, the next kept
    twin = dataclasses.replace(FAR, name="twin")
    ego = EgoSpec(distance=30.0, speed=9.0, turn="left")
    occupied = builder.build(Scenario(ego=ego, vehicles=(twin,)), allow_unobserved=True)
    pairs = controls.with_extra_vehicle(builder, [occupied, scenes[0]], FAR, conflicting=False)
    assert len(pairs) == 1 and pairs[0][0] is scenes[0].observation


def test_added_vehicle_may_leave_another_vehicle_unobserved():
    # one row for other vehicles, nearest first: with the extra car the scene has more vehicles than rows, which the
    # control allows (the builder reports who is dropped); the near extra car is the one observed, so it is kept
    config = json.loads(ENV_CONFIG_PATH.read_text())
    config["observation"] = {**config["observation"], "vehicles_count": 2, "order": "sorted"}
    ego = EgoSpec(distance=30.0, speed=9.0, turn="left")
    with pytest.warns(RuntimeWarning, match="observation.vehicles_count=2"):  # outside the fast simulator's scope
        small = SceneBuilder(config)
    try:
        base = [small.build(Scenario(ego=ego, vehicles=(VehicleSpec(side, 90.0, speed=5.0, turn="right", name="far"),)))
                for side in ("oncoming", "right")]
        kept = controls.with_extra_vehicle(small, base, NEAR, conflicting=True)
        with_extra = [small.build(dataclasses.replace(s.scenario, vehicles=(*s.scenario.vehicles, NEAR)),
                                  allow_unobserved=True) for s in base]
    finally:
        small.close()
    assert all(s.rows["extra"] is not None and s.rows["far"] is None for s in with_extra)
    assert len(kept) == len(base)


# ------------------------------------------------------------------------------------------ random-network quantiles
def test_random_role_share_quantile_defaults_to_the_95th_percentile_over_ten_networks():
    from interp.probes.attention import argmax_share
    from tests.planted import closest_row, planted_model, random_observations, randomised_copy

    model = planted_model()
    obs = random_observations(40, seed=3)
    rows = closest_row(obs)
    drawn: list[int] = []

    def make(i):
        drawn.append(i)
        return randomised_copy(model, seed=200 + i)

    got = controls.random_role_share_quantile(make, obs[:20], rows[:20], obs[20:], rows[20:])
    assert drawn == list(range(10))
    shares = []
    for i in range(10):
        m = randomised_copy(model, seed=200 + i)
        shares.append(float(argmax_share(m, obs[20:], rows[20:]).share[int(argmax_share(m, obs[:20], rows[:20]).best_head)]))
    assert got == pytest.approx(float(np.quantile(shares, 0.95)))
