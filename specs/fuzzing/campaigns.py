"""Campaigns: searches looped over a budget, each shrunk failure recorded and its scene class then excluded;
the uniform-random baseline over the same scene space."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from fixtures.builder import SceneBuilder

from specs.fuzzing.properties import Property, Subject
from specs.fuzzing.search import Failure, Evaluator, OutOfTime, search, search_settings


@dataclasses.dataclass(frozen=True)
class Campaign:
    """What a wall-clock search found. ``failures``: one per distinct scene class, the shrunk failures of a guided
    campaign, the first failing draw of each class of a random one (the headline count). ``seen``: the first failing
    scene of every class the search evaluated at all (guided: generation and shrinking steps too; random: the same
    as ``failures``), the count that treats both searches alike."""

    property: str
    mode: str  # "guided" | "random"
    seconds: float
    evaluations: int
    failing_scenes: int  # random: failing draws; guided: shrunk failures (one per round that failed)
    failures: tuple[Failure, ...]
    seen: tuple[Failure, ...]

    @property
    def distinct(self) -> int:
        return len(self.failures)

    @property
    def distinct_per_hour(self) -> float:
        return self.distinct / (self.seconds / 3600.0) if self.seconds > 0 else float("nan")

    @property
    def seen_per_hour(self) -> float:
        return len(self.seen) / (self.seconds / 3600.0) if self.seconds > 0 else float("nan")

    def discovery_times(self) -> list[float]:
        """Seconds into the campaign at which each new class was first seen failing (saturation shows here)."""
        return sorted(round(f.found_after_s, 1) for f in self.seen)

    def to_dict(self) -> dict:
        return {"property": self.property, "mode": self.mode, "seconds": round(self.seconds, 1),
                "evaluations": self.evaluations, "failing_scenes": self.failing_scenes, "distinct": self.distinct,
                "distinct_per_hour": round(self.distinct_per_hour, 1), "distinct_seen": len(self.seen),
                "seen_per_hour": round(self.seen_per_hour, 1), "discovery_times_s": self.discovery_times(),
                "classes": [f.scene_class for f in self.failures]}


def campaign(prop: Property, subject: Subject, builder: SceneBuilder, seconds: float, *, seed: int = 0,
             round_examples: int = 200, shrink_seconds: float = 30.0,
             on_failure: Callable[[Failure], None] | None = None) -> Campaign:
    """Guided search for ``seconds`` of wall-clock time: rounds of ``search`` (a fresh hypothesis seed each,
    ``target()`` on, each failure shrunk for at most ``shrink_seconds``). After a round, every class it saw fail
    counts as passing, so later rounds look for new ones (and ``target()`` does not climb known failures).
    Shrinking time is part of the budget."""
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    shrunk: dict[str, Failure] = {}
    seen: dict[str, Failure] = {}
    evaluations = failing = 0
    space = prop.space(builder)
    while (left := seconds - (time.monotonic() - started)) > 0:
        offset = time.monotonic() - started
        result = search(prop, subject, builder, max_examples=round_examples, seed=int(rng.integers(2**31)),
                        seconds=left, shrink_seconds=shrink_seconds, exclude=seen, space=space,
                        config=search_settings(round_examples, derandomize=False, database=None))
        evaluations += result.evaluations
        for failure in result.seen:
            seen.setdefault(failure.scene_class,
                            dataclasses.replace(failure, found_after_s=offset + failure.found_after_s))
        if result.failure is not None:
            failing += 1
            failure = dataclasses.replace(result.failure, found_after_s=time.monotonic() - started)
            shrunk.setdefault(failure.scene_class, failure)
            seen.setdefault(failure.scene_class, failure)
            if on_failure:
                on_failure(failure)
    return Campaign(prop.name, "guided", time.monotonic() - started, evaluations, failing, tuple(shrunk.values()),
                    tuple(seen.values()))


def random_campaign(prop: Property, subject: Subject, builder: SceneBuilder, seconds: float, *,
                    seed: int = 0) -> Campaign:
    """The baseline: scenes drawn uniformly from the same space for ``seconds``, no target(), no shrinking."""
    rng = np.random.default_rng(seed)
    space = prop.space(builder)
    evaluator = Evaluator(prop, subject, builder, seconds, None, frozenset(), remember=False)
    failing = 0
    while time.monotonic() < evaluator.stop_at:
        scenario = space.sample(rng)
        if scenario is None:
            continue
        try:
            outcome = evaluator(scenario)
        except OutOfTime:
            break
        if evaluator.fails(outcome):
            failing += 1
    found = tuple(evaluator.seen.values())
    return Campaign(prop.name, "random", time.monotonic() - evaluator.started, evaluator.evaluations, failing,
                    found, found)
