"""interp.fastsim: the accelerated intersection step gives bit-for-bit the same episodes as plain highway-env.

Two envs with the reference env config are stepped in lock-step, one plain and one accelerated, on the same
seeds and actions; every observation, reward, termination, truncation and info (recursively, floats by
their bits, types too) must match, and so must the whole simulator state behind them (every vehicle's
position, heading, speed, lanes, route, controls, the road's step counter and the env's RNG state), so a
difference is caught at the step it appears. The default run checks 20 episodes; the full check (500
episodes, random policy and a greedy agent) is opt-in: ``python -m pytest tests/test_fastsim.py -m slow``.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import highway_env
import numpy as np
import pytest
from highway_env.envs.common.observation import KinematicObservation
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.road.regulation import RegulatedRoad
from highway_env.road.road import Road, RoadNetwork

from interp.simulation import fastsim
from interp.model.config import load_env_config
from interp.simulation.env import make_env
from interp.errors import HypodriveError

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "checkpoints" / "reference"
SEEDS = range(77_000, 77_010)  # 10 episodes per policy in the default run, away from other tests' seeds


@pytest.fixture(scope="module")
def env_config() -> dict:
    return load_env_config(REFERENCE / "env_config.json")


@pytest.fixture(scope="module")
def envs(env_config):
    plain, fast = make_env(env_config), make_env(env_config, fast_sim=True)
    assert fastsim.is_enabled(fast) and not fastsim.is_enabled(plain)
    yield plain, fast
    plain.close()
    fast.close()


# ---------------------------------------------------------------------------------------------- comparison

def assert_identical(a, b, where: str = "") -> None:
    """Equal values of equal types, recursively; floats and arrays compared by their bits."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{where}: arrays differ at {np.argwhere(a != b)[:5].tolist()}"
    elif isinstance(a, (float, np.floating)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), f"{where}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def simulator_state(env) -> dict:
    """Everything a later step depends on, as plain values."""
    core = env.unwrapped
    vehicles = [{
        "class": type(v).__name__,
        "position": v.position.copy(), "heading": v.heading, "speed": v.speed, "lane_index": v.lane_index,
        "target_lane_index": getattr(v, "target_lane_index", None), "target_speed": getattr(v, "target_speed", None),
        "route": copy.deepcopy(getattr(v, "route", None)), "action": dict(v.action), "crashed": v.crashed,
        "impact": v.impact, "timer": getattr(v, "timer", None), "yielding": getattr(v, "is_yielding", None),
        "color": getattr(v, "color", None),
    } for v in core.road.vehicles]
    return {"vehicles": vehicles, "road_steps": core.road.steps, "time": core.time, "steps": core.steps,
            "rng": core.np_random.bit_generator.state}


def drop_reset_action(info: dict) -> dict:
    """reset()'s info["action"] is ``action_space.sample()`` from a space highway-env rebuilds on every reset
    with an unseeded RNG: random even between two plain envs, so it is not compared."""
    return {k: v for k, v in info.items() if k != "action"}


def random_policy(seed: int):
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(3))


def fixed_policy(seed: int):
    action = seed % 3
    return lambda obs: action


def run_lockstep(plain, fast, seed: int, policy, also=None) -> int:
    """One episode in both envs; asserts they stay identical (and ``also(plain, fast)`` after every reset
    and step); returns the number of steps."""
    also = also or (lambda p, f: None)
    obs_p, info_p = plain.reset(seed=seed)
    obs_f, info_f = fast.reset(seed=seed)
    assert_identical((obs_p, drop_reset_action(info_p)), (obs_f, drop_reset_action(info_f)), f"seed {seed} reset")
    assert_identical(simulator_state(plain), simulator_state(fast), f"seed {seed} reset state")
    also(plain, fast)
    steps, done = 0, False
    while not done:
        action = policy(obs_p)
        result_p, result_f = plain.step(action), fast.step(action)
        steps += 1
        assert_identical(result_p, result_f, f"seed {seed} step {steps}")
        assert_identical(simulator_state(plain), simulator_state(fast), f"seed {seed} step {steps} state")
        also(plain, fast)
        done = result_p[2] or result_p[3]
    return steps


