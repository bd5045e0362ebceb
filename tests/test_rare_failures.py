"""specs.fuzzing.rare and the rare planted weakness (planted.spurious_go): the failing region's share of the scene
space, failing inside it and not outside, a score that rises smoothly towards it, guidance that does not know
where it is, and controls on the comparison itself. The campaign figures are in benchmarks/test_rare_failures.py.

The agent under test is tests/planted.py's network made *cautious* (as in tests/test_fuzzing.py: it satisfies the
crossing-first property everywhere), with a spurious "go" cue for vehicles on the right arm 22-23 m from the centre
at 6.9-7.1 m/s that fades smoothly away from there."""
from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from fixtures.scenario import EgoSpec
from specs import fuzzing as fz
from specs.fuzzing import planted as planted_weaknesses
from specs.fuzzing import rare


@pytest.fixture(scope="module")
def rare_agent(cautious, builder):
    return planted_weaknesses.spurious_go(cautious, builder)


def _right_left_scene(builder, ego_distance: float, speed: float = 7.0, route=("right", "left")):
    """Ego turning left at 8 m/s; the timed car on ``route`` reaching the conflict point 1 s before the ego
    (ego_distance 28.5 m puts a right-arm car at ~22.5 m from the centre: inside the planted region)."""
    space = fz.CrossingFirstSlows().space(builder)
    return builder.build(space.assemble(EgoSpec(distance=ego_distance, speed=8.0, turn="left"),
                                        space.routes.index(route), 1.0, speed, ()), allow_unobserved=True)


def test_the_planted_region_covers_at_most_one_percent_of_the_scene_space(rare_agent, builder):
    share = rare.failing_share(fz.CrossingFirstSlows(), rare_agent, builder, 1000, seed=0)
    assert share.n == 1000 and share.applicable > 400
    assert share.ci[1] <= 0.01, f"{share.to_dict()}: the 95 % upper bound must be <= 1 %"


def test_the_planted_agent_fails_inside_the_region_and_not_outside(cautious, rare_agent, builder):
    prop = fz.CrossingFirstSlows()
    inside = _right_left_scene(builder, 28.5)
    assert 22.0 <= float(np.hypot(*inside.vehicle("v0").position)) <= 23.0
    verdict = prop.check(rare_agent, inside)
    assert verdict.applicable and not verdict.holds, verdict.summary
    assert prop.check(cautious, inside).holds, "the unedited agent slows there"
    for outside in (_right_left_scene(builder, 28.5, speed=9.0), _right_left_scene(builder, 28.5, speed=5.0),
                    _right_left_scene(builder, 28.5, route=("left", "straight")), _right_left_scene(builder, 12.0)):
        verdict = prop.check(rare_agent, outside)
        assert verdict.applicable and verdict.holds, verdict.summary


def test_the_score_rises_smoothly_towards_the_region(cautious, rare_agent, builder):
    prop = fz.CrossingFirstSlows()
    distances = np.arange(5.0, 28.51, 0.25)  # the car from the right: ~3 m -> ~22.5 m from the centre
    scenes = [_right_left_scene(builder, d) for d in distances]
    margins = np.array([prop.check(rare_agent, s).score for s in scenes])
    unedited = np.array([prop.check(cautious, s).score for s in scenes])
    assert np.all(np.diff(margins) > 0), margins.round(3)
    fine, coarse = np.diff(margins).max(), np.diff(margins[::2]).max()
    assert fine < 0.6 * coarse and fine < 0.08, f"no jump: halving the step shrinks the steps ({fine}, {coarse})"
    assert np.all(margins[distances < 26.0] < 0) and margins[-1] > 0, "it fails only near the region (car >~ 21 m)"
    assert np.all(unedited < 0) and np.ptp(unedited) < 0.2, "the unedited agent's margin is flat and negative"
    assert margins[0] - unedited[0] > 0.01, "the cue is felt far from the region (a heavy tail)"


