"""fixtures.builder: scenes are real env states, observed as the env observes them, with true ground truth.

The ground-truth checks use their own analytic geometry of intersection-v0 (lines and circle arcs from the
road's dimensions: lane width 4 m, right-turn radius 9 m, left-turn radius 13 m, junction half-size 11 m,
approach lanes 100 m), sharing no code with fixtures.geometry.
"""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
from highway_env.vehicle.behavior import IDMVehicle
from hypothesis import given, settings

from fixtures.branching import branch, constant_policy
from fixtures.builder import IDM_CLASS_ATTRIBUTES, SceneBuilder
from fixtures.canonical import CANONICAL
from fixtures.scenario import EgoSpec, Scenario, ScenarioError, VehicleSpec
from fixtures.strategies import scenarios

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((ROOT / "checkpoints/reference/env_config.json").read_text())
VARIANT = copy.deepcopy(REFERENCE)  # every other observation rule: sorted, relative, see_behind, to_dict features
VARIANT["observation"].update(order="sorted", absolute=False, see_behind=True, vehicles_count=6,
                              features=["presence", "x", "y", "vx", "vy", "heading", "cos_d", "sin_d", "long_off"])


@pytest.fixture(scope="module")
def variant():
    b = SceneBuilder(VARIANT)
    yield b
    b.close()


# ---------------------------------------------------------------- an independent analytic geometry

ARM = {"ahead": 0, "behind": 0, "left": 1, "oncoming": 2, "right": 3}
EXIT = {"left": 1, "straight": 2, "right": 3}  # exit arm offset from the approach arm


def _line(a, b, step=0.02):
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = int(np.ceil(np.linalg.norm(b - a) / step)) + 1
    return a + np.linspace(0, 1, n)[:, None] * (b - a)


def _arc(centre, radius, start, stop, step=0.02):
    n = int(np.ceil(abs(stop - start) * radius / step)) + 1
    t = np.linspace(start, stop, n)
    return np.asarray(centre) + radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def analytic_path(arm: int, turn: str):
    """Points [M, 2], arc length [M] and the arc length where the exit lane starts, for arm 0 rotated by arm*90 deg."""
    approach = _line((2, 111), (2, 11))
    junction = {"straight": _line((2, 11), (2, -11)),
                "right": _arc((11, 11), 9, np.pi, 1.5 * np.pi),       # (2, 11) -> (11, 2)
                "left": _arc((-11, 11), 13, 0.0, -0.5 * np.pi)}[turn]  # (2, 11) -> (-11, -2)
    exit_lane = {"straight": _line((2, -11), (2, -111)), "right": _line((11, 2), (111, 2)),
                 "left": _line((-11, -2), (-111, -2))}[turn]
    points = np.concatenate([approach, junction[1:], exit_lane[1:]])
    angle = np.pi / 2 * arm
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = points @ rotation.T
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    exit_start = s[len(approach) + len(junction) - 2]
    return points, s, exit_start


def _arc_length_at(points, s, position):
    return s[np.argmin(np.linalg.norm(points - position, axis=1))]


def expected_relation(scene, spec):
    """kind, conflict point, distances to it (vehicle, ego), or the same-lane gap, from the analytic geometry."""
    ego_spec = scene.scenario.ego
    ego_pos, pos = scene.vehicle("ego").position, scene.vehicle(spec.name).position
    if ARM[spec.approach] == 0:
        return {"kind": "same_lane", "gap": ego_pos[1] - pos[1]}  # the ego's lane runs towards -y
    ep, es, e_exit = analytic_path(0, ego_spec.turn)
    vp, vs, v_exit = analytic_path(ARM[spec.approach], spec.turn)
    if (ARM[spec.approach] + EXIT[spec.turn]) % 4 == EXIT[ego_spec.turn]:
        k = np.searchsorted(vs, v_exit)
        kind, k_ego = "merge", np.searchsorted(es, e_exit)
    else:
        box_v = np.flatnonzero(np.abs(vp).max(axis=1) < 14)
        box_e = np.flatnonzero(np.abs(ep).max(axis=1) < 14)
        gaps = np.linalg.norm(vp[box_v][:, None] - ep[box_e][None], axis=-1)
        i, j = np.unravel_index(np.argmin(gaps), gaps.shape)
        if gaps[i, j] >= 2.0:
            return {"kind": "none", "min_gap": gaps[i, j]}
        assert gaps[i, j] < 0.05, f"{spec}: a near miss of {gaps[i, j]:.2f} m, neither crossing nor clear"
        kind, k, k_ego = "crossing", box_v[i], box_e[j]
    return {"kind": kind, "point": vp[k],
            "distance": vs[k] - _arc_length_at(vp, vs, pos), "ego_distance": es[k_ego] - _arc_length_at(ep, es, ego_pos)}


