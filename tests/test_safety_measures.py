"""Known-answer tests of the surrogate safety measures on planted trajectories (no simulator), and of the
rectangle test against highway-env's own."""
from __future__ import annotations

import math

import numpy as np
import pytest
from highway_env import utils
from hypothesis import given, settings, strategies as st

from interp.safety import measures
from interp.safety.recorder import summarise

L, W = 5.0, 2.0
SIZE = np.array([L, W])


def straight(start, heading, speed, times):
    """Positions [K, 2] and headings [K] of constant-speed straight motion."""
    d = np.array([math.cos(heading), math.sin(heading)])
    return np.asarray(start, float) + speed * np.asarray(times)[:, None] * d, np.full(len(times), heading)


def test_head_on_ttc_is_gap_over_closing_speed():
    """Two cars head on, centres 50 m apart at 10 + 15 m/s: bumpers touch when 50 - 5 = 45 m are closed,
    at 45 / 25 = 1.8 s."""
    t = measures.prediction_times()
    ego_p, ego_h = straight([0, 0], 0.0, 10.0, t)
    p, h = straight([50, 0], math.pi, 15.0, t)
    ttc = measures.time_to_collision(t, ego_p, ego_h, SIZE, p[None], h[None], SIZE[None])
    assert ttc[0] == pytest.approx(1.8, abs=measures.TTC_RESOLUTION_S)


def test_ttc_is_capped_when_no_contact_and_lateral_offset_misses():
    """Parallel lanes 4 m apart never touch (cap); a far car beyond the cap's reach gets the cap too."""
    t = measures.prediction_times()
    ego_p, ego_h = straight([0, 0], 0.0, 10.0, t)
    p1, h1 = straight([50, 4.0], math.pi, 15.0, t)  # offset 4 m > width 2 m: passes by
    p2, h2 = straight([500, 0], math.pi, 15.0, t)  # would touch at (500 - 5) / 25 = 19.8 s > cap
    ttc = measures.time_to_collision(t, ego_p, ego_h, SIZE, np.stack([p1, p2]), np.stack([h1, h2]), np.stack([SIZE, SIZE]))
    assert ttc.tolist() == [measures.TTC_CAP_S, measures.TTC_CAP_S]


def test_ttc_follows_a_curved_route_not_a_straight_line():
    """The ego turns left (quarter circle of radius 10 m at 5 m/s) into a stopped car that sits on the curve:
    the route-predicted TTC finds it; straight-line extrapolation would miss it entirely."""
    t = measures.prediction_times()
    angle = 5.0 * t / 10.0  # arc length / radius
    ego_p = np.stack([10 * np.sin(angle), 10 * (1 - np.cos(angle))], -1)
    ego_h = angle
    stop_angle = math.pi / 2
    car = np.array([10 * math.sin(stop_angle), 10 * (1 - math.cos(stop_angle))])
    p, h = np.repeat(car[None], len(t), 0), np.full(len(t), stop_angle)
    ttc = measures.time_to_collision(t, ego_p, ego_h, SIZE, p[None], h[None], SIZE[None])
    # contact when the arc between centres is about one car length: (pi/2 * 10 - 5) / 5 = 2.14 s
    assert 1.8 <= ttc[0] <= 2.2
    straight_p, straight_h = straight([0, 0], 0.0, 5.0, t)
    assert measures.time_to_collision(t, straight_p, straight_h, SIZE, p[None], h[None], SIZE[None])[0] == measures.TTC_CAP_S


