"""Compiled (numba) loops for the fast simulator (``interp.simulation.fastsim``): its decisions, and three
pieces of arithmetic whose bits are checked at run time.

Why: after the fast simulator moved highway-env's per-pair work onto numpy arrays, a frame's time went to
the overhead of dozens of small numpy calls (each ~1 us on arrays of ten vehicles). These kernels do the
same computations in one compiled loop each.

Two kinds of kernel:
- *Decisions* (``lane_coordinates``, ``closest_lanes``, ``fronts``, ``collision_candidates``, ``route_points``,
  ``conflict_checks``): closest lane, front vehicle, which pairs may collide or conflict, with the
  regulation's predicted positions along routes. Each uses the same ``MARGIN`` rule as the numpy code it
  replaces: a decision within the margin of a threshold or of a tie is reported as doubtful and taken again
  by highway-env's own code. Their floats never enter the simulator's state, so they may differ from numpy
  in the last bits (numba's arctan2 calls the C library where numpy has its own SIMD code) without changing
  any trajectory.
- *State arithmetic* (``advance``: positions and headings; ``steering_command_inputs`` /
  ``steering_slip_inputs``: the arguments of the steering's arcsin calls). These floats do enter the state,
  so each is used only where ``fastsim.checks`` has shown, once per process on this platform, that it gives
  numpy's elementwise bits (``_advance_exact``, ``_steering_kernels_exact``); else numpy runs.
Compiled without fastmath and without parallel reductions: every loop runs in a fixed order on every CPU.

numba is optional: where it cannot be imported (or ``FASTSIM_NO_KERNELS=1`` is set) ``AVAILABLE`` is False and
the fast simulator runs its numpy code, which stays the reference (tests/test_fastsim.py checks both paths).
"""
from __future__ import annotations

import os

import numpy as np

try:
    if os.environ.get("FASTSIM_NO_KERNELS"):
        raise ImportError("FASTSIM_NO_KERNELS is set")
    from numba import njit
    AVAILABLE = True
except ImportError:  # the numpy path in fastsim runs instead
    AVAILABLE = False

    def njit(*args, **kwargs):  # a stand-in decorator, so that this module still imports
        def wrap(f):
            return f
        return wrap if not args or not callable(args[0]) else args[0]

TWO_PI = 2 * np.pi
JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


@njit(**JIT)
def lane_coordinates(px, py, straight, origin_x, origin_y, axis_x, axis_y, normal_x, normal_y,
                     pi_minus_phase, sense_radius, sense, wrap_limit):
    """(lon, lat, unsure), each [points, lanes]: ``LaneTable.coordinates`` (see there)."""
    n, m = px.shape[0], straight.shape[0]
    lon = np.empty((n, m))
    lat = np.empty((n, m))
    unsure = np.zeros((n, m), dtype=np.bool_)
    for i in range(n):
        for k in range(m):
            dx = px[i] - origin_x[k]
            dy = py[i] - origin_y[k]
            if straight[k]:
                lon[i, k] = dx * axis_x[k] + dy * axis_y[k]
                lat[i, k] = dx * normal_x[k] + dy * normal_y[k]
            else:
                wrapped = (np.arctan2(dy, dx) + pi_minus_phase[k]) % TWO_PI
                lon[i, k] = (wrapped - np.pi) * sense_radius[k]
                lat[i, k] = sense_radius[k] - sense[k] * np.hypot(dx, dy)
                unsure[i, k] = abs(wrapped - np.pi) > wrap_limit[k]
    return lon, lat, unsure


@njit(**JIT)
def closest_lanes(lon, lat, unsure, headings, use_headings, straight, half_length, heading,
                  sense_per_radius, heading_offset, margin, found, best, plain, distance):
    """``LaneTable.closest``'s array part, written into found [n], best [n], plain [n], distance [n, m] (every
    entry); returns how many rows are plain. ``found`` is the first lane of smallest distance among the sure
    ones; ``plain`` marks rows the caller must decide exactly (a runner-up within ``margin``, an unsure lane,
    or no finite best: then ``best`` is not finite)."""
    n, m = lon.shape
    n_plain = 0
    for i in range(n):
        first, runner_up, row_unsure, bad = np.inf, np.inf, False, False
        index = 0
        for k in range(m):
            d = abs(lat[i, k]) + max(abs(lon[i, k] - half_length[k]) - half_length[k], 0.0)
            if use_headings:
                lane_heading = heading[k] if straight[k] else lon[i, k] * sense_per_radius[k] + heading_offset[k]
                d += abs((headings[i] - lane_heading + np.pi) % TWO_PI - np.pi)
            distance[i, k] = d
            if d != d:
                bad = True
            if unsure[i, k]:
                row_unsure = True
                continue
            if d < first:
                runner_up = first
                first = d
                index = k
            elif d < runner_up:
                runner_up = d
        found[i] = index
        best[i] = np.nan if bad else first
        plain[i] = bad or row_unsure or not np.isfinite(first) or runner_up <= first + margin
        if plain[i]:
            n_plain += 1
    return n_plain


