"""The rollout engine's value types: how an episode starts (``Start``), under what (``Condition``), and what
came out (``EpisodeRecord`` with an optional per-step ``EpisodeTrace``). Plain data, JSON-able via
``to_dict``; the engine (``interp.simulation.rollout``) makes them, the cache stores their dicts."""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from interp.model.config import canonical_json
from interp.model.hooks import HookFn, NameFilter
from interp.simulation.agent import Agent

Hooks = Sequence[tuple[NameFilter, HookFn]]


@dataclasses.dataclass(frozen=True)
class Start:
    """How an episode starts: ``env.reset(seed)``, then optionally ``setup(env) -> obs`` (e.g. placing a scene).

    ``setup`` runs in a worker, so it must be picklable. ``key`` is a JSON-able description of the setup
    (e.g. a scenario's dict): it names the start in records and in the cache. A setup without a key (and
    without a ``describe()`` method) is not cached, since nothing says which scene it builds.
    """

    seed: int
    setup: Callable[[Any], np.ndarray] | None = None
    key: Any = None

    @property
    def description(self) -> dict | None:
        """The canonical description for the cache, or None when the set-up cannot be named."""
        if self.setup is None:
            return {"seed": int(self.seed), "setup": None}
        key = self.key if self.key is not None else _describe(self.setup)
        return None if key is None else {"seed": int(self.seed), "setup": key}

    @property
    def scenario(self) -> str | None:
        """A short hash naming the set-up in records (None for a plain seeded reset)."""
        if self.setup is None:
            return None
        description = self.description
        text = canonical_json(description["setup"]) if description else f"unnamed:{id(self.setup)}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def as_start(value: int | Start) -> Start:
    if isinstance(value, Start):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return Start(seed=int(value))
    raise TypeError(f"a start is a seed (int) or a Start(seed, setup, key); got {value!r}")


@dataclasses.dataclass(frozen=True)
class Condition:
    """A named way of running the agent: plain, under hooks (an intervention), or with another agent.

    ``hooks`` is a hook list or a function ``model -> hook list`` (an Intervention's ``hooks``).
    ``description`` is the intervention's canonical, JSON-able description: it keys the cache (the *name*
    does not, so the same intervention under two names shares records). Hooks without a description are
    run but never cached. ``agent`` replaces the engine's agent for this condition (edited weights, another
    checkpoint); its identity then keys the cache.

    Hooks must be functions of the row they act on and of its ``interp.model.draws.DrawKey`` (as zero/mean
    ablations, patches and the resampling ablation, whose donor is drawn by a generator keyed by episode
    seed, step, row and condition, are): the engine runs each row alone, but a hook that drew from a shared
    random stream would still make an episode depend on which episodes ran before it, and its cached
    records would lie.
    """

    name: str
    hooks: Hooks | Callable[[Any], Hooks] = ()
    description: Any = None
    agent: Agent | None = None

    @property
    def is_plain(self) -> bool:
        return not self.hooks and self.description is None

    @property
    def cacheable(self) -> bool:
        return self.is_plain or self.description is not None

    def resolved_hooks(self, model) -> list:
        hooks = self.hooks(model) if callable(self.hooks) else self.hooks
        return list(hooks or ())


def as_condition(name: str, spec: Any) -> Condition:
    """A Condition from the forms callers use: None/() (the plain agent), a Condition, an Intervention-like
    object (``.hooks(model)`` and ``.describe()``), an Agent, a hook list, or ``(hooks, description)``."""
    if isinstance(spec, Condition):
        return dataclasses.replace(spec, name=name)
    if spec is None or (isinstance(spec, (list, tuple)) and len(spec) == 0):
        return Condition(name)
    if isinstance(spec, Agent):
        return Condition(name, agent=spec)
    if hasattr(spec, "hooks") and hasattr(spec, "describe") and callable(spec.describe):
        return Condition(name, hooks=spec.hooks, description=spec.describe())
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], Mapping):
        return Condition(name, hooks=list(spec[0]), description=dict(spec[1]))
    if isinstance(spec, (list, tuple)):
        return Condition(name, hooks=list(spec))
    raise TypeError(f"condition {name!r}: cannot run {spec!r}; give None (plain agent), a Condition, an "
                    "Intervention, an Agent, a hook list, or (hooks, description)")