def test_genome_scenes_are_the_scene_spaces_uniform_draws(builder):
    space = fz.CrossingFirstSlows().space(builder)
    rng = np.random.default_rng(0)
    genomes = [rare.Genome([], rng).scene(space) for _ in range(400)]
    drawn = [space.sample(np.random.default_rng(k)) for k in range(400)]
    for stat in (lambda s: s.ego.distance, lambda s: s.ego.speed, lambda s: len(s.vehicles),
                 lambda s: s.vehicles[0].speed, lambda s: space.routes.index((s.vehicles[0].approach,
                                                                              s.vehicles[0].turn))):
        a = [stat(s) for s in genomes if s is not None]
        b = [stat(s) for s in drawn if s is not None]
        from scipy.stats import ks_2samp

        assert ks_2samp(a, b).pvalue > 0.01
    g = rare.Genome([0.5] * 3, rng)
    assert g.scene(space) is not None and len(g.values) > 3, "a genome grows when read past its end"


def test_guidance_does_not_know_the_region(cautious, builder):
    # statically: the searches import nothing of the planted weaknesses
    tree = ast.parse(inspect.getsource(rare))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("planted" in (m or "") for m in imported), imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & {"BlindSpot", "spurious_go", "blind_spot", "ignoring_approach", "arm_box"}, names
    # dynamically: the region moved to another arm is found there as well
    prop = fz.CrossingFirstSlows()
    moved = planted_weaknesses.spurious_go(cautious, builder, planted_weaknesses.BlindSpot(approach="left"))
    for seed in (0, 1):
        found = rare.evolution_first_failure(prop, moved, builder, seed=seed, budget=600)
        assert found.found, f"seed {seed}: not found within 600 scenes"
        assert "v" in found.summary


def test_a_frequent_failure_gives_guidance_no_edge(cautious, builder):
    """The control: where failures are frequent (an agent blind to the whole right arm), random search finds one
    within a few scenes and the comparison does not come out for guidance."""
    prop = fz.CrossingFirstSlows()
    blind_right = fz.ignoring_approach(cautious, "right", builder)
    guided = rare.campaigns("evolution", prop, blind_right, builder, seeds=range(5), budget=200)
    uniform = rare.campaigns("random", prop, blind_right, builder, seeds=range(5), budget=200)
    comparison = rare.Comparison(guided, uniform, resamples=999)
    assert comparison.median("baseline") <= 50 and comparison.censored("baseline") == 0
    assert comparison.ratio() < 5 and comparison.p_value() > 0.05, comparison.summary()


def test_the_comparison_can_favour_random_and_counts_censored_campaigns():
    def runs(mode, scenes, budget=100):
        return tuple(rare.FirstFailure(mode, k, s, s / 100, s < budget, budget) for k, s in enumerate(scenes))

    comparison = rare.Comparison(runs("evolution", [40, 60, 80, 100, 100]), runs("random", [5, 8, 10, 12, 20]),
                                 resamples=999)
    assert comparison.ratio() == 10 / 80 and comparison.ratio_ci()[1] < 1
    assert comparison.p_value() > 0.5, "guided is not sooner here"
    assert comparison.censored("guided") == 2 and not comparison.median_is_lower_bound("guided")
    assert rare.Comparison(runs("e", [100, 100, 100, 5]), runs("r", [1])).median_is_lower_bound("guided")
    summary = comparison.summary()
    assert summary["scenes"]["median_guided"] == 80 and summary["censored_baseline"] == 0


def test_campaigns_that_meet_no_failure_are_censored_at_the_scene_budget(cautious, builder):
    prop = fz.CrossingFirstSlows()  # the cautious agent satisfies it everywhere
    for mode in rare.SEARCHES:
        (run,) = rare.campaigns(mode, prop, cautious, builder, seeds=[0], budget=30)
        assert run.censored and run.scenes == 30 and run.seconds > 0, run
    result = fz.search(prop, cautious, builder, max_examples=1000, max_scenes=25)
    assert result.evaluations == 25 and result.out_of_time and result.first_failure_scenes is None
