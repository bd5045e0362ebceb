"""Episodes needed: unpaired fixed-n, paired fixed-n and paired sequential designs compared."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from interp.statistics.inputs import StatsInputError, check_alpha
from interp.statistics.sequential import SequentialDesign
from interp.statistics.simulation import PairedRates, look_ends, simulate_sequential


def unpaired_sample_size(p_baseline: float, p_treatment: float, *, alpha: float = 0.01, power: float = 0.8,
                         alternative: Literal["two-sided", "larger", "smaller"] = "larger") -> int:
    """Episodes per arm for an unpaired fixed-n two-proportion z-test (statsmodels ``NormalIndPower`` on
    Cohen's arcsine effect size ``h``). ``alternative="larger"`` is one-sided for a raised rate, the same
    sidedness as the directional sequential test."""
    if p_baseline == p_treatment:
        raise StatsInputError("equal rates: no sample size detects a zero difference")
    h = float(proportion_effectsize(p_treatment, p_baseline))
    if alternative == "two-sided":
        h = abs(h)
    elif (alternative == "larger") != (h > 0):
        raise StatsInputError(f"alternative={alternative!r} does not match rates {p_baseline} -> {p_treatment}")
    n = NormalIndPower().solve_power(effect_size=h, alpha=check_alpha(alpha), power=power, ratio=1.0,
                                     alternative=alternative)
    return int(math.ceil(float(np.squeeze(n))))


def paired_fixed_sample_size(rates: PairedRates, *, alpha: float = 0.01, power: float = 0.8,
                             max_pairs: int = 20000) -> int:
    """Pairs for a fixed-n one-sided exact McNemar test (treatment raises the rate) to reach ``power``,
    computed exactly: discordant D ~ Bin(n, b + c), treatment-only C | D ~ Bin(D, c / (b + c)), and the test
    rejects when C >= its exact critical value. Returns the smallest such n (exact power is saw-toothed)."""
    r = rates.baseline_only + rates.treatment_only
    if rates.treatment_only <= rates.baseline_only or r == 0:
        raise StatsInputError("paired_fixed_sample_size needs a raised rate (treatment_only > baseline_only)")
    q = rates.treatment_only / r
    d = np.arange(max_pairs + 1)
    # smallest k with P(C >= k | D = d, q = 1/2) <= alpha; isf gives the largest k-1 with sf > alpha
    critical = sps.binom.isf(alpha, d, 0.5) + 1
    critical = np.where(sps.binom.sf(critical - 1, d, 0.5) <= alpha, critical, critical + 1)
    reject_given_d = sps.binom.sf(critical - 1, d, q)
    for n in range(1, max_pairs + 1):
        if float(np.dot(sps.binom.pmf(d[: n + 1], n, r), reject_given_d[: n + 1])) >= power:
            return n
    raise StatsInputError(f"power {power} not reached within {max_pairs} pairs")


@dataclasses.dataclass(frozen=True)
class SequentialSampleSize:
    """A sequential design sized by simulation: its ``max_pairs`` reaches ``power``; ``mean_pairs`` and
    ``median_pairs`` are the pairs used before a verdict (early stops included)."""

    max_pairs: int
    power: float
    mean_pairs: float
    median_pairs: float
    n_runs: int


def sequential_sample_size(rates: PairedRates, *, alpha: float = 0.01, power: float = 0.8,
                           min_effect: float = 0.05, batch_pairs: int = 10, n_runs: int = 4000, seed: int = 0,
                           pair_cap: int = 20000) -> SequentialSampleSize:
    """Size the paired sequential design for ``rates`` by simulation: the smallest ``max_pairs`` (a multiple of
    ``batch_pairs``) whose simulated power is >= ``power``, and the pairs a run then uses on average.

    Decisions before ``max_pairs`` do not depend on ``max_pairs``, so one long simulation sizes every cap.
    """
    cap = max(batch_pairs, 200)
    while True:
        design = SequentialDesign(alpha=alpha, direction="increase", max_pairs=cap, min_effect=min_effect)
        sim = simulate_sequential(design, rates, n_runs=n_runs, batch_pairs=batch_pairs, seed=seed)
        supported_at = np.where(sim.supported[:, 0], sim.stop_n[:, 0], np.iinfo(np.int64).max)
        if np.mean(sim.supported[:, 0]) >= power or cap >= pair_cap:
            break
        cap = min(2 * cap, pair_cap)
    ends = look_ends(cap, batch_pairs)
    reached = np.array([(supported_at <= e).mean() for e in ends])
    if reached[-1] < power:
        raise StatsInputError(f"power {power} not reached within {pair_cap} pairs")
    max_pairs = int(ends[np.argmax(reached >= power)])
    used = np.minimum(sim.stop_n[:, 0], max_pairs)  # a run stops at its verdict or at the cap, whichever first
    return SequentialSampleSize(max_pairs=max_pairs, power=float(reached[np.argmax(reached >= power)]),
                                mean_pairs=float(used.mean()), median_pairs=float(np.median(used)), n_runs=n_runs)


@dataclasses.dataclass(frozen=True)
class DesignComparison:
    """Episodes (simulator runs, both arms counted) to decide one directional claim at ``alpha`` / ``power``."""

    rates: PairedRates
    alpha: float
    power: float
    unpaired_per_arm: int
    paired_fixed_pairs: int
    sequential: SequentialSampleSize
    batch_pairs: int

    @property
    def unpaired_episodes(self) -> int:
        return 2 * self.unpaired_per_arm

    @property
    def paired_fixed_episodes(self) -> int:
        return 2 * self.paired_fixed_pairs

    @property
    def sequential_mean_episodes(self) -> float:
        return 2 * self.sequential.mean_pairs

    @property
    def ratio(self) -> float:
        """Mean episodes of the paired sequential design / episodes of the unpaired fixed-n design."""
        return self.sequential_mean_episodes / self.unpaired_episodes

    def to_dict(self) -> dict[str, Any]:
        return {"rates": dataclasses.asdict(self.rates), "alpha": self.alpha, "power": self.power,
                "batch_pairs": self.batch_pairs, "unpaired_per_arm": self.unpaired_per_arm,
                "unpaired_episodes": self.unpaired_episodes, "paired_fixed_pairs": self.paired_fixed_pairs,
                "paired_fixed_episodes": self.paired_fixed_episodes,
                "sequential": dataclasses.asdict(self.sequential),
                "sequential_mean_episodes": self.sequential_mean_episodes, "ratio": self.ratio}


def compare_designs(rates: PairedRates, *, alpha: float = 0.01, power: float = 0.8, min_effect: float = 0.05,
                    batch_pairs: int = 10, n_runs: int = 4000, seed: int = 0) -> DesignComparison:
    """Episodes needed for a raised event rate: unpaired fixed-n (one-sided z-test, statsmodels power), paired
    fixed-n (exact McNemar, exact power) and the paired sequential design (simulated; mean episodes used)."""
    return DesignComparison(
        rates=rates, alpha=alpha, power=power, batch_pairs=batch_pairs,
        unpaired_per_arm=unpaired_sample_size(rates.baseline_rate, rates.treatment_rate, alpha=alpha, power=power),
        paired_fixed_pairs=paired_fixed_sample_size(rates, alpha=alpha, power=power),
        sequential=sequential_sample_size(rates, alpha=alpha, power=power, min_effect=min_effect,
                                          batch_pairs=batch_pairs, n_runs=n_runs, seed=seed))
