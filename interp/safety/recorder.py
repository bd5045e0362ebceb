"""Records, in an environment worker, the vehicle states the surrogate safety measures need.

Two frequencies, for two needs:
- every simulation frame (15 Hz in intersection-v0): each vehicle's position, heading, speed and footprint.
  PET and the minimum distance need this resolution (one policy step is 1 s, too coarse for a 1 s PET
  threshold). Copying a few floats per vehicle costs microseconds.
- every decision (policy step, 1 Hz, and the final state): each nearby vehicle's route prediction at constant
  speed (highway-env's ``predict_trajectory_constant_speed``, every ``PREDICTION_STEP_S`` up to ``TTC_CAP_S``),
  for TTC and DRAC. Only vehicles that could reach the ego within the cap are predicted.

The frame hook is the env's own per-frame ``_automatic_rendering`` call (made after every frame but the last of
a step; the last is recorded after ``step()`` returns). The measures are computed once, at the episode's end
(``interp.safety.measures``), not in the step.

The patch is a small object, not a closure, so ``copy.deepcopy`` of an env gives a copy that records itself.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from interp.safety import measures
from interp.simulation.row_identity import vehicle_id


class SafetyRecorder:
    """Per-episode state recorder installed on one env (``install``); ``summary()`` gives the measures."""

    def __init__(self, unwrapped) -> None:
        self.unwrapped = unwrapped
        self.times = measures.prediction_times()
        self.frames: list[list[tuple]] = []
        self.decisions: list[dict] = []

    def __call__(self) -> None:  # the env's per-frame ``_automatic_rendering``
        self.frame()
        type(self.unwrapped)._automatic_rendering(self.unwrapped)

    def start(self) -> None:
        """After reset (and any scene set-up): forget the last episode, record the initial state."""
        self.frames, self.decisions = [], []
        self.after_step()

    def after_step(self) -> None:
        """After a policy step (or at the start): record the frame and the decision state."""
        self.frame()
        self.decision()

    def frame(self) -> None:
        road = self.unwrapped.road
        self.frames.append([(vehicle_id(v), float(v.position[0]), float(v.position[1]), float(v.heading),
                             float(v.speed), float(v.LENGTH), float(v.WIDTH), float(v.crashed))
                            for v in road.vehicles])

    def decision(self) -> None:
        ego = self.unwrapped.vehicle
        reach = measures.TTC_CAP_S
        ego_diag = math.hypot(ego.LENGTH, ego.WIDTH) / 2
        ids, paths, headings, sizes = [], [], [], []
        for v in self.unwrapped.road.vehicles:
            if v is not ego:
                gap = float(np.linalg.norm(v.position - ego.position))
                if gap > (abs(v.speed) + abs(ego.speed)) * reach + ego_diag + math.hypot(v.LENGTH, v.WIDTH) / 2:
                    continue  # cannot touch the ego within the cap, even head-on
            p, h = _predict(v, self.times)
            ids.append(vehicle_id(v))
            paths.append(p)
            headings.append(h)
            sizes.append((float(v.LENGTH), float(v.WIDTH)))
        ego_index = ids.index(vehicle_id(ego))
        self.decisions.append({"frame": len(self.frames) - 1, "ego": ego_index, "ids": ids,
                               "paths": np.asarray(paths), "headings": np.asarray(headings),
                               "sizes": np.asarray(sizes), "speed": float(ego.speed)})

    def raw(self, dt: float) -> dict[str, Any]:
        """What ``summarise`` needs, sent back to the rollout engine, which computes the measures there (so
        the worker spends no time on them); ``dt`` is the simulation frame's duration (s)."""
        ego_id = self.decisions[0]["ids"][self.decisions[0]["ego"]]
        return {"frames": self.frames, "decisions": self.decisions, "ego_id": ego_id, "dt": dt, "times": self.times}