def test_drac_known_answer_and_a_vehicle_that_brakes_in_time():
    """Ego at 10 m/s towards a stopped car whose rear is 25 m ahead of the ego's front: TTC = 2.5 s,
    DRAC = v / (2 TTC) = 2 m/s^2. Braking at 2.5 m/s^2 (more than DRAC) stops it short: the gap never closes,
    and DRAC recomputed along the way never exceeds the deceleration applied."""
    t = measures.prediction_times()
    ego_p, ego_h = straight([0, 0], 0.0, 10.0, t)
    car = np.array([30.0, 0.0])
    p, h = np.repeat(car[None], len(t), 0), np.zeros(len(t))
    ttc = measures.time_to_collision(t, ego_p, ego_h, SIZE, p[None], h[None], SIZE[None])
    assert ttc[0] == pytest.approx(2.5, abs=measures.TTC_RESOLUTION_S)
    assert measures.drac(10.0, ttc)[0] == pytest.approx(2.0, rel=0.03)
    a, x, v, dt, gaps, dracs = 2.5, 0.0, 10.0, 1 / 15, [], []
    while v > 0:
        q, qh = straight([x, 0], 0.0, v, t)
        tt = measures.time_to_collision(t, q, qh, SIZE, p[None], h[None], SIZE[None])
        dracs.append(measures.drac(v, tt)[0])
        gaps.append(measures.footprint_distance(measures.corners(np.array([x, 0.0]), 0.0, L, W),
                                                measures.corners(car, 0.0, L, W)))
        x, v = x + v * dt - a * dt * dt / 2, v - a * dt
    assert min(gaps) > 0.0
    assert max(dracs) <= a
    # a driver braking at 1.5 m/s^2 (less than DRAC) would need 33.3 m: more than the 25 m gap
    assert 10.0 ** 2 / (2 * 1.5) > 25.0


def test_drac_edges():
    assert measures.drac(10.0, np.array([measures.TTC_CAP_S]))[0] == 0.0  # no predicted contact
    assert measures.drac(10.0, np.array([0.0]))[0] == math.inf  # already touching


def test_minimum_distance_known_answer():
    """Centres 20 m apart in line: gap 15 m; 4 m side by side (width 2): 2 m; overlapping: 0."""
    a = measures.corners(np.array([0.0, 0.0]), 0.0, L, W)
    assert measures.footprint_distance(a, measures.corners(np.array([20.0, 0.0]), math.pi, L, W)) == pytest.approx(15.0)
    assert measures.footprint_distance(a, measures.corners(np.array([0.0, 4.0]), 0.0, L, W)) == pytest.approx(2.0)
    assert measures.footprint_distance(a, measures.corners(np.array([1.0, 1.0]), 1.0, L, W)) == 0.0


def _crossing(gap_s: float, dt: float = 1 / 15, duration: float = 10.0):
    """The ego drives east through the origin (centre there at t=2 s), another car drives north through the
    origin ``gap_s`` seconds after the ego's rear has cleared its path, both at 10 m/s."""
    times = np.arange(0, duration + dt / 2, dt)
    ego_x = 10.0 * (times - 2.0)
    # the ego's footprint leaves the other's lane (x in [-1, 1]) when its rear passes x = 1: centre x = 3.5,
    # at t = 2.35 s; the other car enters the ego's lane (y in [-1, 1]) when its front reaches y = -1: centre
    # y = -3.5. For PET = gap_s it must be there at t = 2.35 + gap_s.
    other_y = 10.0 * (times - (2.35 + gap_s)) - 3.5
    ego = measures.corners(np.stack([ego_x, np.zeros_like(times)], -1), np.zeros_like(times), L, W)
    other = measures.corners(np.stack([np.zeros_like(times), other_y], -1), np.full_like(times, math.pi / 2), L, W)
    return times, ego, other


@pytest.mark.parametrize("gap", [0.6, 1.0, 2.0])
def test_pet_of_crossing_paths_with_a_known_gap(gap):
    times, ego, other = _crossing(gap)
    pet = measures.post_encroachment_time(times, ego, times, other, end=times[-1], ego_headings=np.zeros_like(times),
                                          other_headings=np.full_like(times, math.pi / 2))
    assert pet["pet"] == pytest.approx(gap, abs=1 / 15 + 1e-9)
    assert pet["ego_first"] and not pet["censored"]
    assert measures.is_crossing(pet["angle"])


def test_pet_is_zero_for_a_collision_and_none_without_conflict():
    times, ego, other = _crossing(0.0)
    other_now = measures.corners(np.array([[2.0, 0.0]] * len(times)), np.full(len(times), math.pi / 2), L, W)
    assert measures.post_encroachment_time(times, ego, times, other_now, end=times[-1])["pet"] == 0.0
    far = measures.corners(np.array([[0.0, 100.0]] * len(times)), np.zeros(len(times)), L, W)
    assert measures.post_encroachment_time(times, ego, times, far, end=times[-1]) is None


