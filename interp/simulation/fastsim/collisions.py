"""Collisions: ``Road.step``'s pairwise checks, run only for pairs not certainly apart.

Every pair's ``handle_collisions`` is highway-env's own; only pairs that a margin shows cannot touch this
frame are skipped (where highway-env's own check would report nothing and change nothing).
"""
from __future__ import annotations

import numpy as np
from highway_env.vehicle.objects import RoadObject

from interp.simulation.fastsim import base, kernels
from interp.simulation.fastsim.base import _MOVABLE, MARGIN, _pairs, _positions, _scratch, _upper


class Collisions:
    """The collision part of ``FastRegulatedRoad`` (a mixin: it reads the road's vehicles and objects)."""

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
        if base.USE_KERNELS:
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
