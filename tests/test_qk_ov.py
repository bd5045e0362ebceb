"""QK and OV circuits: the weight form reproduces the model's own scores and head outputs (head-major layout,
checked on the 4-head reference architecture), and both forms recover the planted network's answer."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.probes import qk_ov
from interp.simulation.agent import untrained_agent
from interp.model.config import load_agent_config, load_env_config
from interp.probes.neurons import vehicle_embeddings
from tests import planted as P

ROOT = P.ROOT

PLANTED_OBS = (300, 11)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


@pytest.fixture(scope="module")
def reference_model():
    """The 4-head reference architecture, untrained (weights large enough to give real attention)."""
    agent = untrained_agent(load_agent_config(ROOT / "checkpoints/reference/agent_config.json"),
                            load_env_config(ROOT / "checkpoints/reference/env_config.json"), init_seed=3)
    return agent.model


def test_weight_circuits_reproduce_the_models_scores_and_head_outputs(reference_model):
    """score_h(ego, j) = e_ego QK^h e_j and head_out_h = sum_j pattern_hj OV^h e_j, per head, on 4 heads:
    the head-major slicing of query_ego/key_all/value_all/attention_combine is the model's own."""
    m = reference_model
    x = torch.as_tensor(P.random_observations(40, seed=2))
    w = qk_ov.weight_circuits(m)
    emb = vehicle_embeddings(m, x).double().numpy()  # [B, N, F]
    _, cache = m.run_with_cache(x, lambda n: n.endswith(("hook_scores", "hook_pattern", "hook_head_out")))
    scores = cache["attention_layer.hook_scores"][:, :, 0].double().numpy()
    present = x[..., P.PRESENCE].numpy() >= 0.5
    predicted = np.einsum("bf,hfg,bng->bhn", emb[:, 0], w.qk, emb)
    np.testing.assert_allclose(predicted.transpose(0, 2, 1)[present], scores.transpose(0, 2, 1)[present],
                               rtol=1e-4, atol=1e-5)
    pattern = cache["attention_layer.hook_pattern"][:, :, 0].double().numpy()
    head_out = np.einsum("bhn,hfg,bng->bhf", pattern, w.ov, emb)
    np.testing.assert_allclose(head_out, cache["attention_layer.hook_head_out"].double().numpy(), atol=1e-5)
    assert w.qk.shape == (4, 64, 64) and w.qk_singular_values.shape == (4, 16)
    json.dumps(w.to_dict())


def test_planted_weight_qk_of_head0_reads_only_closeness_and_ov_of_silent_head_is_zero(model):
    w = qk_ov.weight_circuits(model)
    qk0 = w.qk[P.PLANTED_HEAD]
    assert qk0[P.EGO_CONST_DIM, P.CLOSENESS_DIM] == pytest.approx(P.SHARPNESS)
    qk0[P.EGO_CONST_DIM, P.CLOSENESS_DIM] = 0.0
    assert np.all(qk0 == 0)  # nothing else in head 0's bilinear form
    assert w.ov_norm[P.SILENT_HEAD] == 0 and np.all(w.ov[P.SILENT_HEAD] == 0)
    assert w.qk_norm[P.SILENT_HEAD] == 0  # uniform attention
    # negative control: the zero check can fail -- head 0 does write
    assert w.ov_norm[P.PLANTED_HEAD] == pytest.approx(1.0)


def test_planted_qk_sweep_of_head0_peaks_on_the_planted_feature(model, obs):
    scenes = obs[:30]
    sweep = qk_ov.score_sweep(model, scenes, P.closest_row(scenes), n_values=21,
                              variables=("x", "y", "vx", "vy", "heading", "speed", "distance"))
    dep = dict(zip(sweep.variables, sweep.dependence[P.PLANTED_HEAD]))
    # closeness = 2 - |x| - |y|: sweeping x (or y) over [-1, 1] moves the score by SHARPNESS * 1
    assert dep["x"] == pytest.approx(P.SHARPNESS, rel=1e-4) and dep["y"] == pytest.approx(P.SHARPNESS, rel=1e-4)
    assert max(dep["vx"], dep["vy"], dep["heading"], dep["speed"]) < 1e-4
    assert sweep.most_dependent[P.PLANTED_HEAD] in ("x", "y")
    peak = dict(zip(sweep.variables, sweep.peak_values[P.PLANTED_HEAD]))
    assert peak["x"] == pytest.approx(0.0, abs=1e-6) and peak["y"] == pytest.approx(0.0, abs=1e-6)
    # negative control: the silent head's score depends on nothing
    assert sweep.most_dependent[P.SILENT_HEAD] is None
    assert sweep.scores.shape == (30, 2, 7, 21) and sweep.q_values.shape == (30, 7, 21, 3)
    json.dumps(sweep.to_dict())


def test_planted_position_grid_of_head0_peaks_at_the_frame_origin(model, obs):
    scenes = obs[:10]
    grid = qk_ov.position_grid(model, scenes, P.closest_row(scenes), dx=np.linspace(-1, 1, 41),
                               dy=np.linspace(-1, 1, 41))
    assert grid.scores.shape == (10, 2, 41, 41) and grid.q_values.shape == (10, 41, 41, 3)
    for b in range(10):  # the planted score is highest where the vehicle sits on the origin: dx = -x_ego
        i, j = np.unravel_index(grid.scores[b, P.PLANTED_HEAD].argmax(), (41, 41))
        assert abs(grid.dx[i] + scenes[b, 0, P.X]) <= 0.05 and abs(grid.dy[j] + scenes[b, 0, P.Y]) <= 0.05
    assert np.ptp(grid.scores[:, P.SILENT_HEAD]) == 0  # negative control: flat
    json.dumps(grid.to_dict())


