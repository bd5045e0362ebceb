"""Lane geometry as arrays: the closest-lane search of all vehicles against all lanes in one computation.

``RoadNetwork.get_closest_lane_index`` is the largest single cost of a plain step (~33 %); the lane table
answers it for every vehicle at once and leaves every near-tie to the lanes' own ``distance_with_heading``.
"""
from __future__ import annotations

import numpy as np
from highway_env.road.lane import CircularLane, StraightLane
from highway_env.road.road import RoadNetwork

from interp.simulation.fastsim import base, kernels
from interp.simulation.fastsim.base import MARGIN, TWO_PI, _scratch, _two_smallest


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
        if base.USE_KERNELS:
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
        if base.USE_KERNELS:
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
