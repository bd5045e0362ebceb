"""Fuzz specs: properties that must hold on *every* scene of a space, searched by hypothesis (guided by
``target()`` towards failing scenes), each failure shrunk to a minimal scene, rendered into the report with its
scenario JSON. Saved failures (``specs/regressions/``) replay on every run. ``--fuzz-minutes M`` adds a campaign per
property: guided search and uniform random search, M minutes each, distinct failures per hour side by side.

The default run uses hypothesis' ``ci`` profile (derandomised) with ``budget.fuzz_examples`` examples per property;
``--hypothesis-profile=fuzz`` searches longer and keeps failures in ``.hypothesis/fuzz/<property>/<identity>``.
Each spec also runs the search on a control that violates the property: if the fuzzer finds nothing there within
the same budget, the search is too weak to mean anything and the spec fails as vacuous.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from specs.support import controls
from specs import fuzzing as fz

pytestmark = pytest.mark.fuzz

# The searches are bounded by examples (budget.fuzz_examples), not by the clock, so a verdict does not depend on the
# machine's load; only the shrinking of a failure found is capped in time (it changes how minimal the reported scene
# is, never whether a failure was found).
SHRINK_SECONDS = 10.0  # cap on shrinking one failure without --hypothesis-profile
CAMPAIGN_SHRINK_SECONDS = 60.0
CAMPAIGN_ROUND_EXAMPLES = 200


def _search(prop, subject, builder, budget, identity: str | None) -> fz.SearchResult:
    config = fz.profile_settings(budget.fuzz_examples, database=fz.example_database(prop, identity))
    if fz.profile_selected():  # a chosen profile (e.g. fuzz) searches as long as it says
        return fz.search(prop, subject, builder, config=config)
    return fz.search(prop, subject, builder, config=config, shrink_seconds=SHRINK_SECONDS)


def _control(evidence, prop, subject, name: str, builder, budget) -> None:
    """The same search on a subject that violates the property must find a failure (no shrinking needed)."""
    config = fz.search_settings(budget.fuzz_examples, parent=fz.profile_settings(budget.fuzz_examples), shrink=False,
                                database=None)
    result = fz.search(prop, subject, builder, config=config)
    detail = (f"failure found after {result.evaluations} scenes: {result.failure.outcome.summary}" if result.failure
              else f"no failure in {result.evaluations} scenes ({result.applicable} in the domain)")
    evidence.control(name, result.failure is None, detail)


def _keep(pytestconfig, evidence, failure: fz.Failure, identity: str | None) -> None:
    """A failure is written next to the report (and into specs/regressions/ with --fuzz-save-regressions)."""
    if pytestconfig.getoption("--fuzz-save-regressions", default=False):
        evidence.note(f"saved as a regression: {fz.save_regression(failure, identity)}")
    elif not pytestconfig.getoption("--no-report", default=False):
        path = fz.save_regression(failure, identity, Path(pytestconfig.getoption("--report-dir")) / "fuzz-failures")
        evidence.note(f"candidate regression: {path} (copy it into {fz.REGRESSIONS} to replay it on every run)")


def _conclude(pytestconfig, evidence, prop, result: fz.SearchResult, builder, identity: str | None) -> None:
    fz.record_search(evidence, result, builder)
    if result.failure is not None:
        _keep(pytestconfig, evidence, result.failure, identity)
        evidence.refute(f"{prop.claim}: fails on a shrunk scene [{result.failure.scene_class}]: "
                        f"{result.failure.outcome.summary}")
    if result.applicable == 0:
        evidence.conclude_inconclusive(f"no generated scene was in the property's domain ({result.evaluations} built)")


def test_fuzz_agent_does_not_keep_its_speed_when_a_crossing_vehicle_reaches_the_conflict_point_first(
        agent, scene_builder, budget, evidence, pytestconfig):
    """On every generated scene where an observed vehicle whose path meets the ego's reaches the conflict point 0.5
    to 2 s before the ego (which is at most 5 s away), the agent does not keep or raise its target speed:
    max(Q[IDLE], Q[FASTER]) <= Q[SLOWER] (FASTER equals IDLE at top speed). Search guided by the keep-speed margin."""
    prop = fz.CrossingFirstSlows()
    _control(evidence, prop, agent.with_model(controls.negated_q(agent.model), "Q negated"), "every Q-value negated",
             scene_builder, budget)
    result = _search(prop, agent, scene_builder, budget, agent.identity)
    _conclude(pytestconfig, evidence, prop, result, scene_builder, agent.identity)


def test_fuzz_crossing_head_attends_to_the_nearest_crossing_vehicle(agent, scene_builder, budget, crossing_head,
                                                                     evidence, pytestconfig):
    """On every generated scene with an observed crossing vehicle, the crossing head's attention peaks (strict argmax
    over present rows, the ego included) on the nearest crossing vehicle. Search guided by the attention deficit
    (the best rival's attention minus the nearest crossing vehicle's).

    Control (search power, an argument rather than a planted model): uniform attention ties on every scene of the
    domain, so it fails wherever the search lands in the domain; the control passes (vacuous) exactly when the search
    checks no scene of the domain within the budget, i.e. when the search is too weak to mean anything."""
    prop = fz.CrossingHeadAttendsNearest(crossing_head)
    _control(evidence, prop, agent.with_model(controls.uniform_attention(agent.model), "uniform attention"),
             "uniform attention (zero queries)", scene_builder, budget)
    result = _search(prop, agent, scene_builder, budget, agent.identity)
    _conclude(pytestconfig, evidence, prop, result, scene_builder, agent.identity)


def test_fuzz_no_collision_that_braking_from_the_start_would_have_avoided(agent, scene_builder, budget, evidence,
                                                                           pytestconfig):
    """No generated scene, rolled forward 6 policy steps under the agent's greedy policy, ends in a crash that the
    all-SLOWER policy from the same state avoids. Search guided by how close the greedy branch comes to another car.

    Control (search power, an argument rather than a planted model): a policy that never brakes crashes wherever
    braking from the start avoids a crash, so the control passes (vacuous) only when the search meets no such scene
    within the budget: the search is then too weak to have found the agent's failures either."""
    prop = fz.NoAvoidableCollision()
    _control(evidence, prop, fz.ConstantPolicy(agent.action_names.index("FASTER")), "always FASTER (never brakes)",
             scene_builder, budget)
    result = _search(prop, agent, scene_builder, budget, agent.identity)
    _conclude(pytestconfig, evidence, prop, result, scene_builder, agent.identity)