def _predict(v, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions [K, 2] and headings [K] at ``times``: the current pose at 0, then highway-env's route
    prediction at constant speed (straight-line extrapolation for a vehicle without a route planner)."""
    if hasattr(v, "predict_trajectory_constant_speed"):
        pos, head = v.predict_trajectory_constant_speed(times[1:])
        positions = np.vstack([v.position[None], np.asarray(pos, float)])
        headings = np.concatenate([[v.heading], np.asarray(head, float)])
    else:
        direction = np.array([math.cos(v.heading), math.sin(v.heading)])
        positions = v.position[None] + v.speed * times[:, None] * direction
        headings = np.full(len(times), float(v.heading))
    return positions, headings


def install(env) -> SafetyRecorder:
    """Give ``env`` a recorder (``env.unwrapped._hypodrive_safety``) fed by its per-frame hook."""
    unwrapped = env.unwrapped
    recorder = SafetyRecorder(unwrapped)
    unwrapped._automatic_rendering = recorder
    unwrapped._hypodrive_safety = recorder
    return recorder


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def summarise(frames: list[list[tuple]], decisions: list[dict], ego_id: int, dt: float,
              times: np.ndarray) -> dict[str, Any]:
    """Per-step and per-episode measures from recorded frames and decisions (see ``interp.safety.measures``).

    Per step = per decision state (the states the agent acted on, then the final state): TTC (min over
    vehicles), DRAC (max), and the minimum distance over the frames since the previous decision."""
    ttc, drac = [], []
    for d in decisions:
        others = [k for k in range(len(d["ids"])) if k != d["ego"]]
        e = d["ego"]
        t = measures.time_to_collision(times, d["paths"][e], d["headings"][e], d["sizes"][e], d["paths"][others],
                                       d["headings"][others], d["sizes"][others])
        ttc.append(float(t.min()) if len(t) else measures.TTC_CAP_S)
        drac.append(float(measures.drac(d["speed"], np.asarray([ttc[-1]]))[0]))
    ids = sorted({row[0] for frame in frames for row in frame} - {ego_id})
    index = {vid: k for k, vid in enumerate(ids)}
    n_frames = len(frames)
    # row 0: the ego; x, y, heading, speed, length, width, crashed
    state = np.full((len(ids) + 1, n_frames, 7), np.nan)
    for f, frame in enumerate(frames):
        for vid, *values in frame:
            state[0 if vid == ego_id else index[vid] + 1, f] = values
    frame_times = np.arange(n_frames) * dt
    footprints = measures.corners(state[..., :2], state[..., 2], state[..., 4], state[..., 5])
    ego_fp = footprints[0]
    distance = measures.footprint_distance(np.broadcast_to(ego_fp, footprints[1:].shape), footprints[1:])
    absent = np.isnan(state[1:, :, 0])
    # highway-env declares a collision when footprints overlap or *will* overlap within the frame's motion, then
    # pushes the pair apart: the frame where both vehicles' crashed flags turn on is a contact (distance 0).
    crashed = np.nan_to_num(state[..., 6]) > 0
    onset = crashed & ~np.concatenate([np.zeros_like(crashed[:, :1]), crashed[:, :-1]], axis=1)
    contact = onset[1:] & onset[0][None]  # [vehicles, frames]
    distance = np.where(contact, 0.0, distance)
    per_frame = np.where(absent, np.inf, distance).min(axis=0) if len(ids) else np.full(n_frames, np.inf)
    bounds = [d["frame"] for d in decisions]
    min_distance = [float(per_frame[bounds[0]])] + [float(per_frame[a:b + 1].min()) for a, b in zip(bounds, bounds[1:])]
    end = frame_times[-1]
    last = decisions[-1]
    future = times[1:]

    def with_future(vid: int, k_row: int):
        present = ~np.isnan(state[k_row, :, 0])
        t, fp, head = frame_times[present], footprints[k_row][present], state[k_row, present, 2]
        if vid in last["ids"]:
            k = last["ids"].index(vid)
            fut = measures.corners(last["paths"][k][1:], last["headings"][k][1:], last["sizes"][k][0],
                                   last["sizes"][k][1])
            t, fp = np.concatenate([t, end + future]), np.concatenate([fp, fut])
            head = np.concatenate([head, last["headings"][k][1:]])
        return t, fp, head

    ego_t, ego_c, ego_h = with_future(ego_id, 0)
    pets = []
    for vid in ids:
        t, c, h = with_future(vid, index[vid] + 1)
        pet = measures.post_encroachment_time(ego_t, ego_c, t, c, end=end, ego_headings=ego_h, other_headings=h)
        if contact[index[vid]].any():  # the pair collided: PET 0 (Allen et al.'s definition of a collision)
            pet = {"pet": 0.0, "ego_first": False, "censored": False, "angle": None}
        if pet is not None:
            pets.append({"vehicle": index[vid] + 1, **pet})  # ego 0, others by first record
    if crashed[0].any():  # in contact at the end: the final state's TTC is 0 (and DRAC infinite)
        ttc[-1], drac[-1] = 0.0, math.inf
    crossing_first = [p for p in pets if p["ego_first"] and measures.is_crossing(p["angle"])]
    return {
        "ttc": ttc, "drac": [_finite(x) for x in drac], "min_distance": [_finite(x) for x in min_distance],
        "min_ttc": min(ttc), "max_drac": _finite(max(drac)),
        "min_distance_episode": _finite(float(per_frame.min())) if n_frames else None,
        "pet": pets, "min_pet": min((p["pet"] for p in pets if not p["censored"]), default=None),
        "ego_first_crossing_pets": [[p["pet"], p["censored"]] for p in crossing_first],
    }