# ---------------------------------------------------------------- checks shared by canonical and generated scenes


def env_observation(builder, scene):
    """What the env's own KinematicObservation.observe() returns for the built state, with the build's RNG."""
    builder.core.np_random = np.random.default_rng(scene.scenario.seed())
    return builder.core.observation_type.observe()


def check_rows(scene, config):
    obs, features = scene.observation, list(scene.features)
    ranges = config["observation"]["features_range"]

    def normalised(value, name):
        low, high = ranges[name]
        return np.clip(-1 + (value - low) * 2 / (high - low), -1, 1)

    for name, row in scene.rows.items():
        if row is None:
            continue
        v = scene.vehicle(name)
        truth = {"x": v.position[0], "y": v.position[1],
                 "vx": v.speed * np.cos(v.heading), "vy": v.speed * np.sin(v.heading)}
        for key, value in truth.items():
            assert obs[row, features.index(key)] == pytest.approx(normalised(value, key), abs=1e-6), (name, key)
        assert obs[row, features.index("presence")] == 1


def check_presence(scene, config):
    """The present rows are exactly the vehicles the observation rules admit (rules rewritten here)."""
    rules = config["observation"]
    ego = scene.vehicle("ego")
    lane_direction = np.array([np.cos(ego.heading), np.sin(ego.heading)])  # the ego is on its straight approach
    admitted = [spec.name for spec in scene.scenario.vehicles
                if np.linalg.norm(scene.vehicle(spec.name).position - ego.position) < 200
                and (rules.get("see_behind", False)
                     or np.dot(scene.vehicle(spec.name).position - ego.position, lane_direction) > -10)]
    assert rules.get("order", "sorted") == "shuffled"
    expected = set(admitted[: rules["vehicles_count"] - 1])  # shuffled: the first ones in road order
    observed = {name for name, row in scene.rows.items() if row is not None and name != "ego"}
    assert observed == expected
    assert set(scene.unobserved) == {spec.name for spec in scene.scenario.vehicles} - expected
    present = set(np.flatnonzero(scene.observation[:, 0] == 1))
    assert present == {scene.rows[name] for name in observed} | {0}


def check_ground_truth(scene):
    nearest = None
    for spec in scene.scenario.vehicles:
        truth, relation = expected_relation(scene, spec), scene.relations[spec.name]
        assert relation.kind == truth["kind"], spec
        assert relation.conflicts_with_ego == (truth["kind"] != "none")
        if truth["kind"] == "same_lane":
            assert relation.gap == pytest.approx(truth["gap"], abs=1e-6)
        elif truth["kind"] in ("crossing", "merge"):
            assert np.allclose(relation.conflict_point, truth["point"], atol=0.15), spec
            assert relation.distance_to_conflict == pytest.approx(truth["distance"], abs=0.2), spec
            assert relation.ego_distance_to_conflict == pytest.approx(truth["ego_distance"], abs=0.2), spec
            if truth["distance"] > 0.2 and spec.speed > 0:
                assert relation.time_to_conflict == pytest.approx(truth["distance"] / spec.speed, abs=0.2 / spec.speed)
            if scene.rows[spec.name] is not None and truth["distance"] >= 0.2:
                if nearest is None or truth["distance"] < nearest[1]:
                    nearest = (spec.name, truth["distance"])
    if nearest is not None:
        assert scene.nearest_crossing == nearest[0]


# ---------------------------------------------------------------- tests


