"""A faster ``intersection-v0`` step that gives exactly the same trajectories (opt-in, highway-env 1.12.1 only).

Why: the agent's network costs microseconds, the simulator about 0.1 s per agent step, most of it in a few
hot paths that every vehicle runs every frame against every lane or every other vehicle. This layer replaces
those paths with numpy computations over all lanes / all vehicles at once.

How it stays bit-for-bit identical: nothing here produces a float that enters the simulation state by a
different route. The vectorised computations only take *decisions* (which lane is closest, which vehicle is
in front, which pairs might conflict or collide, which vehicles are observed), and every decision within a
safety margin (``MARGIN``, far above any rounding difference) of its threshold or of a tie is re-taken by
highway-env's own scalar code. Pairs that might conflict or collide are checked by highway-env's own code;
the vectorised part only skips pairs that certainly do not. Floats that do enter the state or the
observation (kinematics, controls, observation rows) are computed by highway-env's own code or by the same
scalar numpy operations in the same order (``tests/test_fastsim.py`` checks whole episodes bit for bit).

Hot paths replaced (measured share of a plain step in ``benchmarks/test_fastsim.py``'s profile):
- ``RoadNetwork.get_closest_lane_index`` (every vehicle, every frame, 20 lanes): one array computation
  over all lanes, lane geometry precomputed once per road network;
- ``RegulatedRoad.enforce_road_rules``: each vehicle's constant-speed prediction once per call instead of
  once per pair, and only the pairs that come within a car length are checked exactly;
- ``Road.step`` collision checks: only pairs within reach are handed to ``handle_collisions``;
- ``Road.neighbour_vehicles`` (IDM front/rear vehicle) and ``Road.close_objects_to`` (observation): one
  array computation over all vehicles;
- ``KinematicObservation.observe``: the same rows without building pandas frames;
- IDM / MDP controls (``act``): the same scalar arithmetic without numpy's slow scalar ``clip`` wrapper.

Installed explicitly and per env instance (never on import): ``enable(env)`` / ``disable(env)`` /
``with fast_sim(env):``, or ``interp.env.make_env(config, fast_sim=True)``. It changes the class of that
env's own objects (env, road, road network, observation type) to subclasses defined here; highway-env's
classes are never modified, other envs are unaffected, and ``copy.deepcopy`` / pickling keep working (a copy
of an accelerated env is accelerated). On any highway-env version other than the verified one, or another
env class, ``enable`` raises ``FastSimUnavailable`` and ``make_env`` falls back to the plain simulator.

Install it before other per-instance patches of the same env (e.g. ``interp.row_identity``), as ``make_env``
does; installed afterwards it still gives identical results.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from highway_env import utils
from highway_env.envs.common.observation import KinematicObservation
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.road.lane import CircularLane, StraightLane
from highway_env.road.regulation import RegulatedRoad
from highway_env.road.road import Road, RoadNetwork
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import Landmark, RoadObject

from interp.errors import HypodriveError

VERIFIED_VERSIONS = ("1.12.1",)
MARGIN = 1e-6  # decisions closer than this to a threshold or a tie are re-taken by highway-env's own code
TWO_PI = 2 * np.pi


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
        obj.__dict__.pop("_fastsim_lanes", None)
        obj.__class__ = plain


# ---------------------------------------------------------------------------------------------- lane geometry

class LaneTable:
    """The geometry of a set of straight and circular lanes as arrays, for local coordinates of many points
    against many lanes in one numpy computation (same formulas as the lanes' own ``local_coordinates``)."""

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
        self.any_circular = not bool(self.straight.all())

    @classmethod
    def of(cls, lanes: list) -> LaneTable | None:
        try:
            return cls(lanes)
        except (TypeError, AttributeError, ValueError):
            return None

    def coordinates(self, points: np.ndarray, lanes: slice | np.ndarray = slice(None)):
        """(longitudinal, lateral, unsure) of ``points`` [..., 2] on ``lanes``, broadcast to [..., n_lanes].

        ``unsure`` marks circular lanes where the point lies within ``MARGIN`` of the angle at which the
        longitudinal coordinate wraps around (there a rounding difference could move it by a full turn)."""
        delta = points[..., None, :] - self.origin[lanes]
        dx, dy = delta[..., 0], delta[..., 1]
        lon = dx * self.axis[lanes, 0] + dy * self.axis[lanes, 1]
        lat = dx * self.normal[lanes, 0] + dy * self.normal[lanes, 1]
        straight = self.straight[lanes]
        if not straight.all():
            phase, radius, sense = self.phase[lanes], self.radius[lanes], self.sense[lanes]
            wrapped = (np.arctan2(dy, dx) - phase + np.pi) % TWO_PI
            c_lon = sense * (wrapped - np.pi) * radius
            c_lat = sense * (radius - np.sqrt(dx * dx + dy * dy))
            lon = np.where(straight, lon, c_lon)
            lat = np.where(straight, lat, c_lat)
            unsure = ~straight & ((wrapped < MARGIN / radius) | (wrapped > TWO_PI - MARGIN / radius))
        else:
            unsure = np.zeros(lon.shape, dtype=bool)
        return lon, lat, unsure

    def headings(self, lon: np.ndarray, lanes: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Lane heading at longitudinal ``lon`` (the lanes' ``heading_at``)."""
        straight = self.straight[lanes]
        if straight.all():
            return np.broadcast_to(self.heading[lanes], lon.shape)
        sense = self.sense[lanes]
        circular = sense * lon / self.radius[lanes] + self.phase[lanes] + np.pi / 2 * sense
        return np.where(straight, self.heading[lanes], circular)


def _wrap_to_pi(x):
    return ((x + np.pi) % TWO_PI) - np.pi


# ---------------------------------------------------------------------------------------------- road network

class FastRoadNetwork(RoadNetwork):
    """A ``RoadNetwork`` whose closest-lane search computes every lane's distance in one array operation."""

    def add_lane(self, _from: str, _to: str, lane) -> None:
        self.__dict__.pop("_fastsim_lanes", None)
        super().add_lane(_from, _to, lane)

    def _lane_table(self) -> tuple[list, LaneTable | None]:
        cached = self.__dict__.get("_fastsim_lanes")
        if cached is None:
            indexes = [(_from, _to, _id) for _from, to_dict in self.graph.items()
                       for _to, lanes in to_dict.items() for _id in range(len(lanes))]
            lanes = [self.graph[a][b][i] for a, b, i in indexes]
            cached = self.__dict__["_fastsim_lanes"] = (indexes, LaneTable.of(lanes) if lanes else None)
        return cached

    def get_closest_lane_index(self, position: np.ndarray, heading: float | None = None):
        """The lane ``RoadNetwork.get_closest_lane_index`` returns, found with one array computation; lanes
        within ``MARGIN`` of the best are compared with their own ``distance_with_heading``."""
        indexes, table = self._lane_table()
        point = np.asarray(position, dtype=np.float64)
        if table is None or point.shape != (2,):
            return super().get_closest_lane_index(position, heading)
        lon, lat, unsure = table.coordinates(point)
        distance = np.abs(lat) + np.maximum(lon - table.length, 0.0) + np.maximum(-lon, 0.0)
        if heading is not None:
            distance = distance + np.abs(_wrap_to_pi(heading - table.headings(lon)))
        sure = ~unsure
        if not sure.any():
            return super().get_closest_lane_index(position, heading)
        best = distance[sure].min()
        if not np.isfinite(best):
            return super().get_closest_lane_index(position, heading)
        candidates = np.flatnonzero(unsure | (distance <= best + MARGIN))
        if len(candidates) == 1:
            return indexes[int(candidates[0])]
        exact = [table.lanes[i].distance_with_heading(position, heading) for i in candidates]
        return indexes[int(candidates[int(np.argmin(exact))])]


# ---------------------------------------------------------------------------------------------- road

def _positions(objects: list) -> np.ndarray:
    return np.array([o.position for o in objects], dtype=np.float64).reshape(len(objects), 2)


def _pairwise_distances(points: np.ndarray) -> np.ndarray:
    """[..., i, j] = |points[..., j, :] - points[..., i, :]| (an approximation: only compared with a margin)."""
    delta = points[None, :] - points[:, None]
    return np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)


class FastRegulatedRoad(RegulatedRoad):
    """A ``RegulatedRoad`` whose pairwise checks (regulation, collisions, neighbours, perception) skip, in one
    array computation, the pairs that certainly fail, and hand the others to highway-env's own code."""

    # ------------------------------------------------------------------ stepping

    def step(self, dt: float) -> None:
        """``RegulatedRoad.step``: road rules every few frames, then ``Road.step`` (move, then collide)."""
        self.steps += 1
        if self.steps % int(1 / dt / self.REGULATION_FREQUENCY) == 0:
            self.enforce_road_rules()
        for vehicle in self.vehicles:
            vehicle.step(dt)
        self._handle_collisions(dt)

    def _handle_collisions(self, dt: float) -> None:
        """Every pair (i < j) in ``Road.step``'s order, skipping those farther apart than
        ``RoadObject._is_colliding``'s spherical pre-check (which then returns 'no collision' and nothing
        changes)."""
        vehicles = self.vehicles
        plain = all(type(v).handle_collisions is RoadObject.handle_collisions
                    and type(v)._is_colliding is RoadObject._is_colliding for v in vehicles)
        if self.objects or not plain:
            for i, vehicle in enumerate(vehicles):
                for other in vehicles[i + 1:]:
                    vehicle.handle_collisions(other, dt)
                for other in self.objects:
                    vehicle.handle_collisions(other, dt)
            return
        if len(vehicles) < 2:
            return
        distance = _pairwise_distances(_positions(vehicles))
        diagonal = np.array([v.diagonal for v in vehicles], dtype=np.float64)
        speed = np.array([v.speed for v in vehicles], dtype=np.float64)
        reach = (diagonal[:, None] + diagonal[None, :]) / 2 + (speed * dt)[:, None]
        close = np.triu(distance <= reach + MARGIN, k=1)
        for i, j in zip(*np.nonzero(close)):  # row-major: the same order as the nested loops
            vehicles[i].handle_collisions(vehicles[j], dt)

    # ------------------------------------------------------------------ regulation

    def enforce_road_rules(self) -> None:
        """``RegulatedRoad.enforce_road_rules`` with its pairwise conflict test answered from a table
        computed once for all pairs (``is_conflict_possible`` below)."""
        self.__dict__["_fastsim_conflicts"] = self._conflict_table()
        try:
            super().enforce_road_rules()
        finally:
            self.__dict__.pop("_fastsim_conflicts", None)

    def is_conflict_possible(self, v1, v2, horizon: int = 3, step: float = 0.25) -> bool:
        """``RegulatedRoad.is_conflict_possible`` (a static method there), answered from the table while
        ``enforce_road_rules`` runs."""
        table = self.__dict__.get("_fastsim_conflicts")
        if table is not None and horizon == 3 and step == 0.25:
            members, conflicts = table
            if id(v1) in members and id(v2) in members:
                return (id(v1), id(v2)) in conflicts
        return RegulatedRoad.is_conflict_possible(v1, v2, horizon, step)

    def _conflict_table(self, horizon: int = 3, step: float = 0.25):
        """(ids of the vehicles covered, {(id(v1), id(v2)) that conflict}) for every pair v1 before v2.

        Each vehicle's constant-speed prediction is computed once (the plain code recomputes it for every
        pair; it depends only on the vehicle). Instants at which two predicted centres are farther apart
        than a car length are skipped exactly as the plain loop's pre-check skips them; the others go
        through the plain loop's own checks, on the same predicted positions."""
        vehicles = list(self.vehicles)
        n = len(vehicles)
        if n < 2:
            return None
        times = np.arange(step, horizon, step)
        try:
            predictions = [v.predict_trajectory_constant_speed(times) for v in vehicles]
            centres = np.array([np.asarray(p[0], dtype=np.float64) for p in predictions])  # [n, T, 2]
        except Exception:  # noqa: BLE001 - the plain pairwise test then raises it where highway-env does
            return None
        if centres.shape != (n, len(times), 2):
            return None
        length = np.array([v.LENGTH for v in vehicles], dtype=np.float64)
        delta = centres[None, :] - centres[:, None]                                        # [n, n, T, 2]
        near = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2) <= length[:, None, None] + MARGIN
        near &= np.triu(np.ones((n, n), dtype=bool), k=1)[..., None]
        conflicts = set()
        for i, j in zip(*np.nonzero(near.any(axis=-1))):
            if _conflict_at(vehicles[i], vehicles[j], predictions[i], predictions[j], np.flatnonzero(near[i, j])):
                conflicts.add((id(vehicles[i]), id(vehicles[j])))
        return {id(v) for v in vehicles}, conflicts

    # ------------------------------------------------------------------ neighbours and perception

    def neighbour_vehicles(self, vehicle, lane_index=None):
        """``Road.neighbour_vehicles`` (same-segment search) with every object's lane coordinates computed
        at once; if any decision is within ``MARGIN`` of a threshold or a tie, the plain search decides."""
        lane_index = lane_index or vehicle.lane_index
        if self.neighbour_vehicles_connected_lanes or not lane_index:
            return super().neighbour_vehicles(vehicle, lane_index)
        lane = self.network.get_lane(lane_index)
        table = _single_lane_table(lane)
        others = [v for v in self.vehicles + self.objects if v is not vehicle and not isinstance(v, Landmark)]
        if table is None or not others:
            return super().neighbour_vehicles(vehicle, lane_index)
        points = np.concatenate([_positions(others), np.asarray(vehicle.position, dtype=np.float64)[None]])
        lon, lat, unsure = table.coordinates(points)
        lon, lat, unsure = lon[:, 0], lat[:, 0], unsure[:, 0]
        s, lon, lat = lon[-1], lon[:-1], lat[:-1]
        width_edge = np.abs(lat) - (table.half_width[0] + 1)
        start_edge = lon + table.vehicle_length[0]
        end_edge = lon - (table.length[0] + table.vehicle_length[0])
        on = (width_edge <= 0) & (start_edge >= 0) & (end_edge < 0)
        gap = lon - s
        doubtful = (unsure.any() or not np.all(np.isfinite(points))
                    or np.any(np.abs(width_edge) <= MARGIN) or np.any(np.abs(start_edge) <= MARGIN)
                    or np.any(np.abs(end_edge) <= MARGIN) or np.any(on & (np.abs(gap) <= MARGIN)))
        if not doubtful:
            front, front_doubt = _nearest(np.where(on & (gap > 0), gap, np.inf))
            rear, rear_doubt = _nearest(np.where(on & (gap < 0), -gap, np.inf))
            if not (front_doubt or rear_doubt):
                return (others[front] if front is not None else None,
                        others[rear] if rear is not None else None)
        return super().neighbour_vehicles(vehicle, lane_index)

    def close_objects_to(self, vehicle, distance: float, count: int | None = None, see_behind: bool = True,
                         sort: bool = True, vehicles_only: bool = False) -> object:
        """``Road.close_objects_to``: the same objects in the same order; the distance and 'not far behind'
        tests are computed at once and re-taken by the plain expressions within ``MARGIN`` of their
        thresholds."""
        vehicles = [v for v, keep in zip(self.vehicles, self._within(vehicle, self.vehicles, distance, see_behind))
                    if keep and v is not vehicle]
        if vehicles_only:
            objects_ = vehicles
        else:
            objects_ = vehicles + [o for o, keep in zip(self.objects, self._within(vehicle, self.objects, distance,
                                                                                    False)) if keep]
        if sort:
            objects_ = sorted(objects_, key=lambda o: abs(vehicle.lane_distance_to(o)))
        if count:
            objects_ = objects_[:count]
        return objects_

    @staticmethod
    def _within(vehicle, objects: list, distance: float, see_behind: bool) -> list[bool]:
        """For each object: closer than ``distance`` to ``vehicle`` and (unless ``see_behind``) not more than
        two car lengths behind it along its lane, as ``Road.close_objects_to`` decides."""
        if not objects:
            return []

        def plain(o) -> bool:
            return bool(np.linalg.norm(o.position - vehicle.position) < distance
                        and (see_behind or -2 * vehicle.LENGTH < vehicle.lane_distance_to(o)))

        points = _positions(objects)
        origin = np.asarray(vehicle.position, dtype=np.float64)
        delta = points - origin
        radius = np.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2) - distance
        keep = radius < 0
        doubtful = np.abs(radius) <= MARGIN
        if not see_behind:
            table = _single_lane_table(vehicle.lane)
            if table is None or type(vehicle).lane_distance_to is not RoadObject.lane_distance_to:
                return [plain(o) for o in objects]
            lon, _, unsure = table.coordinates(np.concatenate([points, origin[None]]))
            behind = lon[:-1, 0] - lon[-1, 0] + 2 * vehicle.LENGTH
            keep &= behind > 0
            doubtful |= (np.abs(behind) <= MARGIN) | unsure[:-1, 0] | unsure[-1, 0]
        doubtful |= ~np.isfinite(radius)
        return [plain(o) if doubt else bool(k) for o, k, doubt in zip(objects, keep, doubtful)]


