"""The road: ``FastRegulatedRoad``, which steps all vehicles of a frame together.

It joins the parts by job (``motion`` for acting and moving, ``collisions``, ``regulation``, perception in
``observation``) into the one class highway-env's env steps.
"""
from __future__ import annotations

import numpy as np
from highway_env.road.regulation import RegulatedRoad
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import MDPVehicle

from interp.simulation.fastsim.base import _MOVABLE_SET, _positions
from interp.simulation.fastsim.checks import _straight_coordinates_exact, _ufuncs_elementwise_exact
from interp.simulation.fastsim.collisions import Collisions
from interp.simulation.fastsim.frame import _Frame
from interp.simulation.fastsim.lanes import FastRoadNetwork
from interp.simulation.fastsim.motion import (_act_together, _controlled_act, _idm_act, kinematics_scalar,
                                              kinematics_together)
from interp.simulation.fastsim.observation import Perception
from interp.simulation.fastsim.regulation import RoadRules


class FastRegulatedRoad(Collisions, RoadRules, Perception, RegulatedRoad):
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