def as_conditions(conditions: Mapping[str, Any] | Sequence[Condition] | None) -> list[Condition]:
    if conditions is None:
        return [Condition("baseline")]
    if isinstance(conditions, Mapping):
        out = [as_condition(name, spec) for name, spec in conditions.items()]
    else:
        out = [as_condition(c.name, c) for c in conditions]
    names = [c.name for c in out]
    if len(set(names)) != len(names) or not out:
        raise ValueError(f"condition names must be unique and at least one: {names}")
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class EpisodeTrace:
    """Per-step data of an episode, one entry per decision (T = episode length).

    ``obs`` [T, N, F] the observation acted on; ``q`` [T, A] its Q-values; ``attention`` [T, H, N] the
    attention of each head (ego query) over the rows; ``rows`` [T, N] the vehicle behind each row (numbered
    per episode in order of first sight, ego = 0, -1 = empty row), read from the env's observation step.
    """

    obs: np.ndarray
    q: np.ndarray
    attention: np.ndarray
    rows: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeTrace):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in ("obs", "q", "attention", "rows"))

    def to_dict(self) -> dict:
        return {"obs": self.obs, "q": self.q, "attention": self.attention, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Mapping) -> "EpisodeTrace":
        return cls(obs=np.asarray(data["obs"], np.float32), q=np.asarray(data["q"], np.float32),
                   attention=np.asarray(data["attention"], np.float32), rows=np.asarray(data["rows"], np.int64))


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """One greedy episode. ``arrived`` is the env's own arrival test (reward term ``arrived_reward``);
    ``scenario`` names a set-up start (None for a plain seed); ``trace`` is present when asked for;
    ``simulator`` names the simulator that produced it (a cached record keeps the one that did).
    ``q_digest`` names the exact bits of the Q-values behind every decision (``q_digest_of``), so comparing
    records compares the network's arithmetic, not only the actions it happened to lead to."""

    condition: str
    seed: int
    crashed: bool
    arrived: bool
    length: int
    ret: float
    actions: tuple[int, ...]
    scenario: str | None = None
    trace: EpisodeTrace | None = None
    near_ties: int = 0  # steps decided on a near-tie (interp.policy): another CPU might act differently there
    q_digest: str | None = None  # sha256 of every step's float32 Q-values in order: equal records, equal bits
    simulator: str | None = None  # "fast" (interp.simulation.fastsim) or "plain" highway-env; None: not recorded
    safety: dict | None = None  # surrogate safety measures (interp.safety.recorder.summarise), when recorded

    def to_dict(self, trace: bool = True) -> dict:
        """Plain values (``return`` spelled out); the trace's arrays stay numpy (``interp.evidence.jsonable``
        turns them into lists)."""
        out = {"condition": self.condition, "seed": self.seed, "scenario": self.scenario, "crashed": self.crashed,
               "arrived": self.arrived, "length": self.length, "return": self.ret, "actions": list(self.actions),
               "near_ties": self.near_ties, "q_digest": self.q_digest, "simulator": self.simulator,
               "safety": self.safety}
        if trace and self.trace is not None:
            out["trace"] = self.trace.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "EpisodeRecord":
        trace = data.get("trace")
        return cls(condition=data["condition"], seed=int(data["seed"]), crashed=bool(data["crashed"]),
                   arrived=bool(data["arrived"]), length=int(data["length"]),
                   ret=float(data["return"] if "return" in data else data["ret"]),
                   actions=tuple(int(a) for a in data["actions"]), scenario=data.get("scenario"),
                   trace=EpisodeTrace.from_dict(trace) if trace is not None else None,
                   near_ties=int(data.get("near_ties", 0)), q_digest=data.get("q_digest"),
                   simulator=data.get("simulator"), safety=data.get("safety"))

    def without_trace(self) -> "EpisodeRecord":
        return self if self.trace is None else dataclasses.replace(self, trace=None)


def q_digest_of(q_steps: Iterable[np.ndarray]) -> str:
    """The sha256 of per-step Q-values [A] as little-endian float32 bytes, in step order (a record's
    ``q_digest``): two runs agree on it only if every forward pass gave the same bits."""
    digest = hashlib.sha256()
    for q in q_steps:
        digest.update(np.ascontiguousarray(q, dtype="<f4").tobytes())
    return digest.hexdigest()


def records_by_condition(records: Iterable[EpisodeRecord]) -> dict[str, list[EpisodeRecord]]:
    """Records grouped by condition, each list in start order."""
    out: dict[str, list[EpisodeRecord]] = {}
    for record in records:
        out.setdefault(record.condition, []).append(record)
    return out


def _describe(setup: Any) -> Any:
    describe = getattr(setup, "describe", None)
    return describe() if callable(describe) else None
