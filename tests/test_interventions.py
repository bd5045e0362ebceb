"""Interventions, metrics, activation patching and model editing, against the planted network's known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.probes import interventions as I
from interp.model.config import canonical_json
from interp.errors import ConfigError
from tests import planted as P

FASTER, IDLE = P.SUPPRESSED_ACTION, 1

PLANTED_OBS = (200, 11)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


def q_of(model, obs):
    with torch.no_grad():
        return model(torch.as_tensor(obs)).numpy()


def z0(model, obs):
    return I.activations(model, obs, I.Z_HOOK)[:, P.PLANTED_HEAD, 0].numpy()


@pytest.mark.parametrize("mode", ["zero", "mean", "resample"])
def test_planted_ablating_the_silent_head_changes_nothing(model, obs, mode):
    ev = I.measure(model, obs, I.head_ablation([P.SILENT_HEAD], mode, reference=obs[:40]), I.QValue(FASTER))
    assert ev.max_abs_effect < 1e-6 and ev.flips == 0
    np.testing.assert_allclose(ev.q_intervened, ev.q_clean, atol=1e-6)


def test_planted_zero_ablating_head0_raises_faster_by_exactly_its_suppression(model, obs):
    ev = I.measure(model, obs, I.head_ablation([P.PLANTED_HEAD]), I.QValue(FASTER))
    np.testing.assert_allclose(ev.effect, P.SUPPRESSION * z0(model, obs), atol=1e-5)
    np.testing.assert_array_equal(ev.q_intervened[:, :FASTER], ev.q_clean[:, :FASTER])
    assert ev.flips > 0 and np.all(ev.q_intervened.argmax(1) == FASTER)


def test_planted_mean_and_resample_ablation_use_the_reference_scenes(model, obs):
    ref = obs[:50]
    mean_z = z0(model, ref).mean()
    ev = I.measure(model, obs, I.head_ablation([0], "mean", reference=ref), I.QValue(FASTER))
    np.testing.assert_allclose(ev.intervened, ev.clean + P.SUPPRESSION * (z0(model, obs) - mean_z), atol=1e-5)
    # resampling: every scene's FASTER Q is one a reference scene's z would give
    ev = I.measure(model, obs, I.head_ablation([0], "resample", reference=ref, seed=3), I.QValue(FASTER))
    implied_z = (ev.clean - ev.intervened) / P.SUPPRESSION + z0(model, obs)
    assert np.abs(implied_z[:, None] - z0(model, ref)[None]).min(1).max() < 1e-5
    again = I.measure(model, obs, I.head_ablation([0], "resample", reference=ref, seed=3), I.QValue(FASTER))
    np.testing.assert_array_equal(again.intervened, ev.intervened)  # seeded


def test_planted_neuron_ablation_of_the_planted_neuron_equals_removing_head0(model, obs):
    neuron = I.neuron_ablation(P.PLANTED_NEURON_HOOK, [P.PLANTED_NEURON])
    head = I.head_ablation([P.PLANTED_HEAD])
    np.testing.assert_allclose(neuron.run(model, obs).numpy(), head.run(model, obs).numpy(), atol=1e-6)
    other = I.neuron_ablation(P.PLANTED_NEURON_HOOK, [5])  # a dead neuron of the planted net
    np.testing.assert_array_equal(other.run(model, obs).numpy(), q_of(model, obs))


def test_planted_ablation_of_any_hook_point(model, obs):
    # no other vehicle present (input rows 1.. zeroed => absent): head 0 reads nothing, FASTER is unsuppressed
    rows = I.Ablation(hook="hook_input", units=tuple(range(1, P.N_ROWS)))
    alone = np.zeros_like(obs)
    alone[:, 0] = obs[:, 0]
    np.testing.assert_allclose(rows.run(model, obs).numpy(), P.expected_q(alone), atol=1e-5)
    # the planted net has zero biases (its constants come through the ego's constant dim): Q(0 residual) = 0
    q = I.Ablation(hook="hook_residual").run(model, obs).numpy()
    np.testing.assert_allclose(q, np.zeros_like(q), atol=1e-6)


def same_ego_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clean and corrupted scenes sharing the ego row, differing in the other vehicles."""
    clean = P.random_observations(n, seed=seed)
    corrupted = P.random_observations(n, seed=seed + 1000)
    corrupted[:, 0] = clean[:, 0]
    return clean, corrupted


