"""The data of a replay: one greedy episode (or two on the same seed) step by step, ready to be drawn.

Read top to bottom: the value types (``ReplayStep`` a decision, ``ReplayFrame`` a state, ``ReplayRun`` one
episode, ``Replay`` one or two episodes side by side), then ``build_replay``.

Where the numbers come from:

- **Actions, Q-values, attention and row identity** come from the rollout engine (``RolloutEngine.run(...,
  trace=True)``), exactly what ``python -m interp evaluate`` runs, so a replay shows the episode that
  evaluation counted. Nothing here chooses an action.
- **Which vehicle is behind each observation row** is the engine's recorded identity (``EpisodeTrace.rows``:
  per-episode vehicle ids, ego = 0, read from the env's own observation step by ``interp.simulation.row_identity``),
  never a reverse mapping of normalised coordinates.
- **Pictures and positions** come from re-simulating the env from the seed with the recorded actions (episodes
  are deterministic given both) with highway-env's own renderer. The same row recorder runs in the
  re-simulation, so each recorded vehicle id is found again as the vehicle object carrying it; every
  re-simulated observation and row identity must equal the trace's, or the replay fails loudly
  (``ReplayMismatch``) rather than draw another episode.

No plotting here: ``reports.replay`` draws the frames (lines, bars, labels) and encodes GIF / MP4 / HTML.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from interp.errors import HypodriveError

PRIMARY = "agent"  # the condition name ``python -m interp evaluate`` gives the plain agent


class ReplayMismatch(HypodriveError):
    """The re-simulated episode differs from the one the rollout engine recorded."""


# ---------------------------------------------------------------------------------------------- value types

@dataclasses.dataclass(frozen=True)
class ReplayStep:
    """One decision, taken in the state of frame ``t``.

    ``q`` [A] Q-values; ``probs`` [A] their softmax; ``attention`` [H, N] each head's attention over the rows;
    ``rows`` [N] the vehicle id behind each row (-1 empty; ego = 0), as the engine recorded them.
    """

    t: int
    action: int
    action_name: str
    q: np.ndarray
    probs: np.ndarray
    attention: np.ndarray
    rows: np.ndarray
    near_tie: bool | None = None
    obs: np.ndarray | None = None  # the observation acted on [N, F] (not written to JSON)

    def attention_by_vehicle(self) -> list[dict[int, float]]:
        """Per head, vehicle id -> attention weight (present rows only; the ego's own row included as id 0)."""
        out = []
        for head in self.attention:
            out.append({int(v): float(w) for v, w in zip(self.rows, head) if v >= 0})
        return out

    def to_dict(self) -> dict:
        out = {"t": self.t, "action": self.action, "action_name": self.action_name,
               "q": [float(v) for v in self.q], "probs": [float(v) for v in self.probs],
               "rows": [int(v) for v in self.rows],
               "attention": [[float(w) for w in head] for head in self.attention],
               "attention_by_vehicle": [{str(k): v for k, v in head.items()} for head in self.attention_by_vehicle()]}
        if self.near_tie is not None:
            out["near_tie"] = bool(self.near_tie)
        return out


@dataclasses.dataclass(frozen=True)
class ReplayFrame:
    """One state of the episode (frame 0 = after reset, frame t = after t actions).

    ``image`` [H, W, 3] uint8 from highway-env's renderer (None when built without rendering); ``positions``
    vehicle id -> (x, y) in metres and ``pixels`` vehicle id -> (column, row) in ``image``, for the ego (id 0)
    and every vehicle observed in this state. ``crashed`` / ``arrived`` as the env reports them after the
    step that led here; ``done`` on the last frame.
    """

    t: int
    image: np.ndarray | None
    positions: dict[int, tuple[float, float]]
    pixels: dict[int, tuple[float, float]]
    crashed: bool = False
    arrived: bool = False
    done: bool = False


@dataclasses.dataclass(frozen=True)
class ReplayRun:
    """One episode: ``length`` decisions (``steps``) and ``length + 1`` states (``frames``)."""

    label: str
    condition: str
    seed: int
    action_names: tuple[str, ...]
    n_heads: int
    actions: tuple[int, ...]
    crashed: bool
    arrived: bool
    ret: float
    steps: tuple[ReplayStep, ...]
    frames: tuple[ReplayFrame, ...]
    identity: str | None = None
    ablated_heads: tuple[int, ...] = ()  # heads whose output is zeroed in this run (their attention is still drawn)
    safety: dict | None = None  # the record's surrogate safety measures (interp.safety), per frame and per episode

    @property
    def length(self) -> int:
        return len(self.actions)

    def to_dict(self) -> dict:
        return {"label": self.label, "condition": self.condition, "seed": self.seed, "identity": self.identity,
                "action_names": list(self.action_names), "n_heads": self.n_heads, "length": self.length,
                "actions": list(self.actions), "crashed": self.crashed, "arrived": self.arrived,
                "return": self.ret, "ablated_heads": list(self.ablated_heads), "safety": self.safety,
                "steps": [s.to_dict() for s in self.steps],
                "positions": [{str(k): [round(x, 3), round(y, 3)] for k, (x, y) in f.positions.items()}
                              for f in self.frames]}


@dataclasses.dataclass(frozen=True)
class Replay:
    """One episode, or two on the same seed (plain vs ablated, or another checkpoint) with the first step
    where their actions differ (``divergence``; None when they never do)."""

    seed: int
    runs: tuple[ReplayRun, ...]
    divergence: int | None = None

    @property
    def n_frames(self) -> int:
        """Frames of the replay: the longest episode's steps + 1."""
        return max(len(r.frames) for r in self.runs)

    def to_dict(self) -> dict:
        """JSON form: the first run's per-step data at the top (actions, Q-values, attention, crashed,
        arrived), every run under ``runs``."""
        first = self.runs[0].to_dict()
        return {"seed": self.seed, "n_frames": self.n_frames, "divergence": self.divergence,
                **{k: first[k] for k in ("label", "identity", "action_names", "length", "actions", "crashed",
                                         "arrived", "return", "steps")},
                "runs": [r.to_dict() for r in self.runs]}


# ---------------------------------------------------------------------------------------------- building

def softmax(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    e = np.exp(q - q.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def divergence_step(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first decision where two action sequences differ (None if one never departs from the other)."""
    for t, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))


def replay_conditions(agent, *, ablate_head: int | None = None, against: Any = None,
                      against_label: str | None = None) -> dict:
    """Condition name -> what the engine runs, named as ``python -m interp evaluate`` names them (so the two
    share cached episodes): ``agent``, ``ablate_heads=H``, ``checkpoint PATH``."""
    if ablate_head is not None and against is not None:
        raise HypodriveError("give --ablate-head or --against, not both")
    conditions: dict = {PRIMARY: None}
    if ablate_head is not None:
        from interp.probes.interventions import head_ablation

        if not 0 <= ablate_head < agent.n_heads:
            raise HypodriveError(f"--ablate-head {ablate_head}: the agent has heads 0..{agent.n_heads - 1}")
        conditions[f"ablate_heads={ablate_head}"] = head_ablation([ablate_head], n_heads=agent.n_heads)
    if against is not None:
        conditions[f"checkpoint {against_label or getattr(against, 'source', 'other')}"] = against
    return conditions


def build_replay(agent, seed: int, *, ablate_head: int | None = None, against: Any = None,
                 against_label: str | None = None, engine=None, env_config: Mapping | None = None,
                 render: bool = True, fast_sim: bool = False) -> Replay:
    """The replay of episode ``seed`` of ``agent`` (and of the ablated agent or ``against`` on the same seed).

    ``engine``: a ``RolloutEngine`` to take the episodes from (default: one in this process with the default
    cache, as ``evaluate`` uses). ``env_config`` defaults to the agent's. ``render=False`` skips pictures
    (positions are still recorded). ``fast_sim`` re-simulates with ``interp.simulation.fastsim`` (same trajectories).
    """
    from interp.simulation.rollout import RolloutEngine

    conditions = replay_conditions(agent, ablate_head=ablate_head, against=against, against_label=against_label)
    env = dict(agent.env_config if env_config is None else env_config)
    own = engine is None
    engine = engine if engine is not None else RolloutEngine(workers=0, slots=1)
    try:
        records = engine.run(agent, [int(seed)], conditions, trace=True, env_config=env)
    finally:
        if own:
            engine.close()
    by_name = {r.condition: r for r in records}
    runs = []
    for name, spec in conditions.items():
        record = by_name[name]
        run_agent = spec if spec is not None and hasattr(spec, "action_names") and hasattr(spec, "model") else agent
        label = "agent" if name == PRIMARY else name.replace("ablate_heads=", "head ablated: ").removeprefix("checkpoint ")
        run = replay_run(record, env, action_names=run_agent.action_names, label=label, render=render,
                         fast_sim=fast_sim, identity=getattr(run_agent, "identity", None))
        if name.startswith("ablate_heads="):
            run = dataclasses.replace(run, ablated_heads=(int(ablate_head),))
        runs.append(run)
    divergence = divergence_step(runs[0].actions, runs[1].actions) if len(runs) == 2 else None
    return Replay(seed=int(seed), runs=tuple(runs), divergence=divergence)


def replay_run(record, env_config: Mapping, *, action_names: Sequence[str], label: str | None = None,
               render: bool = True, fast_sim: bool = False, identity: str | None = None) -> ReplayRun:
    """Re-simulate one traced ``EpisodeRecord`` into steps and frames (see the module docstring)."""
    trace = record.trace
    if trace is None:
        raise HypodriveError("the record has no trace: run the engine with trace=True")
    if len(trace.q) != record.length:
        raise ReplayMismatch(f"seed {record.seed}: the trace has {len(trace.q)} decisions for {record.length} actions")
    near_flags = _near_ties(trace.q)
    steps = tuple(
        ReplayStep(t=t, action=int(a), action_name=str(action_names[int(a)]), q=np.asarray(trace.q[t], np.float32),
                   probs=softmax(trace.q[t]), attention=np.asarray(trace.attention[t], np.float32),
                   rows=np.asarray(trace.rows[t], np.int64), near_tie=None if near_flags is None else bool(near_flags[t]),
                   obs=np.asarray(trace.obs[t], np.float32))
        for t, a in enumerate(record.actions))
    frames = _resimulate(record, env_config, render=render, fast_sim=fast_sim)
    return ReplayRun(label=label or record.condition, condition=record.condition, seed=int(record.seed),
                     action_names=tuple(str(n) for n in action_names), n_heads=int(trace.attention.shape[1]),
                     actions=tuple(int(a) for a in record.actions), crashed=bool(record.crashed),
                     arrived=bool(record.arrived), ret=float(record.ret), steps=steps, frames=tuple(frames),
                     identity=identity, safety=getattr(record, "safety", None))


def _near_ties(q: np.ndarray) -> np.ndarray | None:
    """Per step, whether the decision was a near-tie by ``interp.model.policy``'s rule (None where there is no policy
    module). Only a flag for the picture: the actions themselves are always the engine's."""
    try:
        from interp.model.policy import choose
    except ImportError:
        return None
    return np.asarray(choose(np.asarray(q))[1], dtype=bool) if len(q) else np.zeros(0, bool)


def _resimulate(record, env_config: Mapping, *, render: bool, fast_sim: bool) -> list[ReplayFrame]:
    """Frames 0..T of ``record``'s episode, checking each observation and row identity against its trace.

    A frame is the state the observation was taken in: intersection-v0 clears departed vehicles and spawns
    new ones *after* observing, so the picture and positions are taken just before that clean-up.
    """
    from interp.simulation.env import make_env
    from interp.simulation.row_identity import install_row_recorder
    from interp.simulation.workers import EpisodeIds, observed_rows

    if render and "XDG_RUNTIME_DIR" not in os.environ:  # SDL prints a false "error" on headless machines without it
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="hypodrive-sdl-")
    trace, seed = record.trace, int(record.seed)
    env = make_env(env_config, render_mode="rgb_array" if render else None, fast_sim=fast_sim)
    install_row_recorder(env)
    core = env.unwrapped
    ids = EpisodeIds()
    snapshots: list[tuple] = []
    original_clear = getattr(core, "_clear_vehicles", None)
    if original_clear is not None:
        def clear_vehicles(*args, **kwargs):
            snapshots.append(_snapshot(env, render))
            return original_clear(*args, **kwargs)

        core._clear_vehicles = clear_vehicles
    frames: list[ReplayFrame] = []
    try:
        obs, _ = env.reset(seed=seed)
        _check(seed, 0, obs, ids(observed_rows(env)), trace)
        frames.append(_frame(_snapshot(env, render), 0, ids, trace.rows[0]))
        done = False
        for t, action in enumerate(record.actions):
            if done:
                raise ReplayMismatch(f"seed {seed}: the re-simulated episode ended after {t} steps; "
                                     f"the record has {record.length}")
            snapshots.clear()
            obs, _, terminated, truncated, info = env.step(int(action))
            rows = ids(observed_rows(env))
            done = bool(terminated or truncated)
            last = t + 1 == record.length
            if not last:
                _check(seed, t + 1, obs, rows, trace)
            crashed = bool(info.get("crashed", False))
            arrived = bool(info.get("rewards", {}).get("arrived_reward", 0) > 0)
            snapshot = snapshots[0] if snapshots else _snapshot(env, render)
            frames.append(_frame(snapshot, t + 1, ids, trace.rows[t + 1] if not last else rows,
                                 crashed=crashed, arrived=arrived, done=last))
        if not done or frames[-1].crashed != record.crashed or frames[-1].arrived != record.arrived:
            raise ReplayMismatch(f"seed {seed}: the re-simulated episode ends with done={done}, crashed="
                                 f"{frames[-1].crashed}, arrived={frames[-1].arrived}; the record: crashed="
                                 f"{record.crashed}, arrived={record.arrived}")
    finally:
        env.close()
    return frames


def _snapshot(env, render: bool) -> tuple:
    """(picture or None, raw vehicle id -> (position in metres, pixel or None)) of the env right now."""
    core = env.unwrapped
    image = None
    if render:
        image = np.array(env.render(), dtype=np.uint8)
        core.enable_auto_render = False  # no intermediate frames during the next step
    surface = core.viewer.sim_surface if render and core.viewer is not None else None
    where = {}
    for vehicle in [core.vehicle, *core.road.vehicles]:
        raw = getattr(vehicle, "_hypodrive_id", None)
        if raw is not None and raw not in where:
            position = (float(vehicle.position[0]), float(vehicle.position[1]))
            pixel = tuple(float(p) for p in surface.vec2pix(vehicle.position)) if surface is not None else None
            where[raw] = (position, pixel)
    return image, where


def _check(seed: int, t: int, obs: np.ndarray, rows: Sequence[int], trace) -> None:
    obs = np.asarray(obs, dtype=np.float32)
    if obs.shape != trace.obs[t].shape or not np.array_equal(obs, trace.obs[t]):
        diff = np.abs(obs - trace.obs[t]).max() if obs.shape == trace.obs[t].shape else "shape"
        raise ReplayMismatch(f"seed {seed}, step {t}: the re-simulated observation differs from the recorded one "
                             f"(max |diff| {diff}); the replay would not show the episode that was evaluated")
    if tuple(int(r) for r in rows) != tuple(int(r) for r in trace.rows[t]):
        raise ReplayMismatch(f"seed {seed}, step {t}: re-simulated row identity {tuple(rows)} differs from the "
                             f"recorded {tuple(int(r) for r in trace.rows[t])}")


def _frame(snapshot: tuple, t: int, ids, rows: Sequence[int], **flags) -> ReplayFrame:
    """A frame from a snapshot: where the ego and each vehicle of ``rows`` (recorded episode ids) are."""
    image, where = snapshot
    by_episode_id = {ids.ids[raw]: value for raw, value in where.items() if raw in ids.ids}
    wanted = {0, *(int(r) for r in rows if r >= 0)}
    missing = sorted(v for v in wanted if v not in by_episode_id)
    if missing:
        raise ReplayMismatch(f"step {t}: recorded vehicle ids {missing} are not on the re-simulated road")
    positions = {v: by_episode_id[v][0] for v in sorted(wanted)}
    pixels = {v: by_episode_id[v][1] for v in sorted(wanted) if by_episode_id[v][1] is not None}
    return ReplayFrame(t=t, image=image, positions=positions, pixels=pixels, **flags)
