"""fixtures.strategies: only valid scenarios, bounded keyword-only arguments, shrinking, registered profiles."""
import pytest
from hypothesis import find, given, settings
from hypothesis.errors import InvalidArgument

from fixtures.strategies import PROFILES, ego_specs, scenarios


@settings(max_examples=25, deadline=None)
@given(scenario=scenarios(max_vehicles=10, max_distance=100.0))
def test_generated_scenarios_build_without_error(builder, scenario):
    builder.build(scenario)  # raises ScenarioError on overlap, off the lane, too many vehicles


@settings(max_examples=25, deadline=None)
@given(scenario=scenarios(min_vehicles=2, max_vehicles=4, arms=("left",), turns=("right",), min_distance=20.0,
                          max_distance=60.0, min_speed=1.0, max_speed=5.0))
def test_generated_scenarios_respect_their_bounds(scenario):
    assert 2 <= len(scenario.vehicles) <= 4
    for v in scenario.vehicles:
        assert v.approach == "left" and v.turn == "right"
        assert 20.0 <= v.distance <= 60.0 and 1.0 <= v.speed <= 5.0


def test_shrinks_towards_fewer_slower_farther_vehicles():
    minimal = find(scenarios(max_vehicles=5, max_distance=80.0), lambda s: len(s.vehicles) >= 1,
                   settings=settings(database=None, max_examples=200))
    assert len(minimal.vehicles) == 1
    assert minimal.vehicles[0].speed == 0.0 and minimal.vehicles[0].distance == 80.0


@pytest.mark.parametrize("kwargs", [
    dict(max_vehicles=15), dict(min_vehicles=3, max_vehicles=2), dict(min_distance=-1.0),
    dict(max_distance=150.0), dict(min_speed=5.0, max_speed=1.0), dict(arms=("up",)), dict(turns=()),
    dict(max_vehicles=2.5), dict(ego="not a strategy"),
])
def test_bad_arguments_are_rejected_up_front(kwargs):
    with pytest.raises(InvalidArgument):
        scenarios(**kwargs)  # at call time, not when the first example is drawn


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        scenarios(0, 3)
    with pytest.raises(InvalidArgument):
        ego_specs(min_distance=50.0, max_distance=10.0)


def test_profiles_are_registered_without_deadline_and_ci_is_derandomised():
    for name in PROFILES:
        assert settings.get_profile(name).deadline is None
    assert settings.get_profile("ci").derandomize is True
