"""Behavioural claims, decided by greedy rollouts on held-out seeds (training env seeds are >= 1e6) or by the
agent's choice in built scenes. Rates use exact tests; paired claims use common seeds and the sequential
always-valid paired test of ``interp.stats`` (Holm across heads)."""
from __future__ import annotations

import numpy as np
import pytest

from fixtures.scenario import EgoSpec, Scenario, VehicleSpec
from interp import seeds as seedmap
from interp.probes.interventions import head_ablation
from interp.simulation.rollout import run_sequential
from interp.stats import SequentialDesign, wilson_interval
from specs.support import claims, controls
from specs.support.scenes import TEST_SEED, ArrivesFirst, build_family

pytestmark = pytest.mark.behavior

COLLISION_BOUND = 0.15  # the agent crashes in fewer than 15 % of held-out episodes
ALPHA = 0.05
MIN_EFFECT = 0.05  # a head "matters" if ablating it raises the collision rate by at least 5 points
HELDOUT_SEEDS = seedmap.first("heldout")  # first seed of the held-out evaluation episodes (interp/seeds.py)
ABLATION_SEEDS = seedmap.first("ablation")  # first seed of the paired ablation episodes
AA_SEEDS = seedmap.first("aa")  # a disjoint seed set of the same agent: the A/A control


def test_collision_rate_on_held_out_seeds_is_below_the_bound(agent, untrained, engine, budget, evidence,
                                                             seed_offset):
    """The agent crashes in fewer than 15 % of greedy episodes on held-out seeds (exact one-sided binomial test)."""
    first = HELDOUT_SEEDS + seed_offset
    seeds = list(range(first, first + budget.heldout_episodes))
    evidence.seeds("held-out episodes", seeds)
    records = engine.run(agent, seeds, progress=True)
    evidence.episodes(records)
    crashed = [r.crashed for r in records]
    verdict, p = claims.rate_verdict(crashed, COLLISION_BOUND)
    k, n = sum(crashed), len(crashed)
    evidence.effect("collision rate", k / n, wilson_interval(k, n), n, p, better="lower", scale="proportion",
                    paired_seeds=seeds, outcomes={"treatment": [int(c) for c in crashed]},
                    rule=f"exact one-sided binomial test against {COLLISION_BOUND} at {ALPHA}")
    crashes = [r for r in records if r.crashed]
    if crashes:  # what a crash looks like: interactive replays, attention and action values per step
        from specs.support.filmstrip import episode_replay_figures

        replays, notes = episode_replay_figures(agent, engine, crashes, limit=2, what="crashed held-out")
        for figure in replays:
            evidence.figure(**figure)
        for note in notes:
            evidence.note(note)
    arrived = sum(r.arrived for r in records)
    evidence.effect("arrival rate", arrived / n, wilson_interval(arrived, n), n, better="higher", scale="proportion",
                    paired_seeds=seeds, outcomes={"treatment": [int(r.arrived) for r in records]})
    control_n = min(n, 40)
    control_records = engine.run(untrained, seeds[:control_n])
    control_verdict, control_p = claims.rate_verdict([r.crashed for r in control_records], COLLISION_BOUND)
    control_k = sum(r.crashed for r in control_records)
    evidence.effect("control: untrained collision rate", control_k / control_n, wilson_interval(control_k, control_n),
                    control_n, control_p)
    evidence.control("untrained weights", control_verdict == "supported",
                     f"untrained agent crashes in {control_k}/{control_n}: {control_verdict}")
    evidence.verdict = verdict
    if verdict == "inconclusive":
        evidence.conclude_inconclusive(f"{k}/{n} crashes; p={p:.3g} against the bound {COLLISION_BOUND}")
    evidence.conclude(verdict == "supported", f"{k}/{n} crashes: the rate is above {COLLISION_BOUND} (p={p:.3g})")


# The yielding claim's situation: the nearest crossing vehicle, observed, first by more than 0.5 s, the ego under 5 s.
ARRIVES_FIRST = ArrivesFirst(vehicles="nearest", observed=True, min_lead=0.5, strict=True, horizon=5.0)


