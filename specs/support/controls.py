"""Negative controls: models or data sets on which a spec's claim is plausible beforehand but should not hold, so
that a check which also holds there is *vacuous*.

Each returns an edited *copy* (the agent under test is never touched): randomly initialised networks of the same
architecture (model randomisation), the agent blind to one vehicle (``hide_rows``), Q negated, and, for invariances
that hold for any weights of the real architecture (row permutation, masked rows), a model with a deliberately
broken part. Every control must be able to pass: ``tests/test_controls_can_pass.py`` shows, spec by spec, a planted
model or data set on which it does.
"""
from __future__ import annotations

import copy

import torch

from interp.model.hooks import HookPoint


def _copy(model):
    clone = copy.deepcopy(model)
    clone.eval()
    return clone


def silenced_head(model, head: int):
    """The head still attends but writes nothing: its slice of attention_combine is zero."""
    clone = _copy(model)
    d = clone.attention_layer.features_per_head
    with torch.no_grad():
        clone.attention_layer.attention_combine.weight[:, head * d:(head + 1) * d] = 0.0
    return clone


def uniform_attention(model):
    """Every head attends uniformly over present rows (zero queries): no head can prefer any vehicle."""
    clone = _copy(model)
    with torch.no_grad():
        clone.attention_layer.query_ego.weight.zero_()
    return clone


def negated_q(model):
    """Every Q-value negated: every preference between actions reversed (slowing where the agent keeps speed,
    more willing to keep speed where the agent becomes less willing)."""
    clone = _copy(model)
    with torch.no_grad():
        clone.output_layer.predict.weight.neg_()
        clone.output_layer.predict.bias.neg_()
    return clone


def hide_rows(obs, rows):
    """The scenes as an agent blind to one vehicle per scene sees them: row ``rows[i]`` of scene ``i`` marked absent
    (presence 0, features zeroed). Absent rows get no attention and do not move the Q-values (the absent-rows
    spec checks this), so any model on these scenes is that model edited to ignore the vehicle."""
    import numpy as np

    hidden = np.array(obs, dtype=np.float32, copy=True)
    idx = np.arange(len(hidden))
    hidden[idx, np.asarray(rows)] = 0.0
    return hidden


def randomly_initialised(agent, init_seed: int):
    """A network of the agent's architecture with fresh random weights (the model-randomisation test)."""
    from interp.simulation.agent import untrained_agent

    return untrained_agent(agent.agent_config, agent.env_config, init_seed=init_seed).model


def random_network_role_head(agent, init_seed: int, calibration_obs, calibration_rows):
    """A randomly initialised network and the head the crossing role would resolve to on it (the head whose argmax
    falls most often on the nearest crossing vehicle of the calibration scenes), as for the agent."""
    from interp.probes.attention import argmax_share

    model = randomly_initialised(agent, init_seed)
    return model, int(argmax_share(model, calibration_obs, calibration_rows).best_head)


def _hooked(model, name: str, fn):
    """A copy whose hook point ``name`` always applies ``fn`` (a permanent, deliberate breakage)."""
    clone = _copy(model)
    point: HookPoint = clone.hook_dict[name]
    point.register_forward_hook(lambda _m, _i, out: fn(out))
    return clone


def broken_presence_mask(model):
    """The presence mask disabled: absent rows are attended to like present ones."""
    return _hooked(model, "hook_mask", torch.zeros_like)


def row_order_leak(model, scale: float = 0.05):
    """The others' embeddings get a row-index offset: the model now depends on the (shuffled) row order."""
    def leak(embedded: torch.Tensor) -> torch.Tensor:
        offset = torch.arange(embedded.shape[1], dtype=embedded.dtype).view(1, -1, 1) * scale
        return embedded + offset
    return _hooked(model, "others_embedding.hook_hidden.1" if "others_embedding.hook_hidden.1" in model.hook_dict
                   else "others_embedding.hook_hidden.0", leak)