# ------------------------------------------------------------------------------------------ saved regressions
def _regressions() -> list:
    paths = fz.saved_regressions()
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no saved fuzz failures in {fz.REGRESSIONS}"))]
    return [pytest.param(path, id=path.stem) for path in paths]


@pytest.mark.parametrize("path", _regressions())
def test_saved_fuzz_failure_scene_passes(path, agent, scene_builder, evidence, request):
    """A scene the fuzzer once shrunk to a failure (specs/regressions/) satisfies its property on this agent; on the
    checkpoint that failed it, it must still fail (strict xfail: the saved failure replays)."""
    saved = fz.load_regression(path)
    if saved.identity == agent.identity:  # expected to fail again, refuted, and nothing else (specs/support/findings.py)
        from specs.support import findings

        findings.expect(request.node, "refuted", agent.identity, "saved failure of this checkpoint", path.name)
    head = request.getfixturevalue("crossing_head") if saved.property == "crossing_head_attends_nearest" else None
    prop = fz.make_property(saved.property, head)
    outcome = fz.replay(prop, agent, scene_builder, saved.scenario)
    evidence.note(f"{path.name}: {saved.scenario.description}")
    if outcome.applicable:
        failure = fz.Failure(prop.name, saved.scenario, outcome, 0.0)
        try:
            evidence.figure("scene", **fz.scene_figure(scene_builder, failure, f"replay of {path.name}"))
        except Exception as err:  # noqa: BLE001 - a missing picture must not decide a spec
            evidence.note(f"scene figure unavailable: {err}")
        evidence.effect(prop.score_label, outcome.score, None, 1, rule="score > 0 (or a crash braking avoids) fails")
    assert outcome.applicable, (f"{path.name} is no longer in the domain of {prop.name}: rebuild it with "
                                f"`python -m fixtures build {path}` and check the property's definition")
    evidence.conclude(outcome.holds, f"{prop.claim}: fails again on {path.name}: {outcome.summary}")