def _yield_scenario(rng: np.random.Generator) -> Scenario:
    ego = EgoSpec(distance=float(rng.uniform(5.0, 20.0)), speed=9.0, turn="left")
    side = str(rng.choice(["left", "right"]))
    car = VehicleSpec(side, float(rng.uniform(2.0, 20.0)), speed=float(rng.uniform(6.0, 10.0)), turn="straight",
                      reference="conflict", name="crossing")
    return Scenario(ego=ego, vehicles=(car,), name=f"yield_{side}")


def test_yields_when_a_crossing_vehicle_reaches_the_conflict_point_first(agent, scene_builder, budget, evidence):
    """When a crossing vehicle will reach the conflict point at least 0.5 s before the ego (which is under 5 s
    away), the agent chooses to slow down (SLOWER, the only action that lowers the target speed) in most scenes.

    Control: the agent blind to that vehicle (its row marked absent). An agent that slows down there anyway (it
    slows near any junction) would pass the check without yielding to anything: vacuous."""
    scenes = build_family(scene_builder, budget.test_scenes, TEST_SEED + 10, _yield_scenario, ARRIVES_FIRST)
    obs = np.stack([s.observation for s in scenes])
    check = claims.slows_in_most(agent.model, obs)
    control = claims.slows_in_most(agent.model, controls.hide_rows(obs, [s.rows[s.nearest_crossing] for s in scenes]))
    evidence.effect("share of scenes where the agent slows down", check.numbers["share"], check.numbers["ci"],
                    check.numbers["n"], better="higher", scale="proportion")
    evidence.note(check.summary)
    evidence.control("the agent blind to the crossing vehicle", control.holds, control.summary)
    evidence.conclude(check.holds, check.summary)


def _empty_scenario(rng: np.random.Generator) -> Scenario:
    return Scenario(ego=EgoSpec(distance=float(rng.uniform(2.0, 60.0)), speed=9.0, turn="left"), name="empty")


def test_does_not_slow_down_at_an_empty_intersection(agent, scene_builder, budget, evidence):
    """At an empty intersection the agent does not slow down (keeps its target speed in at least 90 % of
    scenes, Wilson lower bound), wherever it is on its approach."""
    scenes = build_family(scene_builder, budget.test_scenes, TEST_SEED + 11, _empty_scenario)
    obs = np.stack([s.observation for s in scenes])
    keeps = claims.keep_speed_margin(claims.q_values(agent.model, obs)) > 0
    k, n = int(keeps.sum()), len(keeps)
    low, high = wilson_interval(k, n)
    control_keeps = claims.keep_speed_margin(claims.q_values(controls.negated_q(agent.model), obs)) > 0
    ck = int(control_keeps.sum())
    c_low, c_high = wilson_interval(ck, n)
    evidence.effect("share of empty scenes where the agent keeps its speed", k / n, (low, high), n, better="higher",
                    scale="proportion")
    evidence.control("Q-values negated", c_low > claims.UNCHANGED_SHARE,
                     f"keeps speed in {ck}/{n} (95% CI {c_low:.2f}-{c_high:.2f})")
    evidence.conclude(low > claims.UNCHANGED_SHARE, f"keeps speed in only {k}/{n} empty scenes (95% CI {low:.2f}-{high:.2f})")


def _ablation_conditions(n_heads: int) -> dict:
    return {"baseline": None, **{f"ablate head {h}": head_ablation([h], n_heads=n_heads) for h in range(n_heads)}}


@pytest.fixture(scope="module")
def ablation_run(agent, engine, budget, seed_offset):
    """Per-head zero-ablation vs the plain agent on common seeds, sequential, Holm across heads."""
    seeds = range(ABLATION_SEEDS + seed_offset, ABLATION_SEEDS + seed_offset + budget.max_pairs)
    return run_sequential(engine, agent, _ablation_conditions(agent.n_heads), seeds=seeds, design=claims.ablation_design(budget),
                          batch_pairs=budget.batch_pairs, progress=True,
                          claims={f"ablate head {h}": f"ablating head {h} raises the collision rate"
                                  for h in range(agent.n_heads)})


