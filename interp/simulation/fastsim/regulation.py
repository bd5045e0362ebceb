"""Regulation: which pairs of vehicles may conflict at the intersection, and who yields (``RegulatedRoad``).

``RegulatedRoad.enforce_road_rules`` (~20 % of a plain step) predicts every pair's positions at 11 instants;
here all vehicles are predicted at once and the pairs decided on arrays, every doubtful (pair, instant) by
highway-env's own checks on its own predictions.
"""
from __future__ import annotations

import numpy as np
from highway_env import utils
from highway_env.road.regulation import RegulatedRoad
from highway_env.vehicle.controller import ControlledVehicle, MDPVehicle

from interp.simulation.fastsim import base, kernels
from interp.simulation.fastsim.base import MARGIN, _upper
from interp.simulation.fastsim.lanes import FastRoadNetwork, LaneTable


class RoadRules:
    """The regulation part of ``FastRegulatedRoad`` (a mixin: it reads the road's vehicles, network and
    ``lane_coordinates``)."""

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
                                             self.lane_coordinates(vehicles) if base.USE_KERNELS else None)
            length = np.array([v.LENGTH for v in vehicles], dtype=np.float64)
            if base.USE_KERNELS:
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
    if base.USE_KERNELS and table is not None:
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