def test_planted_head_patching_moves_exactly_head0s_effect(model):
    clean, corrupted = same_ego_pairs(64, 1)
    ev = I.activation_patching(model, clean, corrupted, I.head_targets(model.n_heads), I.QValue(FASTER))
    np.testing.assert_allclose(ev.denoised[P.PLANTED_HEAD], ev.clean, atol=1e-5)  # all of FASTER is head 0
    np.testing.assert_allclose(ev.noised[P.PLANTED_HEAD], ev.corrupted, atol=1e-5)
    np.testing.assert_allclose(ev.denoised[P.SILENT_HEAD], ev.corrupted, atol=1e-6)  # head 1 carries nothing
    np.testing.assert_allclose(ev.restored, [1.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(ev.destroyed, [1.0, 0.0], atol=1e-4)
    json.dumps(ev.to_dict())


def test_planted_patching_the_whole_residual_restores_everything_and_margin_metric(model):
    clean, corrupted = P.random_observations(32, seed=4), P.random_observations(32, seed=5)
    ev = I.activation_patching(model, clean, corrupted, [("hook_residual", None)], I.Margin(FASTER, IDLE))
    np.testing.assert_allclose(ev.denoised[0], ev.clean, atol=1e-5)
    finite = np.isfinite(ev.restored_per_scene[0])
    np.testing.assert_allclose(ev.restored_per_scene[0][finite], 1.0, atol=1e-3)


def test_patching_negative_control_randomised_weights_spread_the_effect_over_heads(model):
    clean, corrupted = P.random_observations(64, seed=1), P.random_observations(64, seed=2)
    ev = I.activation_patching(P.randomised_copy(model, 0), clean, corrupted, I.head_targets(2), I.QValue(FASTER))
    assert abs(ev.restored[P.SILENT_HEAD]) > 0.05 and abs(ev.restored[P.PLANTED_HEAD] - 1) > 0.05


def test_descriptions_are_canonical_json_and_distinguish_interventions(obs):
    a = I.head_ablation([0], "mean", reference=obs[:10]).describe()
    b = I.head_ablation([0], "mean", reference=obs[:10].copy()).describe()
    c = I.head_ablation([0], "mean", reference=obs[:11]).describe()
    d = I.Compose((I.head_ablation([1]), I.head_patch(0, obs[:1]))).describe()
    assert canonical_json(a) == canonical_json(b) != canonical_json(c)
    assert canonical_json(I.head_ablation([0]).describe()) != canonical_json(I.head_ablation([1]).describe())
    assert json.loads(canonical_json(d))["parts"][1]["kind"] == "patch"


def test_bad_interventions_say_what_is_wrong(model, obs):
    with pytest.raises(ConfigError, match="do not exist"):
        I.head_ablation([2], n_heads=2)
    with pytest.raises(ConfigError, match="out of range"):
        I.head_ablation([3]).run(model, obs)
    with pytest.raises(ConfigError, match="no hook point"):
        I.Ablation(hook="attention_layer.hook_nope").run(model, obs)
    with pytest.raises(ConfigError, match="needs reference"):
        I.head_ablation([0], "mean")
    with pytest.raises(ConfigError, match="source has 3 scenes"):
        I.head_patch(0, obs[:3]).run(model, obs[:5])


def test_planted_edit_head_returns_a_new_model_and_leaves_the_original(model, obs):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    silenced = I.edit_head(model, P.PLANTED_HEAD, part="combine", scale=0.0)
    np.testing.assert_allclose(q_of(silenced, obs), I.head_ablation([0]).run(model, obs).numpy(), atol=1e-6)
    uniform = I.edit_head(model, P.PLANTED_HEAD, part="key", scale=0.0)
    pattern = uniform.attention(torch.as_tensor(obs))[:, 0, 0].numpy()
    present = obs[..., 0] >= 0.5
    np.testing.assert_allclose(pattern, present / present.sum(1, keepdims=True), atol=1e-6)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    np.testing.assert_allclose(q_of(model, obs), P.expected_q(obs), atol=1e-5)


def test_edit_weight_by_value_and_by_function(model, obs):
    name = "output_layer.predict.bias"
    edited = I.edit_weight(model, name, lambda b: b + torch.tensor([0.0, 0.0, 5.0]))
    np.testing.assert_allclose(q_of(edited, obs) - q_of(model, obs), np.tile([0, 0, 5.0], (len(obs), 1)), atol=1e-5)
    with pytest.raises(ConfigError, match="shape"):
        I.edit_weight(model, name, np.zeros(4))
    with pytest.raises(ConfigError, match="no parameter"):
        I.edit_weight(model, "nope.weight", np.zeros(4))


def test_resample_draws_depend_on_the_row_position_not_on_how_the_batch_is_run(model, obs):
    """Without installed keys row b of a batch is DrawKey(row=b): a batched forward and ``q_rows`` (one row at a
    time, each given its position) draw the same donors; another seed draws others."""
    from interp.model.policy import q_rows

    ablation = I.head_ablation([0], "resample", reference=obs[:30], seed=9)
    whole = ablation.run(model, obs).numpy()
    rows, _ = q_rows(model, obs, ablation.hooks(model))
    np.testing.assert_allclose(rows, whole, atol=1e-5)
    other_seed = I.head_ablation([0], "resample", reference=obs[:30], seed=10).run(model, obs).numpy()
    assert np.abs(other_seed - whole).max() > 1e-3
