"""A faster ``intersection-v0`` step that gives bit-for-bit the same episodes (highway-env 1.12.1).

Why: the agent's network costs microseconds and the simulator ~0.1 s per agent step, most of it in a few
paths that every vehicle runs every frame (15 a step) against every lane or every other vehicle. This
package runs them for all vehicles and lanes at once with numpy, the decisions among them in compiled loops
(``kernels``, numba, optional). Measured speed-ups: see ``docs/how-it-works/fast-simulator.md`` (with the
command that measures them, ``benchmarks/test_fastsim.py``).

On by default where the project builds envs for the user (``RolloutEngine``, ``EnvPool``, ``SceneBuilder``,
the trainer, the ``evaluate`` and ``train`` commands; ``--no-fast-sim`` / ``fast_sim=False`` turn it off),
but only inside its verified scope (``scope``): an env config with a value outside the declared set gets the
plain simulator and one warning naming the key. ``interp.simulation.env.make_env`` and replays install it
only when asked (``fast_sim=True``).

How it stays identical, by construction, in two ways:
- *Decisions* (closest lane, front vehicle, which pairs may conflict or collide, which vehicles are seen)
  are computed approximately on arrays or in the compiled kernels, and every decision within ``MARGIN``
  (1e-6, far above any rounding difference) of its threshold or of a tie is taken again by highway-env's
  own code; pairs that may conflict or collide are always checked by highway-env's own code, only the
  certain misses are skipped.
- *Floats that enter the state* (kinematics, steering, accelerations, observation rows) come from the same
  numpy operations in the same order as highway-env's: per vehicle, or elementwise on arrays of all
  vehicles, where a run-time check (``checks``) shows this platform gives the same bits; else the
  per-vehicle code runs. ``np.clip`` is called as the ufunc it dispatches to (``ufunc_clip``).
``tests/test_fastsim.py`` checks whole episodes (every observation, reward, info and the full simulator
state after every step) against the plain simulator; ``-m slow`` runs 500 episodes.

The parts, by job (each mirrors the highway-env code it replaces, named in its docstrings):
- ``base``: the decision margin, the kernels switch (``base.USE_KERNELS``, read at call time), helpers;
- ``lanes``: lane geometry as arrays, ``RoadNetwork.get_closest_lane_index`` for all vehicles at once;
- ``frame``: the frame memo, what every vehicle's decision in one ``Road.act`` reads;
- ``motion``: kinematics, steering and IDM;
- ``regulation``: ``RegulatedRoad.enforce_road_rules``;
- ``collisions``: ``Road.step``'s pairwise collision checks;
- ``observation``: ``Road.close_objects_to`` and ``KinematicObservation.observe``;
- ``road``: ``FastRegulatedRoad``, which joins the above;
- ``checks``: the run-time bit checks;
- ``installation``: ``enable`` / ``disable`` / ``fast_sim`` per env instance;
- ``scope``: the env-config values on which identity is tested.

Installed explicitly and per env instance, never on import: ``enable(env)`` / ``disable(env)`` /
``with fast_sim(env):``, or ``interp.simulation.env.make_env(config, fast_sim=True)``. It changes the class
of that env's own objects (env, road, road network, observation type) to the fast subclasses (the env's
``road`` and ``observation_type`` attributes convert whatever is assigned later, e.g. at each reset);
highway-env's classes are never modified, other envs are unaffected, and ``copy.deepcopy`` / pickling keep
working (a copy of an accelerated env is accelerated). Vehicles are not touched: the road drives them, and
vehicle classes other than highway-env's ``IDMVehicle`` / ``MDPVehicle`` run their own methods. On another
highway-env version or env class ``enable`` raises ``FastSimUnavailable`` and ``make_env`` warns and falls
back to the plain simulator. Install it before other per-instance patches of the same env (e.g.
``interp.simulation.row_identity``), as ``make_env`` does; installed after them it is still identical.
"""
from __future__ import annotations

from interp.simulation.fastsim import kernels, scope
from interp.simulation.fastsim.base import MARGIN, USE_KERNELS, ufunc_clip
from interp.simulation.fastsim.collisions import separated
from interp.simulation.fastsim.installation import (VERIFIED_VERSIONS, FastIntersectionEnv, FastSimUnavailable,
                                                    OutsideVerifiedScope,
                                                    check_supported, disable, enable, fast_sim,
                                                    highway_env_version, install, is_enabled)
from interp.simulation.fastsim.lanes import FastRoadNetwork, LaneTable
from interp.simulation.fastsim.motion import kinematics_scalar, kinematics_together
from interp.simulation.fastsim.observation import OBSERVABLE, RELATIVE, FastKinematicObservation
from interp.simulation.fastsim.regulation import inside_margin
from interp.simulation.fastsim.road import FastRegulatedRoad

__all__ = ["MARGIN", "OBSERVABLE", "RELATIVE", "USE_KERNELS", "VERIFIED_VERSIONS", "FastIntersectionEnv",
           "FastKinematicObservation", "FastRegulatedRoad", "FastRoadNetwork", "FastSimUnavailable", "LaneTable",
           "OutsideVerifiedScope", "scope",
           "check_supported", "disable", "enable", "fast_sim", "highway_env_version", "inside_margin", "install",
           "is_enabled", "kernels", "kinematics_scalar", "kinematics_together", "separated", "ufunc_clip"]
