"""Run-time bit checks: whether an array path gives, on this CPU and numpy, the very bits of the scalar path.

Why: elementwise numpy ufuncs, BLAS dot products and numba's arithmetic may differ in the last bit across
platforms; each check runs once per process on random inputs of the magnitudes the simulator sees, and
where it fails the caller runs the per-vehicle code instead. Determinism by design: no path enters the
state unless this platform is shown to give the same bits.
"""
from __future__ import annotations

import numpy as np
from highway_env.road.lane import StraightLane

from interp.simulation.fastsim import base, kernels
from interp.simulation.fastsim.base import ufunc_clip
from interp.simulation.fastsim.lanes import LaneTable

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


_STRAIGHT_EXACT: dict[bool, bool] = {}


def _straight_coordinates_exact() -> bool:
    """Whether ``LaneTable.coordinates`` (on the current path: kernels or numpy) gives, for straight lanes,
    the very bits of ``StraightLane.local_coordinates`` (``np.dot`` of 2-vectors computed as x0*y0 + x1*y1,
    not fused or reordered by the BLAS on this CPU); checked once per process and path on random lanes and
    points. Where not, the frame's decisions call the lanes' own ``local_coordinates``."""
    if base.USE_KERNELS not in _STRAIGHT_EXACT:
        rng = np.random.default_rng(0)
        lanes = [StraightLane(rng.uniform(-150, 150, 2), rng.uniform(-150, 150, 2)) for _ in range(16)]
        lanes += [StraightLane(np.array([2.0, 109.0]), np.array([2.0, 9.0])), StraightLane([-9.0, 2.0], [9.0, 2.0])]
        points = np.concatenate([rng.uniform(-150, 150, (256, 2)), rng.normal(0, 1e-3, (16, 2))])
        lon, lat, _ = LaneTable(lanes).coordinates(points)
        _STRAIGHT_EXACT[base.USE_KERNELS] = all(
            np.asarray(lane.local_coordinates(point)).tobytes() == np.array([lon[i, k], lat[i, k]]).tobytes()
            for i, point in enumerate(points) for k, lane in enumerate(lanes))
    return _STRAIGHT_EXACT[base.USE_KERNELS]


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