# ------------------------------------------------------------------------------------------ campaign
@pytest.mark.slow
@pytest.mark.parametrize("name", fz.PROPERTY_NAMES)
def test_fuzz_campaign_finds_no_failure(name, agent, scene_builder, pytestconfig, request):
    """A wall-clock fuzz campaign (--fuzz-minutes M per search mode) finds no failure of the property: guided search
    (hypothesis, target(), shrinking, known failure classes excluded) and uniform random search over the same scene
    space, side by side in distinct failures per hour (a distinct failure = a distinct scene class)."""
    minutes = float(pytestconfig.getoption("--fuzz-minutes"))
    if minutes <= 0:
        pytest.skip("campaigns are opt-in: --fuzz-minutes M")
    evidence = request.getfixturevalue("evidence")
    head = request.getfixturevalue("crossing_head") if name == "crossing_head_attends_nearest" else None
    prop = fz.make_property(name, head)
    guided = fz.campaign(prop, agent, scene_builder, minutes * 60, seed=0, round_examples=CAMPAIGN_ROUND_EXAMPLES,
                         shrink_seconds=CAMPAIGN_SHRINK_SECONDS)
    uniform = fz.random_campaign(prop, agent, scene_builder, minutes * 60, seed=0)
    record_campaigns(evidence, guided, uniform)
    for failure in guided.failures[:3]:
        try:
            evidence.figure("scene", **fz.scene_figure(scene_builder, failure, f"guided: {failure.scene_class}"))
        except Exception as err:  # noqa: BLE001
            evidence.note(f"scene figure unavailable: {err}")
    for failure in guided.failures:  # the shrunk ones are worth keeping; random draws are not minimal
        _keep(pytestconfig, evidence, failure, agent.identity)
    assert not (guided.failures or uniform.failures), (
        f"{prop.claim}: {guided.distinct} distinct failures (guided), {uniform.distinct} (random) in {minutes:g} min "
        "each")


def record_campaigns(evidence, guided: fz.Campaign, uniform: fz.Campaign) -> None:
    rows = [[c.mode, round(c.seconds / 60, 2), c.evaluations, c.failing_scenes, c.distinct,
             round(c.distinct_per_hour, 1), len(c.seen), round(c.seen_per_hour, 1)] for c in (guided, uniform)]
    evidence.figure("table", title="guided vs uniform random search, same property and wall-clock budget",
                    caption="distinct = distinct scene classes of the reported failures (guided: shrunk); seen = of "
                            "every failing scene the search evaluated",
                    columns=["search", "minutes", "scenes checked", "failures reported", "distinct failures",
                             "distinct / hour", "distinct seen", "seen / hour"], rows=rows)
    for c in (guided, uniform):
        evidence.effect(f"{c.mode}: distinct failures per hour", c.distinct_per_hour, None, c.evaluations,
                        unit="1/h", note=f"{c.distinct} distinct in {c.seconds / 60:.1f} min")
        evidence.note(f"{c.mode} classes: " + ("; ".join(f.scene_class for f in c.failures) or "none"))
    evidence.data["campaign"] = {"guided": guided.to_dict(), "random": uniform.to_dict(),
                                 "guided_more_distinct": guided.distinct_per_hour > uniform.distinct_per_hour}