def test_planted_score_dependence_over_scenes_names_closeness(model, obs):
    dep = qk_ov.score_dependence(model, obs, extra_descriptors={"closeness": P.closeness(obs)})
    eta = dict(zip(dep.descriptors, dep.eta_squared[P.PLANTED_HEAD]))
    assert dep.most_dependent[P.PLANTED_HEAD] == "closeness"
    assert eta["closeness"] > 0.95 and max(eta["vx"], eta["vy"], eta["speed"], eta["heading"]) < 0.05
    assert dict(zip(dep.descriptors, dep.spearman[P.PLANTED_HEAD]))["closeness"] > 0.99
    assert dep.most_dependent[P.SILENT_HEAD] is None  # negative control: nothing to explain
    # without the planted descriptor, the nearest built-in one is the distance from the frame's centre
    assert qk_ov.score_dependence(model, obs).most_dependent[P.PLANTED_HEAD] == "centre_distance"


def test_planted_ov_effects_of_head0_suppress_only_faster_and_silent_head_none(model, obs):
    ev = qk_ov.ov_action_effects(model, obs, action_names=P.ACTION_NAMES, keep_contribution=True)
    head_out = model.run_with_cache(torch.as_tensor(obs), "attention_layer.hook_head_out")[1]
    np.testing.assert_allclose(ev.contribution.sum(2), head_out["attention_layer.hook_head_out"].numpy(), atol=1e-5)
    assert np.all(ev.patched[:, P.SILENT_HEAD] == 0) and np.all(ev.linear[:, P.SILENT_HEAD] == 0)
    assert np.all(ev.patched[:, P.PLANTED_HEAD][..., list(P.UNAFFECTED_ACTIONS)] == 0)
    # what row j's value adds to FASTER through head 0: -SUPPRESSION * pattern_0j * closeness_j
    pattern = model.attention(torch.as_tensor(obs))[:, P.PLANTED_HEAD, 0].numpy()
    expected = -P.SUPPRESSION * pattern * P.closeness(obs)
    np.testing.assert_allclose(ev.patched[:, P.PLANTED_HEAD, :, P.SUPPRESSED_ACTION], expected, atol=1e-5)
    assert ev.gap < 1e-5  # every ReLU on the path is in its linear region
    assert ev.head_effect[P.PLANTED_HEAD, P.SUPPRESSED_ACTION] > 0.5  # negative control: head 0 does act
    json.dumps(ev.to_dict())


def test_planted_model_randomisation_changes_the_circuits(model, obs):
    randomised = P.randomised_copy(model, seed=0)
    w, wr = qk_ov.weight_circuits(model), qk_ov.weight_circuits(randomised)
    a, b = w.qk[P.PLANTED_HEAD].ravel(), wr.qk[P.PLANTED_HEAD].ravel()
    assert abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) < 0.5
    assert wr.ov_norm[P.SILENT_HEAD] > 0
    dep = qk_ov.score_dependence(randomised, obs, extra_descriptors={"closeness": P.closeness(obs)})
    assert dict(zip(dep.descriptors, dep.eta_squared[P.PLANTED_HEAD]))["closeness"] < 0.5
    sweep = qk_ov.score_sweep(randomised, obs[:10], P.closest_row(obs[:10]), n_values=11)
    assert sweep.dependence[P.PLANTED_HEAD, list(sweep.variables).index("vx")] > 1e-4  # reads motion too
    effects = qk_ov.ov_action_effects(randomised, obs[:50])
    assert np.abs(effects.patched[:, P.SILENT_HEAD]).max() > 1e-4


def test_sweep_refuses_an_absent_or_ego_row(model):
    obs = P.random_observations(4, seed=0, min_present=2, max_present=2, shuffle_rows=False)
    with pytest.raises(ValueError, match="presence < 0.5"):
        qk_ov.score_sweep(model, obs, 5)
    with pytest.raises(ValueError, match="rows 1..14"):
        qk_ov.score_sweep(model, obs, 0)
    with pytest.raises(ValueError, match="unknown sweep variable"):
        qk_ov.score_sweep(model, obs, 1, variables=("colour",))


def test_set_row_variable_keeps_the_row_on_the_env_ranges_and_the_unit_circle():
    from interp.model.features import reference_layout
    layout = reference_layout()
    obs = torch.as_tensor(P.random_observations(8, seed=1, min_present=3, shuffle_rows=False))
    rows = torch.ones(8, dtype=torch.long)
    for variable, value in (("distance", 3.0), ("speed", 0.5), ("heading", 2.0), ("x", 0.3)):
        out = qk_ov.set_row_variable(obs, rows, variable, torch.full((8,), value), layout)
        assert out[..., 1:5].abs().max() <= 1.0
        np.testing.assert_allclose((out[:, 1, 5] ** 2 + out[:, 1, 6] ** 2).numpy(), 1.0, atol=1e-6)
        assert torch.equal(out[:, 2:], obs[:, 2:]) and torch.equal(out[:, 0], obs[:, 0])
    out = qk_ov.set_row_variable(obs, rows, "speed", torch.full((8,), 0.5), layout)
    np.testing.assert_allclose(torch.hypot(out[:, 1, 3], out[:, 1, 4]).numpy(), 0.5, atol=1e-6)
