"""Feature optimisation on the planted network: maximising head 0's attention to a vehicle drives that
vehicle's closeness (and nothing else); FASTER is maximised by pushing every vehicle away; the silent head
and SLOWER give no gradient, so nothing moves. Constraints hold throughout."""
from __future__ import annotations

import json

import numpy as np
import pytest

from interp.probes import feature_optimisation as F
from tests import planted as P


@pytest.fixture(scope="module")
def scenes():
    """Scenes with at least two other vehicles, and per scene a vehicle that is NOT the closest one."""
    obs = P.random_observations(48, seed=51, min_present=3)
    closest = P.closest_row(obs)
    rows = np.array([next(r for r in np.nonzero(o[1:, P.PRESENCE] >= 0.5)[0] + 1 if r != c)
                     for o, c in zip(obs, closest)])
    return obs, rows


def row_closeness(obs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return P.closeness(obs)[np.arange(len(obs)), rows]


def assert_constraints(result: F.FeatureOptimisation) -> None:
    start, end = result.initial, result.optimised
    assert np.array_equal(end[..., P.PRESENCE], start[..., P.PRESENCE])
    assert np.abs(end[..., P.X:P.VY + 1]).max() <= 1.0
    present = start[..., P.PRESENCE] >= 0.5
    np.testing.assert_allclose((end[..., P.COS_H] ** 2 + end[..., P.SIN_H] ** 2)[present], 1.0, atol=1e-5)
    np.testing.assert_array_equal(end[~result.moved], start[~result.moved])


@pytest.mark.parametrize("kind", ["score", "log_attention"])
def test_planted_attention_optimisation_of_head0_drives_the_planted_feature(model, scenes, kind):
    obs, rows = scenes
    result = F.optimise_features(model, obs, F.attention_objective(P.PLANTED_HEAD, rows, kind=kind), rows=rows,
                                 steps=150, lr=0.05)
    assert_constraints(result)
    before, after = row_closeness(obs, rows), row_closeness(result.optimised, rows)
    assert np.all(after > before + 0.1) and np.median(after) > 1.8
    assert np.all(P.closest_row(result.optimised) == rows)  # the vehicle is now the one head 0 attends to
    assert np.all(result.final_value > result.initial_value)
    # only x and y of the chosen row moved: head 0 reads nothing else
    b = np.arange(len(obs))
    np.testing.assert_allclose(result.optimised[b, rows][:, P.VX:], obs[b, rows][:, P.VX:], atol=1e-5)
    assert result.trace.shape == (151, len(obs))
    json.dumps(result.to_dict())


def test_planted_attention_optimisation_negative_control_the_silent_head_moves_nothing(model, scenes):
    obs, rows = scenes
    result = F.optimise_features(model, obs, F.attention_objective(P.SILENT_HEAD, rows), rows=rows, steps=50)
    np.testing.assert_allclose(result.optimised, obs, atol=1e-5)
    assert np.ptp(result.trace, axis=0).max() < 1e-6


def test_planted_faster_is_maximised_by_pushing_every_vehicle_away(model, scenes):
    obs, _ = scenes
    result = F.optimise_features(model, obs, F.q_objective(P.SUPPRESSED_ACTION), steps=150, lr=0.05)
    assert_constraints(result)
    others = result.moved
    assert P.closeness(result.optimised)[others].max() < 0.05  # every vehicle in a corner of the frame
    assert result.at_limit[others][:, :2].mean() > 0.9
    assert np.all(result.final_value >= result.initial_value)
    # negative control: SLOWER ignores every other vehicle
    still = F.optimise_features(model, obs, F.q_objective(0), steps=30)
    np.testing.assert_allclose(still.optimised, obs, atol=1e-5)


def test_planted_neuron_optimisation_brings_a_vehicle_to_the_centre(model, scenes):
    obs, _ = scenes
    result = F.optimise_features(model, obs, F.unit_objective(P.PLANTED_NEURON_HOOK, P.PLANTED_NEURON), steps=150)
    assert P.closeness(result.optimised).max(1).min() > 1.8 and np.all(result.final_value > 1.7)


def test_planted_model_randomisation_optimisation_moves_more_than_position(model, scenes):
    obs, rows = scenes
    randomised = P.randomised_copy(model, seed=0)
    result = F.optimise_features(randomised, obs, F.attention_objective(P.PLANTED_HEAD, rows, kind="score"),
                                 rows=rows, steps=30)
    b = np.arange(len(obs))
    moved = np.abs(result.optimised[b, rows] - obs[b, rows])
    assert moved[:, P.VX:].max() > 1e-2  # a random network's head reads speed and heading too


def test_optimised_rows_map_back_to_metres_and_radians(model, scenes):
    obs, rows = scenes
    result = F.optimise_features(model, obs[:4], F.q_objective(P.SUPPRESSED_ACTION), rows=rows[:4], steps=5,
                                 features=("x", "y"))
    b = np.arange(4)
    np.testing.assert_allclose(result.physical["x"], 100.0 * result.optimised[..., P.X], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(result.physical["vy"], 20.0 * result.optimised[..., P.VY], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(result.physical["heading"][b, rows[:4]],
                               np.arctan2(obs[b, rows[:4], P.SIN_H], obs[b, rows[:4], P.COS_H]), atol=1e-5)
    assert np.array_equal(result.optimised[b, rows[:4]][:, P.VX:], obs[b, rows[:4]][:, P.VX:])  # x, y only


def test_optimisation_refuses_rows_that_cannot_move(model):
    obs = P.random_observations(3, seed=0, min_present=2, max_present=2, shuffle_rows=False)
    with pytest.raises(ValueError, match="present other vehicles"):
        F.optimise_features(model, obs, F.q_objective(2), rows=5, steps=1)
    with pytest.raises(ValueError, match="present other vehicles"):
        F.optimise_features(model, obs, F.q_objective(2), rows=0, steps=1)
    with pytest.raises(ValueError, match="bool mask"):
        F.optimise_features(model, obs, F.q_objective(2), rows=[1, 1], steps=1)
    mask = np.zeros((3, 15), dtype=bool)
    mask[:, 1] = True
    result = F.optimise_features(model, obs, F.q_objective(2), rows=mask, steps=2)
    assert np.array_equal(result.moved, mask)
    with pytest.raises(ValueError, match="cannot be optimised"):
        F.optimise_features(model, obs, F.q_objective(2), features=("presence",), steps=1)