@njit(**JIT)
def fronts(lon, lat, unsure, me, lane, width_limit, vehicle_length, end_limit, margin, front, doubtful):
    """``_Frame``'s front vehicle of each asker on its lane (-1: none), from all objects' coordinates
    [objects, lanes], written into front [askers] and doubtful [askers]; see ``_Frame.__init__``."""
    n_askers, n_objects = me.shape[0], lon.shape[0]
    for r in range(n_askers):
        front[r] = -1
        c = lane[r]
        own = lon[me[r], c]
        best, runner_up = np.inf, np.inf
        doubt = False
        for o in range(n_objects):
            s = lon[o, c]
            if unsure[o, c] or not np.isfinite(s):
                doubt = True
            if o == me[r]:
                continue
            width_edge = abs(lat[o, c]) - width_limit[c]
            start_edge = s + vehicle_length[c]
            end_edge = s - end_limit[c]
            gap = s - own
            on = width_edge <= 0 and start_edge >= 0 and end_edge < 0
            edge = min(min(abs(width_edge), abs(start_edge)), abs(end_edge))
            if edge <= margin or (on and abs(gap) <= margin):
                doubt = True
            if on and gap > 0:
                if gap < best:
                    runner_up = best
                    best = gap
                    front[r] = o
                elif gap < runner_up:
                    runner_up = gap
        if np.isfinite(best) and runner_up <= best + margin:
            doubt = True
        if not np.isfinite(best):
            front[r] = -1
        doubtful[r] = doubt


@njit(**JIT)
def _interval(ax, ay, cx, cy, heading, length, width):
    along = abs(ax * np.cos(heading) + ay * np.sin(heading))
    across = abs(ax * -np.sin(heading) + ay * np.cos(heading))
    middle = ax * cx + ay * cy
    half = length / 2 * along + width / 2 * across
    return middle - half, middle + half


@njit(**JIT)
def collision_candidates(px, py, heading, speed, diagonal, length, width, dt, margin, first, second):
    """How many pairs i < j ``Road.step``'s collision check might not certainly dismiss (within
    ``RoadObject._is_colliding``'s spherical pre-check plus ``margin``, and not certainly separated by
    ``fastsim.separated``'s test, see there), written in row-major order into ``first[:count]`` and
    ``second[:count]`` (each at least n (n - 1) / 2 long)."""
    n = px.shape[0]
    count = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = px[j] - px[i]
            dy = py[j] - py[i]
            if np.sqrt(dx * dx + dy * dy) > (diagonal[i] + diagonal[j]) / 2 + speed[i] * dt + margin:
                continue
            ca, sa, cb, sb = np.cos(heading[i]), np.sin(heading[i]), np.cos(heading[j]), np.sin(heading[j])
            move_a, move_b = speed[i] * dt, speed[j] * dt
            rx, ry = move_a * ca - move_b * cb, move_a * sa - move_b * sb
            now_apart, later_apart = False, False
            for axis in range(4):
                if axis == 0:
                    ax, ay = ca, sa
                elif axis == 1:
                    ax, ay = -sa, ca
                elif axis == 2:
                    ax, ay = cb, sb
                else:
                    ax, ay = -sb, cb
                low_a, high_a = _interval(ax, ay, px[i], py[i], heading[i], length[i], width[i])
                low_b, high_b = _interval(ax, ay, px[j], py[j], heading[j], length[j], width[j])
                stretch = ax * rx + ay * ry
                if max(low_b - high_a, low_a - high_b) > margin:
                    now_apart = True
                if max(low_b - (high_a + max(stretch, 0.0)), (low_a + min(stretch, 0.0)) - high_b) > margin:
                    later_apart = True
            if now_apart and later_apart:
                continue
            first[count] = i
            second[count] = j
            count += 1
    return count


