"""Which vehicle is behind each observation row, recorded from the env's own observation step.

With ``order: "shuffled"`` the Kinematics observation permutes the other vehicles' rows with
``env.np_random``. Reverse-mapping rows from coordinates is fragile (two vehicles can share a row's
rounded values), so the recorder re-runs the observation's own vehicle selection and replays the same
shuffle on an index array from a copy of the RNG state the env used. The env's own ``observe()`` still
produces the observation; the recorder only reads.
"""
from __future__ import annotations

import itertools

import numpy as np

EMPTY_ROW = -1


def vehicle_id(vehicle) -> int:
    """A per-env stable integer id for a vehicle (assigned on first sight)."""
    vid = getattr(vehicle, "_hypodrive_id", None)
    if vid is None:
        env_counter = _COUNTER
        vid = next(env_counter)
        vehicle._hypodrive_id = vid
    return vid


_COUNTER = itertools.count()


def observed_vehicles(obs_type) -> list:
    """The vehicles the Kinematics observation puts in rows 0.. (before shuffling), as its observe() does."""
    env = obs_type.env
    ego = obs_type.observer_vehicle
    close = env.road.close_objects_to(
        ego, env.PERCEPTION_DISTANCE, count=obs_type.vehicles_count - 1, see_behind=obs_type.see_behind,
        sort=obs_type.order == "sorted", vehicles_only=not obs_type.include_obstacles,
    )
    return [ego, *close[-obs_type.vehicles_count + 1:]] if close else [ego]


def row_permutation(obs_type, rng_state: dict) -> np.ndarray:
    """rows[i] = index (in observed_vehicles order) of the entity in row i; replays the env's shuffle."""
    index = np.arange(obs_type.vehicles_count)
    if obs_type.order == "shuffled":
        rng = np.random.Generator(type(obs_type.env.np_random.bit_generator)())
        rng.bit_generator.state = rng_state
        rows = np.zeros((obs_type.vehicles_count, 1))
        rows[:, 0] = index
        rng.shuffle(rows[1:])  # same call shape as observe(): a 2-D view, shuffled along axis 0
        index = rows[:, 0].astype(int)
    return index


def install_row_recorder(env) -> None:
    """After every observation, ``env.unwrapped._hypodrive_rows`` holds the vehicle id per row (-1 empty).

    Patches only this env instance: its ``define_spaces`` (which reset() calls to create a new observation
    type) and the observation type's ``observe``.
    """
    unwrapped = env.unwrapped
    unwrapped.define_spaces = _DefineSpaces(unwrapped, unwrapped.define_spaces)
    _wrap_observe(unwrapped)


# The patches are small objects, not closures: ``copy.deepcopy`` copies an object's attributes through its
# memo (so a deep copy of a recorder-equipped env gets patches bound to the copy), while a closure would be
# shared and keep acting on the original env.
class _DefineSpaces:
    """``define_spaces`` (which reset() calls to build a new observation type), then re-wrap its observe()."""

    def __init__(self, unwrapped, original) -> None:
        self.unwrapped, self.original = unwrapped, original

    def __call__(self) -> None:
        self.original()
        _wrap_observe(self.unwrapped)


class _RecordingObserve:
    """The observation type's own ``observe()``, also recording the vehicle id behind each row."""

    def __init__(self, unwrapped, obs_type, original) -> None:
        self.unwrapped, self.obs_type, self.original = unwrapped, obs_type, original

    def __call__(self):
        unwrapped, obs_type = self.unwrapped, self.obs_type
        if not unwrapped.road:
            unwrapped._hypodrive_rows = None
            return self.original()
        state = unwrapped.np_random.bit_generator.state
        vehicles = observed_vehicles(obs_type)
        obs = self.original()
        ids = [vehicle_id(v) for v in vehicles] + [EMPTY_ROW] * (obs_type.vehicles_count - len(vehicles))
        unwrapped._hypodrive_rows = tuple(int(ids[i]) for i in row_permutation(obs_type, state))
        return obs


def _wrap_observe(unwrapped) -> None:
    obs_type = unwrapped.observation_type
    obs_type.observe = _RecordingObserve(unwrapped, obs_type, obs_type.observe)
