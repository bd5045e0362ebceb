"""Logit lens stages on the planted network: what the ego alone, each head, and the full residual decide."""
from __future__ import annotations

import json

import numpy as np
import torch

from interp.probes import interventions as I
from interp.probes import logit_lens as L
from tests import planted as P

PLANTED_OBS = (200, 41)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


def test_planted_logit_lens_stages(model, obs):
    ev = L.logit_lens(model, obs, P.ACTION_NAMES)
    assert ev.stages == ["ego", "head 0", "head 1", "attention", "residual"]
    np.testing.assert_allclose(ev.q["residual"], P.expected_q(obs), atol=1e-5)
    np.testing.assert_allclose(ev.q["head 0"], ev.q["residual"], atol=1e-5)  # head 0 is all the attention does
    np.testing.assert_allclose(ev.q["head 1"], ev.q["ego"], atol=1e-6)  # head 1 writes nothing
    assert np.all(ev.greedy["ego"] == P.SUPPRESSED_ACTION)  # without head 0 the agent always wants FASTER
    assert ev.agrees_with_final["head 0"] == 1.0 and ev.agrees_with_final["ego"] < 1.0
    json.dumps(ev.to_dict())


def test_stages_are_the_ablations_they_claim_to_be(model, obs):
    for m in (model, P.randomised_copy(model, 2)):
        ev = L.logit_lens(m, obs)
        np.testing.assert_allclose(ev.q["ego"], I.head_ablation([0, 1]).run(m, obs).numpy(), atol=1e-6)
        np.testing.assert_allclose(ev.q["head 0"], I.head_ablation([1]).run(m, obs).numpy(), atol=1e-6)
        np.testing.assert_allclose(ev.q["residual"], m(torch.as_tensor(obs)).detach().numpy(), atol=1e-6)


def test_logit_lens_negative_control_randomised_weights(model, obs):
    ev = L.logit_lens(P.randomised_copy(model, 0), obs)
    assert np.abs(ev.q["head 1"] - ev.q["ego"]).max() > 1e-3
    assert np.abs(ev.q["head 0"] - ev.q["residual"]).max() > 1e-3