@njit(**JIT)
def route_points(starts, speeds, head_columns, head_lengths, head_counts, times, straight, origin_x, origin_y,
                 axis_x, axis_y, heading, radius, phase, sense):
    """(centres [n, T, 2], headings [n, T]): ``fastsim._predictions``' route walk (``_route_walk``) and lane
    geometry (``LaneTable.points_at``) in one loop: vehicle i at ``starts[i] + speeds[i] * times[t]`` along
    its route's lanes ``head_columns[i, :head_counts[i]]`` (lengths ``head_lengths``), as
    ``RoadNetwork.position_heading_along_route`` walks them. Only compared with a margin, never stored."""
    n, steps = starts.shape[0], times.shape[0]
    centres = np.empty((n, steps, 2))
    headings = np.empty((n, steps))
    for i in range(n):
        for t in range(steps):
            lon = starts[i] + speeds[i] * times[t]
            k = 0
            while k < head_counts[i] - 1 and lon > head_lengths[i, k]:
                lon -= head_lengths[i, k]
                k += 1
            c = head_columns[i, k]
            if straight[c]:
                centres[i, t, 0] = origin_x[c] + lon * axis_x[c]
                centres[i, t, 1] = origin_y[c] + lon * axis_y[c]
                headings[i, t] = heading[c]
            else:
                phi = sense[c] * lon / radius[c] + phase[c]
                centres[i, t, 0] = origin_x[c] + radius[c] * np.cos(phi)
                centres[i, t, 1] = origin_y[c] + radius[c] * np.sin(phi)
                headings[i, t] = phi + np.pi / 2 * sense[c]
    return centres, headings


@njit(**JIT)
def advance(x, y, heading, speed, half_length, cos_course, sin_course, sin_beta, dt, points, headings, turns):
    """``Vehicle.step``'s arithmetic around numpy's transcendental results (which enter the state, so they come
    from numpy, not from here): ``points`` [n, 2] = position + speed * (cos, sin)(course) * dt, ``turns`` =
    speed * sin(beta) / (LENGTH / 2) * dt, ``headings`` = heading + turn. Only +, -, *, / in highway-env's
    order, each rounded once (no fastmath: LLVM fuses nothing), so the same bits as numpy's elementwise ones
    (``fastsim._advance_exact`` checks it on the running platform)."""
    for i in range(x.shape[0]):
        points[i, 0] = x[i] + speed[i] * cos_course[i] * dt
        points[i, 1] = y[i] + speed[i] * sin_course[i] * dt
        turns[i] = speed[i] * sin_beta[i] / half_length[i] * dt
        headings[i] = heading[i] + turns[i]


@njit(**JIT)
def _clip(value, low, high):
    """``np.clip`` of a float64 between non-zero bounds: NaN stays NaN, a value equal to a bound is that bound."""
    if value != value:
        return value
    if value < low:
        return low
    if value > high:
        return high
    return value


@njit(**JIT)
def steering_command_inputs(lateral, speed, kp_lateral, out):
    """``out`` = clip(-KP_LATERAL * lateral / speed, -1, 1): ``steering_control``'s arcsin argument."""
    for i in range(lateral.shape[0]):
        out[i] = _clip(-kp_lateral[i] * lateral[i] / speed[i], -1.0, 1.0)


@njit(**JIT)
def steering_slip_inputs(future_heading, heading_command, heading, kp_heading, length, speed, out):
    """``out`` = clip(LENGTH / 2 / speed * KP_HEADING * wrap_to_pi(future heading + clip(heading command,
    -pi/4, pi/4) - heading), -1, 1): ``steering_control``'s second arcsin argument."""
    for i in range(heading.shape[0]):
        reference = future_heading[i] + _clip(heading_command[i], -np.pi / 4, np.pi / 4)
        rate = kp_heading[i] * ((reference - heading[i] + np.pi) % (2 * np.pi) - np.pi)
        out[i] = _clip(length[i] / 2 / speed[i] * rate, -1.0, 1.0)


# utils.rect_corners(include_midpoints=True, include_center=True) as fractions of (length, width)
RECT_POINTS = np.array([[-.5, -.5], [-.5, .5], [.5, .5], [.5, -.5], [0, 0], [-.5, 0], [.5, 0], [0, -.5], [0, .5]])