def test_ablating_a_head_raises_collisions(agent, engine, budget, ablation_run, evidence, seed_offset):
    """At least one head is necessary: zero-ablating it raises the collision rate (per head, paired seeds,
    sequential always-valid test, Holm-corrected across heads).

    Control (A/A, a statistical argument): the plain agent on a disjoint seed set, paired index by index with the
    baseline. Both arms are the same policy on i.i.d. seeds, so the paired difference has mean 0 and the always-valid
    test calls it "supported" with probability at most alpha (Ville's inequality; benchmarks/test_power.py and
    tests/test_stats_real_aa.py measure 0.2-1.5 %). It can pass only by that chance or where seeds are not
    exchangeable (a non-stationary environment); no planted model is needed to show it can."""
    rows = []
    base = [r for r in ablation_run.records if r.condition == "baseline"]
    evidence.seeds("head ablation pairs", [r.seed for r in base])
    evidence.episodes(ablation_run.records)
    for name, verdict in ablation_run.verdicts.items():
        evidence.record(verdict, name=f"{name}: collision rate change", better="lower", scale="proportion")
        rows.append({"label": name, "value": verdict.effect, "ci": list(verdict.ci)})
    evidence.figure("forest", rows=rows, xlabel="paired change in collision rate (ablated - plain)")
    _discordant_pair_figures(agent, engine, ablation_run, evidence)
    holds, detail = controls.aa_control(engine, agent, base, AA_SEEDS + seed_offset, alpha=ALPHA,
                                         min_effect=MIN_EFFECT, batch_pairs=budget.batch_pairs)
    evidence.control("A/A: the plain agent on disjoint seeds", holds, detail)
    evidence.conclude_family(ablation_run.verdicts.values(), ablation_run.summary(),
                             "no head's ablation raises collisions")


def _discordant_pair_figures(agent, engine, ablation_run, evidence) -> None:
    """Side-by-side replays of discordant pairs (plain survived, ablated crashed), for the head with the largest
    effect."""
    from specs.support.filmstrip import ablation_pair_figures, discordant_pairs

    if not ablation_run.verdicts:
        return
    name = max(ablation_run.verdicts, key=lambda n: ablation_run.verdicts[n].effect or 0.0)
    seeds = discordant_pairs(ablation_run.records, "baseline", name)
    figures, notes = ablation_pair_figures(agent, engine, seeds, int(name.rsplit(" ", 1)[1]), limit=1)
    for figure in figures:
        evidence.figure(**figure)
    for note in notes:
        evidence.note(note)


def test_ablating_the_crossing_head_raises_collisions_more_than_ablating_another_head(
        agent, engine, budget, crossing_head, head_roles, ablation_run, evidence, seed_offset):
    """Ablating the crossing head raises collisions more than ablating the head least attentive to crossing traffic
    (paired seeds, sequential; that head fixed by the calibration shares before any rollout).

    Control (A/A, a statistical argument): the plain agent on a disjoint seed set, paired index by index with the
    baseline. Both arms are the same policy on i.i.d. seeds, so the paired difference has mean 0 and the always-valid
    test calls it "supported" with probability at most alpha (Ville's inequality; benchmarks/test_power.py and
    tests/test_stats_real_aa.py measure 0.2-1.5 %). It can pass only by that chance or where seeds are not
    exchangeable (a non-stationary environment); no planted model is needed to show it can."""
    shares = head_roles["crossing"].shares
    if len(shares) < 2:
        pytest.fail("needs at least two heads with calibration shares (not available for a pinned role)")
    other = min((s for s in shares if s.head != crossing_head), key=lambda s: s.share).head
    conditions = {f"ablate head {other}": head_ablation([other], n_heads=agent.n_heads),
                  f"ablate head {crossing_head}": head_ablation([crossing_head], n_heads=agent.n_heads)}
    result = run_sequential(engine, agent, conditions, baseline=f"ablate head {other}",
                            seeds=range(ABLATION_SEEDS + seed_offset, ABLATION_SEEDS + seed_offset + budget.max_pairs),
                            design=claims.ablation_design(budget),
                            batch_pairs=budget.batch_pairs)
    verdict = result.verdicts[f"ablate head {crossing_head}"]
    evidence.episodes(result.records)
    evidence.record(verdict, name=f"crossing head {crossing_head} vs head {other}: collision rate change",
                    better="higher", scale="proportion")
    base = [r for r in ablation_run.records if r.condition == "baseline"]
    holds, detail = controls.aa_control(engine, agent, base, AA_SEEDS + seed_offset, alpha=ALPHA,
                                         min_effect=MIN_EFFECT, batch_pairs=budget.batch_pairs)
    evidence.control("A/A: the plain agent on disjoint seeds", holds, detail)
    if verdict.verdict == "inconclusive":
        evidence.conclude_inconclusive(verdict.summary())
    evidence.conclude(verdict.verdict == "supported", verdict.summary())


