"""Causal scrubbing on the planted network: the true hypothesis about head 0 is recovered, false ones are not."""
from __future__ import annotations

import json

import numpy as np
import pytest

from interp.probes import interventions as I
from interp.probes import scrubbing as S
from tests import planted as P

FASTER = I.QValue(P.SUPPRESSED_ACTION)


def closeness_preserving_groups(n_groups: int, per_group: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scenes in groups that share the multiset of other vehicles' closeness (2 - |x| - |y|) and nothing else:
    within a group each vehicle's x, y signs are flipped and x, y swapped at random, every velocity and
    heading (the ego's included) is redrawn, and the other rows are shuffled. Labels = group index."""
    rng = np.random.default_rng(seed)
    base = P.random_observations(n_groups, seed=seed, min_present=3)
    scenes, labels = [], []
    for g, scene in enumerate(base):
        present = scene[:, P.PRESENCE] >= 0.5
        others = present.copy()
        others[0] = False
        for _ in range(per_group):
            s = scene.copy()
            s[others, P.X:P.Y + 1] *= rng.choice([-1.0, 1.0], size=(others.sum(), 2))
            swap = others & (rng.random(P.N_ROWS) < 0.5)
            s[swap, P.X], s[swap, P.Y] = scene[swap, P.Y].copy(), scene[swap, P.X].copy()
            heading = rng.uniform(-np.pi, np.pi, present.sum())
            s[present, P.VX:P.VY + 1] = rng.uniform(-1, 1, (present.sum(), 2))
            s[present, P.COS_H], s[present, P.SIN_H] = np.cos(heading), np.sin(heading)
            s[1:] = s[1:][rng.permutation(P.N_ROWS - 1)]
            scenes.append(s)
            labels.append(g)
    return np.stack(scenes).astype(np.float32), np.array(labels)


@pytest.fixture(scope="module")
def scenes():
    return closeness_preserving_groups(40, 4, seed=5)


def test_planted_true_hypothesis_is_recovered(model, scenes):
    obs, groups = scenes
    ev = S.scrub(model, obs, hook=I.Z_HOOK, units=[P.PLANTED_HEAD], labels=groups, metric=FASTER,
                 property_name="closeness of the other vehicles")
    assert ev.verdict == "supported", ev.reason
    assert ev.recovered > 0.999 and ev.ci_low > 0.99
    assert np.nanmin(ev.recovered_per_scene) > 0.99 and ev.scene_share == 1.0
    assert ev.ablated_deviation.mean() > 0.1 and ev.zero_ablation_deviation > 0.1
    json.dumps(ev.to_dict())


@pytest.mark.parametrize("name", ["ego heading", "number of vehicles"])
def test_planted_false_hypotheses_are_refuted(model, scenes, name):
    obs, _ = scenes
    if name == "ego heading":
        labels = (obs[:, 0, P.SIN_H] > 0).astype(int)
    else:
        labels = (obs[:, :, P.PRESENCE] >= 0.5).sum(1)
    ev = S.scrub(model, obs, hook=I.Z_HOOK, units=[P.PLANTED_HEAD], labels=labels, metric=FASTER,
                 property_name=name)
    assert ev.verdict == "refuted", ev.reason
    assert ev.recovered < 0.5


def test_planted_silent_head_is_inconclusive_not_supported(model, scenes):
    obs, groups = scenes
    ev = S.scrub(model, obs, hook=I.Z_HOOK, units=[P.SILENT_HEAD], labels=np.zeros(len(obs)), metric=FASTER)
    assert ev.verdict == "inconclusive" and ev.ablated_deviation.max() < 1e-6


def test_scrubbing_negative_control_randomised_weights_refute_the_planted_hypothesis(model, scenes):
    obs, groups = scenes
    ev = S.scrub(P.randomised_copy(model, 0), obs, hook=I.Z_HOOK, units=[P.PLANTED_HEAD], labels=groups,
                 metric=I.Margin(P.SUPPRESSED_ACTION, 0))
    assert ev.verdict == "refuted", ev.reason
    assert ev.recovered < S.SUPPORT_RECOVERY


def test_scrubbing_is_seeded_and_drops_unmatched_scenes(model, scenes):
    obs, groups = scenes
    labels = groups.copy()
    labels[0] = -1  # a property value no other scene has
    a = S.scrub(model, obs, hook=I.Z_HOOK, units=[0], labels=labels, metric=FASTER, seed=3)
    b = S.scrub(model, obs, hook=I.Z_HOOK, units=[0], labels=labels, metric=FASTER, seed=3)
    assert a.n_matched == len(obs) - 1 and not a.matched[0]
    np.testing.assert_array_equal(a.ablated_deviation, b.ablated_deviation)


def test_verdict_rules():
    assert S.scrubbing_verdict(S.MIN_SCENES - 1, True, (0.9, 1.0), 1.0)[0] == "inconclusive"
    assert S.scrubbing_verdict(100, False, (0.9, 1.0), 1.0)[0] == "inconclusive"
    assert S.scrubbing_verdict(100, True, (0.9, 1.0), S.SCENE_SHARE - 0.1)[0] == "refuted"  # a mean carried by few scenes
    assert S.scrubbing_verdict(100, True, (0.5, 0.7), 1.0)[0] == "refuted"
    assert S.scrubbing_verdict(100, True, (0.7, 0.9), 1.0)[0] == "inconclusive"
    assert S.scrubbing_verdict(100, True, (0.85, 0.95), 0.9)[0] == "supported"