@njit(**JIT)
def _inside(xa, ya, ha, la, wa, xb, yb, hb, lb, wb, points):
    """max over rectangle a's sample points of how far inside rectangle b each is (``fastsim.inside_margin``)."""
    ca, sa, cb, sb = np.cos(ha), np.sin(ha), np.cos(hb), np.sin(hb)
    out = -np.inf
    for p in range(points.shape[0]):
        ox, oy = points[p, 0] * la, points[p, 1] * wa
        dx = xa + ca * ox - sa * oy - xb
        dy = ya + sa * ox + ca * oy - yb
        along = cb * dx - sb * dy
        across = sb * dx + cb * dy
        out = max(out, min(lb / 2 - abs(along), wb / 2 - abs(across)))
    return out


@njit(**JIT)
def conflict_checks(centres, headings, length, size, margin, points):
    """(i, j, t, certain, doubtful) over the (pair i < j, instant t) entries whose predicted centres are
    within a car length (plus ``margin``), in row-major order: ``FastRegulatedRoad._conflict_table``'s array
    part (see there)."""
    n, steps = headings.shape
    total = n * (n - 1) // 2 * steps
    out_i = np.empty(total, dtype=np.int64)
    out_j = np.empty(total, dtype=np.int64)
    out_t = np.empty(total, dtype=np.int64)
    certain = np.empty(total, dtype=np.bool_)
    doubtful = np.empty(total, dtype=np.bool_)
    count = 0
    for i in range(n):
        for j in range(i + 1, n):
            for t in range(steps):
                dx = centres[j, t, 0] - centres[i, t, 0]
                dy = centres[j, t, 1] - centres[i, t, 1]
                apart = np.sqrt(dx * dx + dy * dy) - length[i]
                if not apart <= margin:
                    continue
                inside = max(_inside(centres[i, t, 0], centres[i, t, 1], headings[i, t], size[i, 0], size[i, 1],
                                     centres[j, t, 0], centres[j, t, 1], headings[j, t], size[j, 0], size[j, 1],
                                     points),
                             _inside(centres[j, t, 0], centres[j, t, 1], headings[j, t], size[j, 0], size[j, 1],
                                     centres[i, t, 0], centres[i, t, 1], headings[i, t], size[i, 0], size[i, 1],
                                     points))
                sure = apart < -margin and inside > margin
                out_i[count], out_j[count], out_t[count] = i, j, t
                certain[count] = sure
                doubtful[count] = (inside >= -margin or inside != inside) and not sure  # NaN: ask the plain test
                count += 1
    return out_i[:count], out_j[:count], out_t[:count], certain[:count], doubtful[:count]


_WARM: list[bool] = []


def warm_up() -> None:
    """Load (or compile, the first time on a machine) every kernel for the argument types ``fastsim`` passes,
    once per process: ~0.5 s from numba's on-disk cache, paid when the fast simulator is enabled rather than
    inside the first episode."""
    if _WARM or not AVAILABLE:
        return
    f, b, i = np.zeros(2), np.zeros(2, dtype=np.bool_), np.zeros(1, dtype=np.int64)
    f2, b2 = np.zeros((2, 2)), np.zeros((2, 2), dtype=np.bool_)
    lane_coordinates(f, f, b, f, f, f, f, f, f, f, f, f, f)
    i2 = np.zeros(2, dtype=np.int64)
    for use_headings in (True, False):
        closest_lanes(f2, f2, b2, f, use_headings, b, f, f, f, f, 1e-6, i2, np.zeros(2), np.zeros(2, dtype=np.bool_),
                      np.zeros((2, 2)))
    fronts(f2, f2, b2, i, i, f, f, f, 1e-6, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.bool_))
    collision_candidates(f, f, f, f, f, f, f, 0.1, 1e-6, i2, i2.copy())
    conflict_checks(np.zeros((2, 3, 2)), np.zeros((2, 3)), f, f2, 1e-6, RECT_POINTS)
    route_points(f, f, np.zeros((2, 2), dtype=np.int64), f2, np.ones(2, dtype=np.int64), f, b, f, f, f, f, f,
                 np.ones(2), f, f)
    advance(f, f, f, f, np.ones(2), f, f, f, 0.1, np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    steering_command_inputs(f, np.ones(2), f, np.zeros(2))
    steering_slip_inputs(f, f, f, f, f, np.ones(2), np.zeros(2))
    _WARM.append(True)
