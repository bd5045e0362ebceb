"""The sequential paired runner: batches of common seeds through the engine until ``interp.stats`` decides
every treatment (always-valid paired test, Holm at every look)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from interp.simulation.agent import Agent
from interp.simulation.progress import Progress
from interp.simulation.records import EpisodeRecord, Start, as_conditions, as_start, records_by_condition

if TYPE_CHECKING:
    from interp.simulation.rollout import RolloutEngine


@dataclasses.dataclass(frozen=True)
class SequentialResult:
    """Verdicts of a sequential paired run and every record it used (all conditions, in start order)."""

    verdicts: dict[str, Any]  # treatment name -> interp.stats.Verdict
    records: list[EpisodeRecord]
    baseline: str
    n_pairs: int  # seeds run under the baseline
    batches: int

    def summary(self) -> str:
        return "\n".join(f"[{name}] {verdict.summary()}" for name, verdict in self.verdicts.items())


def run_sequential(engine: RolloutEngine, agent: Agent, conditions: Mapping[str, Any], *, baseline: str = "baseline",
                   seeds: Iterable[int | Start], design: Any = None, batch_pairs: int = 20,
                   outcome: str | Callable[[EpisodeRecord], bool | float] = "crashed",
                   claims: Mapping[str, str] | None = None, progress: bool = False,
                   family: Any = None) -> SequentialResult:
    """Run ``conditions`` in batches of paired starts until ``interp.stats`` decides every treatment.

    Each treatment (every condition but ``baseline``) is one hypothesis "the treatment changes ``outcome`` in
    ``design.direction``" against the shared baseline, decided jointly (Holm at every look) by a
    ``SequentialPairedFamily``. A batch runs the baseline and the still-open treatments on the next
    ``batch_pairs`` starts (common random numbers); settled treatments stop costing episodes. It stops when
    every treatment is settled, at ``design.max_pairs`` pairs, or when ``seeds`` run out (open treatments are
    then inconclusive, and their decision rule says so). Cached episodes cost nothing, so a rerun replays
    the same looks from the cache and reaches the same verdicts.

    ``family`` replaces the binary family with another of the same interface, e.g. a
    ``interp.statistics.graded.GradedPairedFamily`` over the treatments for a graded ``outcome`` (its design
    then sets the budget and ``design`` is ignored).
    """
    from interp.stats import SequentialDesign, SequentialPairedFamily

    design = design if design is not None else SequentialDesign()
    if batch_pairs < 1:
        raise ValueError(f"batch_pairs must be >= 1, got {batch_pairs}")
    conds = {c.name: c for c in as_conditions(conditions)}
    if baseline not in conds:
        raise ValueError(f"baseline {baseline!r} is not one of the conditions {list(conds)}")
    treatments = [name for name in conds if name != baseline]
    if not treatments:
        raise ValueError("run_sequential needs at least one treatment condition besides the baseline")
    if family is None:
        family = SequentialPairedFamily({name: (claims or {}).get(name) for name in treatments}, design)
    else:
        design = family.design
        if sorted(family.names) != sorted(treatments):
            raise ValueError(f"the family's hypotheses {list(family.names)} must be the treatments {treatments}")
    score = (lambda r: bool(getattr(r, outcome))) if isinstance(outcome, str) else outcome
    bar = Progress(design.max_pairs * len(conds), list(conds), enabled=progress, desc="sequential")
    records: list[EpisodeRecord] = []
    seed_iter = iter(seeds)
    n_pairs = batches = 0
    try:
        while not family.stopped and n_pairs < design.max_pairs:
            batch = [as_start(s) for _, s in zip(range(min(batch_pairs, design.max_pairs - n_pairs)), seed_iter)]
            if not batch:
                break
            active = family.active
            run = engine.run(agent, batch, [conds[baseline], *(conds[name] for name in active)], progress=bar)
            records.extend(run)
            grouped = records_by_condition(run)
            family.update([score(r) for r in grouped[baseline]],
                          {name: [score(r) for r in grouped[name]] for name in active})
            n_pairs += len(batch)
            batches += 1
            bar.set_remaining((design.max_pairs - n_pairs) * (1 + len(family.active)))
    finally:
        bar.close()
    return SequentialResult(verdicts=family.verdicts(), records=records, baseline=baseline, n_pairs=n_pairs,
                            batches=batches)
