"""The decision rule of each spec, as a function of a model and its inputs, so the same rule runs on the
agent under test, on its negative control inside the spec, and on planted models in ``tests/``.

Every function returns a ``Check``: whether the claim holds by the stated rule, and the numbers behind it.
Thresholds are module constants, fixed before the first run on the reference agent.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from scipy import stats as sps

from interp.model import policy
from interp.probes.attention import argmax_share
from interp.probes.interventions import ablate_heads
from interp.stats import wilson_interval

ALPHA = 0.01  # significance level of the mechanism specs' tests
PERMUTATION_TOL = 1e-4  # |dQ| allowed under row permutation (float32 sums in another order)
MASK_TOL = 1e-6  # attention mass allowed on absent rows
UNCHANGED_SHARE = 0.9  # "does not change the action": Wilson lower bound of the unchanged share above this
DIR_TOL = 1e-3  # Q-units of increase tolerated in a directional expectation step
MAJORITY = 0.5  # "in most scenes"
SLOWER = 0  # the env's action index of SLOWER (DiscreteMetaAction, longitudinal only)


@dataclasses.dataclass(frozen=True)
class Check:
    holds: bool
    summary: str
    numbers: dict[str, Any] = dataclasses.field(default_factory=dict)


def q_values(model, obs: np.ndarray, hooks=()) -> np.ndarray:
    """Q-values [B, A] of observations [B, N, F] under optional hooks (one batched forward: state-level claims
    compare Q-values, they do not choose actions; rollouts choose through ``interp.model.policy``)."""
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        return (model.run_with_hooks(x, hooks) if hooks else model(x)).numpy()


def attention_pattern(model, obs: np.ndarray) -> np.ndarray:
    """The ego's attention [B, H, N] of each head over the rows."""
    with torch.no_grad():
        # a copy: scene observations are read-only arrays, which torch.from_numpy warns about
        return model.attention(torch.from_numpy(np.array(obs, dtype=np.float32)))[:, :, 0, :].numpy()


def keep_speed_margin(q: np.ndarray) -> np.ndarray:
    """Willingness not to slow down: max(Q[IDLE], Q[FASTER]) - Q[SLOWER].

    At the top target speed FASTER and IDLE are the same transition, so only the comparison with the one
    action that lowers the target speed carries meaning (indices: SLOWER 0, IDLE 1, FASTER 2).
    """
    return np.maximum(q[:, 1], q[:, 2]) - q[:, 0]


# ------------------------------------------------------------------------------------------ mechanism
def attends_to_target(model, head: int, obs: np.ndarray, target_rows: np.ndarray, random_share: float = 0.0) -> Check:
    """Head ``head``'s strict argmax is the target row in a majority of scenes: Wilson 95 % lower bound above
    both 1/2 and the chance level (mean 1 / present rows; ``interp.probes.attention.argmax_share``), and the share
    above ``random_share`` (what the role-resolved head of randomly initialised networks reaches: geometry
    alone makes near vehicles likely argmaxes, so chance is a weak null)."""
    ev = argmax_share(model, obs, target_rows)
    k, n, low, high = int(ev.hits[head]), ev.n, float(ev.ci_low[head]), float(ev.ci_high[head])
    holds = low > max(ev.chance, MAJORITY) and k / n > random_share
    return Check(holds, f"head {head} argmax on the target in {k}/{n} scenes (95% CI {low:.2f}-{high:.2f}); "
                        f"needs lower bound > max(chance {ev.chance:.2f}, {MAJORITY}) and share > {random_share:.2f} "
                        "(95th percentile of random networks)",
                 {"hits": k, "n": n, "share": k / n, "ci": (low, high), "chance": ev.chance, "random_share": random_share,
                  "p_value_vs_chance": float(ev.p_value[head]), "all_heads_share": ev.share.tolist()})


def attention_rises_when_nearer(model, head: int, sweeps) -> Check:
    """In paired sweeps (same scene, only the crossing car's distance changed), the head's attention to that
    car is higher at the nearest distance than at the farthest in more sweeps than not: exact sign test,
    one-sided, p < ALPHA."""
    far_obs = np.stack([s.scenes[0].observation for s in sweeps])
    near_obs = np.stack([s.scenes[-1].observation for s in sweeps])
    far_rows = np.array([s.scenes[0].rows["crossing"] for s in sweeps])
    near_rows = np.array([s.scenes[-1].rows["crossing"] for s in sweeps])
    idx = np.arange(len(sweeps))
    far = attention_pattern(model, far_obs)[idx, head, far_rows]
    near = attention_pattern(model, near_obs)[idx, head, near_rows]
    diff = near - far
    up, down = int((diff > 1e-6).sum()), int((diff < -1e-6).sum())
    p = sps.binomtest(up, up + down, 0.5, alternative="greater").pvalue if up + down else 1.0
    curves = [[float(attention_pattern(model, np.stack([sc.observation for sc in s.scenes]))[i, head, sc.rows["crossing"]])
               for i, sc in enumerate(s.scenes)] for s in sweeps[:8]]
    return Check(p < ALPHA, f"attention rose nearer in {up}, fell in {down} of {len(sweeps)} sweeps (sign test p={p:.2g})",
                 {"up": up, "down": down, "n": len(sweeps), "p_value": float(p), "median_change": float(np.median(diff)),
                  "distances": list(sweeps[0].distances), "curves": curves})