def test_ablating_the_progress_head_lowers_arrivals(agent, engine, budget, progress_head, evidence, seed_offset):
    """Zero-ablating the progress head (the head whose ablation lowered arrivals most on the calibration seeds)
    lowers the arrival rate on other, disjoint seeds (paired, sequential always-valid test), and the A/A control
    (the plain agent on yet other seeds) shows no such drop.

    Control (A/A, a statistical argument): the plain agent on a disjoint seed set, paired index by index with the
    baseline. Both arms are the same policy on i.i.d. seeds, so the paired difference has mean 0 and the always-valid
    test calls it "supported" (a drop) with probability at most alpha (Ville's inequality; benchmarks/test_power.py and
    tests/test_stats_real_aa.py measure 0.2-1.5 %). It can pass only by that chance or where seeds are not
    exchangeable (a non-stationary environment); no planted model is needed to show it can."""
    _role_head_ablation_changes("progress", progress_head, "arrived", "decrease", "lowers the arrival rate",
                                agent=agent, engine=engine, budget=budget, evidence=evidence, seed_offset=seed_offset)


def test_ablating_the_safety_head_raises_collisions(agent, engine, budget, safety_head, evidence, seed_offset):
    """Zero-ablating the safety head (the head whose ablation raised collisions most on the calibration seeds)
    raises the collision rate on other, disjoint seeds (paired, sequential always-valid test), and the A/A control
    (the plain agent on yet other seeds) shows no such rise.

    Control (A/A, a statistical argument): as for the progress head, both arms of the control are the same policy on
    i.i.d. seeds, so the always-valid test calls a rise with probability at most alpha (Ville's inequality)."""
    _role_head_ablation_changes("safety", safety_head, "crashed", "increase", "raises the collision rate",
                                agent=agent, engine=engine, budget=budget, evidence=evidence, seed_offset=seed_offset)


def _role_head_ablation_changes(role: str, head: int, outcome: str, direction: str, what: str, *, agent, engine,
                                budget, evidence, seed_offset) -> None:
    """The body of the role-head ablation specs: zero-ablate ``head`` on the ablation seeds, decide the change in
    ``outcome`` with the paired always-valid test, and run the A/A control on disjoint seeds."""
    design = SequentialDesign(alpha=ALPHA, direction=direction, max_pairs=budget.max_pairs, min_effect=MIN_EFFECT)
    name = f"ablate head {head}"
    first = ABLATION_SEEDS + seed_offset
    result = run_sequential(engine, agent, {"baseline": None, name: head_ablation([head], n_heads=agent.n_heads)},
                            seeds=range(first, first + budget.max_pairs), design=design, batch_pairs=budget.batch_pairs,
                            outcome=outcome, claims={name: f"ablating head {head} {what}"})
    verdict = result.verdicts[name]
    label = {"arrived": "arrival rate change", "crashed": "collision rate change"}[outcome]
    evidence.record(verdict, name=f"{role} head {head}: {label}", scale="proportion")
    base = [r for r in result.records if r.condition == "baseline"]
    holds, detail = controls.aa_control(engine, agent, base, AA_SEEDS + seed_offset, alpha=ALPHA, min_effect=MIN_EFFECT,
                                        batch_pairs=budget.batch_pairs, direction=direction, outcome=outcome)
    evidence.control("A/A: the plain agent on disjoint seeds", holds, detail)
    if verdict.verdict == "inconclusive":
        evidence.conclude_inconclusive(verdict.summary())
    evidence.conclude(verdict.verdict == "supported", verdict.summary())