def test_arms_are_named_relative_to_the_ego_as_drawn(builder):
    """The ego comes from the bottom of the picture (+y, highway-env draws y downwards), heading up."""
    scene = builder.build(Scenario(vehicles=(VehicleSpec("left", 30.0, name="l"), VehicleSpec("right", 30.0, name="r"),
                                             VehicleSpec("oncoming", 30.0, name="o"))))
    ego = scene.vehicle("ego")
    assert ego.position[1] > 11 and np.isclose(ego.heading, -np.pi / 2)
    assert scene.vehicle("l").position[0] < -11 and scene.vehicle("r").position[0] > 11
    assert scene.vehicle("o").position[1] < -11
    assert ego.route[-1][1] == "o1"  # a left turn is the env's default destination


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_scene_is_what_the_env_observes(builder, name):
    scene = builder.build(CANONICAL[name])
    assert scene.observation.dtype == np.float32 and scene.observation.shape == (15, 7)
    assert np.array_equal(scene.observation, env_observation(builder, scene))
    assert np.array_equal(scene.observation, builder.build(CANONICAL[name], observation="env").observation)
    check_rows(scene, REFERENCE)
    check_presence(scene, REFERENCE)
    check_ground_truth(scene)


@settings(max_examples=15, deadline=None)
@given(scenario=scenarios(max_vehicles=7))
def test_generated_scene_is_what_the_env_observes(builder, scenario):
    scene = builder.build(scenario)
    assert np.array_equal(scene.observation, env_observation(builder, scene))
    check_rows(scene, REFERENCE)
    check_presence(scene, REFERENCE)
    check_ground_truth(scene)


@settings(max_examples=10, deadline=None)
@given(scenario=scenarios(max_vehicles=5))
def test_fast_path_follows_every_other_observation_rule(variant, scenario):
    """sorted order, relative coordinates, see_behind, and features that need Vehicle.to_dict."""
    fast = variant.build(scenario, allow_unobserved=True)
    assert np.array_equal(fast.observation, variant.build(scenario, observation="env", allow_unobserved=True).observation)
    assert np.array_equal(fast.observation, env_observation(variant, fast))


def test_shuffled_rows_keep_the_first_vehicles_in_road_order_when_too_many(builder):
    many = tuple(VehicleSpec(arm, 5.0 + 10 * k, name=f"{arm}{k}") for k in range(5) for arm in ("left", "right", "oncoming"))
    scenario = Scenario(vehicles=many)  # 15 other vehicles, 14 rows for them
    with pytest.raises(ScenarioError, match=r"vehicle 'oncoming4' \(#14\).*14"):
        builder.build(scenario)
    scene = builder.build(scenario, allow_unobserved=True)
    assert scene.rows["oncoming4"] is None and "rows" in scene.unobserved["oncoming4"]
    assert np.array_equal(scene.observation, env_observation(builder, scene))
    check_rows(scene, REFERENCE)
    check_presence(scene, REFERENCE)


def test_vehicles_behind_or_beyond_perception_are_reported_unobserved(builder):
    scene = builder.build(Scenario(ego=EgoSpec(distance=100.0),
                                   vehicles=(VehicleSpec("oncoming", 100.0, name="far"), VehicleSpec("left", 50.0, name="near"))))
    assert scene.rows["far"] is None and "perception" in scene.unobserved["far"]
    assert scene.rows["near"] is not None
    scene = builder.build(Scenario(ego=EgoSpec(distance=20.0), vehicles=(VehicleSpec("behind", 36.0, name="back"),
                                                                         VehicleSpec("behind", 29.0, name="close"))))
    assert scene.rows["back"] is None and "behind" in scene.unobserved["back"]
    assert scene.rows["close"] is not None  # 9 m back: within the 2 car lengths the env still sees
    check_presence(scene, REFERENCE)


def test_same_scenario_gives_the_same_observation_whatever_ran_before(builder):
    a, b = CANONICAL["dense"], CANONICAL["crossing_left_near"]
    first = builder.build(a).observation
    builder.build(b)
    builder.env.reset(seed=123)  # a real reset in between: new RNG state, the env's own vehicles
    assert np.array_equal(builder.build(a).observation, first)
    fresh = SceneBuilder(REFERENCE)
    try:
        assert np.array_equal(fresh.build(a).observation, first)
    finally:
        fresh.close()


def test_scene_does_not_depend_on_idm_class_attributes_left_by_others(builder):
    # an IDM car 9 m behind the ego: its gap keeping depends on these attributes
    scenario = Scenario(ego=EgoSpec(distance=30.0), vehicles=(VehicleSpec("behind", 39.0, speed=9.0, name="f"),))
    scene = builder.build(scenario)

    def outcome(start):
        end = branch(start, constant_policy(1), 2).env
        return [(v.position.tolist(), v.speed) for v in end.road.vehicles]

    reference = outcome(scene)
    saved = {name: getattr(IDMVehicle, name) for name in IDM_CLASS_ATTRIBUTES}
    try:
        IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN = 50.0, 0.5, -0.5
        assert outcome(scene) == reference
        IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN = 50.0, 0.5, -0.5
        assert outcome(builder.build(scenario)) == reference
    finally:
        for name, value in saved.items():
            setattr(IDMVehicle, name, value)


