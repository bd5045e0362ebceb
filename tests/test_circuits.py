"""Per-head contributions to each action's Q, exact (patching) vs linearised, on the planted network."""
from __future__ import annotations

import json

import numpy as np

from interp.probes import circuits as C
from interp.probes import interventions as I
from tests import planted as P

PLANTED_OBS = (200, 31)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


def test_planted_head0_alone_suppresses_faster_exactly_and_linearly(model, obs):
    ev = C.head_contributions(model, obs, P.ACTION_NAMES)
    z0 = I.activations(model, obs, I.Z_HOOK)[:, P.PLANTED_HEAD, 0].numpy()
    np.testing.assert_allclose(ev.exact[:, P.PLANTED_HEAD, P.SUPPRESSED_ACTION], -P.SUPPRESSION * z0, atol=1e-5)
    assert np.all(ev.exact[:, P.PLANTED_HEAD, list(P.UNAFFECTED_ACTIONS)] == 0)
    assert np.all(ev.exact[:, P.SILENT_HEAD] == 0) and np.all(ev.linear[:, P.SILENT_HEAD] == 0)
    np.testing.assert_allclose(ev.linear, ev.exact, atol=1e-5)  # every ReLU on the path is in its linear region
    assert ev.max_abs_gap < 1e-5 and ev.relative_gap < 1e-5
    # the ego carries everything of SLOWER and IDLE
    np.testing.assert_allclose(ev.ego_share[:, list(P.UNAFFECTED_ACTIONS)], 1.0)
    json.dumps(ev.to_dict())


def test_exact_contribution_is_the_head_ablation_effect(model, obs):
    for m in (model, P.randomised_copy(model, 3)):
        ev = C.head_contributions(m, obs)
        for h in range(2):
            q_abl = I.head_ablation([h]).run(m, obs).numpy()
            np.testing.assert_allclose(ev.exact[:, h], ev.q - q_abl, atol=1e-6)


def test_circuits_negative_control_randomised_weights(model, obs):
    ev = C.head_contributions(P.randomised_copy(model, 0), obs)
    assert np.abs(ev.exact[:, P.SILENT_HEAD]).max() > 1e-3  # the silent head now writes
    assert np.abs(ev.exact[:, P.PLANTED_HEAD, list(P.UNAFFECTED_ACTIONS)]).max() > 1e-3
    assert ev.max_abs_gap > 1e-4  # and the output MLP is not linear over the step


def test_linearisation_gap_grows_with_nonlinearity(model, obs):
    # scaling up a random output MLP's first layer makes ReLUs switch over a head's step: the gap must show it
    rnd = P.randomised_copy(model, 1)
    sharp = I.edit_weight(rnd, "output_layer.layers.0.weight", lambda w: w * 20)
    assert C.head_contributions(sharp, obs).relative_gap > C.head_contributions(rnd, obs).relative_gap
