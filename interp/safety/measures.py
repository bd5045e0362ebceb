"""Surrogate safety measures between the ego and every other vehicle, from recorded states (numpy only).

Why a pure module: the workers only copy states (cheap), and the measures are computed afterwards on arrays,
so the simulator's step is not slowed and the measures can be checked on planted trajectories without it.

Definitions (one variant each, stated):
- **TTC** (time to collision; Hayward 1972, "Near-miss determination through use of a scale of danger"): the
  first time at which the two vehicles' footprints (rotated rectangles, length x width, not enlarged) would
  overlap if both kept their current speed along their planned routes (highway-env's
  ``predict_trajectory_constant_speed``, recorded every ``PREDICTION_STEP_S`` and interpolated every
  ``TTC_RESOLUTION_S``). No predicted contact within ``TTC_CAP_S`` gives the cap (right-censored). 0 = touching.
- **DRAC** (deceleration rate to avoid a crash; Cooper & Ferguson 1976, "Traffic studies at T-junctions. 2. A
  conflict simulation model"; crossing-conflict form v^2 / (2 d), Archer 2005): the constant deceleration with
  which the ego stops before the point where it would first touch the other vehicle, d = v * TTC along its
  route, so DRAC = v / (2 TTC). 0 when no contact is predicted within the cap; +inf when already touching.
- **PET** (post-encroachment time; Allen, Shin & Cooper 1978, "Analysis of traffic conflicts and collisions"):
  the time between the first vehicle leaving a conflict area and the second entering it. Here, at footprint
  resolution: the smallest |t_ego - t_other| over pairs of recorded footprints (one per simulation frame) that
  overlap. 0 when they overlap in the same frame (a collision). A pair whose paths have not both been covered
  by the episode's end is *censored*: the other vehicle's (or the ego's) route-predicted future is used, and
  the PET is a lower bound, ``t_end - t`` (the second vehicle was not there by the end).
- **Minimum distance**: the smallest gap between the two footprints (0 when they touch).

Rectangle tests are hand-written and vectorised (separating-axis theorem), an exact test for convex shapes
that agrees with highway-env's per-pair ``utils.rotated_rectangles_intersect`` wherever that one finds a
corner inside (checked in tests/test_safety_measures.py).
"""
from __future__ import annotations

import math

import numpy as np

TTC_CAP_S = 5.0  # TTC above this is recorded as the cap (no contact predicted within 5 s)
PREDICTION_STEP_S = 0.25  # spacing of the route predictions the workers record (as highway-env's regulation)
TTC_RESOLUTION_S = 0.05  # TTC is found on this grid (positions and headings interpolated linearly)
CROSSING_ANGLE = (math.pi / 6, 5 * math.pi / 6)  # a conflict is "crossing" when the headings differ by 30-150 deg


def prediction_times(cap: float = TTC_CAP_S, step: float = PREDICTION_STEP_S) -> np.ndarray:
    """The times (s) at which the workers record route predictions: 0, step, ..., cap."""
    return np.round(np.arange(0.0, cap + step / 2, step), 10)


