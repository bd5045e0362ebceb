"""Every spec's negative control can pass: on a planted model or data set where the claim holds only trivially, the
control's check holds too, so the spec would end *vacuous*. (A control that can never pass makes "vacuous"
unreachable and proves nothing.) Each test names the spec; the rejecting side of each rule is in
tests/test_spec_controls.py. Controls that rest on a statistical argument instead (the A/A controls, the shuffled
scene parameters, the fuzz specs' search-power controls) say so in their spec's docstring and in docs/validation/controls.md.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from fixtures.builder import SceneBuilder
from specs.support import claims, controls
from specs.support.scenes import distance_sweeps
from tests import planted
from tests.planted import PLANTED_HEAD, closest_row, planted_model, random_observations


@pytest.fixture(scope="module")
def sweeps():
    builder = SceneBuilder(json.loads(planted.ENV_CONFIG_PATH.read_text()))
    yield distance_sweeps(builder, 16, seed=5, points=5)
    builder.close()


def _constant_q(model, q=(0.5, 0.0, 1.0)):
    """The planted network with Q-values that depend on nothing: Q = q in every scene."""
    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        clone.output_layer.predict.weight.zero_()
        clone.output_layer.predict.bias.copy_(torch.tensor(q))
    return clone


def _always_slows(model):
    return _constant_q(model, (1.0, 0.0, 0.5))


# ------------------------------------------------------------------------------------------ behaviour
def test_collision_rate_control_holds_when_the_untrained_agent_never_crashes():
    # test_collision_rate_on_held_out_seeds_is_below_the_bound: an env where even untrained weights never crash
    # (no traffic) makes the bound vacuous
    from specs.test_behavior import COLLISION_BOUND
    from specs.support.claims import rate_verdict as _rate_check

    assert _rate_check([False] * 40, COLLISION_BOUND)[0] == "supported"


def test_yielding_control_holds_for_an_agent_that_slows_near_any_junction(model):
    # test_yields_when_a_crossing_vehicle_reaches_the_conflict_point_first: blind to the crossing car, it still slows
    from specs.support.claims import slows_in_most as _slows_in_most

    obs = random_observations(40, seed=11, min_present=3, max_present=3)
    rows = closest_row(obs)
    slows = _always_slows(model)
    assert _slows_in_most(slows, obs).holds
    assert _slows_in_most(slows, controls.hide_rows(obs, rows)).holds  # control holds: vacuous
    # an agent that slows *because of* the car: the control rejects
    cautious = _slows_for_a_close_car(model)
    near = obs.copy()
    near[np.arange(len(obs)), rows, 1:3] = 0.01  # that car at the centre
    assert _slows_in_most(cautious, near).holds
    assert not _slows_in_most(cautious, controls.hide_rows(near, rows)).holds


def _slows_for_a_close_car(model):
    """Q_SLOWER = 2 z_0 - 1.5 (head 0's closeness read-out): slows only for a car near the centre."""
    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        clone.output_layer.predict.weight[0].zero_()
        clone.output_layer.predict.weight[0, planted.PLANTED_NEURON] = 2.0
        clone.output_layer.predict.bias[0] = -1.5
        clone.output_layer.predict.weight[1:].zero_()
        clone.output_layer.predict.bias[1:] = 2.0
    return clone


def test_hide_rows_is_an_agent_blind_to_that_vehicle(model):
    obs = random_observations(16, seed=12, min_present=3, max_present=3)
    rows = closest_row(obs)
    hidden = controls.hide_rows(obs, rows)
    assert hidden.dtype == np.float32 and hidden is not obs
    assert np.all(hidden[np.arange(16), rows] == 0) and np.all(obs[np.arange(16), rows, 0] == 1)
    untouched = np.ones(obs.shape[:2], bool)
    untouched[np.arange(16), rows] = False
    np.testing.assert_array_equal(hidden[untouched], obs[untouched])
    # the same Q as deleting that vehicle from the scene
    dropped = obs.copy()
    dropped[np.arange(16), rows] = 0.0
    np.testing.assert_allclose(claims.q_values(model, hidden), claims.q_values(model, dropped))


def test_empty_intersection_control_holds_when_slowing_is_neither_best_nor_worst(model):
    # test_does_not_slow_down_at_an_empty_intersection: Q_FASTER > Q_SLOWER > Q_IDLE keeps speed, and so does its
    # negation (the spec's control), so the check cannot tell the agent from its reverse
    from interp.stats import wilson_interval

    obs = random_observations(120, seed=13, min_present=1, max_present=1)
    between = _constant_q(model, (0.5, 0.0, 1.0))
    for m in (between, controls.negated_q(between)):
        keeps = int((claims.keep_speed_margin(claims.q_values(m, obs)) > 0).sum())
        assert wilson_interval(keeps, len(obs))[0] > claims.UNCHANGED_SHARE


# ------------------------------------------------------------------------------------------ mechanism
def test_attention_control_a_random_network_can_beat_the_random_quantile(model):
    # test_crossing_head_attends_most_to_the_nearest_crossing_vehicle: a further "random" network whose role head
    # attends to the target as the planted head does passes the same rule
    obs = random_observations(64, seed=3)
    assert claims.attends_to_target(model, PLANTED_HEAD, obs, closest_row(obs), random_share=0.5).holds


def test_random_network_role_head_is_the_head_the_role_would_resolve_to():
    from interp.probes.attention import argmax_share

    agent = planted.planted_agent()
    obs = random_observations(64, seed=14)
    rows = closest_row(obs)
    net, head = controls.random_network_role_head(agent, 5, obs, rows)
    assert head == int(argmax_share(net, obs, rows).best_head)
    again, _ = controls.random_network_role_head(agent, 5, obs, rows)
    other, _ = controls.random_network_role_head(agent, 6, obs, rows)
    first = dict(net.named_parameters())
    assert all(torch.equal(p, first[k]) for k, p in again.named_parameters())  # seeded
    assert not all(torch.equal(p, first[k]) for k, p in other.named_parameters())
    assert not all(torch.equal(p, dict(agent.model.named_parameters())[k]) for k, p in net.named_parameters())


def test_attention_rise_control_holds_for_a_network_drawn_to_near_vehicles(model, sweeps):
    # test_attention_to_a_crossing_vehicle_rises_as_it_nears_the_conflict_point: a network whose head attends by
    # closeness to the centre (what random heads drift to) rises too: the control holds
    assert claims.attention_rises_when_nearer(model, PLANTED_HEAD, sweeps).holds


def test_side_control_holds_for_heads_that_differ_by_side():
    # test_heads_specialise_by_approach_side: the control network passes when one head prefers the left car and
    # another the right one. Planted: head 0 attends by closeness (the left cars are nearer), head 1 uniformly
    # (the right scenes hold fewer vehicles, so it gives their car more).
    m = planted_model()
    n = 30
    left = random_observations(n, seed=15, min_present=3, max_present=3, shuffle_rows=False)
    right = random_observations(n, seed=16, min_present=2, max_present=2, shuffle_rows=False)
    left[:, 1, 1:3] = 0.05  # the car, near the centre
    left[:, 2, 1:3] = 0.9  # a far distractor
    right[:, 1, 1:3] = 0.9  # far: head 0 gives it a little less than the near left car
    rows = np.ones(n, dtype=int)
    check = claims.heads_specialise_by_side(m, left, rows, right, rows, random_spread=0.05)
    assert check.numbers["left_heads"] == [0] and check.numbers["right_heads"] == [1]
    assert check.holds


def test_contribution_control_holds_when_the_head_lowers_the_margin_without_that_vehicle(model):
    # test_crossing_head_contribution_suppresses_keeping_speed: other cars near the centre keep head 0 lowering the
    # margin when the target car is hidden: the contribution is not about that car
    obs = random_observations(64, seed=4, min_present=4, max_present=6)
    obs[:, :, 3:5] = 0.0
    rows = closest_row(obs)
    assert claims.head_lowers_keep_margin(model, PLANTED_HEAD, obs).holds
    assert claims.head_lowers_keep_margin(model, PLANTED_HEAD, controls.hide_rows(obs, rows)).holds
    # one car only: hidden, head 0 has nothing to read, and the control rejects
    alone = random_observations(64, seed=4, min_present=2, max_present=2)
    alone[:, :, 3:5] = 0.0
    assert claims.head_lowers_keep_margin(model, PLANTED_HEAD, alone).holds
    assert not claims.head_lowers_keep_margin(model, PLANTED_HEAD, controls.hide_rows(alone, closest_row(alone))).holds


def test_scrubbing_control_holds_when_scenes_with_as_many_vehicles_are_alike(model):
    # test_scrubbing_..._recovers_the_behaviour: "only the number of vehicles matters" is supported on a scene set
    # where scenes with as many vehicles are copies of each other
    from interp.probes.interventions import Margin
    from interp.probes.scrubbing import scrub

    distinct = [random_observations(1, seed=100 + k, min_present=k, max_present=k)[0] for k in range(2, 10)]
    obs = np.stack([o for o in distinct for _ in range(4)])
    n_present = [int((o[:, 0] >= 0.5).sum()) for o in obs]
    result = scrub(model, obs, hook="attention_layer.hook_z", units=(PLANTED_HEAD,), labels=n_present,
                   metric=Margin(action=2, other=1), property_name="number of vehicles")
    assert result.verdict == "supported", result.reason


# ------------------------------------------------------------------------------------------ probes
def test_ig_control_holds_for_a_network_above_the_random_quantile():
    # test_integrated_gradients_credit_the_nearest_crossing_vehicle_most: the further random network passes if its
    # share beats the 95th percentile of the others (5 % of random networks do, by definition of the quantile)
    from specs.support.claims import beats_random as _beats_random

    randoms = np.array([0.5, 0.6, 0.7, 0.55, 0.65])
    assert _beats_random(0.8, randoms, 80, 100, "a further random network").holds


def test_qk_control_holds_for_a_network_whose_score_tracks_position(model):
    # test_crossing_head_score_depends_most_on_where_the_other_vehicle_is: the control network (random weights on
    # the reference agent: eta^2 0.90 on dy) passes when its role head's score follows position, as the planted
    # head's does (closeness |x| + |y|)
    from specs.support.claims import score_tracks_position as _score_tracks_position

    obs = random_observations(200, seed=8, min_present=4)
    assert _score_tracks_position(model, PLANTED_HEAD, obs)[1].holds


def test_feature_optimisation_control_holds_when_the_projection_alone_moves_the_car(model):
    # test_optimising_a_crossing_car_...: cars outside the env's ranges are pulled in by the projection whatever the
    # objective, so the car "moves closer" for the agent and for its negation alike
    from specs.support.claims import optimised_car_moves_closer as _optimised_car_moves_closer

    obs = random_observations(24, seed=9, min_present=2, max_present=2)
    rows = np.array([int(np.flatnonzero(o[1:, 0] > 0.5)[0]) + 1 for o in obs])
    obs[np.arange(24), rows, 1:3] = 3.0  # beyond the normalised range [-1, 1]
    frozen = _constant_q(model)  # no gradient at all: only the projection moves the car
    assert _optimised_car_moves_closer(frozen, obs, rows)[1].holds
    assert _optimised_car_moves_closer(controls.negated_q(frozen), obs, rows)[1].holds


# ------------------------------------------------------------------------------------------ invariance
def test_permutation_control_holds_on_scenes_without_other_vehicles(model):
    # test_permuting_observation_rows_leaves_q_values_unchanged: nothing to permute, the leak cannot show
    obs = random_observations(32, seed=17, min_present=1, max_present=1)
    assert claims.permutation_invariant(model, obs).holds
    assert claims.permutation_invariant(controls.row_order_leak(model), obs).holds


def test_absent_rows_control_holds_on_scenes_without_absent_rows(model):
    # test_absent_rows_get_zero_attention: every row present, a broken mask changes nothing
    obs = random_observations(32, seed=18, min_present=planted.N_ROWS, max_present=planted.N_ROWS)
    assert claims.absent_rows_ignored(model, obs).holds
    assert claims.absent_rows_ignored(controls.broken_presence_mask(model), obs).holds


def test_far_vehicle_control_holds_for_an_agent_that_ignores_traffic(model):
    # test_adding_a_far_non_conflicting_vehicle_does_not_change_the_action (vacuous on the reference agent)
    blind = controls.silenced_head(model, PLANTED_HEAD)  # Q depends on the ego's speed only
    before = random_observations(40, seed=19, min_present=2, max_present=2)
    near = before.copy()
    near[:, 1:, 1:3] = np.where(before[:, 1:, 0:1] > 0, 0.01, 0.0)
    assert claims.action_unchanged(blind, before, near).holds


def test_directional_control_holds_for_an_agent_that_ignores_the_car(model, sweeps):
    # test_moving_a_crossing_vehicle_closer_never_raises_willingness_to_keep_speed: flat margins never rise, for
    # the agent and for its negation
    blind = controls.silenced_head(model, PLANTED_HEAD)
    assert claims.never_more_willing_when_nearer(blind, sweeps).holds
    assert claims.never_more_willing_when_nearer(controls.negated_q(blind), sweeps).holds


# ------------------------------------------------------------------------------------------ fuzz
def test_fuzz_crossing_first_control_holds_for_an_indifferent_agent():
    # test_fuzz_agent_does_not_keep_its_speed_...: all Q-values equal, the property holds (ties) for the agent and
    # for its negation, so the control search finds nothing
    from specs import fuzzing as fz

    agent = planted.planted_agent()
    indifferent = agent.with_model(_constant_q(agent.model, (0.0, 0.0, 0.0)), "indifferent")
    builder = SceneBuilder(json.loads(planted.ENV_CONFIG_PATH.read_text()))
    try:
        subject = indifferent.with_model(controls.negated_q(indifferent.model), "Q negated")
        result = fz.search(fz.CrossingFirstSlows(), subject, builder, max_examples=15)
    finally:
        builder.close()
    assert result.applicable > 0 and result.failure is None