def side_preference_spread(model, left_obs, left_rows, right_obs, right_rows) -> float:
    """max - min over heads of the mean attention difference (car from the left minus from the right)."""
    idx = np.arange(len(left_obs))
    means = (attention_pattern(model, left_obs)[idx, :, left_rows] - attention_pattern(model, right_obs)[idx, :, right_rows]).mean(0)
    return float(means.max() - means.min())


def heads_specialise_by_side(model, left_obs: np.ndarray, left_rows: np.ndarray, right_obs: np.ndarray,
                             right_rows: np.ndarray, random_spread: float = 0.0) -> Check:
    """Mirrored pairs (same distances and speeds, the crossing car from the left vs from the right): some head
    attends significantly more to the car from the left and a *different* head more to the car from the right
    (Wilcoxon signed-rank per head and direction, Holm across 2 x heads tests, alpha ALPHA), and the spread of
    the heads' mean preferences exceeds ``random_spread`` (what random initialisation alone gives)."""
    from statsmodels.stats.multitest import multipletests

    idx = np.arange(len(left_obs))
    diff = attention_pattern(model, left_obs)[idx, :, left_rows] - attention_pattern(model, right_obs)[idx, :, right_rows]  # [B, H]
    n_heads = diff.shape[1]
    p_left = [_wilcoxon(diff[:, h], "greater") for h in range(n_heads)]
    p_right = [_wilcoxon(diff[:, h], "less") for h in range(n_heads)]
    reject, adjusted, *_ = multipletests(p_left + p_right, alpha=ALPHA, method="holm")
    left_heads = [h for h in range(n_heads) if reject[h]]
    right_heads = [h for h in range(n_heads) if reject[n_heads + h]]
    means = diff.mean(0)
    spread = float(means.max() - means.min())
    holds = any(a != b for a in left_heads for b in right_heads) and spread > random_spread
    return Check(holds, f"heads preferring the left: {left_heads}, the right: {right_heads} (Holm, alpha {ALPHA}); "
                        f"spread of mean preferences {spread:.3f} vs {random_spread:.3f} (95th percentile over "
                        "randomly initialised networks)",
                 {"spread": spread, "random_spread": random_spread,
                  "mean_left_minus_right": means.tolist(), "p_left_holm": adjusted[:n_heads].tolist(),
                  "p_right_holm": adjusted[n_heads:].tolist(), "left_heads": left_heads, "right_heads": right_heads,
                  "n": len(diff)})


def _wilcoxon(x: np.ndarray, alternative: str) -> float:
    if np.allclose(x, 0):
        return 1.0
    return float(sps.wilcoxon(x, alternative=alternative, zero_method="zsplit").pvalue)


def head_lowers_keep_margin(model, head: int, obs: np.ndarray) -> Check:
    """The head's exact contribution to the keep-speed margin (full model minus head ablated, others held)
    is negative on average: paired bootstrap 95 % CI entirely below 0 and a one-sided Wilcoxon p < ALPHA."""
    full = keep_speed_margin(q_values(model, obs))
    ablated = keep_speed_margin(q_values(model, obs, ablate_heads([head], model.n_heads)))
    contribution = full - ablated
    res = sps.bootstrap((contribution,), np.mean, confidence_level=0.95, random_state=0, n_resamples=2000)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    p = _wilcoxon(contribution, "less")
    holds = high < 0 and p < ALPHA
    return Check(holds, f"head {head} changes the keep-speed margin by {contribution.mean():+.3f} on average "
                        f"(95% CI {low:+.3f} to {high:+.3f}, Wilcoxon p={p:.2g})",
                 {"mean": float(contribution.mean()), "ci": (low, high), "p_value": p, "n": len(obs),
                  "share_negative": float((contribution < 0).mean())})


