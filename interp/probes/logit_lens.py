"""Logit lens on the ego-attention layer: what the output MLP would decide from each stage of the residual.

The output MLP reads ``r = (sum_h head_out_h + ego) / 2``. Applying it to parts of that sum, at the
scale the network itself uses (everything halved, as in the real residual), gives Q-values per stage:

* ``ego``: ``output_layer(ego / 2)``: the ego alone, i.e. every head's contribution removed (the same
  as zero-ablating every head's ``z``);
* ``head h``: ``output_layer((head_out_h + ego) / 2)``: the ego plus head h only (the same as
  zero-ablating every other head);
* ``attention``: ``output_layer(sum_h head_out_h / 2)``: the heads without the ego;
* ``residual``: ``output_layer(r)``: the full residual, i.e. the network's own Q-values.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from interp.evidence import Evidence
from interp.probes.interventions import HEAD_OUT_HOOK, Observations, to_tensor
from interp.model.network import EgoAttentionNetwork
from interp.model import names, policy

EGO_HOOK = names.EGO
COMBINED_HOOK = names.COMBINED
RESIDUAL_HOOK = names.RESIDUAL


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogitLensEvidence(Evidence):
    """``q[stage]`` [B, A] per stage (``stages`` in order: ego, head 0.., attention, residual), the greedy
    action per stage [B], and per stage the share of scenes whose greedy action matches the network's."""

    n: int
    stages: list
    q: dict
    greedy: dict
    agrees_with_final: dict
    mean_q: dict
    action_names: list | None


def logit_lens(model: EgoAttentionNetwork, obs: Observations, action_names: list[str] | None = None) -> LogitLensEvidence:
    x = to_tensor(obs)
    with torch.no_grad():
        _, cache = model.run_with_cache(x, lambda name: name in (HEAD_OUT_HOOK, EGO_HOOK, COMBINED_HOOK, RESIDUAL_HOOK))
        ego, head_out = cache[EGO_HOOK], cache[HEAD_OUT_HOOK]
        inputs = {"ego": ego / 2}
        inputs.update({f"head {h}": (head_out[:, h] + ego) / 2 for h in range(model.n_heads)})
        inputs["attention"] = cache[COMBINED_HOOK] / 2
        inputs["residual"] = cache[RESIDUAL_HOOK]
        q = {stage: model.output_layer(r).numpy() for stage, r in inputs.items()}
    greedy = {stage: policy.choose(v)[0] for stage, v in q.items()}  # the engine's rule, near-ties included
    final = greedy["residual"]
    return LogitLensEvidence(
        probe="logit_lens", settings={"batch": int(x.shape[0]), "scale": "as in the residual: halved"},
        n=int(x.shape[0]), stages=list(q), q=q, greedy=greedy,
        agrees_with_final={stage: float(np.mean(g == final)) for stage, g in greedy.items()},
        mean_q={stage: v.mean(0) for stage, v in q.items()}, action_names=action_names,
    )
