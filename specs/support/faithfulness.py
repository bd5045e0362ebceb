"""The decision rules of the attention-faithfulness specs, as functions of a model and states (``Check``s), so the
same rule runs on the agent, on its negative control and on the planted models of tests/planted_faithfulness.py.

Scores and statistics come from ``interp.probes.faithfulness``; thresholds are fixed here before the first run.
"""
from __future__ import annotations

import numpy as np
import torch

from interp.probes import faithfulness as F
from specs.support.claims import ALPHA, MAJORITY, Check


def head_scores(model, head: int, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head's attention [B, N], |keep-margin change| when each row leaves that head's attention [B, N], valid)."""
    x = np.asarray(obs, dtype=np.float32)
    with torch.no_grad():
        attention = model.attention(torch.from_numpy(x))[:, head, 0, :].double().numpy()
    effect = F.head_removal_effects(model, x, only=[head])[:, head]
    return attention, np.abs(effect), F.present_others(torch.from_numpy(x), model.presence_idx)


def mean_head_tau(model, head: int, obs: np.ndarray) -> float:
    """Mean per-scene Kendall tau-b between the head's attention and its causal ranking."""
    attention, importance, valid = head_scores(model, head, obs)
    return float(F.kendall_tau_b(attention, importance, valid).mean())


def attention_ranks_like_causal_importance(model, head: int, obs: np.ndarray, clusters: np.ndarray,
                                           random_tau: float = -1.0, seed: int = 0) -> Check:
    """Per scene, Kendall's tau-b between head ``head``'s attention to the present vehicles and their causal
    importance for that head (|change of the keep-speed margin| when the vehicle leaves that head's attention
    only, renormalised). Holds if the mean tau is above 0 with a within-scene permutation p < ALPHA, and above
    ``random_tau`` (the 95th percentile of the same mean on randomly initialised networks: removing a vehicle a
    head weighs heavily moves any network's output, so tau > 0 alone is expected of random weights)."""
    attention, importance, valid = head_scores(model, head, obs)
    taus = F.kendall_tau_b(attention, importance, valid)
    test = F.within_scene_permutation_test(attention, importance, valid, F.kendall_tau_b, seed=seed)
    low, high = F.cluster_ci(taus, clusters, seed=seed)
    mean = float(taus.mean())
    holds = mean > 0 and test.p_value < ALPHA and mean > random_tau
    flat = int(((importance * valid).max(1) <= (np.where(valid, importance, np.inf)).min(1)).sum())
    return Check(holds, f"head {head}: mean Kendall tau {mean:+.3f} (95% CI {low:+.3f} to {high:+.3f}, n={len(taus)} "
                        f"states of {len(np.unique(clusters))} episodes; within-scene permutation p={test.p_value:.2g}); "
                        f"needs > 0 with p < {ALPHA} and > {random_tau:+.3f} (95th percentile of random networks)",
                 {"value": mean, "ci": (low, high), "n": len(taus), "p_value": test.p_value,
                  "episodes": int(len(np.unique(clusters))), "random_tau": random_tau, "flat_scenes": flat,
                  "taus": taus})


def attention_agrees_with_shapley_on_top(model, obs: np.ndarray, clusters: np.ndarray, seed: int = 0,
                                         n_samples: int = F.SHAPLEY_SAMPLES) -> Check:
    """Per scene, whether the vehicle with the most combined attention (mean over heads) is the one with the
    largest |Shapley value| for the keep-speed margin (captum sampling, a vehicle removed = an absent row). Holds
    if the share of scenes that agree has its 95 % CI (episodes resampled) above both 1/2 and chance (mean 1 /
    vehicles) and a within-scene permutation p < ALPHA."""
    x = np.asarray(obs, dtype=np.float32)
    with torch.no_grad():
        combined = model.attention(torch.from_numpy(x))[:, :, 0, :].mean(1).double().numpy()
    shapley = np.abs(F.shapley_values(model, x, n_samples=n_samples, seed=seed))
    valid = F.present_others(torch.from_numpy(x), model.presence_idx)
    agree = F.top1_agreement(combined, shapley, valid)
    chance = float(F.top1_chance(valid).mean())
    test = F.within_scene_permutation_test(combined, shapley, valid, F.top1_agreement, seed=seed)
    low, high = F.cluster_ci(agree.astype(float), clusters, seed=seed)
    share = float(agree.mean())
    holds = low > max(MAJORITY, chance) and test.p_value < ALPHA
    return Check(holds, f"combined attention and Shapley agree on the top vehicle in {int(agree.sum())}/{len(agree)} "
                        f"states (95% CI {low:.2f}-{high:.2f}, {len(np.unique(clusters))} episodes; chance {chance:.2f}; "
                        f"within-scene permutation p={test.p_value:.2g}); needs the lower bound > max(chance, "
                        f"{MAJORITY}) and p < {ALPHA}",
                 {"share": share, "ci": (low, high), "n": len(agree), "p_value": test.p_value, "chance": chance,
                  "episodes": int(len(np.unique(clusters))), "agree": agree, "combined": combined, "shapley": shapley,
                  "valid": valid})


def random_tau_quantile(make_random_model, calibration_obs, calibration_rows, obs: np.ndarray, inits: int = 10,
                        q: float = 0.95) -> float:
    """The q-quantile, over randomly initialised networks, of the mean head tau of the head each would resolve to
    the crossing role on the calibration scenes (as the agent's crossing head is resolved)."""
    from interp.probes.attention import argmax_share

    taus = []
    for i in range(inits):
        model = make_random_model(i)
        head = int(argmax_share(model, calibration_obs, calibration_rows).best_head)
        taus.append(mean_head_tau(model, head, obs))
    return float(np.quantile(taus, q))