def test_vehicles_are_placed_as_specified(builder):
    scene = builder.build(Scenario(vehicles=(VehicleSpec("left", 20.0, speed=6.0, turn="right", name="a"),
                                             VehicleSpec("right", -3.0, speed=5.0, turn="straight", name="inside"))))
    a, inside = scene.vehicle("a"), scene.vehicle("inside")
    assert np.allclose(a.position, [-31.0, 2.0]) and a.speed == 6.0 and a.route[-1][1] == "o0"
    assert np.allclose(inside.position, [8.0, -2.0]) and inside.lane_index == ("ir3", "il1", 0)
    assert type(a) is IDMVehicle and builder.core.road.vehicles[-1] is builder.core.vehicle
    assert len(scene.env.road.vehicles) == 3


def test_reference_conflict_places_the_vehicle_that_far_from_its_conflict_point(builder):
    scene = builder.build(Scenario(vehicles=(VehicleSpec("left", 12.0, reference="conflict", name="c"),)))
    assert scene.relations["c"].distance_to_conflict == pytest.approx(12.0)
    assert expected_relation(scene, scene.scenario.vehicle("c"))["distance"] == pytest.approx(12.0, abs=0.2)


@pytest.mark.parametrize("vehicles, words", [
    ((VehicleSpec("left", 20.0, name="a"), VehicleSpec("left", 22.0, name="b")), ["'a'", "'distance'", "overlaps 'b'"]),
    ((VehicleSpec("ahead", 33.0, name="a"),), ["'a'", "'distance'", "overlaps 'ego'"]),
    ((VehicleSpec("left", 150.0, name="far"),), ["'far'", "'distance'", "before the start"]),
    ((VehicleSpec("right", -200.0, name="gone"),), ["'gone'", "'distance'", "beyond the end"]),
    ((VehicleSpec("oncoming", 10.0, turn="left", reference="conflict", name="nc"),), ["'nc'", "'reference'", "never meets"]),
    ((VehicleSpec("left", 10.0, behavior="nowhere.Nothing", name="b"),), ["'b'", "'behavior'"]),
])
def test_invalid_scenarios_name_the_vehicle_and_field(builder, vehicles, words):
    with pytest.raises(ScenarioError) as err:
        builder.build(Scenario(ego=EgoSpec(distance=35.0), vehicles=vehicles))
    for word in words:
        assert word in str(err.value)


def test_scene_json_has_rows_and_ground_truth(builder):
    scene = builder.build(CANONICAL["dense"])
    data = json.loads(json.dumps(scene.to_dict()))
    assert Scenario.from_dict(data["scenario"]) == CANONICAL["dense"]
    by_name = {v["name"]: v for v in data["vehicles"]}
    assert by_name["follower"]["row"] is None and "behind" in by_name["follower"]["unobserved_reason"]
    assert by_name["left_near"]["row"] == scene.rows["left_near"] and by_name["left_near"]["kind"] == "crossing"
    assert data["nearest_crossing"] == scene.nearest_crossing


def test_branch_is_deterministic_and_leaves_the_scene_untouched(builder):
    scene = builder.build(CANONICAL["crossing_left_near"])
    before = copy.deepcopy(scene.env)
    first = branch(scene, constant_policy(2), 4)
    second = branch(scene, lambda obs: np.array([2]), 4)
    assert first.steps == second.steps >= 1
    assert np.array_equal(first.observations, second.observations)
    assert np.array_equal(first.observations[0], scene.observation)
    assert not np.array_equal(first.observations[-1], scene.observation)
    assert [v.position.tolist() for v in scene.env.road.vehicles] == [v.position.tolist() for v in before.road.vehicles]
    assert scene.env.np_random.bit_generator.state == before.np_random.bit_generator.state
    assert scene.env.steps == 0 and len(first.env.road.vehicles) <= len(scene.env.road.vehicles)
    slower = branch(scene, constant_policy(0), 4)
    assert not np.array_equal(slower.observations, first.observations)