# ------------------------------------------------------------------------------------------ invariance
def permutation_invariant(model, obs: np.ndarray, seed: int = 0, permutations: int = 4) -> Check:
    """Permuting the other vehicles' rows leaves every Q-value unchanged within PERMUTATION_TOL."""
    rng = np.random.default_rng(seed)
    q = q_values(model, obs)
    worst = 0.0
    for _ in range(permutations):
        perm = np.concatenate([[0], 1 + rng.permutation(obs.shape[1] - 1)])
        worst = max(worst, float(np.abs(q_values(model, obs[:, perm]) - q).max()))
    return Check(worst <= PERMUTATION_TOL, f"max |dQ| under {permutations} row permutations: {worst:.2e} "
                                            f"(tolerance {PERMUTATION_TOL:g})",
                 {"max_abs_dq": worst, "n": len(obs), "permutations": permutations})


def absent_rows_ignored(model, obs: np.ndarray, seed: int = 0) -> Check:
    """Absent rows (presence 0) get no attention (<= MASK_TOL) and garbage in them leaves Q unchanged."""
    absent = obs[:, :, 0] < 0.5
    mass = float((attention_pattern(model, obs) * absent[:, None, :]).sum(-1).max())
    noisy = obs.copy()
    rng = np.random.default_rng(seed)
    garbage = rng.uniform(-1, 1, size=noisy.shape).astype(np.float32)
    garbage[:, :, 0] = 0.0
    noisy[absent] = garbage[absent]
    dq = float(np.abs(q_values(model, noisy) - q_values(model, obs)).max())
    holds = mass <= MASK_TOL and dq <= PERMUTATION_TOL
    return Check(holds, f"attention on absent rows <= {mass:.1e}, max |dQ| with garbage in absent rows {dq:.1e}",
                 {"max_absent_attention": mass, "max_abs_dq": dq, "n": len(obs)})


def action_unchanged(model, before: np.ndarray, after: np.ndarray) -> Check:
    """The greedy action is the same with and without the added vehicle in most scenes: Wilson lower bound of
    the unchanged share above UNCHANGED_SHARE. FASTER and IDLE count as one action at the top target speed."""
    a = _coarse_action(policy.q_rows(model, before)[0])  # one row at a time, as the engine decides
    b = _coarse_action(policy.q_rows(model, after)[0])
    same = int((a == b).sum())
    low, high = wilson_interval(same, len(a))
    return Check(low > UNCHANGED_SHARE, f"action unchanged in {same}/{len(a)} scenes (95% CI {low:.2f}-{high:.2f}; "
                                        f"needs lower bound > {UNCHANGED_SHARE})",
                 {"unchanged": same, "n": len(a), "share": same / len(a), "ci": (low, high)})


def _coarse_action(q: np.ndarray) -> np.ndarray:
    """0 = slow down (SLOWER), 1 = keep the target speed (IDLE or FASTER, the same at top speed), of the action
    ``interp.model.policy`` chooses (so a near-tie goes to SLOWER, as in rollouts)."""
    return (policy.choose(q)[0] != SLOWER).astype(int)


def never_more_willing_when_nearer(model, sweeps) -> Check:
    """Moving the crossing car closer (one sweep step) never raises the keep-speed margin by more than DIR_TOL."""
    violations, steps, worst = 0, 0, 0.0
    for sweep in sweeps:
        margins = keep_speed_margin(q_values(model, np.stack([s.observation for s in sweep.scenes])))
        rises = np.diff(margins)  # distances go from far to near
        violations += int((rises > DIR_TOL).sum())
        steps += len(rises)
        worst = max(worst, float(rises.max()))
    return Check(violations == 0, f"the margin rose in {violations} of {steps} closer-by-one-step moves "
                                  f"(largest rise {worst:+.3f} Q; tolerance {DIR_TOL:g})",
                 {"violations": violations, "steps": steps, "largest_rise": worst, "n_sweeps": len(sweeps)})


# ------------------------------------------------------------------------------------------ rates, designs, probes
RATE_ALPHA = 0.05  # level of the behavioural rate and ablation tests (the specs' ALPHA)
ABLATION_MIN_EFFECT = 0.05  # a head "matters" if ablating it moves the rate by at least 5 points
POSITION_DESCRIPTORS = ("distance", "dx", "dy", "x", "y", "centre_distance")
MIN_ETA_SQUARED = 0.25  # the top descriptor must explain at least a quarter of the within-scene score variance
IDLE = 1  # the env's action index of IDLE
OPTIMISED_FEATURES = ("x", "y", "vx", "vy")  # what gradient ascent may move: the car's position and velocity
OPTIMISATION_STEPS, OPTIMISATION_LR = 60, 0.05  # Adam steps and learning rate of the feature optimisation


