"""Rates and fixed-n comparisons: Wilson and Newcombe intervals, paired counts, exact McNemar, the paired
bootstrap, Holm."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from interp.statistics.inputs import StatsInputError, check_alpha, paired_outcomes


def wilson_interval(events: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` Wilson score interval for a rate ``events / n`` (statsmodels).

    Wilson rather than the normal (Wald) interval because rates near 0 (rare crashes) are where Wald fails.
    """
    if n < 1 or not 0 <= events <= n:
        raise StatsInputError(f"a rate needs 0 <= events <= n and n >= 1; got events={events}, n={n}")
    low, high = proportion_confint(int(events), int(n), alpha=check_alpha(alpha), method="wilson")
    return float(low), float(high)


def newcombe_unpaired_interval(baseline_events: int, baseline_n: int, treatment_events: int, treatment_n: int,
                               alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` Newcombe hybrid-score interval (his method 10) for ``treatment - baseline``
    rates of two *independent* samples (statsmodels ``confint_proportions_2indep(method="newcomb")``)."""
    for events, n, name in ((baseline_events, baseline_n, "baseline"), (treatment_events, treatment_n, "treatment")):
        if n < 1 or not 0 <= events <= n:
            raise StatsInputError(f"{name}: need 0 <= events <= n and n >= 1; got events={events}, n={n}")
    low, high = confint_proportions_2indep(int(treatment_events), int(treatment_n), int(baseline_events),
                                           int(baseline_n), method="newcomb", compare="diff",
                                           alpha=check_alpha(alpha))
    return float(low), float(high)


@dataclasses.dataclass(frozen=True)
class PairedCounts:
    """The paired 2x2 table. ``baseline_only`` (b) and ``treatment_only`` (c) are the discordant pairs."""

    both: int
    baseline_only: int
    treatment_only: int
    neither: int

    @classmethod
    def from_outcomes(cls, baseline: ArrayLike, treatment: ArrayLike) -> "PairedCounts":
        b, t = paired_outcomes(baseline, treatment)
        return cls(both=int(np.sum(b & t)), baseline_only=int(np.sum(b & ~t)),
                   treatment_only=int(np.sum(~b & t)), neither=int(np.sum(~b & ~t)))

    @property
    def n(self) -> int:
        return self.both + self.baseline_only + self.treatment_only + self.neither

    @property
    def discordant(self) -> int:
        return self.baseline_only + self.treatment_only

    @property
    def baseline_rate(self) -> float:
        return (self.both + self.baseline_only) / self.n if self.n else math.nan

    @property
    def treatment_rate(self) -> float:
        return (self.both + self.treatment_only) / self.n if self.n else math.nan

    @property
    def difference(self) -> float:
        """Paired difference in rates, treatment - baseline = (c - b) / n."""
        return (self.treatment_only - self.baseline_only) / self.n if self.n else math.nan


def newcombe_paired_interval(counts: PairedCounts, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval for the paired difference ``treatment - baseline`` rates:
    Newcombe's (1998) square-and-add method 10 (Wilson score limits of both margins, combined with the
    continuity-corrected phi correlation of the pairs), as in Fagerland, Lydersen & Laake (2017), ch. 8.

    Hand-written: statsmodels has Newcombe's interval only for independent samples.
    """
    n = counts.n
    if n < 1:
        raise StatsInputError("a paired interval needs at least one pair")
    a, b, c, d = counts.both, counts.baseline_only, counts.treatment_only, counts.neither
    p_t, p_b = (a + c) / n, (a + b) / n  # treatment and baseline margins; estimate = p_t - p_b
    l_t, u_t = wilson_interval(a + c, n, alpha)
    l_b, u_b = wilson_interval(a + b, n, alpha)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        cross = a * d - b * c
        # Newcombe's continuity correction of phi: shrink a positive association by n/2, keep a negative one.
        corrected = cross - n / 2 if cross > n / 2 else (0.0 if cross >= 0 else cross)
        phi = corrected / math.sqrt(margins)
    estimate = p_t - p_b
    low = estimate - math.sqrt(max(0.0, (p_t - l_t) ** 2 + (u_b - p_b) ** 2 - 2 * phi * (p_t - l_t) * (u_b - p_b)))
    high = estimate + math.sqrt(max(0.0, (u_t - p_t) ** 2 + (p_b - l_b) ** 2 - 2 * phi * (u_t - p_t) * (p_b - l_b)))
    return max(-1.0, low), min(1.0, high)


@dataclasses.dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on one paired table, with the paired difference and its Newcombe interval."""

    counts: PairedCounts
    alternative: str
    p_value: float
    difference: float
    ci: tuple[float, float]
    ci_method: str


def mcnemar_exact(counts: PairedCounts, *, alternative: Literal["two-sided", "greater", "less"] = "two-sided",
                  alpha: float = 0.05) -> McNemarResult:
    """Exact McNemar test: under H0 (equal rates) each discordant pair is the treatment's with probability 1/2,
    so ``c ~ Binomial(b + c, 1/2)``. ``alternative="greater"`` tests "the treatment raises the rate".

    Two-sided p from statsmodels' ``mcnemar(exact=True)``; one-sided p from scipy's ``binomtest`` on the
    discordant pairs. The interval is Newcombe's paired method 10 at two-sided ``1 - alpha``.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise StatsInputError(f"alternative must be 'two-sided', 'greater' or 'less'; got {alternative!r}")
    b, c = counts.baseline_only, counts.treatment_only
    if b + c == 0:
        p = 1.0
    elif alternative == "two-sided":
        p = float(sm_mcnemar([[counts.both, b], [c, counts.neither]], exact=True).pvalue)
    else:
        p = float(sps.binomtest(c, b + c, 0.5, alternative=alternative).pvalue)
    return McNemarResult(counts=counts, alternative=alternative, p_value=min(1.0, p), difference=counts.difference,
                         ci=newcombe_paired_interval(counts, alpha), ci_method=f"Newcombe paired method 10, "
                                                                            f"two-sided {1 - alpha:.0%}")


@dataclasses.dataclass(frozen=True)
class BootstrapInterval:
    """A paired bootstrap interval for the mean difference ``treatment - baseline`` of a continuous metric."""

    effect: float
    ci: tuple[float, float]
    n: int
    confidence: float
    method: str


def paired_bootstrap_interval(baseline: ArrayLike, treatment: ArrayLike, *, alpha: float = 0.05,
                              n_resamples: int = 9999, seed: int = 0,
                              method: Literal["BCa", "percentile", "basic"] = "BCa") -> BootstrapInterval:
    """Two-sided ``1 - alpha`` bootstrap interval of ``mean(treatment - baseline)`` for a continuous metric
    (return, episode length) on paired seeds: ``scipy.stats.bootstrap(paired=True)``, resampling whole pairs,
    seeded so the same data give the same interval."""
    b = np.asarray(baseline, dtype=float)
    t = np.asarray(treatment, dtype=float)
    if b.ndim != 1 or b.shape != t.shape:
        raise StatsInputError(f"paired metrics need two 1-D arrays of equal length; got {b.shape} and {t.shape}")
    if b.size < 2:
        raise StatsInputError(f"a bootstrap interval needs at least 2 pairs; got {b.size}")
    if not (np.isfinite(b).all() and np.isfinite(t).all()):
        raise StatsInputError("paired metrics contain NaN or infinity; drop or fix those episodes first")
    diff = t - b
    effect = float(diff.mean())
    if np.ptp(diff) == 0:  # every pair moved by the same amount: no resampling variation at all
        return BootstrapInterval(effect, (effect, effect), int(b.size), 1 - alpha, f"{method} (degenerate)")
    res = sps.bootstrap((b, t), lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis), paired=True,
                        vectorized=True, n_resamples=n_resamples, confidence_level=1 - check_alpha(alpha),
                        method=method, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return BootstrapInterval(effect, (low, high), int(b.size), 1 - alpha, f"paired bootstrap {method}, "
                                                                        f"{n_resamples} resamples, seed {seed}")


def holm(p_values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down correction (statsmodels ``multipletests``): ``(reject, adjusted p-values)``.

    Controls the familywise error rate at ``alpha`` under any dependence between the tests. (Each
    ``multipletests`` call runs ``gc.collect()``, tens of ms in a big process: loops use ``holm_adjusted``.)
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or p.size == 0 or np.any((p < 0) | (p > 1)) or not np.isfinite(p).all():
        raise StatsInputError(f"holm needs a non-empty 1-D sequence of p-values in [0, 1]; got {p_values!r}")
    reject, adjusted, _, _ = multipletests(p, alpha=check_alpha(alpha), method="holm")
    return reject, adjusted


def holm_adjusted(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis, vectorised over leading axes (for simulations, where one
    ``multipletests`` call per run and look would dominate the run time). Tested equal to statsmodels."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    stepped = np.minimum(1.0, np.maximum.accumulate(sorted_p * (m - np.arange(m)), axis=-1))
    out = np.empty_like(stepped)
    np.put_along_axis(out, order, stepped, axis=-1)
    return out
