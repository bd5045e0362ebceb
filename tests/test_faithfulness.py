"""The attention-faithfulness probe and its spec rules: known answers on planted models (one faithful by
construction, one whose attention is decoupled from its output), the statistics against scipy, the null, mutants
of the probe that these tests must catch, and both specs' controls (rejecting and able to pass)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps

from interp.errors import ConfigError
from interp.probes import faithfulness as F
from specs.support import faithfulness as claims_f
from tests import planted
from tests.planted_faithfulness import EGO_SCORE, FAITHFUL_SHARPNESS, SLOPE, decoupled_model, faithful_model

N_STATES = 120
CLUSTER = 4  # consecutive planted states share a "episode" label, as rollout states do


@pytest.fixture(scope="module")
def busy():
    """Random observations with 3-8 other vehicles present (>= 3: the probe's minimum)."""
    return planted.random_observations(N_STATES, seed=7, min_present=4, max_present=9)


@pytest.fixture(scope="module")
def clusters():
    return np.arange(N_STATES) // CLUSTER


@pytest.fixture(scope="module")
def faithful():
    return faithful_model()


@pytest.fixture(scope="module")
def decoupled():
    return decoupled_model()


def _expected_head0(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(head 0's attention [B, N], the margin change on removing each row from it) from the construction."""
    c = planted.closeness(obs)
    present = obs[..., planted.PRESENCE] >= 0.5
    scores = np.where(present, FAITHFUL_SHARPNESS * c, -np.inf)
    scores[:, 0] = EGO_SCORE
    p = np.exp(scores - scores.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # z = 1 - p_ego; removing j (renormalised) lowers z by p_ego p_j / (1 - p_j); margin = 1.8 - SLOPE z
    drop = p[:, :1] * p / (1 - p)
    effect = np.where(present, -SLOPE * drop, 0.0)
    effect[:, 0] = 0.0
    return p, effect


# ------------------------------------------------------------------------------------------ known answers
def test_head_removal_matches_the_construction_and_leaves_other_heads_alone(faithful, busy):
    p, expected = _expected_head0(busy)
    effects = F.head_removal_effects(faithful, busy)
    np.testing.assert_allclose(effects[:, 0], expected, atol=2e-5)
    assert np.all(effects[:, planted.SILENT_HEAD] == 0.0)  # head 1 writes nothing: removing from it changes nothing
    with torch.no_grad():
        att = faithful.attention(torch.from_numpy(busy))[:, 0, 0].double().numpy()
    np.testing.assert_allclose(att, p, atol=1e-5)


def test_row_removal_matches_the_construction(faithful, busy):
    c = planted.closeness(busy)
    present = busy[..., planted.PRESENCE] >= 0.5
    e = np.where(present, np.exp(FAITHFUL_SHARPNESS * c - EGO_SCORE), 0.0)
    e[:, 0] = 0.0
    z = e.sum(1) / (1 + e.sum(1))  # z_0 = 1 - p_ego with the ego's weight exp(EGO_SCORE) factored out
    z_without = (e.sum(1, keepdims=True) - e) / (1 + e.sum(1, keepdims=True) - e)
    expected = np.where(present, SLOPE * (z_without - z[:, None]), 0.0)
    expected[:, 0] = 0.0
    np.testing.assert_allclose(F.row_removal_effects(faithful, busy), expected, atol=2e-5)


def test_shapley_values_are_efficient_and_ignore_the_ego_and_absent_rows(faithful, busy):
    phi = F.shapley_values(faithful, busy[:20])
    x = torch.from_numpy(busy[:20])
    with torch.no_grad():
        full = F.keep_speed_margin(faithful(x)).double().numpy()
        empty = F.keep_speed_margin(faithful(F.absent_baseline(x))).double().numpy()
    np.testing.assert_allclose(phi.sum(1), full - empty, atol=1e-5)  # efficiency holds for every sampled order
    absent = busy[:20, :, planted.PRESENCE] < 0.5
    assert np.all(phi[:, 0] == 0.0) and np.all(phi[absent] == 0.0)


def test_shapley_values_land_on_the_rows_they_belong_to(faithful):
    # one vehicle at the centre (closeness 2), the others at the corners (closeness 0), on shuffled rows: by the
    # construction only the centre one moves the margin (~e^4 against ~e^0 per other), so whatever captum samples,
    # the largest |Shapley value| must sit on its row
    obs = planted.random_observations(40, seed=9, min_present=4, max_present=9)
    rows = []
    for s in range(len(obs)):
        others = np.flatnonzero(obs[s, 1:, planted.PRESENCE] >= 0.5) + 1
        obs[s, others, planted.X:planted.Y + 1] = np.sign(obs[s, others, planted.X:planted.Y + 1]) * 1.0
        centre = others[s % len(others)]
        obs[s, centre, planted.X:planted.Y + 1] = 0.0
        rows.append(centre)
    phi = F.shapley_values(faithful, obs)
    assert np.array_equal(np.abs(phi).argmax(1), rows)


def test_faithful_model_passes_both_rules(faithful, busy, clusters):
    tau = claims_f.attention_ranks_like_causal_importance(faithful, 0, busy, clusters)
    assert tau.holds, tau.summary
    assert np.all(tau.numbers["taus"] == 1.0)  # monotone by construction: every scene ranks identically
    assert tau.numbers["p_value"] == pytest.approx(1 / (1 + F.PERMUTATIONS))
    top = claims_f.attention_agrees_with_shapley_on_top(faithful, busy, clusters)
    assert top.holds, top.summary


def test_decoupled_model_fails_both_rules(decoupled, busy, clusters):
    tau = claims_f.attention_ranks_like_causal_importance(decoupled, 0, busy, clusters)
    assert not tau.holds
    assert tau.numbers["value"] == 0.0 and tau.numbers["flat_scenes"] == N_STATES  # removal changes nothing
    top = claims_f.attention_agrees_with_shapley_on_top(decoupled, busy, clusters)
    assert not top.holds, top.summary
    assert top.numbers["p_value"] > 0.01


def test_decoupled_attention_still_ranks_by_closeness(decoupled, faithful, busy):
    # the two planted models attend identically: only what the attention does differs
    with torch.no_grad():
        a = decoupled.attention(torch.from_numpy(busy))
        b = faithful.attention(torch.from_numpy(busy))
    assert torch.equal(a[:, 0], b[:, 0])


def test_probe_refuses_states_with_fewer_than_three_vehicles(faithful):
    sparse = planted.random_observations(10, seed=1, min_present=2, max_present=3)
    with pytest.raises(ConfigError, match="fewer than 3 present other vehicles"):
        F.faithfulness(faithful, sparse)


def test_probe_evidence_holds_all_three_scores(faithful, busy):
    ev = F.faithfulness(faithful, busy[:16])
    assert ev.attention.shape == (16, 2, planted.N_ROWS) and ev.shapley.shape == (16, planted.N_ROWS)
    np.testing.assert_allclose(ev.combined, ev.attention.mean(1))
    rankings = F.ranking(ev.combined, ev.valid)
    assert all(len(r) == int(v.sum()) and 0 not in r for r, v in zip(rankings, ev.valid))


# ------------------------------------------------------------------------------------------ statistics
def test_tau_b_equals_scipy_scene_by_scene_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(60, 9)).astype(float)  # many ties in both
    b = rng.integers(0, 4, size=(60, 9)).astype(float)
    valid = rng.random((60, 9)) < 0.7
    ours = F.kendall_tau_b(a, b, valid)
    for s in range(60):
        v = valid[s]
        ref = sps.kendalltau(a[s, v], b[s, v]).statistic if v.sum() >= 2 else np.nan
        assert ours[s] == pytest.approx(0.0 if np.isnan(ref) else ref, abs=1e-12)


def test_top1_agreement_and_chance():
    a = np.array([[0, 3, 1, 2], [0, 1, 5, 2]], float)
    b = np.array([[0, 9, 1, 1], [0, 7, 1, 2]], float)
    valid = np.array([[False, True, True, True], [False, True, True, True]])
    assert F.top1_agreement(a, b, valid).tolist() == [True, False]
    np.testing.assert_allclose(F.top1_chance(valid), [1 / 3, 1 / 3])


def test_within_scene_permutation_keeps_each_scene_values_and_shuffles_them():
    rng = np.random.default_rng(1)
    a = rng.random((50, 8))
    valid = rng.random((50, 8)) < 0.6
    out = F.permute_within_scenes(a, valid, rng)
    assert np.array_equal(out[~valid], a[~valid])
    for s in range(50):
        assert sorted(out[s, valid[s]]) == sorted(a[s, valid[s]])
    assert not np.array_equal(out, a)


def test_permutation_p_value_is_uniform_under_the_null():
    # unrelated scores: P(p <= 0.1) must be about 0.1 (exact binomial bound over 60 independent data sets)
    rng = np.random.default_rng(2)
    ps = []
    for i in range(60):
        a, b = rng.random((40, 6)), rng.random((40, 6))
        valid = np.ones((40, 6), bool)
        valid[:, 0] = False
        ps.append(F.within_scene_permutation_test(a, b, valid, F.kendall_tau_b, permutations=199, seed=i).p_value)
    rejected = int((np.array(ps) <= 0.1).sum())
    assert sps.binomtest(rejected, 60, 0.1).pvalue > 0.001, rejected


def test_cluster_ci_covers_the_mean_and_widens_with_clustering():
    rng = np.random.default_rng(3)
    per_cluster = rng.normal(size=30)
    values = np.repeat(per_cluster, 8) + 0.01 * rng.normal(size=240)  # scenes of one cluster nearly identical
    low, high = F.cluster_ci(values, np.repeat(np.arange(30), 8))
    naive = sps.bootstrap((values,), np.mean, random_state=0).confidence_interval
    assert low < values.mean() < high
    assert (high - low) > 2 * (naive.high - naive.low)  # 8 near-copies per cluster: the naive CI is too narrow


# ------------------------------------------------------------------------------------------ mutants
def test_a_permutation_that_does_not_shuffle_turns_the_faithful_verdict_red(faithful, busy, clusters, monkeypatch):
    monkeypatch.setattr(F, "permute_within_scenes", lambda a, valid, rng: a.copy())
    assert not claims_f.attention_ranks_like_causal_importance(faithful, 0, busy, clusters).holds


def test_removal_without_renormalising_breaks_the_known_answer(faithful, busy, monkeypatch):
    # the mutant: the row zeroed in the head's pattern but the remaining weights not renormalised
    monkeypatch.setattr(F, "renormalise", lambda pattern: pattern)
    _, expected = _expected_head0(busy)
    assert not np.allclose(F.head_removal_effects(faithful, busy)[:, 0], expected, atol=2e-5)


def test_removal_from_every_head_is_not_removal_from_one(faithful, busy):
    # what the agent-level score does (row masked everywhere) differs from the head-level one on a model where
    # another head also reads the row: the faithful model with head 1 writing too
    d = faithful.attention_layer.features_per_head
    both = faithful_model()
    with torch.no_grad():
        both.attention_layer.value_all.weight[d, planted.PRESENT_DIM] = 1.0
        both.attention_layer.attention_combine.weight[0, d] = 1.0
    head0 = F.head_removal_effects(both, busy)[:, 0]
    row = F.row_removal_effects(both, busy)
    assert not np.allclose(head0, row, atol=1e-4)


# ------------------------------------------------------------------------------------------ controls
def test_head_tau_control_rejects_a_decoupled_network_and_can_pass(faithful, decoupled, busy, clusters):
    # test_crossing_head_attention_ranks_vehicles_like_their_causal_importance: the control network is a random
    # one; where it is as faithful as the agent, the control holds and the spec ends vacuous
    random_tau = float(np.quantile([claims_f.mean_head_tau(decoupled, 0, busy)] * 10, 0.95))
    assert claims_f.attention_ranks_like_causal_importance(faithful, 0, busy, clusters, random_tau).holds
    assert not claims_f.attention_ranks_like_causal_importance(decoupled, 0, busy, clusters, random_tau).holds
    # the threshold from random networks alone can reject: the faithful model against faithful "random" networks
    assert not claims_f.attention_ranks_like_causal_importance(faithful, 0, busy, clusters, random_tau=1.0).holds


def test_shapley_control_rejects_a_decoupled_network_and_can_pass(faithful, decoupled, busy, clusters):
    # test_attention_and_shapley_attributions_agree_on_the_most_important_vehicle: a control network as faithful
    # as the planted one holds (vacuous); the decoupled one is rejected
    assert claims_f.attention_agrees_with_shapley_on_top(faithful, busy, clusters).holds
    assert not claims_f.attention_agrees_with_shapley_on_top(decoupled, busy, clusters).holds


def test_random_tau_quantile_resolves_each_random_network_head(faithful, busy):
    obs = busy[:40]
    rows = planted.closest_row(obs)
    q = claims_f.random_tau_quantile(lambda i: planted.randomised_copy(faithful, seed=i), obs, rows, obs, inits=4)
    taus = []
    from interp.probes.attention import argmax_share

    for i in range(4):
        m = planted.randomised_copy(faithful, seed=i)
        taus.append(claims_f.mean_head_tau(m, int(argmax_share(m, obs, rows).best_head), obs))
    assert q == pytest.approx(float(np.quantile(taus, 0.95)))


# ------------------------------------------------------------------------------------------ the drawn scene
def test_rank_labels_and_ranked_scene_figure():
    from interp.replay import ReplayFrame
    from reports.run.ranking_scene import rank_labels, ranked_scene_figure
    from reports.schema import validate_figure

    labels = rank_labels({"attention": [3, 1], "causal": [1, 3], "Shapley": [1, 3]})
    assert labels == {3: "A1 C2 S2", 1: "A2 C1 S1"}
    frame = ReplayFrame(t=0, image=np.full((60, 80, 3), 100, np.uint8), positions={},
                        pixels={0: (40.0, 50.0), 3: (79.0, 1.0), 5: (120.0, 10.0)})
    fig = ranked_scene_figure(frame, {"attention": [3, 1, 5], "causal": [1, 3, 5]}, seed=4, caption="x")
    validate_figure(fig)
    assert "outside the picture: v1, v5" in fig["caption"]  # v1 has no pixel, v5's lies right of the picture


# ------------------------------------------------------------------------------------------ findings
def test_findings_of_zoo_members_one_level_deeper_are_found(tmp_path):
    import json

    from specs.support import findings as found

    (tmp_path / "zoo" / "m1").mkdir(parents=True)
    (tmp_path / "zoo" / "m1" / "findings.json").write_text(json.dumps({"identity": "idz", "format": 2, "findings": {
        "test_x": {"verdict": "refuted", "summary": "s"}}}))
    assert found.findings_for("idz", tmp_path)["test_x"]["verdict"] == "refuted"


def test_the_zoo_member_where_attention_and_shapley_disagree_carries_its_finding():
    from specs.support import findings as found

    identity = __import__("json").loads((found.CHECKPOINTS / "zoo-1000" / "4h-s2" / "metadata.json").read_text())["identity"]
    finding = found.findings_for(identity)["test_attention_and_shapley_attributions_agree_on_the_most_important_vehicle"]
    assert finding["verdict"] == "refuted"