def rate_verdict(outcomes, bound: float, alpha: float = RATE_ALPHA) -> tuple[str, float]:
    """A rate against a bound, by exact one-sided binomial tests: ``supported`` if the test rejects rate >= bound,
    ``refuted`` if it rejects rate <= bound, else ``inconclusive``; with the deciding p-value."""
    k, n = int(sum(outcomes)), len(outcomes)
    p_below = sps.binomtest(k, n, bound, alternative="less").pvalue
    p_above = sps.binomtest(k, n, bound, alternative="greater").pvalue
    if p_below < alpha:
        return "supported", float(p_below)
    if p_above < alpha:
        return "refuted", float(p_above)
    return "inconclusive", float(p_below)


def slows_in_most(model, obs: np.ndarray) -> Check:
    """The model slows down (SLOWER beats both other actions) in most scenes: Wilson 95 % lower bound above 1/2."""
    slows = keep_speed_margin(q_values(model, obs)) < 0
    k, n = int(slows.sum()), len(slows)
    low, high = wilson_interval(k, n)
    return Check(low > MAJORITY, f"slows down in {k}/{n} scenes (95% CI {low:.2f}-{high:.2f}; needs > 0.5)",
                 {"share": k / n, "ci": (low, high), "n": n})


def ablation_design(budget, direction: str = "increase"):
    """The sequential paired design of the per-head ablation specs: alpha 0.05, a 5-point minimum effect, at most
    ``budget.max_pairs`` pairs (power by profile: ``benchmarks/test_power.py``)."""
    from interp.stats import SequentialDesign

    return SequentialDesign(alpha=RATE_ALPHA, direction=direction, max_pairs=budget.max_pairs,
                            min_effect=ABLATION_MIN_EFFECT)


def beats_random(share: float, random_shares: np.ndarray, k: int, n: int, what: str) -> Check:
    """``share`` above the 95th percentile of the same share over randomly initialised networks."""
    q95 = float(np.quantile(random_shares, 0.95))
    low, high = wilson_interval(k, n)
    return Check(share > q95, f"{what}: IG ranks the nearest crossing car first in {k}/{n} scenes (95% CI "
                              f"{low:.2f}-{high:.2f}); random networks: median {np.median(random_shares):.2f}, "
                              f"95th percentile {q95:.2f}",
                 {"share": share, "ci": (low, high), "n": n, "random_q95": q95,
                  "random_median": float(np.median(random_shares))})


def score_tracks_position(model, head: int, obs: np.ndarray):
    """Head ``head``'s attention score depends most on a position descriptor of the other vehicle (eta^2 of the
    top descriptor at least ``MIN_ETA_SQUARED``); returns (the score dependence, the Check)."""
    from interp.probes.qk_ov import score_dependence

    dep = score_dependence(model, obs)
    top = dep.most_dependent[head]
    eta = float(dep.eta_squared[head].max()) if top is not None else 0.0
    holds = top in POSITION_DESCRIPTORS and eta >= MIN_ETA_SQUARED
    return dep, Check(holds, f"head {head}'s score tracks {top} most (eta^2 {eta:.2f}; needs a position "
                             f"descriptor with eta^2 >= {MIN_ETA_SQUARED})", {"top": top, "eta2": eta})


def optimised_car_moves_closer(model, obs: np.ndarray, rows):
    """Gradient ascent on each scene's row ``rows[i]`` (OPTIMISED_FEATURES, OPTIMISATION_STEPS Adam steps at
    OPTIMISATION_LR) for Q[SLOWER] - Q[IDLE] moves that car towards the intersection centre (by more than 1e-4 in
    normalised x, y) in more scenes than away (one-sided sign test at ``ALPHA``); returns (the optimisation, the
    Check)."""
    from interp.probes.feature_optimisation import optimise_features, q_objective

    opt = optimise_features(model, obs, q_objective(SLOWER, versus=IDLE), rows=rows, features=OPTIMISED_FEATURES,
                            steps=OPTIMISATION_STEPS, lr=OPTIMISATION_LR)
    idx = np.arange(len(obs))
    before = np.hypot(opt.initial[idx, rows, 1], opt.initial[idx, rows, 2])
    after = np.hypot(opt.optimised[idx, rows, 1], opt.optimised[idx, rows, 2])
    closer, farther = int((after < before - 1e-4).sum()), int((after > before + 1e-4).sum())
    p = sps.binomtest(closer, closer + farther, 0.5, alternative="greater").pvalue if closer + farther else 1.0
    return opt, Check(p < ALPHA, f"optimising for slowing moved the car closer to the intersection centre "
                                 f"in {closer}, farther in {farther} scenes (sign test p={p:.2g})",
                      {"closer": closer, "farther": farther, "p_value": float(p), "n": len(obs)})
