"""The planted network is what tests/planted.py says it is (so probes checked against it are checked
against a known answer), and its controls break what they claim to break."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.simulation.agent import load_agent, save_agent
from interp.model.checkpoint import weights_identity
from tests import planted as P

pytestmark = pytest.mark.planted

PLANTED_OBS = (256, 3)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


def run(model, obs, names="*"):
    q, cache = model.run_with_cache(torch.as_tensor(obs), names)
    return q.detach().numpy(), {k: v.numpy() for k, v in cache.items()}


@pytest.mark.parametrize("heads,fs", [(2, 8), (4, 8), (2, 12)])
def test_planted_q_matches_the_construction(obs, heads, fs):
    q, _ = run(P.planted_model(heads, fs), obs)
    np.testing.assert_allclose(q, P.expected_q(obs), atol=1e-5)


def test_planted_synthetic_observations_lie_in_the_env_ranges(obs):
    present = obs[..., P.PRESENCE] == 1
    assert present[:, 0].all() and (present.sum(1) >= 2).all() and (~present).any()
    assert np.all(np.abs(obs[..., 1:5]) <= 1)
    np.testing.assert_allclose((obs[..., 5] ** 2 + obs[..., 6] ** 2)[present], 1, atol=1e-5)
    assert np.all(obs[~present] == 0)


def test_planted_head0_score_depends_only_on_closeness(obs):
    model = P.planted_model()
    _, cache = run(model, obs, "attention_layer.hook_scores")
    scores = cache["attention_layer.hook_scores"][:, P.PLANTED_HEAD, 0]
    present = obs[..., P.PRESENCE] >= 0.5
    expected = P.SHARPNESS * P.closeness(obs)
    np.testing.assert_allclose(scores[present], expected[present], atol=1e-4)
    # everything but x, y changed: head 0's scores stay put
    other = obs.copy()
    rng = np.random.default_rng(0)
    other[..., P.VX:P.VY + 1] = rng.uniform(-1, 1, other[..., P.VX:P.VY + 1].shape) * present[..., None]
    _, cache2 = run(model, other, "attention_layer.hook_scores")
    np.testing.assert_allclose(cache2["attention_layer.hook_scores"][:, P.PLANTED_HEAD], scores[:, None], atol=1e-5)


def test_planted_head0_attends_most_to_the_closest_vehicle(obs):
    pattern = P.planted_model().attention(torch.as_tensor(obs)).numpy()[:, P.PLANTED_HEAD, 0]
    assert (pattern.argmax(-1) == P.closest_row(obs)).all()


def test_planted_silent_head_attends_uniformly_and_writes_nothing(obs):
    _, cache = run(P.planted_model(), obs)
    pattern = cache["attention_layer.hook_pattern"][:, P.SILENT_HEAD, 0]
    present = obs[..., P.PRESENCE] >= 0.5
    uniform = present / present.sum(1, keepdims=True)
    np.testing.assert_allclose(pattern, uniform, atol=1e-6)
    assert np.abs(cache["attention_layer.hook_z"][:, P.SILENT_HEAD]).max() > 0.1  # it reads something
    assert np.all(cache["attention_layer.hook_head_out"][:, P.SILENT_HEAD] == 0)  # and writes nothing


def test_planted_neuron_reads_only_head0_and_faster_is_suppressed_exactly_by_it(obs):
    model = P.planted_model()
    q, cache = run(model, obs)
    z0 = cache["attention_layer.hook_z"][:, P.PLANTED_HEAD, 0]
    np.testing.assert_allclose(cache[P.PLANTED_NEURON_HOOK][:, P.PLANTED_NEURON], z0, atol=1e-5)

    def zero_head0(z, _hook):
        z = z.clone()
        z[:, P.PLANTED_HEAD] = 0
        return z

    q_ablated, cache_ablated = model.run_with_cache(torch.as_tensor(obs), "*", [("attention_layer.hook_z", zero_head0)])
    q_ablated = q_ablated.detach().numpy()
    hidden, hidden_ablated = cache[P.PLANTED_NEURON_HOOK], cache_ablated[P.PLANTED_NEURON_HOOK].numpy()
    assert np.all(hidden_ablated[:, P.PLANTED_NEURON] == 0)
    keep = [i for i in range(hidden.shape[1]) if i != P.PLANTED_NEURON]
    np.testing.assert_array_equal(hidden[:, keep], hidden_ablated[:, keep])
    np.testing.assert_allclose(q_ablated[:, P.SUPPRESSED_ACTION] - q[:, P.SUPPRESSED_ACTION], P.SUPPRESSION * z0,
                               atol=1e-5)
    np.testing.assert_array_equal(q_ablated[:, list(P.UNAFFECTED_ACTIONS)], q[:, list(P.UNAFFECTED_ACTIONS)])
    assert z0.max() > 1.0 and {1, 2} <= set(q.argmax(1).tolist())  # the head matters for the greedy action


def test_planted_agent_round_trips_through_the_checkpoint_format(tmp_path, obs):
    agent = P.planted_agent()
    assert agent.action_names == P.ACTION_NAMES and agent.n_heads == 2
    save_agent(agent, tmp_path / "planted.pt")
    loaded = load_agent(tmp_path / "planted.pt")
    assert loaded.identity == agent.identity
    assert list(loaded.model.state_dict()) == list(agent.model.state_dict())
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))


def test_planted_broken_presence_model_attends_to_absent_rows_and_leaves_the_original(obs):
    model = P.planted_model()
    broken = P.broken_presence_model(model)
    absent = obs[..., P.PRESENCE] < 0.5
    good = model.attention(torch.as_tensor(obs)).numpy()[:, :, 0]
    bad = broken.attention(torch.as_tensor(obs)).numpy()[:, :, 0]
    assert np.all(good[:, :, :][np.broadcast_to(absent[:, None], good.shape)] == 0)
    assert bad[:, P.SILENT_HEAD][absent].min() > 0
    assert weights_identity(broken.state_dict(), broken.config) != weights_identity(model.state_dict(), model.config)


def test_planted_row_order_control_breaks_permutation_invariance(obs):
    model = P.planted_model()
    perm = np.concatenate([[0], np.random.default_rng(1).permutation(np.arange(1, P.N_ROWS))])
    permuted = torch.as_tensor(obs[:, perm])
    x = torch.as_tensor(obs)
    torch.testing.assert_close(model(x), model(permuted), atol=1e-5, rtol=0)
    broken = P.row_order_dependent_model(model)
    assert (broken(x) - broken(permuted)).abs().max() > 1e-3


def test_planted_randomised_copy_is_seeded_and_leaves_the_original(obs):
    model = P.planted_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, b, c = P.randomised_copy(model, 1), P.randomised_copy(model, 1), P.randomised_copy(model, 2)
    x = torch.as_tensor(obs)
    torch.testing.assert_close(a(x), b(x))
    assert (a(x) - c(x)).abs().max() > 1e-3 and (a(x) - model(x)).abs().max() > 1e-3
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