def corners(centre: np.ndarray, heading: np.ndarray, length: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Corners [..., 4, 2] of rectangles centred at ``centre`` [..., 2], length along ``heading`` (rad)."""
    centre = np.asarray(centre, float)
    c, s = np.cos(heading)[..., None], np.sin(heading)[..., None]
    half_l, half_w = (np.asarray(length, float) / 2)[..., None], (np.asarray(width, float) / 2)[..., None]
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], float)
    dx = signs[:, 0] * half_l  # [..., 4]
    dy = signs[:, 1] * half_w
    x = centre[..., None, 0] + dx * c - dy * s
    y = centre[..., None, 1] + dx * s + dy * c
    return np.stack([x, y], axis=-1)


def rectangles_intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Do rectangles with corners ``a`` and ``b`` [..., 4, 2] overlap (touching counts)? Separating-axis test."""
    axes = np.concatenate([a[..., 1:3, :] - a[..., 0:2, :], b[..., 1:3, :] - b[..., 0:2, :]], axis=-2)  # [...,4,2]
    pa = np.einsum("...kd,...jd->...kj", axes, a)  # projections [..., axis, corner]
    pb = np.einsum("...kd,...jd->...kj", axes, b)
    separated = (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    return ~separated.any(-1)


def footprint_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest distance between rectangles ``a`` and ``b`` [..., 4, 2]; 0 where they overlap."""
    def vertex_to_edges(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
        start, end = poly, np.roll(poly, -1, axis=-2)  # edges [..., 4, 2]
        seg = end - start
        rel = points[..., :, None, :] - start[..., None, :, :]  # [..., point, edge, 2]
        t = np.clip((rel * seg[..., None, :, :]).sum(-1) / (seg * seg).sum(-1)[..., None, :], 0.0, 1.0)
        nearest = start[..., None, :, :] + t[..., None] * seg[..., None, :, :]
        return np.linalg.norm(points[..., :, None, :] - nearest, axis=-1).min(axis=(-1, -2))

    gap = np.minimum(vertex_to_edges(a, b), vertex_to_edges(b, a))
    return np.where(rectangles_intersect(a, b), 0.0, gap)


def _interpolate(times: np.ndarray, fine: np.ndarray, positions: np.ndarray, headings: np.ndarray):
    """Positions [..., K, 2] and headings [..., K] at ``times`` resampled onto ``fine`` (linear; headings unwrapped)."""
    index = np.clip(np.searchsorted(times, fine, side="right") - 1, 0, len(times) - 2)
    w = (fine - times[index]) / (times[index + 1] - times[index])
    unwrapped = np.unwrap(headings, axis=-1)
    pos = positions[..., index, :] * (1 - w)[:, None] + positions[..., index + 1, :] * w[:, None]
    head = unwrapped[..., index] * (1 - w) + unwrapped[..., index + 1] * w
    return pos, head


def time_to_collision(times: np.ndarray, ego_positions: np.ndarray, ego_headings: np.ndarray, ego_size: np.ndarray,
                      positions: np.ndarray, headings: np.ndarray, sizes: np.ndarray, *, cap: float = TTC_CAP_S,
                      resolution: float = TTC_RESOLUTION_S) -> np.ndarray:
    """TTC [M] of the ego against M vehicles, from predicted paths: ``times`` [K] (0 first),
    ``ego_positions`` [K, 2], ``ego_headings`` [K], ``ego_size`` (length, width); ``positions`` [M, K, 2],
    ``headings`` [M, K], ``sizes`` [M, 2]. Vehicles that never touch within ``cap`` get ``cap``."""
    times = np.asarray(times, float)
    if times[0] != 0 or np.any(np.diff(times) <= 0):
        raise ValueError(f"prediction times must start at 0 and increase; got {times}")
    positions, headings = np.asarray(positions, float), np.asarray(headings, float)
    if positions.shape[0] == 0:
        return np.zeros(0)
    fine = np.round(np.arange(0.0, min(cap, times[-1]) + resolution / 2, resolution), 10)
    ego_p, ego_h = _interpolate(times, fine, np.asarray(ego_positions, float), np.asarray(ego_headings, float))
    p, h = _interpolate(times, fine, positions, headings)
    ego_c = corners(ego_p, ego_h, ego_size[0], ego_size[1])  # [F, 4, 2]
    sizes = np.asarray(sizes, float)
    other_c = corners(p, h, sizes[:, 0, None], sizes[:, 1, None])  # [M, F, 4, 2]
    reach = np.hypot(*ego_size) / 2 + np.hypot(sizes[:, 0], sizes[:, 1])[:, None] / 2
    near = np.linalg.norm(p - ego_p, axis=-1) <= reach  # circle pre-check [M, F]: the rest cannot touch
    touch = np.zeros(near.shape, bool)
    m, f = np.nonzero(near)
    touch[m, f] = rectangles_intersect(ego_c[f], other_c[m, f])
    first = np.where(touch.any(-1), fine[np.argmax(touch, axis=-1)], cap)
    return np.minimum(first, cap)


def drac(ego_speed: float | np.ndarray, ttc: np.ndarray, *, cap: float = TTC_CAP_S) -> np.ndarray:
    """DRAC (m/s^2) = v / (2 TTC): the ego's deceleration to stop before the predicted contact point; 0 where no
    contact is predicted within the cap, +inf where the footprints already touch."""
    ttc = np.asarray(ttc, float)
    v = np.broadcast_to(np.asarray(ego_speed, float), ttc.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ttc >= cap, 0.0, np.where(ttc <= 0, np.inf, np.maximum(v, 0.0) / (2 * ttc)))
    return out


def post_encroachment_time(ego_times: np.ndarray, ego_corners: np.ndarray, other_times: np.ndarray,
                           other_corners: np.ndarray, *, end: float, ego_headings: np.ndarray | None = None,
                           other_headings: np.ndarray | None = None) -> dict | None:
    """PET of one pair from footprints over time: ``*_times`` [T] and ``*_corners`` [T, 4, 2]; footprints at
    times after ``end`` are route predictions (the episode was over). None when the paths never overlap.

    Returns ``pet`` (s), ``ego_first`` (the ego occupied the conflict area first), ``censored`` (the pet is a
    lower bound: the second vehicle had not come by the end) and ``angle`` (heading difference at the conflict,
    rad in [0, pi]; needs the headings, else None)."""
    ego_times, other_times = np.asarray(ego_times, float), np.asarray(other_times, float)
    if len(ego_times) == 0 or len(other_times) == 0:
        return None
    ca, cb = ego_corners.mean(-2), other_corners.mean(-2)
    ra = np.linalg.norm(ego_corners - ca[:, None], axis=-1).max(-1)
    rb = np.linalg.norm(other_corners - cb[:, None], axis=-1).max(-1)
    near = np.linalg.norm(ca[:, None] - cb[None], axis=-1) <= ra[:, None] + rb[None]  # circle pre-check
    i, j = np.nonzero(near)
    if len(i) == 0:
        return None
    hit = rectangles_intersect(ego_corners[i], other_corners[j])
    i, j = i[hit], j[hit]
    if len(i) == 0:
        return None
    keep = (ego_times[i] <= end) | (other_times[j] <= end)  # two predictions say nothing about what happened
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return None
    ta, tb = ego_times[i], other_times[j]
    observed = (ta <= end) & (tb <= end)
    # Observed overlaps give the PET itself; an overlap involving a prediction only says the second vehicle had
    # not arrived by the end: PET >= end - (the observed one's time).
    gaps = np.where(observed, np.abs(ta - tb), end - np.minimum(ta, tb))
    k = int(np.argmin(gaps))
    angle = None
    if ego_headings is not None and other_headings is not None:
        diff = abs((float(ego_headings[i[k]]) - float(other_headings[j[k]]) + math.pi) % (2 * math.pi) - math.pi)
        angle = diff
    return {"pet": float(max(gaps[k], 0.0)), "ego_first": bool(ta[k] < tb[k]), "censored": bool(not observed[k]),
            "angle": angle}


def is_crossing(angle: float | None) -> bool:
    """Whether a conflict's heading difference makes it a crossing conflict (not following, not head-on)."""
    return angle is not None and CROSSING_ANGLE[0] <= angle <= CROSSING_ANGLE[1]
