"""Circuits on actions: how much each head (and the ego residual) moves each action's Q-value, per scene.

The residual entering the output MLP is ``r = (sum_h head_out_h + ego) / 2``, so head h adds
``head_out_h / 2`` to it. Two measures of head h's contribution to ``Q_a``:

* exact: ``Q_a(scene) - Q_a(scene with z_h zeroed)``, every other head held at its value (zeroing
  ``z_h`` removes exactly ``head_out_h / 2`` from the residual: ``attention_combine`` has no bias);
* linearised: ``J_a(r) . head_out_h / 2`` with ``J_a`` the gradient of ``Q_a`` with respect to the
  residual at the scene (a first-order Taylor step of the output MLP).

Their gap measures how non-linear the output MLP is over that step. The ego residual's contribution
is the same pair with ``ego / 2`` in place of ``head_out_h / 2``; its share of an action is
``|ego| / (|ego| + sum_h |head_h|)`` over exact contributions, per scene.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from interp.evidence import Evidence
from interp.probes.interventions import HEAD_OUT_HOOK, Observations, head_ablation, to_tensor
from interp.model.network import EgoAttentionNetwork
from interp.model import names

EGO_HOOK = names.EGO
RESIDUAL_HOOK = names.RESIDUAL


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeadContributionEvidence(Evidence):
    """Per scene, head and action: ``exact`` and ``linear`` contributions [B, H, A] and their ``gap``
    (exact - linear); the same for the ego residual [B, A]; ``ego_share`` [B, A]; means over scenes."""

    n: int
    n_heads: int
    action_names: list | None
    q: np.ndarray
    exact: np.ndarray
    linear: np.ndarray
    gap: np.ndarray
    ego_exact: np.ndarray
    ego_linear: np.ndarray
    ego_share: np.ndarray
    mean_exact: np.ndarray
    mean_linear: np.ndarray
    mean_ego_share: np.ndarray
    max_abs_gap: float
    relative_gap: float


def residual_jacobian(model: EgoAttentionNetwork, residual: torch.Tensor) -> torch.Tensor:
    """[B, A, F]: d Q_a / d residual at each scene (one backward pass per action; scenes are independent)."""
    r = residual.detach().clone().requires_grad_(True)
    q = model.output_layer(r)
    rows = [torch.autograd.grad(q[:, a].sum(), r, retain_graph=a < q.shape[1] - 1)[0] for a in range(q.shape[1])]
    return torch.stack(rows, dim=1).detach()


def head_contributions(model: EgoAttentionNetwork, obs: Observations,
                       action_names: list[str] | None = None) -> HeadContributionEvidence:
    x = to_tensor(obs)
    with torch.no_grad():
        q, cache = model.run_with_cache(x, lambda name: name in (HEAD_OUT_HOOK, EGO_HOOK, RESIDUAL_HOOK))
        q_without = torch.stack([head_ablation([h]).run(model, x) for h in range(model.n_heads)], dim=1)
        q_no_ego = model.output_layer(cache[RESIDUAL_HOOK] - cache[EGO_HOOK] / 2)
    jac = residual_jacobian(model, cache[RESIDUAL_HOOK])  # [B, A, F]
    exact = (q[:, None, :] - q_without).numpy()
    linear = torch.einsum("baf,bhf->bha", jac, cache[HEAD_OUT_HOOK] / 2).numpy()
    ego_exact = (q - q_no_ego).numpy()
    ego_linear = torch.einsum("baf,bf->ba", jac, cache[EGO_HOOK] / 2).numpy()
    total = np.abs(ego_exact) + np.abs(exact).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ego_share = np.where(total > 0, np.abs(ego_exact) / total, np.nan)
    gap = exact - linear
    return HeadContributionEvidence(
        probe="head_contributions", settings={"batch": int(x.shape[0]), "exact": "zero z_h, others held",
                                             "linear": "J(r) . head_out_h / 2"},
        n=int(x.shape[0]), n_heads=model.n_heads, action_names=action_names, q=q.numpy(), exact=exact,
        linear=linear, gap=gap, ego_exact=ego_exact, ego_linear=ego_linear, ego_share=ego_share,
        mean_exact=exact.mean(0), mean_linear=linear.mean(0), mean_ego_share=np.nanmean(ego_share, axis=0),
        max_abs_gap=float(np.abs(gap).max(initial=0.0)),
        relative_gap=float(np.abs(gap).sum() / max(np.abs(exact).sum(), 1e-12)),
    )
