"""fixtures.scenario: the declarative scenario, its JSON round trip and the checks that need no road."""
import json

import pytest

from fixtures.canonical import CANONICAL
from fixtures.scenario import EgoSpec, Scenario, ScenarioError, VehicleSpec
from interp.errors import HypodriveError


def test_round_trip_through_json_keeps_every_field():
    scenario = Scenario(
        ego=EgoSpec(distance=30.0, speed=4.5, turn="straight", target_speed=4.5),
        vehicles=(VehicleSpec("left", 12.5, speed=7.0, turn="right", behavior="linear", name="a"),
                  VehicleSpec("right", 10.0, reference="conflict")),
        name="x", description="y",
    )
    again = Scenario.from_json(scenario.to_json())
    assert again == scenario
    assert again.to_dict() == json.loads(json.dumps(scenario.to_dict()))


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_scenarios_round_trip(name):
    assert Scenario.from_dict(CANONICAL[name].to_dict()) == CANONICAL[name]


def test_unnamed_vehicles_are_named_by_position_and_numbers_become_floats():
    scenario = Scenario(vehicles=(VehicleSpec("left", 10), VehicleSpec("right", 20, name="r")))
    assert [v.name for v in scenario.vehicles] == ["v0", "r"]
    assert isinstance(scenario.vehicles[0].distance, float)
    same = Scenario(vehicles=(VehicleSpec("left", 10.0), VehicleSpec("right", 20.0, name="r")))
    assert scenario.content_hash() == same.content_hash() and scenario.seed() == same.seed()


def test_seed_depends_on_content_not_on_name():
    a = Scenario(vehicles=(VehicleSpec("left", 10.0),), name="a")
    assert a.seed() == Scenario(vehicles=(VehicleSpec("left", 10.0),), name="b").seed()
    assert a.seed() != Scenario(vehicles=(VehicleSpec("left", 11.0),)).seed()


@pytest.mark.parametrize("spec, words", [
    (dict(approach="left", distance=10.0, speed=-3.0), ["'speed'", "negative"]),
    (dict(approach="up", distance=10.0), ["'approach'", "'up'"]),
    (dict(approach="left", distance=float("nan")), ["'distance'", "finite"]),
    (dict(approach="left", distance=10.0, turn="u-turn"), ["'turn'"]),
    (dict(approach="left", distance=10.0, speed=99.0), ["'speed'", "maximum"]),
    (dict(approach="ahead", distance=5.0, reference="conflict"), ["'reference'", "entry"]),
    (dict(approach="left", distance=5.0, behavior="nobody"), ["'behavior'"]),
])
def test_invalid_vehicle_fields_name_the_vehicle_and_field(spec, words):
    with pytest.raises(ScenarioError) as err:
        Scenario(vehicles=(VehicleSpec(**spec, name="bad"),))
    message = str(err.value)
    assert "'bad'" in message
    for word in words:
        assert word in message


def test_errors_are_hypodrive_errors():
    assert issubclass(ScenarioError, HypodriveError) and issubclass(ScenarioError, ValueError)


def test_ahead_and_behind_must_agree_with_the_ego_position():
    with pytest.raises(ScenarioError, match=r"vehicle 'v0' \(#0\) field 'distance'.*ahead"):
        Scenario(ego=EgoSpec(distance=30.0), vehicles=(VehicleSpec("ahead", 40.0),))
    with pytest.raises(ScenarioError, match=r"vehicle 'v1' \(#1\) field 'distance'.*behind"):
        Scenario(ego=EgoSpec(distance=30.0), vehicles=(VehicleSpec("ahead", 20.0), VehicleSpec("behind", 25.0)))


def test_duplicate_names_and_negative_ego_speed_are_rejected():
    with pytest.raises(ScenarioError, match="'a'.*twice"):
        Scenario(vehicles=(VehicleSpec("left", 10.0, name="a"), VehicleSpec("right", 10.0, name="a")))
    with pytest.raises(ScenarioError, match="ego field 'speed'"):
        EgoSpec(speed=-1.0)


def test_from_dict_rejects_unknown_fields_and_says_where():
    data = Scenario(vehicles=(VehicleSpec("left", 10.0),)).to_dict()
    data["vehicles"][0]["sped"] = 3.0
    with pytest.raises(ScenarioError, match=r"vehicle #0.*'sped'"):
        Scenario.from_dict(data)
    with pytest.raises(ScenarioError, match="malformed"):
        Scenario.from_json("{not json")
    with pytest.raises(ScenarioError, match="vehicle #0.*'speed'"):
        Scenario.from_dict({"vehicles": [{"approach": "left", "distance": 5.0, "speed": -1.0}]})


def test_canonical_descriptions_are_one_line():
    for name, scenario in CANONICAL.items():
        assert scenario.name == name
        assert scenario.description and "\n" not in scenario.description