def test_pet_is_censored_at_the_episode_end():
    """The episode ends at 3 s, before the other car (due 2 s after the ego, at 4.35 s) arrives: only its
    predicted future reaches the conflict area, so PET is a lower bound, end - (ego's last time there)."""
    times, ego, other = _crossing(2.0)
    end = 3.0
    pet = measures.post_encroachment_time(times, ego, times, other, end=end)
    assert pet["censored"] and pet["ego_first"]
    assert pet["pet"] == pytest.approx(end - 2.35, abs=1 / 15 + 1e-9)
    assert pet["pet"] < 2.0  # a lower bound of the true 2 s


def test_summarise_on_planted_frames_head_on():
    """The recorder's summary on planted frames: the ego and a car head on, 60 m apart at 10 m/s each, one
    decision at t=0 with straight route predictions: TTC = (60 - 5) / 20 = 2.75 s; min distance over the
    frames before contact."""
    dt, times = 1 / 15, measures.prediction_times()
    frames = []
    for f in range(30):  # 2 s
        s = f * dt
        frames.append([(7, 10.0 * s, 0.0, 0.0, 10.0, L, W, 0.0), (9, 60.0 - 10.0 * s, 0.0, math.pi, 10.0, L, W, 0.0)])
    ego_p, ego_h = straight([0, 0], 0.0, 10.0, times)
    p, h = straight([60, 0], math.pi, 10.0, times)
    decisions = [{"frame": 0, "ego": 0, "ids": [7, 9], "paths": np.stack([ego_p, p]), "headings": np.stack([ego_h, h]),
                  "sizes": np.stack([SIZE, SIZE]), "speed": 10.0}]
    out = summarise(frames, decisions, 7, dt, times)
    assert out["min_ttc"] == pytest.approx(2.75, abs=measures.TTC_RESOLUTION_S)
    assert out["max_drac"] == pytest.approx(10.0 / (2 * 2.75), rel=0.03)
    assert out["min_distance_episode"] == pytest.approx(60 - 5 - 20 * 29 * dt)


rect = st.tuples(st.floats(-8, 8), st.floats(-8, 8), st.floats(0, 2 * math.pi), st.floats(1, 6), st.floats(0.5, 3))


@settings(max_examples=400, deadline=None)
@given(rect, rect)
def test_rectangle_test_agrees_with_highway_envs_polygon_test(r1, r2):
    """Our vectorised test gives the same answer as highway-env's own separating-axis polygon test (the one its
    vehicles' collision check uses), away from exact touching (where rounding may decide either way)."""
    a = measures.corners(np.array(r1[:2]), r1[2], r1[3], r1[4])
    b = measures.corners(np.array(r2[:2]), r2[2], r2[3], r2[4])
    gap = float(measures.footprint_distance(a, b))
    theirs, _, _ = utils.are_polygons_intersecting(np.vstack([a, a[:1]]), np.vstack([b, b[:1]]), np.zeros(2), np.zeros(2))
    if gap > 1e-6 or theirs:
        assert bool(measures.rectangles_intersect(a, b)) == bool(theirs)


def test_highway_envs_corner_test_rotates_the_wrong_way():
    """A finding that made us not use it as the reference: highway-env 1.12.1's ``rotated_rectangles_intersect``
    (via ``point_in_rotated_rectangle``, which rotates by +angle instead of -angle) calls two rectangles 1 m
    apart intersecting. Our test and highway-env's polygon test say they are apart."""
    r1, r2 = (np.zeros(2), 1.0, 1.0, 0.0), (np.array([1.0, -1.0]), 2.0, 1.0, 1.0)
    a, b = measures.corners(r1[0], 0.0, 1.0, 1.0), measures.corners(r2[0], 1.0, 2.0, 1.0)
    assert utils.rotated_rectangles_intersect(r1, r2)
    assert not measures.rectangles_intersect(a, b)
    assert not utils.are_polygons_intersecting(np.vstack([a, a[:1]]), np.vstack([b, b[:1]]), np.zeros(2), np.zeros(2))[0]
    assert measures.footprint_distance(a, b) > 0.1
