"""Perception and observation: ``Road.close_objects_to`` on arrays, ``KinematicObservation.observe`` without pandas.

``KinematicObservation.observe`` is ~17 % of a plain step; the same rows come from the same scalar
operations, and any feature or vehicle class outside the supported ones falls back to the plain code.
"""
from __future__ import annotations

import numpy as np
from highway_env import utils
from highway_env.envs.common.observation import KinematicObservation
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import RoadObject

from interp.simulation.fastsim.base import MARGIN


class Perception:
    """The perception part of ``FastRegulatedRoad`` (a mixin: it reads the road's vehicles, objects, network
    and ``lane_coordinates``)."""

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
