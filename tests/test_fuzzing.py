"""specs.fuzzing: the scene space, the properties' known answers, search + shrinking, campaigns, saved
regressions, and the planted weakness (an agent blind to traffic from the right) found and shrunk by the fuzzer.

The agent here is a *cautious* planted network (tests/planted.py with SLOWER raised by the planted head): it slows
down whenever any vehicle is within ~70 m (L1) of the junction centre, so by construction it satisfies "slow down
when a crossing vehicle reaches the conflict point first"; blinding it to the right arm is the only way it fails.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fixtures.scenario import EgoSpec, Scenario, ScenarioError, VehicleSpec
from specs import fuzzing as fz
from specs.support.controls import negated_q
from tests import planted


@pytest.fixture(scope="module")
def blind_right(cautious, builder):
    return fz.ignoring_approach(cautious, "right", builder)


def _ego(distance=15.0, speed=9.0) -> EgoSpec:
    return EgoSpec(distance=distance, speed=speed, turn="left")


def _crossing(side: str, distance: float, speed: float = 8.0) -> VehicleSpec:
    return VehicleSpec(side, distance, speed=speed, turn="left", reference="conflict", name="car")


# ------------------------------------------------------------------------------------------ the planted weakness
def test_planted_weakness_blind_to_the_right_is_found_and_shrunk_to_a_vehicle_from_the_right(cautious, blind_right,
                                                                                               builder):
    prop = fz.CrossingFirstSlows()
    control = fz.search(prop, cautious, builder, max_examples=200)  # an example budget, no wall-clock cap
    assert control.failure is None, f"the cautious planted agent must satisfy the property: {control.failure}"
    assert control.applicable >= 50, "the control must have been checked on enough scenes of the domain"

    found = fz.search(prop, blind_right, builder, max_examples=200)
    assert found.failure is not None, "the fuzzer missed the planted weakness within 200 examples"
    shrunk = found.failure.scenario
    involved = [shrunk.vehicle(name) for name in found.failure.outcome.involved]
    assert involved and all(v.approach == "right" for v in involved), found.failure.scene_class
    assert len(shrunk.vehicles) == 1, f"not shrunk to one vehicle: {shrunk.to_json()}"


def _drawn(prop, subject, builder, monkeypatch, max_examples: int) -> list[str]:
    """The scenes a search evaluates, in order (content hashes)."""
    seen: list[str] = []
    original = fz.Evaluator.__call__

    def spy(self, scenario):
        seen.append(scenario.content_hash())
        return original(self, scenario)

    with monkeypatch.context() as m:
        m.setattr(fz.Evaluator, "__call__", spy)
        fz.search(prop, subject, builder, max_examples=max_examples)
    return seen


def test_a_search_draws_the_same_scenes_whatever_modules_were_loaded_before(blind_right, builder, tmp_path,
                                                                           monkeypatch):
    # hypothesis mixes literal constants of every loaded project module into its draws; a module loaded by an
    # earlier test changed the derandomised search (the planted weakness was missed in the full run, not alone)
    import importlib.util
    import sys

    from hypothesis.internal.conjecture import providers

    prop = fz.CrossingFirstSlows()
    before = _drawn(prop, blind_right, builder, monkeypatch, 40)
    path = tmp_path / "many_constants.py"
    path.write_text("VALUES = [" + ", ".join(f"{k / 7:.6f}" for k in range(1, 400)) + "]\n")
    spec = importlib.util.spec_from_file_location("many_constants", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "many_constants", module)
    assert round(1 / 7, 6) in providers._get_local_constants().floats, "precondition: the module's constants count"
    assert _drawn(prop, blind_right, builder, monkeypatch, 40) == before
    with fz.project_constants_left_out():
        assert len(providers._get_local_constants().floats) == 0


def test_ignoring_an_arm_hides_exactly_the_vehicles_on_it(cautious, blind_right, builder):
    empty = builder.build(Scenario(ego=_ego()))
    right = builder.build(Scenario(ego=_ego(), vehicles=(_crossing("right", 25.0),)))
    left = builder.build(Scenario(ego=_ego(), vehicles=(_crossing("left", 25.0),)))
    q = lambda agent, scene: agent.q_values(np.array(scene.observation))[0]  # noqa: E731
    np.testing.assert_allclose(q(blind_right, right), q(cautious, empty), atol=1e-6)
    np.testing.assert_allclose(q(blind_right, left), q(cautious, left), atol=1e-6)
    assert not np.allclose(q(cautious, right), q(cautious, empty)), "the vehicle from the right must matter unedited"
    assert blind_right.identity != cautious.identity


# ------------------------------------------------------------------------------------------ properties
def test_crossing_first_domain_and_verdict(cautious, builder):
    prop = fz.CrossingFirstSlows()
    first = builder.build(Scenario(ego=_ego(15.0), vehicles=(_crossing("left", 16.0),)))
    later = builder.build(Scenario(ego=_ego(15.0), vehicles=(_crossing("left", 60.0),)))
    rel = first.relations["car"]
    assert 0.5 <= rel.ego_time_to_conflict - rel.time_to_conflict <= 2.0
    outcome = prop.check(cautious, first)
    assert outcome.applicable and outcome.holds and outcome.score <= 0
    assert outcome.involved == ("car",) and outcome.scene_class == "ego left 10-25m | left left 10-25m"
    assert not prop.check(cautious, later).applicable, "a car arriving after the ego is outside the domain"
    reckless = cautious.with_model(negated_q(cautious.model), "every preference reversed")
    assert not prop.check(reckless, first).holds


def test_attention_property_known_answers(builder):
    agent = planted.planted_agent()
    scene = builder.build(Scenario(ego=_ego(), vehicles=(_crossing("left", 10.0),
                                                          VehicleSpec("oncoming", 70.0, speed=3.0, turn="left"))))
    assert scene.nearest_crossing == "car"
    planted_head = fz.CrossingHeadAttendsNearest(head=planted.PLANTED_HEAD).check(agent, scene)
    assert planted_head.holds and planted_head.score < 0, planted_head.summary
    uniform = fz.CrossingHeadAttendsNearest(head=planted.SILENT_HEAD).check(agent, scene)
    assert not uniform.holds, "a uniform head ties: a tie is not attention to the nearest crossing vehicle"


def test_avoidable_collision_known_answers(builder):
    prop = fz.NoAvoidableCollision()
    space = prop.space(builder)
    route = space.routes.index(("left", "straight"))
    scene = builder.build(space.assemble(_ego(20.0, 9.0), route, 0.0, 8.0, ()))
    reckless = prop.check(fz.ConstantPolicy(2), scene)
    assert not reckless.holds and reckless.involved == ("v0",), reckless.summary
    assert prop.check(fz.ConstantPolicy(0), scene).holds, "braking cannot be an avoidable collision"


# ------------------------------------------------------------------------------------------ space and classes
def test_uniform_sampler_and_strategy_draw_from_the_same_space(builder):
    from hypothesis import Phase, given, settings

    space = fz.CrossingFirstSlows().space(builder)
    rng = np.random.default_rng(0)
    drawn = [s for s in (space.sample(rng) for _ in range(200)) if s is not None]
    assert len(drawn) > 150
    for scenario in drawn:
        _assert_in_space(space, builder, scenario)
    counts = {len(s.vehicles) - 1 for s in drawn}
    assert counts == set(range(space.max_others + 1)), "every number of other vehicles is drawn"
    generated = []
    settings(database=None, max_examples=30, phases=[Phase.generate])(given(space.strategy())(
        lambda scenario: generated.append(scenario)))()
    for scenario in generated:
        _assert_in_space(space, builder, scenario)


def _assert_in_space(space, builder, scenario):
    ego = scenario.ego
    assert space.ego_distance[0] <= ego.distance <= space.ego_distance[1]
    assert space.ego_speed[0] <= ego.speed <= space.ego_speed[1]
    timed, *others = scenario.vehicles
    assert (timed.approach, timed.turn) in space.routes and timed.reference == "conflict"
    assert len(others) <= space.max_others
    for v in others:
        assert space.others_distance[0] <= v.distance <= space.others_distance[1]
    conflict = builder.geometry.conflict(timed.approach, timed.turn, ego.turn)
    ego_time = (conflict.s_ego - builder.geometry.ego_path(ego.turn).entry_s + ego.distance) / ego.speed
    lead = ego_time - timed.distance / timed.speed
    assert space.lead[0] - 1e-6 <= lead <= space.lead[1] + 1e-6


def test_distance_bands_and_scene_classes(builder):
    assert [fz.distance_band(d) for d in (-1.0, 0.0, 9.9, 10.0, 30.0, 50.0, None)] == [
        "past", "0-10m", "0-10m", "10-25m", "25-50m", ">=50m", "?"]
    scene = builder.build(Scenario(ego=_ego(30.0), vehicles=(_crossing("right", 12.0),
                                                              VehicleSpec("ahead", 10.0, speed=5.0, name="lead"))))
    expected = "ego left 25-50m | ahead straight 10-25m | right left 10-25m"
    assert fz.scene_class(scene, ["car", "lead", "ego"]) == expected


# ------------------------------------------------------------------------------------------ replay
def test_failure_replays_from_the_example_database(blind_right, builder, tmp_path):
    from hypothesis.database import DirectoryBasedExampleDatabase

    prop = fz.CrossingFirstSlows()
    db = DirectoryBasedExampleDatabase(str(tmp_path / "db"))
    first = fz.search(prop, blind_right, builder, config=fz.search_settings(400, database=db, derandomize=False))
    assert first.failure is not None
    again = fz.search(prop, blind_right, builder, config=fz.search_settings(1, database=db, derandomize=False))
    assert again.failure is not None, "the saved example must fail again"
    assert again.failure.scenario.content_hash() == first.failure.scenario.content_hash()
    assert again.evaluations <= 3, f"replayed from the database, not searched again ({again.evaluations} scenes)"


def test_a_seed_and_a_database_are_refused_together(blind_right, builder, tmp_path):
    from hypothesis.database import DirectoryBasedExampleDatabase

    config = fz.search_settings(5, database=DirectoryBasedExampleDatabase(str(tmp_path)), derandomize=False)
    with pytest.raises(ValueError, match="database"):
        fz.search(fz.CrossingFirstSlows(), blind_right, builder, config=config, seed=1)


def test_saved_regression_replays_and_rebuilds(blind_right, builder, tmp_path):
    from fixtures.__main__ import main as fixtures_main

    prop = fz.CrossingFirstSlows()
    failure = fz.search(prop, blind_right, builder, max_examples=200).failure
    assert failure is not None, "the fuzzer missed the planted weakness within 200 examples"
    path = fz.save_regression(failure, blind_right.identity, tmp_path)
    saved = fz.load_regression(path)
    assert saved.property == prop.name and saved.identity == blind_right.identity
    assert saved.scenario.content_hash() == failure.scenario.content_hash()
    outcome = fz.replay(prop, blind_right, builder, saved.scenario)
    assert outcome.applicable and not outcome.holds, "the saved scenario must fail again"
    assert fixtures_main(["build", str(path), "--json", str(tmp_path / "scene.json")]) == 0
    assert json.loads((tmp_path / "scene.json").read_text())["scenario"]["vehicles"]


def test_badly_named_regression_is_refused(tmp_path):
    path = tmp_path / "whatever.json"
    path.write_text(Scenario(ego=_ego()).to_json())
    with pytest.raises(ScenarioError, match="<property>__"):
        fz.load_regression(path)


# ------------------------------------------------------------------------------------------ campaigns and evidence
class _StepClock:
    """A clock that advances ``step`` seconds each time it is read: a campaign's wall-clock budget becomes a budget of
    steps (clock reads, a few per scene), the same on an idle machine and under load."""

    def __init__(self, step: float = 0.01):
        self.now, self.step = 0.0, step

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    perf_counter = monotonic


def test_campaigns_count_distinct_classes(blind_right, builder, monkeypatch):
    import importlib

    clock = _StepClock()  # one clock for the campaign and its searches
    for name in ("specs.fuzzing.campaigns", "specs.fuzzing.search"):
        monkeypatch.setattr(importlib.import_module(name), "time", clock)
    prop = fz.CrossingFirstSlows()
    guided = fz.campaign(prop, blind_right, builder, seconds=10.0, seed=0, round_examples=60, shrink_seconds=1.0)
    uniform = fz.random_campaign(prop, blind_right, builder, seconds=2.0, seed=0)
    for result in (guided, uniform):
        classes = [f.scene_class for f in result.failures]
        assert len(classes) == len(set(classes)) == result.distinct
        assert all("right" in c for c in classes), classes
        assert result.seconds >= 1.5 and result.evaluations > 0
        assert math.isclose(result.distinct_per_hour, result.distinct / (result.seconds / 3600))
    assert guided.distinct >= 1 and uniform.distinct >= 1


def test_failure_evidence_has_a_rendered_scene_and_the_scenario_json(blind_right, builder):
    class Recorder:
        def __init__(self):
            self.effects, self.figures, self.notes = [], [], []

        def effect(self, name, value, ci, n, **extra):
            self.effects.append((name, value, n))

        def figure(self, kind, **spec):
            self.figures.append({"kind": kind, **spec})

        def note(self, text):
            self.notes.append(text)

    result = fz.search(fz.CrossingFirstSlows(), blind_right, builder, max_examples=200)
    assert result.failure is not None, "the fuzzer missed the planted weakness within 200 examples"
    recorder = Recorder()
    fz.record_search(recorder, result, builder)
    (figure,) = recorder.figures
    assert figure["kind"] == "scene" and figure["png_base64"] and figure["scenario"]["vehicles"]
    assert any('"vehicles"' in note for note in recorder.notes)
