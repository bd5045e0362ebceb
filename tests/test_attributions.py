"""captum attributions recover the planted answer: the closest vehicle explains the suppression of FASTER,
through x and y only, through the planted neuron only; SLOWER (which no vehicle touches) gets nothing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.probes import attributions as A
from interp.model.features import reference_layout
from tests import planted as P

LAYOUT = reference_layout()
CONTINUOUS = list(LAYOUT.continuous_names)

PLANTED_OBS = (200, 21)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


@pytest.fixture(scope="module")
def clear(obs):
    """Scenes whose closest vehicle is clearly the closest (closeness margin >= 0.2, about 20 m L1)."""
    c = np.where(obs[..., P.PRESENCE] >= 0.5, P.closeness(obs), -np.inf)[:, 1:]
    top2 = np.sort(c, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) >= 0.2


@pytest.fixture(scope="module")
def ig(model, obs):
    return A.integrated_gradients(model, obs, A.QTarget(P.SUPPRESSED_ACTION), sanity_scenes=8,
                                  action_names=P.ACTION_NAMES)


def test_planted_ig_ranks_the_closest_vehicle_first_for_the_suppressed_action(ig, obs, clear):
    top_is_closest = ig.top_row == P.closest_row(obs)
    assert top_is_closest[clear].all() and clear.sum() >= 80
    assert top_is_closest.mean() >= 0.8
    assert np.abs(ig.convergence_delta).max() < 1e-3  # completeness holds: presence never crosses 0.5
    np.testing.assert_allclose(ig.per_vehicle.sum(1), ig.output - ig.baseline_output, atol=1e-3)
    # only x and y matter; vx, vy never reach head 0, heading is the same at the baseline
    moving = [CONTINUOUS.index("x"), CONTINUOUS.index("y")]
    still = [i for i in range(len(CONTINUOUS)) if i not in moving]
    assert np.abs(ig.per_feature[..., still]).max() == 0 and np.abs(ig.per_feature[..., moving]).max() > 0.1
    assert np.all(ig.per_vehicle[:, 0] == 0)  # the ego is its own baseline
    assert ig.target == "Q[FASTER]" and "heading kept" in ig.baseline
    json.dumps(ig.to_dict())


def test_planted_ig_negative_control_an_action_no_vehicle_touches(model, obs):
    ev = A.integrated_gradients(model, obs, A.QTarget(0))  # SLOWER depends on the ego's speed only
    assert np.abs(ev.per_feature).max() < 1e-6


def test_ig_sanity_figures_are_reported_and_small_for_the_planted_model(ig):
    assert ig.infidelity.shape == (8,) and ig.sensitivity.shape == (8,)
    assert np.all(np.isfinite(ig.infidelity)) and np.all(ig.infidelity >= 0) and np.all(ig.sensitivity >= 0)


def test_baselines_keep_presence_heading_and_the_ego():
    obs = torch.as_tensor(P.random_observations(50, seed=4))
    present = obs[..., P.PRESENCE] >= 0.5
    others = present.clone()
    others[:, 0] = False
    for kind in A.BASELINES:
        base = A.Baseline(kind).build(obs, LAYOUT)
        assert torch.equal(base[..., P.PRESENCE], obs[..., P.PRESENCE])
        assert torch.equal(base[..., P.COS_H:], obs[..., P.COS_H:]) and torch.equal(base[:, 0], obs[:, 0])
        assert torch.all(base[..., P.VX:P.VY + 1][others] == 0) and base[..., 1:5].abs().max() <= 1
        assert torch.equal(base[~present], obs[~present])
    radial = A.Baseline("radial", far_radius=1.0).build(obs, LAYOUT)
    np.testing.assert_allclose(torch.linalg.norm(radial[..., P.X:P.Y + 1][others], dim=-1).numpy(), 1.0, atol=1e-6)
    corner = A.Baseline("point").build(obs, LAYOUT)
    assert torch.all(corner[..., P.X:P.Y + 1][others].abs() == 1)
    with pytest.raises(ValueError, match="baseline must be one of"):
        A.Baseline("zero").build(obs, LAYOUT)


def test_a_shared_far_point_baseline_explains_the_path_more_than_the_scene(model, obs, ig):
    """Why the default baseline is radial: straight paths from one shared corner cross the scene (through the
    centre the planted head looks for), so the point baseline misses the planted answer far more often."""
    point = A.integrated_gradients(model, obs, A.QTarget(P.SUPPRESSED_ACTION), baseline=A.Baseline("point"))
    closest = P.closest_row(obs)
    assert (point.top_row == closest).mean() < (ig.top_row == closest).mean() - 0.3


def test_planted_saliency_ranks_the_closest_vehicle_first(model, obs, clear):
    ev = A.saliency(model, obs, P.SUPPRESSED_ACTION, sanity_scenes=4)
    assert (ev.top_row == P.closest_row(obs))[clear].all()
    others = ev.per_feature[:, 1:]  # the ego's own speed moves FASTER (gain 0.1): not another vehicle
    assert np.abs(others[..., [CONTINUOUS.index(f) for f in ("vx", "vy", "cos_h", "sin_h")]]).max() == 0
    assert ev.infidelity.shape == (4,)


def test_planted_layer_conductance_flows_through_the_planted_neuron_and_closeness_dim(model, obs):
    out = A.layer_conductance(model, obs[:100], P.SUPPRESSED_ACTION, P.PLANTED_NEURON_HOOK)
    assert out.unit_importance.argmax() == P.PLANTED_NEURON
    others = np.delete(out.unit_importance, P.PLANTED_NEURON)
    assert others.max() < 1e-6 < out.unit_importance[P.PLANTED_NEURON]
    assert np.abs(out.convergence_delta).max() < 5e-3  # conductance integrates a sharper path than IG
    emb = A.layer_conductance(model, obs[:100], P.SUPPRESSED_ACTION, "others_embedding.hook_hidden.1")
    assert emb.conductance.shape == (100, 14, 8)
    per_dim = np.abs(emb.conductance).sum((0, 1))
    assert per_dim.argmax() == P.CLOSENESS_DIM and np.delete(per_dim, P.CLOSENESS_DIM).max() < 1e-6
    json.dumps(out.to_dict())
    with pytest.raises(KeyError, match="no hook point"):
        A.layer_conductance(model, obs[:2], 2, "output_layer.hook_hidden.9")


def test_planted_neuron_conductance_through_the_planted_neuron_and_not_another(model, obs, clear):
    through = A.neuron_conductance(model, obs, P.SUPPRESSED_ACTION, P.PLANTED_NEURON_HOOK, P.PLANTED_NEURON)
    assert (through.top_row == P.closest_row(obs))[clear].all()
    # negative control: neuron 1 carries the ego's speed, which the baseline does not change
    other = A.neuron_conductance(model, obs, P.SUPPRESSED_ACTION, P.PLANTED_NEURON_HOOK, 1)
    assert np.abs(other.per_feature).max() == 0


def test_planted_vehicle_ablation_and_shapley_find_the_closest_vehicle(model, obs, clear):
    ablation = A.vehicle_ablation(model, obs, P.SUPPRESSED_ACTION)
    assert (ablation.top_row == P.closest_row(obs)).all()
    assert np.all(ablation.per_vehicle[:, 0] == 0)  # the ego is never removed
    # FeatureAblation's figure is F(input) - F(row removed): check one row by hand
    b, row = 0, int(ablation.top_row[0])
    removed = obs[b:b + 1].copy()
    removed[0, row] = 0.0
    with torch.no_grad():
        q = model(torch.as_tensor(obs[b:b + 1])) - model(torch.as_tensor(removed))
    assert ablation.per_vehicle[b, row] == pytest.approx(float(q[0, P.SUPPRESSED_ACTION]), abs=1e-5)
    few = clear & (obs[..., P.PRESENCE].sum(1) <= 8)
    shapley = A.vehicle_ablation(model, obs[few], P.SUPPRESSED_ACTION, method="shapley", n_samples=20)
    assert (shapley.top_row == P.closest_row(obs[few])).mean() >= 0.9
    far = A.vehicle_ablation(model, obs, P.SUPPRESSED_ACTION, removal="far_still")
    assert (far.top_row == P.closest_row(obs)).mean() >= 0.9
    # negative control: SLOWER does not notice any vehicle being removed
    assert np.abs(A.vehicle_ablation(model, obs, 0).per_vehicle).max() < 1e-6
    json.dumps(shapley.to_dict())


def test_planted_model_randomisation_changes_the_attributions(model, obs, ig):
    randomised = P.randomised_copy(model, seed=0)
    rand = A.integrated_gradients(randomised, obs, A.QTarget(P.SUPPRESSED_ACTION))
    assert abs(np.corrcoef(rand.per_vehicle.ravel(), ig.per_vehicle.ravel())[0, 1]) < 0.5
    assert (rand.top_row == P.closest_row(obs)).mean() < 0.5
    moving = [CONTINUOUS.index(f) for f in ("vx", "vy")]
    assert np.abs(rand.per_feature[..., moving]).max() > 1e-4  # the random network reads speeds


def test_margin_target_is_the_difference_of_two_q_values(model, obs):
    margin = A.integrated_gradients(model, obs[:20], A.QTarget(2, versus=1), action_names=P.ACTION_NAMES)
    faster = A.integrated_gradients(model, obs[:20], A.QTarget(2))
    np.testing.assert_allclose(margin.per_feature, faster.per_feature, atol=1e-6)  # IDLE ignores the vehicles
    assert margin.target == "Q[FASTER] - Q[IDLE]"
