"""A faster ``intersection-v0`` step that gives bit-for-bit the same episodes (opt-in; highway-env 1.12.1).

Why: the agent's network costs microseconds and the simulator ~0.1 s per agent step, most of it in a few
paths that every vehicle runs every frame (15 a step) against every lane or every other vehicle. This layer
runs them for all vehicles and lanes at once with numpy, the decisions among them in compiled loops
(``interp.simulation.kernels``, numba, optional). Measured (``benchmarks/test_fastsim.py``, one core,
interleaved with the plain simulator): about 9x the steps per second under the always-IDLE policy, 8x under the
agent (7.7x and 6.3x before issue 18's second round, 4x before the kernels).

How it stays identical, by construction, in two ways:
- *Decisions* (closest lane, front vehicle, which pairs may conflict or collide, which vehicles are seen)
  are computed approximately on arrays or in the compiled kernels, and every decision within ``MARGIN`` (1e-6, far above any rounding
  difference) of its threshold or of a tie is taken again by highway-env's own code; pairs that may
  conflict or collide are always checked by highway-env's own code, only the certain misses are skipped.
- *Floats that enter the state* (kinematics, steering, accelerations, observation rows) come from the same
  numpy operations in the same order as highway-env's: per vehicle, or elementwise on arrays of all
  vehicles, which gives the same bits for elementwise operations; for numpy's transcendental functions
  this is checked once on the running platform (``_ufuncs_elementwise_exact``), else the per-vehicle code
  runs. ``np.clip`` is called as the ufunc it dispatches to (``ufunc_clip``).
``tests/test_fastsim.py`` checks whole episodes (every observation, reward, info and the full simulator
state after every step) against the plain simulator; ``-m slow`` runs 500 episodes.

What is replaced (share of a plain step's time under cProfile, from the benchmark's ``profile()``):
- ``RoadNetwork.get_closest_lane_index`` (~33 %): all vehicles x all lanes after each frame's move, lane
  geometry precomputed once per road network (``LaneTable``, ``FastRoadNetwork``);
- ``RegulatedRoad.enforce_road_rules`` (~20 %): all vehicles' predictions at once, the car-length and
  rectangle checks on arrays, highway-env's own checks only where a margin cannot decide;
- ``Road.act`` / IDM and MDP ``act`` (~20 %): front vehicles of all vehicles at once (``_Frame``), steering
  and free-road IDM acceleration on arrays, per-vehicle code for the rest;
- ``KinematicObservation.observe`` (~17 %): the same rows without pandas, ``Road.close_objects_to`` on arrays;
- ``Vehicle.step`` kinematics on arrays, ``Road.step`` collision checks only for pairs not certainly apart.
Where numpy scalars would be slower than Python's own floats (IEEE doubles, the same roundings for +, -, *, /
and sqrt) the desired gaps are computed in Python floats, with the few numpy results they need (cos, sin)
from one array call per frame and ``np.dot`` / ``np.power(x, 2)`` replaced only where a run-time check shows
they are the plain products here (``_python_arithmetic_exact``).

Installed explicitly and per env instance, never on import: ``enable(env)`` / ``disable(env)`` /
``with fast_sim(env):``, or ``interp.simulation.env.make_env(config, fast_sim=True)``. It changes the class of that
env's own objects (env, road, road network, observation type) to the subclasses defined here (the env's
``road`` and ``observation_type`` attributes convert whatever is assigned later, e.g. at each reset);
highway-env's classes are never modified, other envs are unaffected, and ``copy.deepcopy`` / pickling keep
working (a copy of an accelerated env is accelerated). Vehicles are not touched: the road drives them, and
vehicle classes other than highway-env's ``IDMVehicle`` / ``MDPVehicle`` run their own methods. On another
highway-env version or env class ``enable`` raises ``FastSimUnavailable`` and ``make_env`` warns and falls
back to the plain simulator. Install it before other per-instance patches of the same env (e.g.
``interp.simulation.row_identity``), as ``make_env`` does; installed after them it is still identical.

Why one module of over 1,000 lines: it mirrors highway-env's own step (road, vehicles, IDM, lane changes,
regulation, observation) class by class, and it is checked as one unit against the plain simulator, bit for bit;
split, each part would be a partial copy of the library whose identity no test could check on its own.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from highway_env import utils
from highway_env.envs.common.observation import KinematicObservation
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.road.lane import AbstractLane, CircularLane, StraightLane
from highway_env.road.regulation import RegulatedRoad
from highway_env.road.road import RoadNetwork
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import ControlledVehicle, MDPVehicle
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import Landmark, RoadObject

from interp.errors import HypodriveError
from interp.simulation import kernels

VERIFIED_VERSIONS = ("1.12.1",)
MARGIN = 1e-6  # decisions closer than this to a threshold or a tie are re-taken by highway-env's own code
TWO_PI = 2 * np.pi
USE_KERNELS = kernels.AVAILABLE  # the compiled decision kernels (interp.simulation.kernels), else numpy; tests flip it


class FastSimUnavailable(HypodriveError, RuntimeError):
    """The fast simulator cannot be installed on this env; use the plain simulator."""


# ---------------------------------------------------------------------------------------------- install

def highway_env_version() -> str:
    import highway_env

    return str(getattr(highway_env, "__version__", "unknown"))


def check_supported(env) -> None:
    """Raise ``FastSimUnavailable`` unless ``env`` is an intersection-v0 env on a verified highway-env."""
    version = highway_env_version()
    if version not in VERIFIED_VERSIONS:
        raise FastSimUnavailable(
            f"interp.fastsim was verified bit-for-bit against highway-env {', '.join(VERIFIED_VERSIONS)} only, "
            f"and highway-env {version} is installed: use the plain simulator (fast_sim=False), or install "
            f"highway-env=={VERIFIED_VERSIONS[-1]}, or re-verify with tests/test_fastsim.py (-m slow) and add "
            "the version to interp.fastsim.VERIFIED_VERSIONS"
        )
    unwrapped = getattr(env, "unwrapped", env)
    if type(unwrapped) not in _FAST_ENV and type(unwrapped) not in _FAST_ENV.values():
        raise FastSimUnavailable(
            f"interp.fastsim supports intersection-v0 (highway_env IntersectionEnv) only, not "
            f"{type(unwrapped).__module__}.{type(unwrapped).__qualname__}: use the plain simulator (fast_sim=False)"
        )


def enable(env):
    """Accelerate this env instance (idempotent); returns ``env``. Raises ``FastSimUnavailable``."""
    check_supported(env)
    unwrapped = env.unwrapped
    if is_enabled(env):
        return env
    unwrapped.__class__ = _FAST_ENV[type(unwrapped)]
    if USE_KERNELS:
        kernels.warm_up()
    for name in ("road", "observation_type"):  # convert what exists already through the descriptors
        if name in unwrapped.__dict__:
            setattr(unwrapped, name, unwrapped.__dict__[name])
    return env


install = enable


def disable(env):
    """Give this env instance back its plain highway-env classes; returns ``env``. Copies made while it was
    enabled stay accelerated."""
    unwrapped = env.unwrapped
    if not is_enabled(env):
        return env
    road = unwrapped.__dict__.get("road")
    if road is not None:
        _restore(road)
        _restore(getattr(road, "network", None))
    _restore(unwrapped.__dict__.get("observation_type"))
    _restore(unwrapped)
    return env


def is_enabled(env) -> bool:
    return isinstance(getattr(env, "unwrapped", env), FastIntersectionEnv)


@contextlib.contextmanager
def fast_sim(env) -> Iterator[Any]:
    """``with fast_sim(env): ...`` runs the block accelerated and restores the plain classes afterwards."""
    was_enabled = is_enabled(env)
    enable(env)
    try:
        yield env
    finally:
        if not was_enabled:
            disable(env)


def _restore(obj) -> None:
    if obj is None:
        return
    plain = _PLAIN.get(type(obj))
    if plain is not None:
        for key in [k for k in obj.__dict__ if k.startswith("_fastsim")]:
            del obj.__dict__[key]
        obj.__class__ = plain


# ---------------------------------------------------------------------------------------------- lane geometry

ufunc_clip = getattr(getattr(getattr(np, "_core", None), "umath", None), "clip", np.clip)  # what np.clip calls, minus
# its Python-level dispatch (~8 us a call on a scalar); tests/test_fastsim.py checks it equals np.clip


_SCRATCH: dict = {}


def _scratch(key: tuple, make):
    """Output arrays for a kernel, made once per ``key`` (kernel and shape) and reused: only for results read
    at once and never kept (a kernel call fills every entry it returns)."""
    arrays = _SCRATCH.get(key)
    if arrays is None:
        arrays = _SCRATCH[key] = make()
    return arrays


class LaneTable:
    """The geometry of straight and circular lanes as arrays, for the lane coordinates of many points against
    many lanes in one numpy computation (the formulas of the lanes' own ``local_coordinates``; the results
    are only ever compared with a margin, never stored)."""

    def __init__(self, lanes: list) -> None:
        self.lanes = lanes
        n = len(lanes)
        self.straight = np.array([type(lane) is StraightLane for lane in lanes], dtype=bool)
        self.origin = np.zeros((n, 2))      # straight: start, circular: center
        self.axis = np.zeros((n, 2))        # straight: direction
        self.normal = np.zeros((n, 2))      # straight: direction_lateral
        self.heading = np.zeros(n)          # straight: heading
        self.radius = np.ones(n)            # circular
        self.phase = np.zeros(n)            # circular: start_phase
        self.sense = np.ones(n)             # circular: direction (+1 clockwise, -1 counter-clockwise)
        self.length = np.array([float(lane.length) for lane in lanes])
        self.half_width = np.array([float(lane.width) / 2 for lane in lanes])
        self.vehicle_length = np.array([float(lane.VEHICLE_LENGTH) for lane in lanes])
        for i, lane in enumerate(lanes):
            if self.straight[i]:
                self.origin[i], self.axis[i], self.normal[i] = lane.start, lane.direction, lane.direction_lateral
                self.heading[i] = lane.heading
            elif type(lane) is CircularLane:
                self.origin[i] = lane.center
                self.radius[i], self.phase[i], self.sense[i] = lane.radius, lane.start_phase, lane.direction
            else:
                raise TypeError(f"no vectorised geometry for {type(lane).__name__}")
        self.all_straight = bool(self.straight.all())
        self.straight_column = {id(lane): k for k, lane in enumerate(lanes) if self.straight[k]}
        # derived constants, so that a frame's computation is as few numpy operations as possible
        self.circular = ~self.straight
        self.origin_x, self.origin_y = self.origin[:, 0].copy(), self.origin[:, 1].copy()
        self.axis_x, self.axis_y = self.axis[:, 0].copy(), self.axis[:, 1].copy()
        self.normal_x, self.normal_y = self.normal[:, 0].copy(), self.normal[:, 1].copy()
        self.pi_minus_phase = np.pi - self.phase
        self.sense_radius = self.sense * self.radius
        self.sense_per_radius = self.sense / self.radius
        self.heading_offset = self.phase + np.pi / 2 * self.sense  # circular heading_at(s) = s*sense/radius + this
        self.half_length = self.length / 2
        self.wrap_limit = np.pi - MARGIN / self.radius  # |wrapped - pi| beyond this: may wrap around
        self.width_limit = self.half_width + 1          # Road.neighbour_vehicles: on_lane(margin=1)
        self.end_limit = self.length + self.vehicle_length

    @classmethod
    def of(cls, lanes: list) -> LaneTable | None:
        try:
            return cls(lanes) if lanes else None
        except (TypeError, AttributeError, ValueError):
            return None

    def coordinates(self, points: np.ndarray):
        """(longitudinal, lateral, unsure), each [n_points, n_lanes], of ``points`` [n_points, 2].

        ``unsure`` marks circular lanes where a point lies within ``MARGIN`` of the angle at which the
        longitudinal coordinate wraps around (a rounding difference could move it by a full turn there)."""
        if USE_KERNELS:
            return kernels.lane_coordinates(np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]),
                                            self.straight, self.origin_x, self.origin_y, self.axis_x, self.axis_y,
                                            self.normal_x, self.normal_y, self.pi_minus_phase, self.sense_radius,
                                            self.sense, self.wrap_limit)
        dx = points[:, 0:1] - self.origin_x
        dy = points[:, 1:2] - self.origin_y
        lon = dx * self.axis_x + dy * self.axis_y
        lat = dx * self.normal_x + dy * self.normal_y
        if self.all_straight:
            return lon, lat, np.zeros(lon.shape, dtype=bool)
        wrapped = (np.arctan2(dy, dx) + self.pi_minus_phase) % TWO_PI  # wrap_to_pi(phi - phase) + pi
        lon = np.where(self.straight, lon, (wrapped - np.pi) * self.sense_radius)
        lat = np.where(self.straight, lat, self.sense_radius - self.sense * np.hypot(dx, dy))
        unsure = self.circular & (np.abs(wrapped - np.pi) > self.wrap_limit)
        return lon, lat, unsure

    def points_at(self, columns: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([k, 2] centre-line points, [k] headings) of lanes ``columns`` at longitudinal ``lon`` (the lanes'
        ``position(lon, 0)`` and ``heading_at(lon)``)."""
        origin = self.origin[columns]
        straight = origin + lon[:, None] * self.axis[columns]
        if self.all_straight:
            return straight, self.heading[columns]
        radius = self.radius[columns]
        phi = self.sense[columns] * lon / radius + self.phase[columns]
        circular = origin + radius[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
        is_straight = self.straight[columns]
        return (np.where(is_straight[:, None], straight, circular),
                np.where(is_straight, self.heading[columns], phi + np.pi / 2 * self.sense[columns]))

    def closest(self, points: np.ndarray, headings: np.ndarray | None, coordinates=None) -> list[int | None]:
        """Per point, the position in ``lanes`` of the lane ``RoadNetwork.get_closest_lane_index`` picks
        (smallest ``distance_with_heading``, first on ties), or None where the caller must ask the plain
        search. Lanes within ``MARGIN`` of the best are compared by their own ``distance_with_heading``.
        ``coordinates``: this table's ``coordinates(points)`` if already computed."""
        lon, lat, unsure = coordinates if coordinates is not None else self.coordinates(points)
        if USE_KERNELS:
            n, m = lon.shape
            found, best, plain, distance = _scratch(("closest", n, m), lambda: (
                np.empty(n, dtype=np.int64), np.empty(n), np.empty(n, dtype=np.bool_), np.empty((n, m))))
            n_plain = kernels.closest_lanes(
                lon, lat, unsure, headings if headings is not None else self.heading[:0], headings is not None,
                self.straight, self.half_length, self.heading, self.sense_per_radius, self.heading_offset, MARGIN,
                found, best, plain, distance)
            if not n_plain:
                return found.tolist()
            return self._decide(found, best, np.flatnonzero(plain).tolist(), distance, unsure, points, headings)
        # |r| + max(s - length, 0) + max(-s, 0) (+ |wrap_to_pi(heading - heading_at(s))|)
        distance = np.abs(lat) + np.maximum(np.abs(lon - self.half_length) - self.half_length, 0.0)
        if headings is not None:
            lane_heading = self.heading if self.all_straight else np.where(
                self.straight, self.heading, lon * self.sense_per_radius + self.heading_offset)
            distance += np.abs((headings[:, None] - lane_heading + np.pi) % TWO_PI - np.pi)
        any_unsure = bool(unsure.any())
        sure = np.where(unsure, np.inf, distance) if any_unsure else distance
        if sure.shape[1] < 2:
            found, best, runner_up = sure.argmin(axis=1), sure[:, 0], np.full(len(sure), np.inf)
        else:
            found, best, runner_up = _two_smallest(sure)
        plain = (runner_up <= best + MARGIN) | ~np.isfinite(best)
        if any_unsure:
            plain |= np.logical_or.reduce(unsure, axis=1)
        return self._decide(found, best, np.flatnonzero(plain).tolist(), distance, unsure, points, headings)

    def _decide(self, found, best, plain_rows: list[int], distance, unsure, points, headings) -> list[int | None]:
        """``closest``'s answers: ``found`` except in ``plain_rows``, decided among the lanes within ``MARGIN``
        of the best by their own ``distance_with_heading`` (None where no best is finite)."""
        out: list[int | None] = found.tolist()
        for row in plain_rows:
            if not np.isfinite(best[row]):
                out[row] = None
                continue
            lanes = np.flatnonzero(unsure[row] | (distance[row] <= best[row] + MARGIN))
            heading = None if headings is None else headings[row]
            exact = [self.lanes[i].distance_with_heading(points[row], heading) for i in lanes]
            out[row] = int(lanes[int(np.argmin(exact))])
        return out


# ---------------------------------------------------------------------------------------------- road network

class FastRoadNetwork(RoadNetwork):
    """A ``RoadNetwork`` whose closest-lane search computes every lane's distance in one array operation
    (for one point, or for all vehicles of a frame at once)."""

    def add_lane(self, _from: str, _to: str, lane) -> None:
        self.__dict__.pop("_fastsim_lanes", None)
        super().add_lane(_from, _to, lane)

    def lane_table(self) -> tuple[list, LaneTable | None, dict]:
        """(lane indexes in graph order, their ``LaneTable`` or None, {lane index: column}); built once."""
        cached = self.__dict__.get("_fastsim_lanes")
        if cached is None:
            indexes = [(_from, _to, _id) for _from, to_dict in self.graph.items()
                       for _to, lanes in to_dict.items() for _id in range(len(lanes))]
            table = LaneTable.of([self.graph[a][b][i] for a, b, i in indexes])
            cached = self.__dict__["_fastsim_lanes"] = (indexes, table, {index: k for k, index in enumerate(indexes)})
        return cached

    def get_closest_lane_index(self, position: np.ndarray, heading: float | None = None):
        return self.closest_lane_indexes([position], None if heading is None else [heading])[0]

    def closest_lane_indexes(self, positions: list, headings: list | None, coordinates=None,
                             with_lanes: bool = False) -> list:
        """``get_closest_lane_index`` of every (position, heading) pair, in one computation
        (``coordinates``: the lane table's ``coordinates`` of ``positions`` if already computed;
        ``with_lanes``: (lane index, ``get_lane`` of it) pairs, the table's lane objects, which are the graph's)."""
        indexes, table, _ = self.lane_table()
        points = positions if type(positions) is np.ndarray else np.array(positions, dtype=np.float64)
        if table is None or points.shape != (len(positions), 2) or len(positions) == 0:
            found = [super(FastRoadNetwork, self).get_closest_lane_index(p, None if headings is None else h)
                     for p, h in zip(positions, [None] * len(positions) if headings is None else headings)]
            return [(index, self.get_lane(index)) for index in found] if with_lanes else found
        found = table.closest(points, None if headings is None else np.asarray(headings, dtype=np.float64),
                              coordinates)
        if with_lanes:
            lanes = table.lanes
            return [(indexes[k], lanes[k]) if k is not None else
                    self._plain_closest_with_lane(positions[row], None if headings is None else headings[row])
                    for row, k in enumerate(found)]
        return [indexes[k] if k is not None else
                super(FastRoadNetwork, self).get_closest_lane_index(positions[row], None if headings is None
                                                                    else headings[row])
                for row, k in enumerate(found)]

    def _plain_closest_with_lane(self, position, heading) -> tuple:
        index = super(FastRoadNetwork, self).get_closest_lane_index(position, heading)
        return index, self.get_lane(index)


# ---------------------------------------------------------------------------------------------- road

def _positions(objects: list) -> np.ndarray:
    return np.array([o.position for o in objects], dtype=np.float64).reshape(len(objects), 2)


# Small-array numpy: elementwise ufuncs cost well under a microsecond, while axis reductions, np.triu,
# np.nonzero and count_nonzero(axis=...) cost several; the helpers below avoid the latter in hot paths.

_UPPER: dict[int, np.ndarray] = {}


def _upper(n: int) -> np.ndarray:
    """The strictly upper triangular [n, n] boolean mask (pairs i < j), cached."""
    if n not in _UPPER:
        _UPPER[n] = np.triu(np.ones((n, n), dtype=bool), k=1)
    return _UPPER[n]


def _pairs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(i, j) of the True entries of an [n, n] mask, in row-major order."""
    n = mask.shape[1]
    return [divmod(k, n) for k in np.flatnonzero(mask).tolist()]


def _two_smallest(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of [m, k] values (k >= 2): (index of the smallest, the smallest, the runner-up)."""
    best = values.argmin(axis=1)
    two = np.partition(values, 1, axis=1)
    return best, two[:, 0], two[:, 1]


class FastRegulatedRoad(RegulatedRoad):
    """A ``RegulatedRoad`` that steps all vehicles of a frame together and answers its pairwise questions
    (road rules, collisions, neighbours, perception) from array computations over all vehicles; every
    doubtful case goes to highway-env's own code."""

    # ------------------------------------------------------------------ act

    def act(self) -> None:
        """``Road.act``: every vehicle decides, in order. The vehicles' front/rear neighbours on their own
        lanes are computed for all at once first (positions do not change while vehicles decide)."""
        frame = _Frame.of(self)
        if frame is not None:
            self.__dict__["_fastsim_frame"] = frame
        try:
            if frame is not None and _ufuncs_elementwise_exact():
                _act_together(self.vehicles, frame if _straight_coordinates_exact() else None)
                return
            for vehicle in self.vehicles:
                kind = type(vehicle)
                if kind is IDMVehicle:
                    _idm_act(vehicle)
                elif kind is MDPVehicle:
                    _controlled_act(vehicle)
                else:
                    vehicle.act()
        finally:
            self.__dict__.pop("_fastsim_frame", None)

    # ------------------------------------------------------------------ step

    def step(self, dt: float) -> None:
        """``RegulatedRoad.step``: road rules every few frames, then ``Road.step`` (move, then collide)."""
        self.steps += 1
        if self.steps % int(1 / dt / self.REGULATION_FREQUENCY) == 0:
            self.enforce_road_rules()
        self._handle_collisions(dt, self._move(dt))

    def lane_coordinates(self, objects: list, points: np.ndarray | None = None):
        """(positions [n, 2], and the network lane table's (lon, lat, unsure) of them) or None (``points``: the
        objects' positions, if known). The last result is kept: the next frame's decisions start from the
        positions this frame's move ended at."""
        if not isinstance(self.network, FastRoadNetwork):
            return None
        _, table, _ = self.network.lane_table()
        if table is None:
            return None
        if points is None:
            points = _positions(objects)
        cached = self.__dict__.get("_fastsim_coordinates")
        if (cached is not None and cached[0] is table and cached[1].shape == points.shape
                and cached[1].tobytes() == points.tobytes()):  # the same bits: the same coordinates
            return cached[1:]
        result = (points, *table.coordinates(points))
        self.__dict__["_fastsim_coordinates"] = (table, *result)
        return result

    def _move(self, dt: float):
        """Every vehicle's ``step(dt)``. For IDM and MDP vehicles (whose ``step`` is ``Vehicle.step``, plus
        the IDM timer) the kinematics run per vehicle as there, then all closest-lane searches at once: a
        vehicle's kinematics never read another vehicle's lane, so deferring the searches changes nothing.
        Returns, where the kinematics ran on arrays, [vehicles, x, y, heading, speed, diagonal, length, width]
        (contiguous arrays) of where they ended, the collision prefilter's inputs (``_handle_collisions``),
        else None."""
        vehicles = self.vehicles
        network = self.network
        if (self.record_history or not isinstance(network, FastRoadNetwork)
                or not set(map(type, vehicles)) <= _MOVABLE_SET or not all(v.road is self for v in vehicles)):
            for vehicle in vehicles:
                vehicle.step(dt)
            return None
        if not vehicles:
            return None
        for vehicle in vehicles:
            if type(vehicle) is IDMVehicle:
                vehicle.timer += dt
        moved = None
        if _ufuncs_elementwise_exact():
            moved = [list(vehicles)]
            points, headings = kinematics_together(vehicles, dt, moved)
        else:
            for vehicle in vehicles:
                kinematics_scalar(vehicle, dt)
            points, headings = None, [v.heading for v in vehicles]
        computed = self.lane_coordinates(vehicles, points)
        lanes = network.closest_lane_indexes([v.position for v in vehicles] if points is None else points, headings,
                                             computed[1:] if computed is not None else None, with_lanes=True)
        for vehicle, (lane_index, lane) in zip(vehicles, lanes):
            vehicle.lane_index = lane_index
            vehicle.lane = lane
        return moved

    def _handle_collisions(self, dt: float, moved=None) -> None:
        """Every pair (i < j) in ``Road.step``'s order, skipping those farther apart than
        ``RoadObject._is_colliding``'s spherical pre-check (which then reports no collision and changes
        nothing). ``moved``: ``_move``'s return value (the vehicles' states as it left them, read instead of
        the vehicles where the vehicle list is still the same)."""
        vehicles = self.vehicles
        if moved is not None and moved[0] == vehicles:  # all of _MOVABLE's types, as _move checked
            plain = all(kind.handle_collisions is RoadObject.handle_collisions
                        and kind._is_colliding is RoadObject._is_colliding for kind in _MOVABLE)
        else:
            moved = None
            plain = all(kind.handle_collisions is RoadObject.handle_collisions
                        and kind._is_colliding is RoadObject._is_colliding for kind in set(map(type, vehicles)))
        if self.objects or not plain:
            for i, vehicle in enumerate(vehicles):
                for other in vehicles[i + 1:]:
                    vehicle.handle_collisions(other, dt)
                for other in self.objects:
                    vehicle.handle_collisions(other, dt)
            return
        if len(vehicles) < 2:
            return
        if USE_KERNELS:
            if moved is not None:
                _, x, y, heading, speed, diagonal, length, width = moved
            else:
                x, y, heading, speed, diagonal, length, width = np.array(
                    [(v.position[0], v.position[1], v.heading, v.speed, v.diagonal, v.LENGTH, v.WIDTH)
                     for v in vehicles], dtype=np.float64).T.copy()  # one contiguous row per quantity
            n = len(vehicles)
            first, second = _scratch(("collisions", n), lambda: (np.empty(n * (n - 1) // 2, dtype=np.int64),
                                                                 np.empty(n * (n - 1) // 2, dtype=np.int64)))
            count = kernels.collision_candidates(x, y, heading, speed, diagonal, length, width, float(dt), MARGIN,
                                                 first, second)
            if not count:
                return
            for i, j in zip(first[:count].tolist(), second[:count].tolist()):
                vehicles[i].handle_collisions(vehicles[j], dt)
            return
        points = _positions(vehicles)
        delta = points[None, :] - points[:, None]
        distance = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)
        diagonal = np.array([v.diagonal for v in vehicles], dtype=np.float64)
        speed = np.array([v.speed for v in vehicles], dtype=np.float64)
        reach = (diagonal[:, None] + diagonal[None, :]) / 2 + (speed * dt)[:, None]
        pairs = _pairs((distance <= reach + MARGIN) & _upper(len(vehicles)))  # the nested loops' order
        if not pairs:
            return
        first, second = (np.array(k) for k in zip(*pairs))
        heading = np.array([v.heading for v in vehicles], dtype=np.float64)
        size = np.array([(v.LENGTH, v.WIDTH) for v in vehicles], dtype=np.float64)
        apart = separated(points[first], heading[first], size[first], speed[first] * dt,
                           points[second], heading[second], size[second], speed[second] * dt)
        for (i, j), skip in zip(pairs, apart.tolist()):
            if not skip:
                vehicles[i].handle_collisions(vehicles[j], dt)

    # ------------------------------------------------------------------ regulation

    def enforce_road_rules(self) -> None:
        """``RegulatedRoad.enforce_road_rules``: release the vehicles whose yield is over, then, for every pair
        (i < j, in order) that may conflict, make the one without priority yield. Which pairs may conflict
        (``RegulatedRoad.is_conflict_possible``) comes from one table for all pairs (``_conflict_table``)."""
        for v in self.vehicles:
            if getattr(v, "is_yielding", False):
                if v.yield_timer >= self.YIELD_DURATION * self.REGULATION_FREQUENCY:
                    v.target_speed = v.lane.speed_limit
                    delattr(v, "color")
                    v.is_yielding = False
                else:
                    v.yield_timer += 1
        vehicles = self.vehicles
        conflicts = self._conflict_table()
        if conflicts is None:  # the plain test, pair by pair as the yields are applied (it raises where it raises)
            conflicts = ((i, j) for i in range(len(vehicles) - 1) for j in range(i + 1, len(vehicles))
                         if RegulatedRoad.is_conflict_possible(vehicles[i], vehicles[j]))
        for i, j in conflicts:
            yielding = self.respect_priorities(vehicles[i], vehicles[j])
            if isinstance(yielding, ControlledVehicle) and not isinstance(yielding, MDPVehicle):
                yielding.color = self.YIELDING_COLOR
                yielding.target_speed = 0
                yielding.is_yielding = True
                yielding.yield_timer = 0

    def _conflict_table(self, horizon: int = 3, step: float = 0.25) -> list[tuple[int, int]] | None:
        """The pairs (i, j), i < j, in order, of ``self.vehicles`` for which ``is_conflict_possible`` holds,
        or None where the plain test must decide (it raised here; it will raise there too).

        ``is_conflict_possible`` predicts both vehicles' constant-speed positions along their routes at 11
        instants and, at each instant, skips the pair if the centres are more than a car length apart, else
        checks the (enlarged) rectangles with ``utils.rotated_rectangles_intersect``. Here all vehicles are
        predicted at once (the route walk as there, the lane geometry by ``LaneTable.points_at``) and both
        checks are evaluated on arrays for the instants within a car length; an instant that passes or
        fails both by more than ``MARGIN`` is decided, the others go through the plain loop's own checks on
        highway-env's own prediction of the two vehicles (``_conflict_at``)."""
        vehicles = list(self.vehicles)
        n = len(vehicles)
        if n < 2:
            return []
        times = np.arange(step, horizon, step)
        exact = [_Prediction(v, times) for v in vehicles]
        try:
            centres, headings = _predictions(self.network, vehicles, times, exact,
                                             self.lane_coordinates(vehicles) if USE_KERNELS else None)
            length = np.array([v.LENGTH for v in vehicles], dtype=np.float64)
            if USE_KERNELS:
                size = np.array([(1.5 * v.LENGTH, 0.9 * v.WIDTH) for v in vehicles], dtype=np.float64)
                i, j, t, certain, doubtful = kernels.conflict_checks(centres, headings, length, size, MARGIN,
                                                                     kernels.RECT_POINTS)
                return self._conflicts(vehicles, exact, i, j, t, certain, doubtful)
            delta = centres[None, :] - centres[:, None]                                    # [n, n, T, 2]
            apart = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2) - length[:, None, None]
            near = (apart <= MARGIN) & _upper(n)[..., None]
            if not near.any():
                return []
            i, j, t = np.unravel_index(np.flatnonzero(near), near.shape)
            size = np.array([(1.5 * v.LENGTH, 0.9 * v.WIDTH) for v in vehicles], dtype=np.float64)
            a = (centres[i, t], headings[i, t], size[i])
            b = (centres[j, t], headings[j, t], size[j])
            inside = np.maximum(inside_margin(*a, *b).max(axis=1), inside_margin(*b, *a).max(axis=1))
            certain = (apart[i, j, t] < -MARGIN) & (inside > MARGIN)   # both checks pass by a margin
            doubtful = (inside >= -MARGIN) & ~certain                  # neither a margin pass nor a margin miss
            return self._conflicts(vehicles, exact, i, j, t, certain, doubtful)
        except Exception:  # noqa: BLE001 - the plain pairwise test then raises it where highway-env does
            return None

    @staticmethod
    def _conflicts(vehicles: list, exact: list, i, j, t, certain, doubtful) -> list[tuple[int, int]]:
        """The conflicting pairs, sorted, from the (pair, instant) entries within a car length: certain ones,
        and the doubtful ones that highway-env's own checks confirm (``_conflict_at``)."""
        conflicts, to_check = set(), {}
        for pair_i, pair_j, instant, yes, check in zip(i.tolist(), j.tolist(), t.tolist(), certain.tolist(),
                                                       doubtful.tolist()):
            if yes:
                conflicts.add((pair_i, pair_j))
            elif check:
                to_check.setdefault((pair_i, pair_j), []).append(instant)
        for (pair_i, pair_j), instants in to_check.items():
            if (pair_i, pair_j) not in conflicts and _conflict_at(
                    vehicles[pair_i], vehicles[pair_j], exact[pair_i], exact[pair_j], instants):
                conflicts.add((pair_i, pair_j))
        return sorted(conflicts)

    # ------------------------------------------------------------------ perception

    def close_objects_to(self, vehicle, distance: float, count: int | None = None, see_behind: bool = True,
                         sort: bool = True, vehicles_only: bool = False) -> object:
        """``Road.close_objects_to``: the same objects in the same order; the distance and 'not far behind'
        tests are computed at once and re-taken by the plain expressions within ``MARGIN`` of their
        thresholds."""
        vehicles = [v for v, keep in zip(self.vehicles, self._within(vehicle, self.vehicles, distance, see_behind))
                    if keep and v is not vehicle]
        objects_ = vehicles if vehicles_only else vehicles + [
            o for o, keep in zip(self.objects, self._within(vehicle, self.objects, distance, False)) if keep]
        if sort:
            objects_ = sorted(objects_, key=lambda o: abs(vehicle.lane_distance_to(o)))
        if count:
            objects_ = objects_[:count]
        return objects_

    def _within(self, vehicle, objects: list, distance: float, see_behind: bool) -> list[bool]:
        """For each object: closer than ``distance`` to ``vehicle`` and (unless ``see_behind``) not more than
        two car lengths behind it along its lane, as ``Road.close_objects_to`` decides."""
        if not objects:
            return []

        def plain(o) -> bool:
            return bool(np.linalg.norm(o.position - vehicle.position) < distance
                        and (see_behind or -2 * vehicle.LENGTH < vehicle.lane_distance_to(o)))

        computed = self.lane_coordinates(objects)
        if computed is None:
            return [plain(o) for o in objects]
        points, lon, _, unsure = computed
        delta = points - np.asarray(vehicle.position, dtype=np.float64)
        radius = np.hypot(delta[:, 0], delta[:, 1]) - distance
        keep = radius < 0
        doubtful = (np.abs(radius) <= MARGIN) | ~np.isfinite(radius)
        if not see_behind:
            _, _, columns = self.network.lane_table()
            column = columns.get(vehicle.lane_index)
            if (column is None or vehicle.lane is not self.network.get_lane(vehicle.lane_index)
                    or type(vehicle).lane_distance_to is not RoadObject.lane_distance_to):
                return [plain(o) for o in objects]
            own = vehicle.lane.local_coordinates(vehicle.position)[0]
            behind = lon[:, column] - own + 2 * vehicle.LENGTH
            keep &= behind > 0
            doubtful |= (np.abs(behind) <= MARGIN) | unsure[:, column] | ~np.isfinite(behind)
        return [plain(o) if doubt else k for o, k, doubt in zip(objects, keep.tolist(), doubtful.tolist())]


_MOVABLE = (IDMVehicle, MDPVehicle)
_MOVABLE_SET = frozenset(_MOVABLE)


class _Frame:
    """Every IDM vehicle's front vehicle on its own lane (``Road.neighbour_vehicles(v, v.lane_index)[0]``, all
    an IDM vehicle's decision reads), computed for all vehicles of a frame at once from all objects'
    coordinates on all lanes. ``fronts[id(vehicle)]`` is (lane index, front or None), absent where a
    decision is within ``MARGIN`` of a threshold or a tie (the plain search then answers). A front vehicle
    on another lane (a vehicle's target lane while it changes lanes) is asked of ``front_on``."""

    def __init__(self, objects: list, askers: list[tuple[int, int]], table: LaneTable, coordinates,
                 columns: dict | None = None) -> None:
        self.fronts: dict[int, tuple] = {}
        _, lon, lat, unsure = coordinates
        # for _lane_coordinates: every object's exact coordinates on the straight lanes
        self.row = {id(o): k for k, o in enumerate(objects)}
        self.lon, self.lat, self.straight_column = lon, lat, table.straight_column
        self.objects, self.table, self.unsure, self.columns = objects, table, unsure, columns or {}
        me = np.array([a for a, _ in askers], dtype=np.int64)
        lane = np.array([c for _, c in askers], dtype=np.int64)
        if USE_KERNELS:
            n = len(askers)
            front, doubtful = _scratch(("fronts", n), lambda: (np.empty(n, dtype=np.int64),
                                                               np.empty(n, dtype=np.bool_)))
            kernels.fronts(lon, lat, unsure, me, lane, table.width_limit, table.vehicle_length, table.end_limit,
                           MARGIN, front, doubtful)
            for (a, _), k, doubt in zip(askers, front.tolist(), doubtful.tolist()):
                if not doubt:
                    asker = objects[a]
                    self.fronts[id(asker)] = (asker.lane_index, objects[k] if k >= 0 else None)
            return
        rows = np.arange(len(me))
        s = lon.take(lane, axis=1).T                             # [askers, objects]: along the asker's lane
        width_edge = np.abs(lat.take(lane, axis=1).T) - table.width_limit.take(lane)[:, None]
        start_edge = s + table.vehicle_length.take(lane)[:, None]
        end_edge = s - table.end_limit.take(lane)[:, None]
        gap = s - s[rows, me][:, None]
        on = (width_edge <= 0) & (start_edge >= 0) & (end_edge < 0)   # lane.on_lane(margin=1)
        on[rows, me] = False
        edge = np.minimum(np.minimum(np.abs(width_edge), np.abs(start_edge)), np.abs(end_edge))
        doubt = (edge <= MARGIN) | (on & (np.abs(gap) <= MARGIN))
        doubt[rows, me] = False
        doubtful = np.logical_or.reduce(doubt, axis=1)
        if unsure.any() or not np.isfinite(s).all():
            doubtful |= np.logical_or.reduce(unsure.take(lane, axis=1).T | ~np.isfinite(s), axis=1)
        front, front_gap, runner_up = _two_smallest(np.where(on & (gap > 0), gap, np.inf))
        has_front = np.isfinite(front_gap)
        doubtful |= has_front & (runner_up <= front_gap + MARGIN)
        for row in np.flatnonzero(~doubtful).tolist():
            asker = objects[askers[row][0]]
            self.fronts[id(asker)] = (asker.lane_index, objects[front[row]] if has_front[row] else None)

    @classmethod
    def of(cls, road) -> _Frame | None:
        """A frame for ``road.act()``, or None where its vehicles' decisions might move a vehicle or where
        the neighbour search is not the same-segment one."""
        network = road.network
        if road.neighbour_vehicles_connected_lanes or not isinstance(network, FastRoadNetwork):
            return None
        if not set(map(type, road.vehicles)) <= _MOVABLE_SET or not all(v.road is road for v in road.vehicles):
            return None
        _, table, columns = network.lane_table()
        # the vehicles (IDM or MDP, never landmarks) first, at their own positions in the list
        objects = road.vehicles + [o for o in road.objects if not isinstance(o, Landmark)]
        askers = [(k, columns[v.lane_index]) for k, v in enumerate(road.vehicles)
                  if type(v) is IDMVehicle and v.lane_index in columns]
        if table is None or not askers or len(objects) < 2:
            return None
        return cls(objects, askers, table, road.lane_coordinates(objects), columns)

    def front_on(self, vehicle, lane_index) -> object:
        """``Road.neighbour_vehicles(vehicle, lane_index)[0]`` by the compiled kernel (the same decision and
        margins as for the own lanes), or ``_UNKNOWN`` where the plain search must answer."""
        row, column = self.row.get(id(vehicle)), self.columns.get(lane_index)
        if not USE_KERNELS or row is None or column is None:
            return _UNKNOWN
        front, doubtful = np.empty(1, dtype=np.int64), np.empty(1, dtype=np.bool_)
        kernels.fronts(self.lon, self.lat, self.unsure, np.array([row], dtype=np.int64),
                       np.array([column], dtype=np.int64), self.table.width_limit, self.table.vehicle_length,
                       self.table.end_limit, MARGIN, front, doubtful)
        if doubtful[0]:
            return _UNKNOWN
        k = int(front[0])
        return self.objects[k] if k >= 0 else None


_UNKNOWN = object()  # _Frame.front_on: no answer, ask highway-env


class _Prediction:
    """A vehicle's ``predict_trajectory_constant_speed(times)``, evaluated exactly and only at the instants
    asked for: ``ControlledVehicle``'s prediction is one ``position_heading_along_route`` call per instant
    (the same call, with the same arguments), any other prediction is computed whole once."""

    def __init__(self, vehicle, times: np.ndarray) -> None:
        self.vehicle, self.times = vehicle, times
        self.per_instant = (type(vehicle).predict_trajectory_constant_speed
                            is ControlledVehicle.predict_trajectory_constant_speed)
        self.start = self.whole = None
        self.known: dict[int, tuple] = {}

    def at(self, k: int) -> tuple:
        """(position, heading) at instant ``times[k]``."""
        if k not in self.known:
            v = self.vehicle
            if self.per_instant:
                if self.start is None:
                    self.start = v.lane.local_coordinates(v.position)[0]
                self.known[k] = v.road.network.position_heading_along_route(
                    v.route or [v.lane_index], self.start + v.speed * self.times[k], 0, v.lane_index)
            else:
                whole = self.prediction()
                self.known[k] = (whole[0][k], whole[1][k])
        return self.known[k]

    def prediction(self) -> tuple:
        if self.whole is None:
            self.whole = self.vehicle.predict_trajectory_constant_speed(self.times)
        return self.whole


def _predictions(network, vehicles: list, times: np.ndarray, exact: list[_Prediction], coordinates=None):
    """([n, T, 2] centres, [n, T] headings) of ``predict_trajectory_constant_speed(times)``, to a rounding
    error: for ``ControlledVehicle``'s prediction the route walk of ``position_heading_along_route`` (same
    arithmetic) and the lane geometry from the lane table; any other vehicle's whole prediction from
    ``exact``. ``coordinates``: the road's ``lane_coordinates`` of ``vehicles``, if known (route walks' starts)."""
    columns: list[int] = []
    lons: list[float] = []
    _, table, column_of = network.lane_table() if isinstance(network, FastRoadNetwork) else (None, None, None)
    walked = []
    centres = np.empty((len(vehicles), len(times), 2))
    headings = np.empty((len(vehicles), len(times)))
    if USE_KERNELS and table is not None:
        return _predictions_kernel(network, vehicles, times, exact, table, column_of, centres, headings, coordinates)
    for k, v in enumerate(vehicles):
        walk = _route_walk(network, v, times, column_of) if table is not None else None
        if walk is None:
            positions, angles = exact[k].prediction()
            centres[k] = np.asarray(positions, dtype=np.float64)
            headings[k] = np.asarray(angles, dtype=np.float64)
        else:
            columns += walk[0]
            lons += walk[1]
        walked.append(walk is not None)
    if columns:
        points, angles = table.points_at(np.array(columns), np.array(lons))
        centres[np.array(walked)] = points.reshape(-1, len(times), 2)
        headings[np.array(walked)] = angles.reshape(-1, len(times))
    return centres, headings


def _predictions_kernel(network, vehicles: list, times: np.ndarray, exact: list[_Prediction], table: LaneTable,
                        column_of: dict, centres: np.ndarray, headings: np.ndarray, coordinates=None):
    """``_predictions`` with the route walks and the lane geometry in one compiled loop
    (``kernels.route_points``)."""
    walked, starts, speeds, routes = [], [], [], []
    lon = unsure = None
    if coordinates is not None and coordinates[1].shape == (len(vehicles), len(table.lanes)):
        _, lon, _, unsure = coordinates
    for k, v in enumerate(vehicles):
        route = _route_heads(network, v, column_of, table, k, lon, unsure)
        if route is None:
            positions, angles = exact[k].prediction()
            centres[k] = np.asarray(positions, dtype=np.float64)
            headings[k] = np.asarray(angles, dtype=np.float64)
            continue
        walked.append(k)
        starts.append(route[0])
        speeds.append(v.speed)
        routes.append(route[1])
    if walked:
        longest = max(len(heads) for heads in routes)
        head_columns = np.zeros((len(walked), longest), dtype=np.int64)
        head_lengths = np.zeros((len(walked), longest))
        for row, heads in enumerate(routes):
            head_columns[row, :len(heads)] = [column for column, _ in heads]
            head_lengths[row, :len(heads)] = [length for _, length in heads]
        points, angles = kernels.route_points(
            np.array(starts, dtype=np.float64), np.array(speeds, dtype=np.float64), head_columns, head_lengths,
            np.array([len(heads) for heads in routes], dtype=np.int64), times, table.straight, table.origin_x,
            table.origin_y, table.axis_x, table.axis_y, table.heading, table.radius, table.phase, table.sense)
        centres[walked] = points
        headings[walked] = angles
    return centres, headings


def _route_heads(network, v, column_of: dict, table: LaneTable | None = None, row: int = 0, lon=None, unsure=None):
    """(longitudinal start, [(lane table column, lane length)] along the route) of ``_route_walk``, or None
    where that is not the vehicle's prediction. The start is read from ``lon`` [vehicles, lanes] (the table's
    coordinates of the vehicles, ``row`` being ``v``'s) where given, the vehicle's lane is the table's and no
    wrap-around is near: it only feeds predictions compared with a margin; else the lane's own
    ``local_coordinates``."""
    if type(v).predict_trajectory_constant_speed is not ControlledVehicle.predict_trajectory_constant_speed:
        return None
    column = column_of.get(v.lane_index) if lon is not None else None
    if column is not None and table.lanes[column] is v.lane and not unsure[row, column]:
        start = float(lon[row, column])
    else:
        start = v.lane.local_coordinates(v.position)[0]
    current = v.lane_index
    heads = []
    for lane_index in v.route or [v.lane_index]:
        if lane_index[2] is None:  # position_heading_along_route: keep the current lane id on that road
            same = current[2] if current[2] < len(network.graph[current[0]][current[1]]) else 0
            lane_index = (lane_index[0], lane_index[1], same)
        column = column_of.get(lane_index)
        if column is None:
            return None
        heads.append((column, float(network.get_lane(lane_index).length)))
    return start, heads


def separated(centre_a, heading_a, size_a, move_a, centre_b, heading_b, size_b, move_b) -> np.ndarray:
    """[k]: whether ``utils.are_polygons_intersecting(a.polygon(), b.polygon(), a.velocity*dt, b.velocity*dt)``
    certainly answers (False, False, None), i.e. ``handle_collisions`` certainly does nothing: some edge
    normal of either rectangle separates them by more than ``MARGIN`` where they are, and some (possibly
    another) separates them by more than ``MARGIN`` once a's interval is stretched by the relative move."""
    axes = np.stack([np.cos(heading_a), np.sin(heading_a), -np.sin(heading_a), np.cos(heading_a),
                     np.cos(heading_b), np.sin(heading_b), -np.sin(heading_b), np.cos(heading_b)],
                    axis=1).reshape(-1, 4, 2)                                     # [k, 4 axes, 2]

    def interval(centre, heading, size):
        along = np.abs(axes @ np.stack([np.cos(heading), np.sin(heading)], axis=1)[:, :, None])[..., 0]
        across = np.abs(axes @ np.stack([-np.sin(heading), np.cos(heading)], axis=1)[:, :, None])[..., 0]
        middle = (axes @ centre[:, :, None])[..., 0]
        half = size[:, 0:1] / 2 * along + size[:, 1:2] / 2 * across
        return middle - half, middle + half

    low_a, high_a = interval(centre_a, heading_a, size_a)
    low_b, high_b = interval(centre_b, heading_b, size_b)
    relative = (move_a[:, None] * np.stack([np.cos(heading_a), np.sin(heading_a)], axis=1)
                - move_b[:, None] * np.stack([np.cos(heading_b), np.sin(heading_b)], axis=1))
    stretch = (axes @ relative[:, :, None])[..., 0]
    now = np.maximum(low_b - high_a, low_a - high_b)
    later = np.maximum(low_b - (high_a + np.maximum(stretch, 0)), (low_a + np.minimum(stretch, 0)) - high_b)
    return np.logical_or.reduce(now > MARGIN, axis=1) & np.logical_or.reduce(later > MARGIN, axis=1)


# utils.rect_corners(include_midpoints=True, include_center=True) as fractions of (length, width)
_RECT_POINTS = np.array([[-.5, -.5], [-.5, .5], [.5, .5], [.5, -.5], [0, 0], [-.5, 0], [.5, 0], [0, -.5], [0, .5]])


def inside_margin(centre_a, heading_a, size_a, centre_b, heading_b, size_b) -> np.ndarray:
    """[k, 9]: how far inside rectangle b each sample point of rectangle a is (negative: outside), as
    ``utils.has_corner_inside(a, b)`` tests them: a's corners, edge midpoints and centre
    (``rect_corners``), each checked with ``point_in_rotated_rectangle`` (including its choice of rotation)."""
    offset_x = _RECT_POINTS[:, 0] * size_a[:, 0:1]
    offset_y = _RECT_POINTS[:, 1] * size_a[:, 1:2]
    cos_a, sin_a = np.cos(heading_a)[:, None], np.sin(heading_a)[:, None]
    dx = centre_a[:, 0:1] + cos_a * offset_x - sin_a * offset_y - centre_b[:, 0:1]
    dy = centre_a[:, 1:2] + sin_a * offset_x + cos_a * offset_y - centre_b[:, 1:2]
    cos_b, sin_b = np.cos(heading_b)[:, None], np.sin(heading_b)[:, None]
    along = cos_b * dx - sin_b * dy
    across = sin_b * dx + cos_b * dy
    return np.minimum(size_b[:, 0:1] / 2 - np.abs(along), size_b[:, 1:2] / 2 - np.abs(across))


def _route_walk(network, v, times: np.ndarray, column_of: dict):
    """(lane table column, longitudinal) per instant along ``v``'s route, as
    ``ControlledVehicle.predict_trajectory_constant_speed`` / ``RoadNetwork.position_heading_along_route``
    walk it, or None where that is not the vehicle's prediction."""
    if type(v).predict_trajectory_constant_speed is not ControlledVehicle.predict_trajectory_constant_speed:
        return None
    start = v.lane.local_coordinates(v.position)[0]
    route = v.route or [v.lane_index]
    current = v.lane_index
    heads = []
    for lane_index in route:
        if lane_index[2] is None:  # position_heading_along_route: keep the current lane id on that road
            same = current[2] if current[2] < len(network.graph[current[0]][current[1]]) else 0
            lane_index = (lane_index[0], lane_index[1], same)
        if lane_index not in column_of:
            return None
        heads.append((column_of[lane_index], float(network.get_lane(lane_index).length)))
    columns, lons = [], []
    for t in times.tolist():
        longitudinal, k = start + v.speed * t, 0
        while k < len(heads) - 1 and longitudinal > heads[k][1]:
            longitudinal -= heads[k][1]
            k += 1
        columns.append(heads[k][0])
        lons.append(longitudinal)
    return columns, lons


def _conflict_at(v1, v2, prediction_1: _Prediction, prediction_2: _Prediction, instants: list[int]) -> bool:
    """``RegulatedRoad.is_conflict_possible``'s loop body at the given instants, on the exact predictions."""
    for t in instants:
        (position_1, heading_1), (position_2, heading_2) = prediction_1.at(t), prediction_2.at(t)
        if np.linalg.norm(position_2 - position_1) > v1.LENGTH:
            continue
        if utils.rotated_rectangles_intersect((position_1, 1.5 * v1.LENGTH, 0.9 * v1.WIDTH, heading_1),
                                              (position_2, 1.5 * v2.LENGTH, 0.9 * v2.WIDTH, heading_2)):
            return True
    return False


# ---------------------------------------------------------------------------------------------- vehicles
# The same scalar operations, in the same order, as highway-env's methods named in each docstring, except
# that ``np.clip(x, a, b)`` is called as the ufunc it dispatches to.

def kinematics_scalar(v, dt: float) -> None:
    """``Vehicle.step`` up to (not including) ``on_state_update``."""
    v.clip_actions()
    beta = np.arctan(1 / 2 * np.tan(v.action["steering"]))
    course = v.heading + beta
    v.position += v.speed * np.array([np.cos(course), np.sin(course)]) * dt
    if v.impact is not None:
        v.position += v.impact
        v.crashed = True
        v.impact = None
    v.heading += v.speed * np.sin(beta) / (v.LENGTH / 2) * dt
    v.speed += v.action["acceleration"] * dt


def kinematics_together(vehicles: list, dt: float, out: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``kinematics_scalar`` of all vehicles, the transcendental functions evaluated on arrays (elementwise the same
    numbers as on scalars, which ``_ufuncs_elementwise_exact`` checks on the running platform). Returns the
    positions [n, 2] and headings [n] the vehicles end at (the same numbers, for the closest-lane search).

    The additions run on arrays too (``position + move``, then ``+ impact``: the same two roundings as the
    in-place ``+=`` there) and each position is written back into its own array, entry by entry.
    ``out`` (a list, optional) is extended by [n] arrays of each vehicle's final x, y, heading, speed (the
    values written back: headings as the kernel's checked sums), diagonal, LENGTH and WIDTH."""
    rows = []
    for v in vehicles:
        if type(v).clip_actions is Vehicle.clip_actions:  # Vehicle.clip_actions, inlined (same dict updates)
            action = v.action
            if v.crashed:
                action["steering"] = 0
                action["acceleration"] = -1.0 * v.speed
            action["steering"] = steering = float(action["steering"])
            acceleration = float(action["acceleration"])
            if v.speed > v.MAX_SPEED:
                acceleration = min(acceleration, 1.0 * (v.MAX_SPEED - v.speed))
            elif v.speed < v.MIN_SPEED:
                acceleration = max(acceleration, 1.0 * (v.MIN_SPEED - v.speed))
            action["acceleration"] = acceleration
        else:
            v.clip_actions()
            steering = v.action["steering"]
        position = v.position
        rows.append((steering, v.heading, v.speed, v.LENGTH / 2, position[0], position[1], v.diagonal, v.LENGTH,
                     v.WIDTH))
    steering, heading, speed, half_length, x, y, diagonal, length, width = np.array(rows, dtype=np.float64).T.copy()
    beta = np.arctan(1 / 2 * np.tan(steering))
    course = heading + beta
    n = len(vehicles)
    if USE_KERNELS and _advance_exact():
        points, headings, turns = np.empty((n, 2)), np.empty(n), np.empty(n)
        kernels.advance(x, y, heading, speed, half_length, np.cos(course), np.sin(course), np.sin(beta), float(dt),
                        points, headings, turns)
    else:
        points = np.empty((n, 2))
        points[:, 0] = x + speed * np.cos(course) * dt
        points[:, 1] = y + speed * np.sin(course) * dt
        turns = speed * np.sin(beta) / half_length * dt
        headings = heading + turns
    for k, v in enumerate(vehicles):
        if v.impact is not None:
            moved = points[k].copy()
            moved += v.impact
            points[k] = moved
            v.crashed = True
            v.impact = None
    speeds = []
    for v, (new_x, new_y), turn in zip(vehicles, points.tolist(), turns):
        position = v.position
        position[0] = new_x
        position[1] = new_y
        v.heading += turn
        v.speed += v.action["acceleration"] * dt
        speeds.append(v.speed)
    if out is not None:
        out.extend(points.T.copy())
        out += (headings, np.array(speeds, dtype=np.float64), diagonal, length, width)
    return points, headings


_ADVANCE_EXACT: list[bool] = []


def _advance_exact() -> bool:
    """Whether ``kernels.advance`` gives numpy's elementwise bits on this platform (checked once, on random
    states of the magnitudes the intersection sees, crashed-vehicle zeros included)."""
    if not _ADVANCE_EXACT:
        rng = np.random.default_rng(3)
        n = 4096
        x, y = rng.uniform(-200, 200, n), rng.uniform(-200, 200, n)
        heading, speed = rng.uniform(-20, 20, n), rng.uniform(-1, 12, n)
        speed[:64] = 0.0
        half_length = np.full(n, 2.5)
        cos_c, sin_c, sin_b = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n)
        dt = 1 / 15
        points, headings, turns = np.empty((n, 2)), np.empty(n), np.empty(n)
        kernels.advance(x, y, heading, speed, half_length, cos_c, sin_c, sin_b, dt, points, headings, turns)
        expected_turns = speed * sin_b / half_length * dt
        _ADVANCE_EXACT.append(
            points[:, 0].tobytes() == (x + speed * cos_c * dt).tobytes()
            and points[:, 1].tobytes() == (y + speed * sin_c * dt).tobytes()
            and turns.tobytes() == expected_turns.tobytes()
            and headings.tobytes() == (heading + expected_turns).tobytes())
    return _ADVANCE_EXACT[0]


_ELEMENTWISE_EXACT: list[bool] = []


def _ufuncs_elementwise_exact() -> bool:
    """Whether numpy's float64 tan, arctan, cos, sin, arcsin, power (also squaring) and clip (bounds per
    element, as ``_act_together`` clips the accelerations) give, on this platform, the same bits
    on (contiguous) arrays of any length as on each element alone (checked once, on the ranges the controls
    and kinematics use); where they do not, the per-vehicle scalar code runs instead."""
    if not _ELEMENTWISE_EXACT:
        angles = np.random.default_rng(0).uniform(-7.0, 7.0, 1024)
        angles[:8] = [0.0, -0.0, np.pi / 3, -np.pi / 3, np.pi / 2, np.pi, 1e-9, -1e-300]
        sines = np.clip(angles / 7.0, -1, 1)
        bases, exponents = np.abs(angles) / 3, 3.5 + np.abs(angles) / 7

        def same(f, *args) -> bool:
            return all(np.array_equal(f(*(a[start:stop] for a in args)),
                                      np.array([f(*(a[k] for a in args)) for k in range(start, stop)]))
                       for start, stop in ((0, 1024), (0, 1), (1, 3), (3, 6), (8, 15), (15, 32), (32, 49)))

        rng = np.random.default_rng(1)  # _behind's gap ratios: np.power(ratio, 2) on a scalar, or on an array
        ratios = rng.uniform(-30.0, 30.0, 1024) * 10.0 ** rng.integers(-4, 4, 1024)
        squares = np.array([np.power(x, 2) for x in ratios])
        limits = np.full(1024, 6.0)
        limits[::3] = 5.0
        accelerations = angles * 2.0
        accelerations[8:16] = [6.0, -6.0, 5.0, -5.0, 0.0, -0.0, 6.0 + 1e-15, -7.0]
        _ELEMENTWISE_EXACT.append(all(same(f, angles) for f in (np.tan, np.arctan, np.cos, np.sin))
                                  and same(lambda x, high: ufunc_clip(x, -high, high), accelerations, limits)
                                  and same(np.arcsin, sines) and same(np.power, bases, exponents)
                                  and all(np.array_equal(np.power(ratios[a:b], 2), squares[a:b])
                                          for a, b in ((0, 1024), (0, 1), (1, 3), (3, 6), (8, 15), (15, 32))))
    return _ELEMENTWISE_EXACT[0]


def _lane_coordinates(lane, obj, memo: dict | None):
    """``lane.local_coordinates(obj.position)``, the very result, computed once per frame's decisions (``memo``,
    keyed by the objects' ids, lives only while no position changes: during ``Road.act``)."""
    if memo is None:
        return lane.local_coordinates(obj.position)
    key = (id(lane), id(obj))
    known = memo.get(key)
    if known is None:
        frame = memo.get("frame")
        column = frame.straight_column.get(id(lane)) if frame is not None else None
        row = frame.row.get(id(obj)) if column is not None else None
        if row is not None:  # the same two products and sum as StraightLane's np.dot (_straight_coordinates_exact)
            known = memo[key] = (frame.lon[row, column], frame.lat[row, column])
        else:
            known = memo[key] = lane.local_coordinates(obj.position)
    return known


_STRAIGHT_EXACT: dict[bool, bool] = {}


def _straight_coordinates_exact() -> bool:
    """Whether ``LaneTable.coordinates`` (on the current path: kernels or numpy) gives, for straight lanes,
    the very bits of ``StraightLane.local_coordinates`` (``np.dot`` of 2-vectors computed as x0*y0 + x1*y1,
    not fused or reordered by the BLAS on this CPU); checked once per process and path on random lanes and
    points. Where not, the frame's decisions call the lanes' own ``local_coordinates``."""
    if USE_KERNELS not in _STRAIGHT_EXACT:
        rng = np.random.default_rng(0)
        lanes = [StraightLane(rng.uniform(-150, 150, 2), rng.uniform(-150, 150, 2)) for _ in range(16)]
        lanes += [StraightLane(np.array([2.0, 109.0]), np.array([2.0, 9.0])), StraightLane([-9.0, 2.0], [9.0, 2.0])]
        points = np.concatenate([rng.uniform(-150, 150, (256, 2)), rng.normal(0, 1e-3, (16, 2))])
        lon, lat, _ = LaneTable(lanes).coordinates(points)
        _STRAIGHT_EXACT[USE_KERNELS] = all(
            np.asarray(lane.local_coordinates(point)).tobytes() == np.array([lon[i, k], lat[i, k]]).tobytes()
            for i, point in enumerate(points) for k, lane in enumerate(lanes))
    return _STRAIGHT_EXACT[USE_KERNELS]


def _follow_road(v, memo: dict | None = None):
    """``ControlledVehicle.follow_road``; returns the (unchanged) target lane's ``local_coordinates`` of the
    vehicle, which ``steering_control`` computes again, or None."""
    lane = v.road.network.get_lane(v.target_lane_index)
    if type(lane).after_end is not AbstractLane.after_end:
        v.follow_road()
        return None
    coordinates = _lane_coordinates(lane, v, memo)
    if coordinates[0] > lane.length - lane.VEHICLE_LENGTH / 2:  # AbstractLane.after_end
        v.target_lane_index = v.road.network.next_lane(v.target_lane_index, route=v.route, position=v.position,
                                                       np_random=v.road.np_random)
        return None
    return coordinates


def _steering(v, target_lane_index, coordinates=None) -> float:
    """``ControlledVehicle.steering_control`` (``coordinates``: the target lane's ``local_coordinates`` of the
    vehicle, if known)."""
    lane = v.road.network.get_lane(target_lane_index)
    longitudinal, lateral = coordinates if coordinates is not None else lane.local_coordinates(v.position)
    future_heading = lane.heading_at(longitudinal + v.speed * v.TAU_PURSUIT)
    speed = utils.not_zero(v.speed)
    heading_command = np.arcsin(ufunc_clip(-v.KP_LATERAL * lateral / speed, -1, 1))
    heading_ref = future_heading + ufunc_clip(heading_command, -np.pi / 4, np.pi / 4)
    heading_rate = v.KP_HEADING * utils.wrap_to_pi(heading_ref - v.heading)
    slip = np.arcsin(ufunc_clip(v.LENGTH / 2 / speed * heading_rate, -1, 1))
    return float(ufunc_clip(np.arctan(2 * np.tan(slip)), -v.MAX_STEERING_ANGLE, v.MAX_STEERING_ANGLE))


def _act_together(vehicles: list, frame: _Frame | None = None) -> None:
    """``_idm_act`` / ``_controlled_act`` of every vehicle (all IDM or MDP), in three passes: lane following
    and lane-change decisions in order (gathering each vehicle's inputs to its controls right after its own
    decision), then every steering command and free-road IDM term at once (``_controls_together``), then
    the accelerations behind the front vehicles at once (``_behind_together``). The same results: no
    vehicle's decision reads another vehicle's controls, target speed or target lane, only positions, lanes
    and speeds, which deciding does not change."""
    deciding: list = []
    rows: list = []
    memo: dict = {"frame": frame}
    network = None
    for v in vehicles:
        idm = type(v) is IDMVehicle
        if idm and v.crashed:
            continue
        # _follow_road, keeping the target lane it looked up
        network = v.road.network
        lane = network.get_lane(v.target_lane_index)
        if type(lane).after_end is not AbstractLane.after_end:
            v.follow_road()
            coordinates = None
        else:
            coordinates = _lane_coordinates(lane, v, memo)
            if coordinates[0] > lane.length - lane.VEHICLE_LENGTH / 2:  # AbstractLane.after_end
                v.target_lane_index = network.next_lane(v.target_lane_index, route=v.route, position=v.position,
                                                        np_random=v.road.np_random)
                coordinates = None
        if idm and v.enable_lane_change and not (  # _idm_route_and_lane's lane-change policy
                type(v).change_lane_policy is IDMVehicle.change_lane_policy and v.lane_index == v.target_lane_index
                and not utils.do_every(v.LANE_CHANGE_DELAY, v.timer)):
            target = v.target_lane_index
            v.change_lane_policy()
            if v.target_lane_index != target:
                coordinates = None
        if coordinates is None:
            lane = network.get_lane(v.target_lane_index)
            coordinates = lane.local_coordinates(v.position)
        longitudinal, lat = coordinates
        speed = v.speed
        if idm:  # IDMVehicle.acceleration's free-road ratio, max(speed, 0) / |not_zero(clipped target speed)|
            target_speed = getattr(v, "target_speed", 0)
            own = v.lane
            if own and own.speed_limit is not None:
                # np.clip(target, 0, limit) up to the sign of a zero, which not_zero then maps to 1e-2 either way
                target_speed = min(max(target_speed, 0), own.speed_limit)
            free = (max(speed, 0) / abs(utils.not_zero(target_speed)), v.DELTA, v.COMFORT_ACC_MAX)
        else:
            free = _NO_FREE_ROAD
        rows.append((lat, lane.heading_at(longitudinal + speed * v.TAU_PURSUIT), utils.not_zero(speed), v.heading,
                     v.KP_LATERAL, v.KP_HEADING, v.LENGTH, v.MAX_STEERING_ANGLE) + free)
        deciding.append(v)
    if not deciding:
        return
    steerings, free_road = _controls_together(rows)
    accelerations = _behind_together(deciding, free_road, memo)
    idm, idm_steerings, idm_accelerations, limits = [], [], [], []
    for v, steering, acceleration, free in zip(deciding, steerings, accelerations, free_road):
        if type(v) is IDMVehicle:
            if v.lane_index != v.target_lane_index:
                acceleration = min(acceleration, _behind(v, free, _front(v, v.target_lane_index), memo))
            idm.append(v)
            idm_steerings.append(steering)
            idm_accelerations.append(acceleration)
            limits.append(v.ACC_MAX)
        else:
            v.action = {"steering": steering, "acceleration": v.speed_control(v.target_speed)}
    if idm:  # np.clip(acceleration, -ACC_MAX, ACC_MAX) of each, in one call: numpy scalars, the same bits
        limits = np.array(limits, dtype=np.float64)
        clipped = ufunc_clip(np.array(idm_accelerations, dtype=np.float64), -limits, limits)
        for v, steering, acceleration in zip(idm, idm_steerings, clipped):
            v.action = {"steering": steering, "acceleration": acceleration}


_NO_FREE_ROAD = (0.0, 1.0, 0.0)  # an MDP vehicle's placeholder free-road inputs (result unused)


def _controls_together(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """(steering commands, free-road IDM terms) of the gathered rows: ``_steering`` (the callers' second clip to
    the steering range is left out: clipping twice to one range gives the same bits as once) and the
    front-independent part of ``IDMVehicle.acceleration``, with the
    arithmetic on arrays: one array, one contiguous row per quantity (the ufuncs then see contiguous arrays,
    as ``_ufuncs_elementwise_exact`` checks)."""
    (lateral, future_heading, speed, heading, kp_lateral, kp_heading, length, max_angle,
     ratio, delta, comfort) = np.array(rows, dtype=np.float64).T.copy()
    if USE_KERNELS and _steering_kernels_exact():  # the arithmetic between numpy's arcsin calls, compiled
        inputs = np.empty(len(rows))
        kernels.steering_command_inputs(lateral, speed, kp_lateral, inputs)
        heading_command = np.arcsin(inputs)
        kernels.steering_slip_inputs(future_heading, heading_command, heading, kp_heading, length, speed, inputs)
        slip = np.arcsin(inputs)
    else:
        heading_command = np.arcsin(ufunc_clip(-kp_lateral * lateral / speed, -1, 1))
        heading_ref = future_heading + ufunc_clip(heading_command, -np.pi / 4, np.pi / 4)
        heading_rate = kp_heading * ((heading_ref - heading + np.pi) % (2 * np.pi) - np.pi)
        slip = np.arcsin(ufunc_clip(length / 2 / speed * heading_rate, -1, 1))
    steering = ufunc_clip(np.arctan(2 * np.tan(slip)), -max_angle, max_angle)
    return steering, comfort * (1 - np.power(ratio, delta))


_STEERING_EXACT: list[bool] = []


def _steering_kernels_exact() -> bool:
    """Whether ``kernels.steering_command_inputs`` / ``steering_slip_inputs`` give numpy's elementwise bits on
    this platform (numpy's clip, and its float remainder, which numba implements on its own): checked once on
    random inputs of the magnitudes steering sees, with NaN, zeros of both signs, bounds and multiples of pi."""
    if not _STEERING_EXACT:
        rng = np.random.default_rng(4)
        n = 8192
        lateral = rng.uniform(-40, 40, n) * 10.0 ** rng.integers(-6, 1, n)
        speed = rng.uniform(-12, 12, n)
        speed[:32] = 1e-2
        lateral[32:40] = [0.0, -0.0, np.nan, 1.0, -1.0, 1e-300, -1e-300, np.inf]
        future, command, heading = rng.uniform(-8, 8, n), rng.uniform(-1.6, 1.6, n), rng.uniform(-30, 30, n)
        future[40:48] = [np.pi, -np.pi, 0.0, -0.0, 2 * np.pi, 3 * np.pi, -3 * np.pi, np.nan]
        heading[40:48] = 0.0
        command[48:56] = [np.pi / 4, -np.pi / 4, 0.0, -0.0, np.nan, 1.0, -1.0, np.pi / 4 + 1e-16]
        kp_lateral, kp_heading, length = np.full(n, 1 / 3 * 5), np.full(n, 1 / 0.2), np.full(n, 5.0)
        got = np.empty(n)
        kernels.steering_command_inputs(lateral, speed, kp_lateral, got)
        first = got.tobytes() == ufunc_clip(-kp_lateral * lateral / speed, -1, 1).tobytes()
        kernels.steering_slip_inputs(future, command, heading, kp_heading, length, speed, got)
        reference = future + ufunc_clip(command, -np.pi / 4, np.pi / 4)
        rate = kp_heading * ((reference - heading + np.pi) % (2 * np.pi) - np.pi)
        _STEERING_EXACT.append(first and got.tobytes() == ufunc_clip(length / 2 / speed * rate, -1, 1).tobytes())
    return _STEERING_EXACT[0]


def _behind_together(deciding: list, free_road: np.ndarray, memo: dict) -> list:
    """Each vehicle's ``IDMVehicle.acceleration(ego_vehicle=v, front_vehicle=front)`` on its own lane (``_behind``
    of its free-road term and its front vehicle; MDP vehicles: None). For plain vehicles the desired gap is
    computed in Python floats (IEEE double, the same roundings as numpy's float64 scalars) with numpy's cos
    and sin of all headings in one call: ``np.dot`` of two 2-vectors as its two products and one sum,
    ``np.sqrt`` as ``math.sqrt`` (both correctly rounded) and ``np.power(x, 2)`` as ``x * x``
    (``_python_arithmetic_exact`` checks the first and the last on this platform)."""
    out: list = free_road.tolist()
    pairs: list = []
    exact = _python_arithmetic_exact()
    for k, v in enumerate(deciding):
        if type(v) is not IDMVehicle:
            out[k] = None
            continue
        front = _front(v, v.lane_index)
        if not front:
            continue
        if exact and (type(v).desired_gap is IDMVehicle.desired_gap and _plain_motion(v) and _plain_motion(front)
                      and type(v).lane_distance_to is RoadObject.lane_distance_to):
            pairs.append((k, v, front))
        else:
            out[k] = _behind(v, free_road[k], front, memo)
    if not pairs:
        return out
    headings = np.array([v.heading for _, v, _ in pairs] + [front.heading for _, _, front in pairs], dtype=np.float64)
    cos_h, sin_h = np.cos(headings).tolist(), np.sin(headings).tolist()  # RoadObject.direction's entries
    n = len(pairs)
    for m, (k, v, front) in enumerate(pairs):
        c, s, front_c, front_s = cos_h[m], sin_h[m], cos_h[n + m], sin_h[n + m]
        speed, front_speed = v.speed, front.speed
        # IDMVehicle.desired_gap: dv = np.dot(v.velocity - front.velocity, v.direction)
        dv = (speed * c - front_speed * front_c) * c + (speed * s - front_speed * front_s) * s
        gap = (v.DISTANCE_WANTED + speed * v.TIME_WANTED
               + speed * dv / (2 * math.sqrt(-v.COMFORT_ACC_MAX * v.COMFORT_ACC_MIN)))
        # RoadObject.lane_distance_to(front) on v's own lane
        distance = _lane_coordinates(v.lane, front, memo)[0] - _lane_coordinates(v.lane, v, memo)[0]
        ratio = gap / utils.not_zero(distance)
        out[k] = out[k] - v.COMFORT_ACC_MAX * (ratio * ratio)
    return out


_PYTHON_EXACT: list[bool] = []


def _python_arithmetic_exact() -> bool:
    """Whether, on this platform, ``np.dot`` of two float64 2-vectors gives the bits of ``a0 * b0 + a1 * b1``
    (not fused or reordered by the BLAS) and ``np.power(x, 2)`` of a float64 scalar those of ``x * x``;
    checked once on random values of the magnitudes IDM sees. Where not, the desired gaps are computed per
    vehicle with numpy itself (``_behind``)."""
    if not _PYTHON_EXACT:
        rng = np.random.default_rng(1)
        a = rng.uniform(-20, 20, (2048, 2)) * rng.choice([1.0, 1e-3, 1e3], (2048, 1))
        angle = rng.uniform(-7, 7, 2048)
        b = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        b[:1024] = rng.uniform(-20, 20, (1024, 2))
        ratios = rng.uniform(-30.0, 30.0, 4096) * 10.0 ** rng.integers(-4, 4, 4096)
        _PYTHON_EXACT.append(
            all(np.float64(np.dot(x, y)).tobytes() == np.float64(x[0] * y[0] + x[1] * y[1]).tobytes()
                for x, y in zip(a, b))
            and all(np.float64(np.power(r, 2)).tobytes() == np.float64(r * r).tobytes() for r in ratios.tolist()))
    return _PYTHON_EXACT[0]


def _controlled_act(v) -> None:
    """``MDPVehicle.act()`` without a high-level action, i.e. ``ControlledVehicle.act(None)``."""
    coordinates = _follow_road(v)
    steering = _steering(v, v.target_lane_index, coordinates)
    acceleration = v.speed_control(v.target_speed)
    v.action = {"steering": ufunc_clip(steering, -v.MAX_STEERING_ANGLE, v.MAX_STEERING_ANGLE),
                "acceleration": acceleration}


def _front(v, lane_index):
    """``v.road.neighbour_vehicles(v, lane_index)[0]``, from the frame's answers where it has one."""
    frame = v.road.__dict__.get("_fastsim_frame")
    if frame is not None:
        known = frame.fronts.get(id(v))
        if known is not None and known[0] == (lane_index or v.lane_index):
            return known[1]
        if lane_index:
            front = frame.front_on(v, lane_index)
            if front is not _UNKNOWN:
                return front
    return v.road.neighbour_vehicles(v, lane_index)[0]


def _behind(v, free, front, memo: dict | None = None):
    """``IDMVehicle.acceleration(ego_vehicle=v, front_vehicle=front)`` from its front-independent part
    (``memo``: see ``_lane_coordinates``)."""
    if not front:
        return free
    if memo is None or not (type(v).desired_gap is IDMVehicle.desired_gap and _plain_motion(v) and _plain_motion(front)
                            and type(v).lane_distance_to is RoadObject.lane_distance_to):
        return free - v.COMFORT_ACC_MAX * np.power(v.desired_gap(v, front) / utils.not_zero(v.lane_distance_to(front)),
                                                   2)
    # IDMVehicle.desired_gap(v, front), projected, with each heading's direction computed once per frame
    direction = _direction(v, memo)
    dv = np.dot(v.speed * direction - front.speed * _direction(front, memo), direction)
    gap = (v.DISTANCE_WANTED + v.speed * v.TIME_WANTED
           + v.speed * dv / (2 * np.sqrt(-v.COMFORT_ACC_MAX * v.COMFORT_ACC_MIN)))
    # RoadObject.lane_distance_to(front) on v's own lane
    distance = _lane_coordinates(v.lane, front, memo)[0] - _lane_coordinates(v.lane, v, memo)[0]
    return free - v.COMFORT_ACC_MAX * np.power(gap / utils.not_zero(distance), 2)


def _plain_motion(v) -> bool:
    """Whether ``v``'s ``direction`` and ``velocity`` are highway-env's ``Vehicle`` ones."""
    cls = type(v)
    return cls.velocity is Vehicle.velocity and cls.direction is RoadObject.direction


def _direction(v, memo: dict):
    """``RoadObject.direction`` of ``v`` (a new array each time there; read-only here), once per frame."""
    key = ("direction", id(v))
    known = memo.get(key)
    if known is None:
        known = memo[key] = np.array([np.cos(v.heading), np.sin(v.heading)])
    return known


def _idm_acceleration(v, front) -> float:
    """``IDMVehicle.acceleration(ego_vehicle=v, front_vehicle=front)`` of an IDM vehicle about itself."""
    target_speed = getattr(v, "target_speed", 0)
    if v.lane and v.lane.speed_limit is not None:
        target_speed = ufunc_clip(target_speed, 0, v.lane.speed_limit)
    acceleration = v.COMFORT_ACC_MAX * (1 - np.power(max(v.speed, 0) / abs(utils.not_zero(target_speed)), v.DELTA))
    if front:
        gap = v.lane_distance_to(front)
        acceleration -= v.COMFORT_ACC_MAX * np.power(v.desired_gap(v, front) / utils.not_zero(gap), 2)
    return acceleration


def _idm_route_and_lane(v, memo: dict | None = None):
    """The start of ``IDMVehicle.act()``: follow the road, then the lane-change policy. Returns the lane
    coordinates steering may reuse, or None when the target lane changed (steering recomputes them)."""
    coordinates = _follow_road(v, memo)
    if v.enable_lane_change:
        if (type(v).change_lane_policy is IDMVehicle.change_lane_policy and v.lane_index == v.target_lane_index
                and not utils.do_every(v.LANE_CHANGE_DELAY, v.timer)):
            return coordinates  # IDMVehicle.change_lane_policy would return at once, changing nothing
        target = v.target_lane_index
        v.change_lane_policy()
        if v.target_lane_index != target:
            coordinates = None
    return coordinates


def _idm_act(v) -> None:
    """``IDMVehicle.act()``."""
    if v.crashed:
        return
    coordinates = _idm_route_and_lane(v)
    steering = ufunc_clip(_steering(v, v.target_lane_index, coordinates), -v.MAX_STEERING_ANGLE, v.MAX_STEERING_ANGLE)
    acceleration = _idm_acceleration(v, _front(v, v.lane_index))
    if v.lane_index != v.target_lane_index:
        acceleration = min(acceleration, _idm_acceleration(v, _front(v, v.target_lane_index)))
    v.action = {"steering": steering, "acceleration": ufunc_clip(acceleration, -v.ACC_MAX, v.ACC_MAX)}


# ---------------------------------------------------------------------------------------------- observation

OBSERVABLE = {"presence", "x", "y", "vx", "vy", "heading", "cos_h", "sin_h"}
RELATIVE = ("x", "y", "vx", "vy")


class FastKinematicObservation(KinematicObservation):
    """``KinematicObservation`` whose ``observe`` builds the same rows with numpy instead of pandas frames,
    for the features the intersection agent uses (others fall back to the plain ``observe``)."""

    def observe(self) -> np.ndarray:
        if not self.env.road or not self._fast_path_applies():
            return super().observe()
        ego = self.observer_vehicle
        close = self.env.road.close_objects_to(
            ego, self.env.PERCEPTION_DISTANCE, count=self.vehicles_count - 1, see_behind=self.see_behind,
            sort=self.order == "sorted", vehicles_only=not self.include_obstacles,
        )
        observed = [ego] + (list(close[-self.vehicles_count + 1:]) if close else [])
        if not all(_plain_vehicle_dict(v) for v in observed):
            return super().observe()
        rows = [_vehicle_features(v) for v in observed]
        if close and not self.absolute:  # Vehicle.to_dict(origin): x, y, vx, vy relative to the observer
            origin = rows[0]
            rows[1:] = [{**row, **{k: row[k] - origin[k] for k in RELATIVE}} for row in rows[1:]]
        table = np.array([[row[f] for f in self.features] for row in rows], dtype=np.float64)
        if self.normalize:
            for feature, f_range in self.features_range.items():
                if feature in self.features:
                    column = self.features.index(feature)
                    table[:, column] = utils.lmap(table[:, column], [f_range[0], f_range[1]], [-1, 1])
                    if self.clip:
                        table[:, column] = np.clip(table[:, column], -1, 1)
        obs = np.zeros((max(self.vehicles_count, len(rows)), len(self.features)), dtype=np.float64)
        obs[: len(rows)] = table
        if self.order == "shuffled":
            self.env.np_random.shuffle(obs[1:])
        return obs.astype(np.float32)

    def _fast_path_applies(self) -> bool:
        return (set(self.features) <= OBSERVABLE and len(set(self.features)) == len(self.features)
                and (bool(self.features_range) or not self.normalize) and self.vehicles_count > 1)


def _plain_vehicle_dict(v) -> bool:
    cls = type(v)
    return (isinstance(v, Vehicle) and cls.to_dict is Vehicle.to_dict and cls.velocity is Vehicle.velocity
            and cls.direction is RoadObject.direction)


def _vehicle_features(v) -> dict:
    """The entries of ``Vehicle.to_dict()`` the fast observation supports, by the same scalar operations."""
    cos_h, sin_h = np.cos(v.heading), np.sin(v.heading)
    return {"presence": 1, "x": v.position[0], "y": v.position[1], "vx": v.speed * cos_h, "vy": v.speed * sin_h,
            "heading": v.heading, "cos_h": cos_h, "sin_h": sin_h}


# ---------------------------------------------------------------------------------------------- env

class _Converting:
    """A data descriptor for an env attribute kept in the instance dict under its own name: whatever is
    assigned (by ``_make_road``, ``define_spaces``, a scene builder...) is converted to its fast class."""

    def __init__(self, convert) -> None:
        self.convert = convert

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = self.convert(value)


def _fast_road(road):
    if type(road) is RegulatedRoad:
        road.__class__ = FastRegulatedRoad
    if road is not None and type(getattr(road, "network", None)) is RoadNetwork:
        road.network.__class__ = FastRoadNetwork
    return road


def _fast_observation(observation_type):
    if type(observation_type) is KinematicObservation:
        observation_type.__class__ = FastKinematicObservation
    return observation_type


class FastIntersectionEnv(IntersectionEnv):
    """``IntersectionEnv`` whose road, road network and observation get the fast classes above."""

    road = _Converting(_fast_road)
    observation_type = _Converting(_fast_observation)


_FAST_ENV = {IntersectionEnv: FastIntersectionEnv}
_PLAIN = {FastIntersectionEnv: IntersectionEnv, FastRegulatedRoad: RegulatedRoad, FastRoadNetwork: RoadNetwork,
          FastKinematicObservation: KinematicObservation}
