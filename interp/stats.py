"""Statistics that turn paired rollouts into verdicts: rate intervals, exact McNemar, paired bootstrap,
and a sequential paired test whose error rate holds at whatever batch it stops (Holm across heads included).

Conventions used everywhere in this module:

* A *pair* is one seed run twice, under the baseline and under the treatment (common random numbers).
  Outcomes are booleans: ``True`` = the event happened (e.g. a collision).
* Effects are ``treatment rate - baseline rate`` (the paired difference in rates, ``(c - b) / n`` with
  ``b`` = pairs where only the baseline had the event and ``c`` = pairs where only the treatment had it).
* A claim has a stated *direction*: ``"increase"`` ("the treatment raises the event rate") or
  ``"decrease"``. Tests are one-sided in that direction.
* Verdict intervals: each end is a one-sided ``1 - alpha`` bound, so that a verdict's interval and its
  decision agree ("supported" when the lower end clears 0 for an increase).

Library calls where libraries have the method (Wilson, Newcombe for independent samples, exact binomial /
McNemar p-values, Holm, bootstrap, normal power); hand-written (and marked so) only what they lack: the
Newcombe interval for *paired* proportions and the always-valid (e-value) sequential test.
Pure computation: no simulator, no plotting, no I/O. The code lives in ``interp/statistics/`` (inputs,
intervals, verdicts, sequential, simulation, design); this module is its one front door.

Why a front door and not direct imports: the specs, the worked example in the README and users' own specs
decide claims with these functions, and the split of ``interp/statistics/`` by job (which file holds the
Newcombe interval) is an implementation detail that may move; one stable import keeps their code unchanged when
it does.
"""
from __future__ import annotations

from interp.statistics.inputs import (
    CODE_NAMES,
    CONTINUE,
    DIRECTIONS,
    Direction,
    INCONCLUSIVE,
    REFUTED,
    SUPPORTED,
    StatsInputError,
    VerdictName,
    as_outcomes,
    check_alpha,
    check_direction,
    float_or_none,
    paired_outcomes,
)
from interp.statistics.intervals import (
    BootstrapInterval,
    McNemarResult,
    PairedCounts,
    holm,
    holm_adjusted,
    mcnemar_exact,
    newcombe_paired_interval,
    newcombe_unpaired_interval,
    paired_bootstrap_interval,
    wilson_interval,
)
from interp.statistics.verdicts import (
    Verdict,
    mcnemar_verdict,
)
from interp.statistics.sequential import (
    Decision,
    PairedEvidence,
    SequentialDesign,
    SequentialPairedFamily,
    SequentialPairedTest,
    betting_fractions,
    confidence_bounds,
    log_e_value_down,
    log_e_value_up,
    settle,
)
from interp.statistics.simulation import (
    PairedRates,
    SequentialSimulation,
    look_ends,
    run_sequential,
    simulate_paired_outcomes,
    simulate_sequential,
)
from interp.statistics.design import (
    DesignComparison,
    SequentialSampleSize,
    compare_designs,
    paired_fixed_sample_size,
    sequential_sample_size,
    unpaired_sample_size,
)

__all__ = [
    "CODE_NAMES",
    "CONTINUE",
    "DIRECTIONS",
    "Direction",
    "INCONCLUSIVE",
    "REFUTED",
    "SUPPORTED",
    "StatsInputError",
    "VerdictName",
    "as_outcomes",
    "check_alpha",
    "check_direction",
    "float_or_none",
    "paired_outcomes",
    "BootstrapInterval",
    "McNemarResult",
    "PairedCounts",
    "holm",
    "holm_adjusted",
    "mcnemar_exact",
    "newcombe_paired_interval",
    "newcombe_unpaired_interval",
    "paired_bootstrap_interval",
    "wilson_interval",
    "Verdict",
    "mcnemar_verdict",
    "Decision",
    "PairedEvidence",
    "SequentialDesign",
    "SequentialPairedFamily",
    "SequentialPairedTest",
    "betting_fractions",
    "confidence_bounds",
    "log_e_value_down",
    "log_e_value_up",
    "settle",
    "PairedRates",
    "SequentialSimulation",
    "look_ends",
    "run_sequential",
    "simulate_paired_outcomes",
    "simulate_sequential",
    "DesignComparison",
    "SequentialSampleSize",
    "compare_designs",
    "paired_fixed_sample_size",
    "sequential_sample_size",
    "unpaired_sample_size",
]