# ---------------------------------------------------------------------------------------------- episodes

@pytest.mark.parametrize("policy", [random_policy, fixed_policy], ids=["random", "fixed"])
def test_episodes_are_identical(envs, policy):
    plain, fast = envs
    steps = [run_lockstep(plain, fast, seed, policy(seed)) for seed in SEEDS]
    assert sum(steps) >= 2 * len(SEEDS)  # real episodes, not immediate ends


def test_episodes_are_identical_on_the_per_vehicle_path(envs, monkeypatch):
    """Where numpy's array and scalar transcendental functions differ in the last bit (checked at run time),
    the controls and kinematics run per vehicle instead: that path is exact too."""
    plain, fast = envs
    monkeypatch.setattr(fastsim.checks, "_ELEMENTWISE_EXACT", [False])
    assert run_lockstep(plain, fast, 78_500, random_policy(78_500)) >= 5


def test_episodes_are_identical_on_the_numpy_decision_path(envs, monkeypatch):
    """Without the compiled decision kernels (numba missing, or FASTSIM_NO_KERNELS=1) fastsim's numpy code
    decides: that reference path is exact too."""
    plain, fast = envs
    monkeypatch.setattr(fastsim.base, "USE_KERNELS", False)
    assert run_lockstep(plain, fast, 78_600, random_policy(78_600)) >= 5


def test_episodes_are_identical_without_the_frame_straight_lane_coordinates(envs, monkeypatch):
    """Where the lane table's straight-lane coordinates are not those of ``StraightLane.local_coordinates`` bit
    for bit (checked at run time: a BLAS that fuses np.dot), the lanes' own method answers: exact too."""
    plain, fast = envs
    assert fastsim.checks._straight_coordinates_exact() in (True, False)
    monkeypatch.setattr(fastsim.checks, "_STRAIGHT_EXACT", {True: False, False: False})
    assert run_lockstep(plain, fast, 78_700, random_policy(78_700)) >= 5


def test_episodes_are_identical_without_the_python_float_desired_gaps(envs, monkeypatch):
    """Where ``np.dot`` of 2-vectors or ``np.power(x, 2)`` are not the plain products and sum on this platform
    (checked at run time), the desired gaps are computed per vehicle with numpy itself: exact too."""
    plain, fast = envs
    assert fastsim.checks._python_arithmetic_exact() in (True, False)
    monkeypatch.setattr(fastsim.checks, "_PYTHON_EXACT", [False])
    assert run_lockstep(plain, fast, 78_800, random_policy(78_800)) >= 5


def test_kernels_decide_as_the_numpy_code(scene, monkeypatch):
    """The compiled kernels and the numpy code give the same decisions on one scene: closest lanes, front
    vehicles, collision candidates and conflicting pairs."""
    if not fastsim.kernels.AVAILABLE:
        pytest.skip("numba is not installed: only the numpy path runs")
    road = copy.deepcopy(scene)
    vehicles = road.vehicles
    network = road.network
    rng = np.random.default_rng(5)
    points = [rng.uniform(-120, 120, 2) for _ in range(200)] + [v.position for v in vehicles]
    headings = list(rng.uniform(-7, 7, len(points)))

    def decisions() -> tuple:
        road.__dict__.pop("_fastsim_coordinates", None)
        frame = fastsim.frame._Frame.of(road)
        return (network.closest_lane_indexes(points, headings), network.closest_lane_indexes(points, None),
                {k: (lane, id(front)) for k, (lane, front) in frame.fronts.items()}, road._conflict_table())

    compiled = decisions()
    monkeypatch.setattr(fastsim.base, "USE_KERNELS", False)
    assert decisions() == compiled
    assert compiled[2] and compiled[0]


