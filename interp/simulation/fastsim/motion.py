"""Motion: kinematics, steering and IDM accelerations of all vehicles, on arrays where the bits are the same.

Floats computed here enter the simulator's state, so every one comes from the same numpy operations in the
same order as highway-env's (per vehicle, or elementwise on arrays where ``checks`` shows this platform
gives the same bits).
"""
from __future__ import annotations

import math

import numpy as np
from highway_env import utils
from highway_env.road.lane import AbstractLane
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import RoadObject

from interp.simulation.fastsim import base, kernels
from interp.simulation.fastsim.base import ufunc_clip
from interp.simulation.fastsim.checks import (_advance_exact, _python_arithmetic_exact, _steering_kernels_exact)
from interp.simulation.fastsim.frame import _direction, _front, _Frame, _lane_coordinates

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
    if base.USE_KERNELS and _advance_exact():
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
    if base.USE_KERNELS and _steering_kernels_exact():  # the arithmetic between numpy's arcsin calls, compiled
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


def _controlled_act(v) -> None:
    """``MDPVehicle.act()`` without a high-level action, i.e. ``ControlledVehicle.act(None)``."""
    coordinates = _follow_road(v)
    steering = _steering(v, v.target_lane_index, coordinates)
    acceleration = v.speed_control(v.target_speed)
    v.action = {"steering": ufunc_clip(steering, -v.MAX_STEERING_ANGLE, v.MAX_STEERING_ANGLE),
                "acceleration": acceleration}


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
