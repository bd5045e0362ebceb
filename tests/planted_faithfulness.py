"""Two planted networks for the attention-faithfulness probe, built on ``tests.planted`` (same architecture):

* ``faithful_model``: head 0 attends by closeness (score ``FAITHFUL_SHARPNESS * c_j``; ``EGO_SCORE`` for the ego)
  and reads a constant 1 from every other vehicle (0 from the ego), so ``z_0 = 1 - p_ego``; Q[SLOWER] = 0.2 + z_0 and
  Q[IDLE] = Q[FASTER] = 2, so the keep-speed margin is ``1.8 - z_0``. Removing vehicle j from head 0's
  attention (renormalised) lowers ``z_0`` by ``p_ego p_j / (1 - p_j)``, strictly increasing in ``p_j``: head 0's
  causal ranking *is* its attention ranking (tau = 1 in every scene). The margin is a function of
  ``sum_j exp(s c_j)`` over the present vehicles, increasing in each term, so the Shapley values are ordered like
  the attention too; with most attention on the ego, ``z_0 ~ sum_j exp(s c_j) / exp(EGO_SCORE)`` is nearly
  additive over vehicles, so the sampled Shapley values keep that order despite sampling noise. Head 1 attends uniformly and writes nothing.
* ``decoupled_model``: head 0 attends exactly as above but writes nothing (its slice of ``attention_combine`` is
  zero), so removing any vehicle from its attention changes nothing; head 1 attends uniformly and reads each
  row's speed ``|vx| + |vy|`` into the margin (``1.8 - z_1``). Attention (head 0, or combined) ranks vehicles by
  closeness while what moves the decision is their speed: attention is decoupled from the output.
"""
from __future__ import annotations

import numpy as np
import torch

from tests import planted

FAITHFUL_SHARPNESS = 2.0  # head 0's score of another vehicle: FAITHFUL_SHARPNESS * closeness, in [0, 4]
EGO_SCORE = 8.0  # head 0's score of the ego row: most attention stays on the ego, so z_0 is nearly additive
FAITHFUL_HEAD = planted.PLANTED_HEAD
SLOPE = 1.0


def _base(n_heads: int = 2, feature_size: int = 8):
    model = planted.planted_model(n_heads, feature_size)
    d = model.attention_layer.features_per_head
    att, out = model.attention_layer, model.output_layer
    with torch.no_grad():
        att.query_ego.weight[0, planted.EGO_CONST_DIM] = FAITHFUL_SHARPNESS * float(np.sqrt(d))
        att.key_all.weight[0, planted.EGO_CONST_DIM] = EGO_SCORE / FAITHFUL_SHARPNESS  # only the ego has this dim
        att.value_all.weight[0].zero_()
        pred = out.predict
        pred.weight.zero_()
        pred.bias.copy_(torch.tensor([0.2, 2.0, 2.0]))
        pred.weight[0, planted.PLANTED_NEURON] = SLOPE
    return model, d


def faithful_model() -> torch.nn.Module:
    """Head 0's attention ranks vehicles exactly like their causal importance (module docstring)."""
    model, _ = _base()
    with torch.no_grad():
        model.attention_layer.value_all.weight[0, planted.PRESENT_DIM] = 1.0
    model.config = {**model.config, "planted": "faithful_attention"}
    return model.eval()


def decoupled_model() -> torch.nn.Module:
    """Head 0 attends by closeness and writes nothing; the output reads speed through uniform head 1."""
    model, d = _base()
    att = model.attention_layer
    with torch.no_grad():
        att.attention_combine.weight.zero_()
        att.attention_combine.weight[0, planted.SILENT_HEAD * d] = 1.0  # head 1's z[0] = mean speed of the rows
    model.config = {**model.config, "planted": "decoupled_attention"}
    return model.eval()