def test_the_comparison_catches_a_one_ulp_difference(envs):
    """Negative control: the lock-step comparison is sharp enough to see the smallest possible change."""
    plain, fast = envs
    plain.reset(seed=78_400)
    fast.reset(seed=78_400)
    ego = fast.unwrapped.vehicle
    ego.heading = np.nextafter(ego.heading, np.inf)
    with pytest.raises(AssertionError, match="state"):
        assert_identical(simulator_state(plain), simulator_state(fast), "state")
    with pytest.raises(AssertionError):
        result_p, result_f = plain.step(1), fast.step(1)
        assert_identical(result_p, result_f, "step")
        assert_identical(simulator_state(plain), simulator_state(fast), "state")


def test_episodes_are_identical_with_the_row_recorder(env_config):
    """The rollout workers record which vehicle is behind each observation row; the recorder wraps the
    observation of the accelerated env as of the plain one."""
    from interp.simulation.row_identity import install_row_recorder
    from interp.simulation.workers import EpisodeIds

    plain, fast = make_env(env_config), make_env(env_config, fast_sim=True)
    for env in (plain, fast):
        install_row_recorder(env)
    ids = {id(plain): EpisodeIds(), id(fast): EpisodeIds()}  # raw ids come from a process-wide counter

    def same_rows(p, f):
        rows_p, rows_f = (ids[id(e)](e.unwrapped._hypodrive_rows) for e in (p, f))
        assert rows_p == rows_f and any(r > 0 for r in rows_p)

    assert run_lockstep(plain, fast, 78_000, random_policy(78_000), also=same_rows) >= 5


def test_copies_of_an_accelerated_env_stay_accelerated_and_identical(envs):
    plain, fast = envs
    plain.reset(seed=78_100)
    fast.reset(seed=78_100)
    for action in (1, 2):
        plain.step(action)
        fast.step(action)
    plain_copy, fast_copy = copy.deepcopy(plain.unwrapped), copy.deepcopy(fast.unwrapped)
    assert fastsim.is_enabled(fast_copy) and type(fast_copy.road) is fastsim.FastRegulatedRoad
    for action in (0, 1, 2, 1):
        assert_identical(plain_copy.step(action), fast_copy.step(action), "copy")
        assert_identical(simulator_state(plain_copy), simulator_state(fast_copy), "copy state")


def test_scene_builder_branches_are_identical(env_config):
    """Scenes built and branched (deep copies stepped on) from an accelerated builder env, as the fixtures
    will use it: the same observations and rewards as from a plain one."""
    from fixtures.branching import branch, constant_policy
    from fixtures.builder import SceneBuilder
    from fixtures.canonical import CANONICAL

    plain_builder, fast_builder = SceneBuilder(env_config), SceneBuilder(env_config)
    fastsim.enable(fast_builder.env)
    plain_scene, fast_scene = (b.build(CANONICAL["crossing_left_near"]) for b in (plain_builder, fast_builder))
    assert fastsim.is_enabled(fast_scene.env)
    assert_identical(plain_scene.observation, fast_scene.observation, "scene")
    for action in (0, 2):
        plain_branch, fast_branch = (branch(s, constant_policy(action), 6) for s in (plain_scene, fast_scene))
        assert_identical((plain_branch.observations, plain_branch.rewards, plain_branch.infos),
                         (fast_branch.observations, fast_branch.rewards, fast_branch.infos), f"branch {action}")


