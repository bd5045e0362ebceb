"""Safety claims on graded outcomes (``interp.safety``: TTC, PET), decided on greedy rollouts.

The episode's minimum TTC (capped at 5 s, 0 for a crash) is a graded outcome: a near miss counts, not only a
crash. Paired claims use common seeds and the always-valid graded sequential test
(``interp.statistics.graded``), Holm across heads; A/A controls use disjoint seed sets."""
from __future__ import annotations

import pytest

from interp import seeds as seedmap
from interp.probes.interventions import head_ablation
from interp.simulation.rollout import run_sequential
from specs.support import controls, graded
from specs.support.roles import require

pytestmark = pytest.mark.behavior

ALPHA = 0.05
ABLATION_SEEDS = seedmap.first("ablation")
AA_SEEDS = seedmap.first("aa")


def test_ablating_the_safety_head_lowers_the_minimum_ttc(agent, engine, budget, causal_head_roles, evidence,
                                                         seed_offset):
    """Zero-ablating a ``safety`` head (its ablation raised collisions on the calibration seeds) lowers the ego's
    minimum TTC per episode (capped at 5 s), on other, disjoint seeds: paired, sequential always-valid graded
    test, Holm across the safety heads, at least 0.25 s for a refutation to be ruled out.

    Control (A/A, a statistical argument): the plain agent on a disjoint seed set, paired index by index with the
    baseline, tested the same way. Both arms are the same policy on i.i.d. seeds, so the mean paired difference is
    0 and the always-valid test calls it "supported" with probability at most alpha (Ville's inequality;
    tests/test_graded_stats.py measures it under a null). No planted model is needed to show it can pass."""
    resolution = causal_head_roles["safety"]
    require(resolution)
    heads = list(resolution.heads)
    family = graded.ttc_family(heads, budget, ALPHA)
    conditions = {"baseline": None, **{f"ablate head {h}": head_ablation([h], n_heads=agent.n_heads) for h in heads}}
    first = ABLATION_SEEDS + seed_offset
    result = run_sequential(engine, agent, conditions, seeds=range(first, first + budget.max_pairs),
                            batch_pairs=budget.batch_pairs, outcome=graded.min_ttc, family=family, progress=True)
    base = [r for r in result.records if r.condition == "baseline"]
    evidence.seeds("safety head ablation pairs", [r.seed for r in base])
    evidence.episodes(result.records)
    by_condition = {name: [graded.min_ttc(r) for r in result.records if r.condition == name] for name in conditions}
    shown = {name: values for name, values in by_condition.items() if values}
    evidence.figure("bars", labels=list(shown), values=[sum(v) / len(v) for v in shown.values()],
                    ylabel=f"mean minimum TTC per episode (s, capped at {graded.TTC_CAP_S:g})",
                    title="the graded outcome per condition (paired seeds)",
                    caption=", ".join(f"{name}: n={len(v)}" for name, v in shown.items()))
    for name, verdict in result.verdicts.items():
        evidence.record(verdict, name=f"{name}: change in minimum TTC (s)", better="higher")
    holds, detail = controls.graded_aa_control(engine, agent, base, AA_SEEDS + seed_offset, design=family.design,
                                               batch_pairs=budget.batch_pairs, outcome=graded.min_ttc)
    evidence.control("A/A: the plain agent on disjoint seeds", holds, detail)
    evidence.conclude_family(result.verdicts.values(), result.summary(),
                             "no safety head's ablation lowers the minimum TTC")


def test_pet_stays_above_one_second_when_the_agent_crosses_first(agent, untrained, engine, budget, evidence,
                                                                 seed_offset):
    """In held-out episodes where the ego passes first through a crossing conflict (headings 30-150 degrees
    apart), the smallest PET stays above 1 s in at least 95 % of them (always-valid sequential test of the share
    below 1 s, in seed order). 1 s is the usual bound of a serious conflict in PET studies; FHWA's SSAM records
    conflicts up to PET 5 s. Censored PETs (the episode ended first) count when their lower bound already exceeds
    1 s, and are left out (counted) otherwise.

    Decision rule (``interp.statistics.share``): held-out episodes run in blocks of 50 up to the profile's maximum
    (``specs.support.graded.PET_MAX_EPISODES``); after every outcome, supported as soon as the betting e-value
    against "share >= 5 %" reaches 1/alpha, refuted as soon as the one against "share <= 5 %" does, inconclusive
    if the budget ends first. Each error is at most alpha however early it stops (Ville's inequality).

    Control: the untrained network (random weights), which drives through the junction without regard to
    traffic, on the same seeds with the same test and as many episodes as the agent used: if it kept such gaps
    too, the claim would say nothing about the agent."""
    seeds = list(seedmap.episode_seeds("heldout", graded.pet_max_episodes(budget), seed_offset))
    check, records = graded.sequential_pet(engine, agent, seeds, ALPHA, progress=True)
    evidence.seeds("held-out episodes", seeds[:check.episodes_run])
    evidence.episodes(records)
    evidence.effect("share of ego-first crossings with PET <= 1 s", check.share, check.ci, check.n, check.p_value,
                    better="lower", scale="proportion", rule=check.rule, verdict=check.verdict,
                    note=f"{check.episodes} held-out episodes used; {check.undetermined} censored at or below 1 s "
                         f"left out; always-valid p against a share <= 5 %: {check.refute_p_value:.3g}")
    evidence.note(check.summary)
    pets = [pet for pet, _ in filter(None, map(graded.crossing_pet, records))]
    bins = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, float("inf")))
    evidence.figure("bars", labels=[f"{lo:g}-{hi:g} s" if hi != float("inf") else f">= {lo:g} s" for lo, hi in bins],
                    values=[sum(lo <= p < hi for p in pets) for lo, hi in bins], ylabel="episodes",
                    title="smallest PET of each ego-first crossing (censored values at their lower bound)",
                    caption=f"n = {len(pets)} episodes with an ego-first crossing in the {check.episodes} episodes "
                            f"used; the claim's bound is 1 s")
    control, _ = graded.sequential_pet(engine, untrained, seeds[:check.episodes], ALPHA)
    evidence.control("untrained weights", control.holds, f"untrained: {control.verdict}: {control.summary}")
    evidence.verdict = check.verdict
    if check.verdict == "inconclusive":
        evidence.conclude_inconclusive(check.summary)
    evidence.conclude(check.holds, check.summary)
