"""The frame memo: what every vehicle's decision in one ``Road.act`` reads, computed once for all vehicles.

Positions do not change while vehicles decide, so each vehicle's front vehicle, lane coordinates and
heading direction are computed once per frame (``_Frame``, ``_lane_coordinates``, ``_direction``) and
read by the motion code; every decision within ``MARGIN`` of a threshold or a tie goes to highway-env.
"""
from __future__ import annotations

import numpy as np
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.objects import Landmark

from interp.simulation.fastsim import base, kernels
from interp.simulation.fastsim.base import _MOVABLE_SET, MARGIN, _scratch, _two_smallest
from interp.simulation.fastsim.lanes import FastRoadNetwork, LaneTable


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
        if base.USE_KERNELS:
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
        if not base.USE_KERNELS or row is None or column is None:
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


def _direction(v, memo: dict):
    """``RoadObject.direction`` of ``v`` (a new array each time there; read-only here), once per frame."""
    key = ("direction", id(v))
    known = memo.get(key)
    if known is None:
        known = memo[key] = np.array([np.cos(v.heading), np.sin(v.heading)])
    return known