def reactive_policy(seed: int):
    """A closed-loop stand-in for the agent: SLOWER when another vehicle is within 20 m of the ego in the
    observation, else FASTER (the untrained control network picks IDLE in every state here)."""
    def act(obs: np.ndarray) -> int:
        present = obs[1:, 0] > 0
        gaps = np.hypot(obs[1:, 1] - obs[0, 1], obs[1:, 2] - obs[0, 2]) * 100  # x, y normalised by 100 m
        return 0 if np.any(present & (gaps < 20)) else 2
    return act


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["random", "agent"])
def test_500_episodes_are_identical(request, env_config, policy):
    """The full identity check: 250 episodes under a random policy and 250 under the greedy reference
    agent (where checkpoints/reference/agent.pt exists, else ``reactive_policy``), bit for bit."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt-in: python -m pytest tests/test_fastsim.py -m slow")
    plain, fast = make_env(env_config), make_env(env_config, fast_sim=True)
    make_policy = random_policy
    if policy == "agent":
        make_policy = reactive_policy
        if (REFERENCE / "agent.pt").is_file():
            import torch

            from interp.simulation.agent import load_agent

            torch.set_num_threads(1)
            agent = load_agent(REFERENCE)
            make_policy = lambda seed: lambda obs: int(agent.act(obs)[0])  # noqa: E731
    offset = 0 if policy == "random" else 250
    for seed in range(80_000 + offset, 80_250 + offset):
        run_lockstep(plain, fast, seed, make_policy(seed))


# ---------------------------------------------------------------------------------------------- components

@pytest.fixture(scope="module")
def scene(envs):
    """An accelerated env a few steps into an episode, with a plain copy of its road for reference."""
    _, fast = envs
    fast.reset(seed=78_200)
    for action in (1, 1, 2):
        fast.step(action)
    return fast.unwrapped.road


def test_closest_lane_search_matches_highway_env(scene):
    """Random points and headings, and points exactly on lane ends where several lanes tie."""
    network = scene.network
    rng = np.random.default_rng(0)
    points = [rng.uniform(-120, 120, 2) for _ in range(300)]
    for lane in network.lanes_list():
        points += [lane.position(0.0, 0.0), lane.position(lane.length, 0.0), lane.position(lane.length / 2, 0.3)]
    headings = [None, *rng.uniform(-7, 7, 3)]
    for point in points:
        for heading in headings:
            expected = RoadNetwork.get_closest_lane_index(network, point, heading)
            assert network.get_closest_lane_index(point, heading) == expected, (point, heading)
    batch = network.closest_lane_indexes(points, [0.5] * len(points))
    assert batch == [RoadNetwork.get_closest_lane_index(network, p, 0.5) for p in points]


def test_neighbours_and_perception_match_highway_env(scene):
    vehicles = scene.vehicles
    assert len(vehicles) >= 4
    frame = fastsim.frame._Frame.of(scene)
    assert frame is not None and frame.fronts  # the all-at-once answers exist and are the plain ones
    assert any(front is not None for _, front in frame.fronts.values())
    for vehicle in vehicles:
        if id(vehicle) in frame.fronts:
            lane_index, front = frame.fronts[id(vehicle)]
            assert front is Road.neighbour_vehicles(scene, vehicle, lane_index)[0]
        for lane_index in {vehicle.lane_index, getattr(vehicle, "target_lane_index", None)} - {None}:
            assert scene.neighbour_vehicles(vehicle, lane_index) == Road.neighbour_vehicles(scene, vehicle, lane_index)
        for distance, see_behind, sort in [(150, False, False), (30, True, True), (12.5, False, True)]:
            assert (scene.close_objects_to(vehicle, distance, count=14, see_behind=see_behind, sort=sort)
                    == Road.close_objects_to(scene, vehicle, distance, count=14, see_behind=see_behind, sort=sort))


def test_conflict_table_matches_highway_env(scene):
    """Every pair the regulation asks about, including a pair placed to conflict (a vehicle moved right
    behind another one on its lane and route)."""
    road = copy.deepcopy(scene)
    vehicles = road.vehicles
    a, b = vehicles[0], vehicles[1]
    a.lane_index, a.lane, a.route, a.heading, a.speed = b.lane_index, b.lane, list(b.route), b.heading, b.speed + 1
    a.position = b.lane.position(b.lane.local_coordinates(b.position)[0] - 3.0, 0.0)
    conflicts = road._conflict_table()
    assert (0, 1) in conflicts, "the placed pair must conflict"
    expected = [(i, j) for i in range(len(vehicles)) for j in range(i + 1, len(vehicles))
                if RegulatedRoad.is_conflict_possible(vehicles[i], vehicles[j])]
    assert conflicts == expected


def test_rectangle_margins_agree_with_highway_env():
    """The array form of utils.has_corner_inside: positive margin <=> a sample point inside, on random
    rectangles around each other (as the regulation's conflict check sees them)."""
    from highway_env import utils

    rng = np.random.default_rng(1)
    k = 400
    centre_a, centre_b = rng.uniform(-3, 3, (k, 2)), rng.uniform(-3, 3, (k, 2))
    heading_a, heading_b = rng.uniform(-4, 4, k), rng.uniform(-4, 4, k)
    size_a, size_b = np.tile([7.5, 1.8], (k, 1)), rng.uniform(1, 8, (k, 2))
    margin = fastsim.inside_margin(centre_a, heading_a, size_a, centre_b, heading_b, size_b).max(axis=1)
    for m, rect_a, rect_b in zip(margin, zip(centre_a, size_a[:, 0], size_a[:, 1], heading_a),
                                 zip(centre_b, size_b[:, 0], size_b[:, 1], heading_b)):
        assert utils.has_corner_inside(rect_a, rect_b) == (m >= 0)
    assert 0.1 < np.mean(margin >= 0) < 0.9  # both outcomes are exercised


def test_collision_skips_only_certain_misses():
    """Where the array test says 'separated', highway-env's polygon test says no collision now or next."""
    from highway_env import utils
    from highway_env.vehicle.kinematics import Vehicle

    rng = np.random.default_rng(2)
    k = 400
    centre_a, centre_b = rng.uniform(-4, 4, (k, 2)), rng.uniform(-4, 4, (k, 2))
    heading_a, heading_b = rng.uniform(-4, 4, k), rng.uniform(-4, 4, k)
    size = np.tile([Vehicle.LENGTH, Vehicle.WIDTH], (k, 1))
    move_a, move_b = rng.uniform(0, 1, k), rng.uniform(0, 1, k)
    apart = fastsim.separated(centre_a, heading_a, size, move_a, centre_b, heading_b, size, move_b)
    for n, skip in enumerate(apart):
        a, b = Vehicle(None, centre_a[n], heading_a[n], move_a[n]), Vehicle(None, centre_b[n], heading_b[n], move_b[n])
        intersecting, will_intersect, _ = utils.are_polygons_intersecting(a.polygon(), b.polygon(), a.velocity,
                                                                           b.velocity)
        if skip:
            assert not intersecting and not will_intersect
    assert 0.1 < np.mean(apart) < 0.9  # both outcomes are exercised


def test_collision_kernel_skips_only_certain_misses():
    """The pairs the compiled collision kernel leaves out are ones highway-env's own test dismisses."""
    from highway_env.vehicle.kinematics import Vehicle

    if not fastsim.kernels.AVAILABLE:
        pytest.skip("numba is not installed: only the numpy path runs")
    rng = np.random.default_rng(3)
    dt, skipped = 1 / 15, 0
    for _ in range(40):
        n = 8
        vehicles = [Vehicle(None, rng.uniform(-6, 6, 2), rng.uniform(-4, 4), rng.uniform(0, 12)) for _ in range(n)]
        pos = np.array([v.position for v in vehicles])
        first, second = np.full(n * (n - 1) // 2, -1), np.full(n * (n - 1) // 2, -1)
        count = fastsim.kernels.collision_candidates(
            pos[:, 0].copy(), pos[:, 1].copy(), np.array([v.heading for v in vehicles]),
            np.array([v.speed for v in vehicles]), np.array([v.diagonal for v in vehicles]),
            np.array([v.LENGTH for v in vehicles], dtype=float), np.array([v.WIDTH for v in vehicles], dtype=float),
            dt, fastsim.MARGIN, first, second)
        first, second = first[:count], second[:count]
        kept = set(zip(first.tolist(), second.tolist()))
        assert list(zip(first.tolist(), second.tolist())) == sorted(kept)  # Road.step's order
        for i in range(n):
            for j in range(i + 1, n):
                if (i, j) not in kept:
                    skipped += 1
                    intersecting, will_intersect, _ = vehicles[i]._is_colliding(vehicles[j], dt)
                    assert not intersecting and not will_intersect
    assert skipped > 100  # the kernel does skip pairs


def test_numpy_shortcuts_are_exact():
    """The clip ufunc called directly is np.clip; the array kinematics equal the per-vehicle ones."""
    values = [1.5, -0.0, 0.0, 0.3, np.float64(-2.5), np.nan, np.inf, 3, np.float64(1e-300)]
    for x in values:
        for low, high in [(-1, 1), (0, 10.0), (-np.pi / 3, np.pi / 3)]:
            expected, got = np.clip(x, low, high), fastsim.ufunc_clip(x, low, high)
            assert type(got) is type(expected) and np.asarray(got).tobytes() == np.asarray(expected).tobytes()


def test_kinematics_together_equal_one_by_one(envs):
    _, fast = envs
    fast.reset(seed=78_300)
    fast.step(1)
    vehicles = fast.unwrapped.road.vehicles
    one, together = copy.deepcopy(vehicles), copy.deepcopy(vehicles)
    for v in one:
        fastsim.kinematics_scalar(v, 1 / 15)
    fastsim.kinematics_together(together, 1 / 15)
    for v, w in zip(one, together):
        assert_identical((v.position, v.heading, v.speed, v.crashed), (w.position, w.heading, w.speed, w.crashed))


# ---------------------------------------------------------------------------------------------- installing

def test_enable_changes_only_that_env_and_is_reversible(env_config):
    plain_methods = (RegulatedRoad.step, RoadNetwork.get_closest_lane_index, KinematicObservation.observe)
    env, other = make_env(env_config, seed=3), make_env(env_config, seed=3)
    fastsim.enable(env)
    assert type(env.unwrapped) is fastsim.FastIntersectionEnv
    assert type(env.unwrapped.road) is fastsim.FastRegulatedRoad
    assert type(env.unwrapped.road.network) is fastsim.FastRoadNetwork
    assert type(env.unwrapped.observation_type) is fastsim.FastKinematicObservation
    assert type(other.unwrapped) is IntersectionEnv and type(other.unwrapped.road) is RegulatedRoad
    assert (RegulatedRoad.step, RoadNetwork.get_closest_lane_index, KinematicObservation.observe) == plain_methods
    env.reset(seed=4)  # a reset builds a new road and observation: they are converted too
    assert type(env.unwrapped.road) is fastsim.FastRegulatedRoad
    fastsim.disable(env)
    assert type(env.unwrapped) is IntersectionEnv and type(env.unwrapped.road) is RegulatedRoad
    assert type(env.unwrapped.road.network) is RoadNetwork
    assert type(env.unwrapped.observation_type) is KinematicObservation
    with fastsim.fast_sim(other) as accelerated:
        assert fastsim.is_enabled(accelerated)
    assert not fastsim.is_enabled(other)


def test_refuses_other_highway_env_versions(env_config, monkeypatch):
    monkeypatch.setattr(highway_env, "__version__", "1.13.0")
    env = make_env(env_config)
    with pytest.raises(fastsim.FastSimUnavailable, match="1.13.0") as refused:
        fastsim.enable(env)
    assert isinstance(refused.value, HypodriveError) and "fast_sim=False" in str(refused.value)
    assert not fastsim.is_enabled(env)
    with pytest.warns(RuntimeWarning, match="verified"):
        fallback = make_env(env_config, fast_sim=True)
    assert not fastsim.is_enabled(fallback)  # the plain simulator, still usable
    fallback.reset(seed=0)


def test_refuses_other_envs(env_config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = make_env({**env_config, "id": "intersection-v1", "observation": {"type": "Kinematics"}})
    with pytest.raises(fastsim.FastSimUnavailable, match="intersection-v0"):
        fastsim.enable(other)
