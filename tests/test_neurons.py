"""Neuron activations, role similarity and the semantic dictionary on the planted network: the planted
neuron is head 0's closeness read-out, and its dictionary entry is "a vehicle is near" -- on held-out scenes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from interp.probes import neurons as N
from tests import planted as P

PLANTED_OBS = (600, 41)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


def scenario_params(obs: np.ndarray, seed: int = 0) -> list[dict]:
    """Per-scene parameters as a scenario generator would give them: one that matters for the planted neuron
    (how close the closest vehicle is), one that matters for neuron 1 (the ego's speed), two that do not."""
    rng = np.random.default_rng(seed)
    nearest = P.closeness(obs).max(1)
    ego_speed = np.abs(obs[:, 0, P.VX]) + np.abs(obs[:, 0, P.VY])
    approach = rng.choice(["left", "right", "oncoming"], size=len(obs))
    return [{"closest_band": "near" if c >= 1.6 else ("mid" if c >= 1.2 else "far"),
             "ego_speed_band": "fast" if s > 1.0 else "slow", "approach": str(a), "weather": str(rng.integers(2))}
            for c, s, a in zip(nearest, ego_speed, approach)]


def test_activations_of_the_planted_neuron_are_head0s_closeness_readout(model, obs):
    act = N.activations(model, obs, P.PLANTED_NEURON_HOOK)
    assert act.values.shape == (600, 8) and act.units().shape == (600, 8)
    ego_speed = np.abs(obs[:, 0, P.VX]) + np.abs(obs[:, 0, P.VY])
    z0 = P.Q_BIAS[2] + P.SPEED_GAIN[2] * ego_speed - P.expected_q(obs)[:, P.SUPPRESSED_ACTION]
    np.testing.assert_allclose(act.values[:, P.PLANTED_NEURON], z0, atol=1e-4)
    assert act.active_fraction[P.PLANTED_NEURON] == 1.0 and act.active_fraction[3:].max() == 0
    emb = N.activations(model, obs[:5], "others_embedding.hook_hidden.1")
    assert emb.values.shape == (5, 14, 8)
    with pytest.raises(KeyError, match="no hook point"):
        N.activations(model, obs[:2], "output_layer.hook_hidden.7")
    json.dumps(act.to_dict())


def test_planted_semantic_dictionary_finds_the_planted_property(model, obs):
    values = N.activations(model, obs, P.PLANTED_NEURON_HOOK).units()
    params = scenario_params(obs)
    sd = N.semantic_dictionary(values, params, unit_names=[f"neuron {u}" for u in range(8)])
    planted = sd.entries[P.PLANTED_NEURON]
    assert planted.counts and planted.summary.get("closest_band") == "near"
    assert "approach" not in planted.summary and "weather" not in planted.summary  # chance clauses kept out
    assert planted.heldout_precision > planted.heldout_base_rate and planted.lift > 1.5
    assert sd.entries[1].counts and sd.entries[1].summary == {"ego_speed_band": "fast"}
    assert not sd.entries[2].counts and sd.entries[2].summary == {}  # a constant neuron summarises nothing
    assert set(sd.counted()) == {"neuron 0", "neuron 1"}
    assert not set(sd.train) & set(sd.heldout) and len(sd.train) + len(sd.heldout) == len(obs)
    json.dumps(sd.to_dict())


def test_semantic_dictionary_negative_control_shuffled_parameters_predict_nothing(model, obs):
    values = N.activations(model, obs, P.PLANTED_NEURON_HOOK).units()
    params = scenario_params(obs)
    shuffled = [params[i] for i in np.random.default_rng(1).permutation(len(params))]
    assert N.semantic_dictionary(values, shuffled).counted() == {}


def test_semantic_dictionary_model_randomisation_loses_the_planted_summary(model, obs):
    randomised = P.randomised_copy(model, seed=0)
    values = N.activations(randomised, obs, P.PLANTED_NEURON_HOOK).units()
    entry = N.semantic_dictionary(values, scenario_params(obs)).entries[P.PLANTED_NEURON]
    assert entry.summary.get("closest_band") != "near" or not entry.counts


def test_semantic_dictionary_checks_its_inputs():
    with pytest.raises(ValueError, match="parameter dicts"):
        N.semantic_dictionary(np.zeros((4, 2)), [{}] * 3)
    with pytest.raises(ValueError, match="strictly between"):
        N.semantic_dictionary(np.zeros((4, 2)), [{}] * 4, top_fraction=1.0)


def test_planted_head0_output_resembles_the_closest_vehicle_and_the_silent_head_has_no_direction(model, obs):
    sim = N.head_role_similarity(model, obs, P.closest_row(obs), role="closest")
    assert sim.units == ("head 0", "head 1")
    assert sim.ci_low[P.PLANTED_HEAD] > 0.1 and sim.p_value[P.PLANTED_HEAD] < 1e-6
    assert sim.defined[P.SILENT_HEAD] == 0 and np.isnan(sim.role_cosine[:, P.SILENT_HEAD]).all()
    # negative control: a random other vehicle is no more alike than the rest
    rng = np.random.default_rng(0)
    random_role = np.array([rng.choice(np.nonzero(o[1:, P.PRESENCE] >= 0.5)[0] + 1) for o in obs])
    control = N.head_role_similarity(model, obs, random_role, role="random")
    assert control.ci_low[P.PLANTED_HEAD] < 0 < control.ci_high[P.PLANTED_HEAD]
    json.dumps(sim.to_dict())


def test_planted_neuron_reads_the_direction_of_the_closest_vehicle(model, obs):
    sim = N.neuron_role_similarity(model, obs, P.closest_row(obs), role="closest")
    assert sim.difference.shape == (8,)
    assert sim.ci_low[P.PLANTED_NEURON] > 0.1
    assert sim.defined[3:].max() == 0  # neurons with no input weights have no direction
    with pytest.raises(ValueError, match="present other vehicle"):
        N.neuron_role_similarity(model, obs[:3], [0, 0, 0])


def test_head_direction_activations_project_on_each_heads_write_direction(model, obs):
    proj = N.head_direction_activations(model, obs)
    z0 = N.activations(model, obs, "attention_layer.hook_z").values[:, P.PLANTED_HEAD, 0]
    np.testing.assert_allclose(proj[:, P.PLANTED_HEAD], z0, atol=1e-5)
    assert np.all(proj[:, P.SILENT_HEAD] == 0)