def _nearest(gaps: np.ndarray) -> tuple[int | None, bool]:
    """(index of the smallest finite gap or None, whether the runner-up is within ``MARGIN`` of it)."""
    if gaps.size == 0:
        return None, False
    best = int(np.argmin(gaps))
    if not np.isfinite(gaps[best]):
        return None, False
    tied = np.count_nonzero(gaps <= gaps[best] + MARGIN) > 1
    return best, tied


def _single_lane_table(lane) -> LaneTable | None:
    """A one-lane ``LaneTable``, cached on the lane object (lanes never change once built)."""
    table = lane.__dict__.get("_fastsim_table", False) if lane is not None else None
    if table is False:
        table = LaneTable.of([lane])
        lane.__dict__["_fastsim_table"] = table
    return table


def _conflict_at(v1, v2, prediction_1, prediction_2, instants: np.ndarray) -> bool:
    """``RegulatedRoad.is_conflict_possible``'s loop body at the given instants, on the given predictions."""
    positions_1, headings_1 = prediction_1
    positions_2, headings_2 = prediction_2
    for t in instants:
        position_1, heading_1, position_2, heading_2 = positions_1[t], headings_1[t], positions_2[t], headings_2[t]
        if np.linalg.norm(position_2 - position_1) > v1.LENGTH:
            continue
        if utils.rotated_rectangles_intersect((position_1, 1.5 * v1.LENGTH, 0.9 * v1.WIDTH, heading_1),
                                              (position_2, 1.5 * v2.LENGTH, 0.9 * v2.WIDTH, heading_2)):
            return True
    return False


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
