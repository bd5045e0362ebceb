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
Pure computation: no simulator, no plotting, no I/O.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from scipy.special import logsumexp
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportion_effectsize

from interp.errors import HypodriveError

Direction = Literal["increase", "decrease"]
VerdictName = Literal["supported", "refuted", "inconclusive"]
DIRECTIONS: tuple[str, ...] = ("increase", "decrease")

# Verdict codes of the vectorised sequential engine (shared by the objects and the simulations).
_CONTINUE, _SUPPORTED, _REFUTED, _INCONCLUSIVE = 0, 1, 2, 3
_CODE_NAMES: dict[int, str] = {_SUPPORTED: "supported", _REFUTED: "refuted", _INCONCLUSIVE: "inconclusive"}


class StatsInputError(HypodriveError, ValueError):
    """Data or settings given to a statistical routine are unusable (the message says which and why)."""


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------

def _as_outcomes(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-D boolean array from booleans or 0/1 numbers; anything else is refused with its offending value."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StatsInputError(f"{name} must be a 1-D sequence of booleans (one per episode); got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise StatsInputError(f"{name} must hold booleans or 0/1; got dtype {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        first = int(np.argmax(bad))
        raise StatsInputError(f"{name} must hold booleans or 0/1; element {first} is {arr[first].item()!r}")
    return arr.astype(bool)


def _paired_outcomes(baseline: ArrayLike, treatment: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    b, t = _as_outcomes(baseline, "baseline"), _as_outcomes(treatment, "treatment")
    if b.shape != t.shape:
        raise StatsInputError(f"paired outcomes need one baseline and one treatment episode per seed; got "
                              f"{b.size} baseline and {t.size} treatment outcomes")
    return b, t


def _check_alpha(alpha: float, name: str = "alpha") -> float:
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"{name} must lie in (0, 1); got {alpha}")
    return float(alpha)


def _check_direction(direction: str) -> int:
    """+1 for 'increase', -1 for 'decrease': the sign that maps effects into the claimed direction."""
    if direction not in DIRECTIONS:
        raise StatsInputError(f"direction must be one of {DIRECTIONS} (the claimed effect of the treatment on the "
                              f"event rate); got {direction!r}")
    return 1 if direction == "increase" else -1


def _float_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# --------------------------------------------------------------------------------------------------
# Rates and fixed-n comparisons
# --------------------------------------------------------------------------------------------------

def wilson_interval(events: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` Wilson score interval for a rate ``events / n`` (statsmodels).

    Wilson rather than the normal (Wald) interval because rates near 0 (rare crashes) are where Wald fails.
    """
    if n < 1 or not 0 <= events <= n:
        raise StatsInputError(f"a rate needs 0 <= events <= n and n >= 1; got events={events}, n={n}")
    low, high = proportion_confint(int(events), int(n), alpha=_check_alpha(alpha), method="wilson")
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
                                           alpha=_check_alpha(alpha))
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
        b, t = _paired_outcomes(baseline, treatment)
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
                        vectorized=True, n_resamples=n_resamples, confidence_level=1 - _check_alpha(alpha),
                        method=method, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return BootstrapInterval(effect, (low, high), int(b.size), 1 - alpha, f"paired bootstrap {method}, "
                                                                        f"{n_resamples} resamples, seed {seed}")


def holm(p_values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down correction (statsmodels ``multipletests``): ``(reject, adjusted p-values)``.

    Controls the familywise error rate at ``alpha`` under any dependence between the tests. (Each
    ``multipletests`` call runs ``gc.collect()``, tens of ms in a big process: loops use ``_holm_adjust``.)
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or p.size == 0 or np.any((p < 0) | (p > 1)) or not np.isfinite(p).all():
        raise StatsInputError(f"holm needs a non-empty 1-D sequence of p-values in [0, 1]; got {p_values!r}")
    reject, adjusted, _, _ = multipletests(p, alpha=_check_alpha(alpha), method="holm")
    return reject, adjusted


def _holm_adjust(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis, vectorised over leading axes (for simulations, where one
    ``multipletests`` call per run and look would dominate the run time). Tested equal to statsmodels."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    stepped = np.minimum(1.0, np.maximum.accumulate(sorted_p * (m - np.arange(m)), axis=-1))
    out = np.empty_like(stepped)
    np.put_along_axis(out, order, stepped, axis=-1)
    return out


# --------------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a paired claim, with everything needed to judge it.

    ``effect`` is the paired difference in rates (treatment - baseline); ``ci`` its interval, each end a
    one-sided ``1 - alpha`` bound; ``p_value`` the p-value of "no effect in the claimed direction"
    (always-valid and, in a family, Holm-adjusted for sequential verdicts); ``discordant`` is
    ``(baseline_only, treatment_only)``; ``decision_rule`` says in words how the verdict was reached.
    """

    claim: str | None
    verdict: VerdictName
    n: int
    effect: float
    ci: tuple[float, float]
    p_value: float
    decision_rule: str
    discordant: tuple[int, int]
    direction: Direction = "increase"
    alpha: float = 0.05
    baseline_rate: float = math.nan
    treatment_rate: float = math.nan
    futility_p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN becomes None, tuples become lists)."""
        return {"claim": self.claim, "verdict": self.verdict, "n": int(self.n),
                "effect": _float_or_none(self.effect),
                "ci": [_float_or_none(self.ci[0]), _float_or_none(self.ci[1])],
                "p_value": _float_or_none(self.p_value), "decision_rule": self.decision_rule,
                "discordant": {"baseline_only": int(self.discordant[0]), "treatment_only": int(self.discordant[1])},
                "direction": self.direction, "alpha": float(self.alpha),
                "baseline_rate": _float_or_none(self.baseline_rate),
                "treatment_rate": _float_or_none(self.treatment_rate),
                "futility_p_value": _float_or_none(self.futility_p_value)}

    def summary(self) -> str:
        """One line for terminals and reports."""
        claim = f"{self.claim}: " if self.claim else ""
        return (f"{claim}{self.verdict.upper()}  n={self.n}  effect {self.effect:+.3f} "
                f"(CI {self.ci[0]:+.3f} to {self.ci[1]:+.3f})  p={self.p_value:.3g}  "
                f"discordant b={self.discordant[0]} c={self.discordant[1]}  [{self.decision_rule}]")


def mcnemar_verdict(baseline: ArrayLike, treatment: ArrayLike, *, claim: str | None = None, alpha: float = 0.05,
                    direction: Direction = "increase", min_effect: float = 0.05) -> Verdict:
    """A fixed-n verdict on paired outcomes (all episodes already run; no sequential looks).

    Decision rule: ``supported`` when the one-sided exact McNemar p (in ``direction``) is <= alpha;
    ``refuted`` when the Newcombe paired one-sided ``1 - alpha`` bound shows the change in the claimed
    direction is below ``min_effect``; otherwise ``inconclusive``.
    """
    sign = _check_direction(direction)
    counts = PairedCounts.from_outcomes(baseline, treatment)
    if counts.n == 0:
        raise StatsInputError("mcnemar_verdict needs at least one pair of episodes")
    test = mcnemar_exact(counts, alternative="greater" if sign > 0 else "less")
    low, high = newcombe_paired_interval(counts, alpha=2 * _check_alpha(alpha))  # each end one-sided 1 - alpha
    far_end = high if sign > 0 else -low
    verdict = "supported" if test.p_value <= alpha else ("refuted" if far_end < min_effect else "inconclusive")
    rule = (f"fixed n: supported if exact one-sided McNemar p <= {alpha:g}; refuted if the Newcombe paired "
            f"{1 - alpha:.0%} bound excludes a change of {min_effect:g} in the claimed direction ({direction})")
    return Verdict(claim=claim, verdict=verdict, n=counts.n, effect=counts.difference, ci=(low, high),
                   p_value=test.p_value, decision_rule=rule,
                   discordant=(counts.baseline_only, counts.treatment_only), direction=direction, alpha=alpha,
                   baseline_rate=counts.baseline_rate, treatment_rate=counts.treatment_rate)


# --------------------------------------------------------------------------------------------------
# Always-valid e-values on paired differences
# --------------------------------------------------------------------------------------------------
# Hand-written (neither scipy nor statsmodels has sequential tests). Each pair gives X = +1 (event only
# under the treatment, in the claimed direction), -1 (only under the baseline) or 0 (concordant), with
# mean theta = the paired difference in rates (signed into the claimed direction).
#
# For a threshold delta, two test supermartingales (betting processes, averaged over a fixed grid of bets
# g in (0, 1), which keeps them supermartingales):
#   E_up(delta)   = mean_g prod_i (1 + g (X_i - delta) / (1 + delta))   valid under H0: theta <= delta
#   E_down(delta) = mean_g prod_i (1 - g (X_i - delta) / (1 - delta))   valid under H0: theta >= delta
# Each factor is positive and has mean <= 1 under its H0, so by Ville's inequality P(sup_t E >= 1/a) <= a:
# min(1, 1/max_t E_t) is a p-value valid at any stopping time (always-valid).
# At delta = 0, E_up only moves on discordant pairs: it is a mixture SPRT of the discordant-pair binomial
# (q = P(treatment-only | discordant), H0: q <= 1/2 against q = (1 + g)/2, uniform mixture over g).
# Both depend on the data only through the counts (n_pos, n_zero, n_neg), so they vectorise over runs.

def _bets(n_bets: int) -> np.ndarray:
    return (np.arange(n_bets) + 0.5) / n_bets


def _log_e_up(n_pos: ArrayLike, n_zero: ArrayLike, n_neg: ArrayLike, delta: ArrayLike, bets: np.ndarray) -> np.ndarray:
    """log E_up(delta): evidence that theta > delta (counts and delta broadcast together)."""
    g, delta = bets, np.asarray(delta, float)[..., None]
    terms = (np.asarray(n_pos, float)[..., None] * np.log1p(g * (1 - delta) / (1 + delta))
             + np.asarray(n_zero, float)[..., None] * np.log1p(-g * delta / (1 + delta))
             + np.asarray(n_neg, float)[..., None] * np.log1p(-g))
    return logsumexp(terms, axis=-1) - math.log(g.size)


def _log_e_down(n_pos: ArrayLike, n_zero: ArrayLike, n_neg: ArrayLike, delta: ArrayLike,
                bets: np.ndarray) -> np.ndarray:
    """log E_down(delta): evidence that theta < delta (counts and delta broadcast together)."""
    g, delta = bets, np.asarray(delta, float)[..., None]
    terms = (np.asarray(n_pos, float)[..., None] * np.log1p(-g)
             + np.asarray(n_zero, float)[..., None] * np.log1p(g * delta / (1 - delta))
             + np.asarray(n_neg, float)[..., None] * np.log1p(g * (1 + delta) / (1 - delta)))
    return logsumexp(terms, axis=-1) - math.log(g.size)


def _confidence_bounds(n_pos: np.ndarray, n_zero: np.ndarray, n_neg: np.ndarray, alpha: float, bets: np.ndarray,
                       *, lower: bool, iterations: int = 40) -> np.ndarray:
    """Always-valid one-sided 1 - alpha bounds on theta, one per set of counts (vectorised bisection; E_up
    falls and E_down rises with delta): lower = sup{delta: E_up(delta) >= 1/alpha} (-1 if none),
    upper = inf{delta: E_down(delta) >= 1/alpha} (+1 if none). Accurate to 2 / 2**iterations."""
    threshold = math.log(1 / alpha)
    n_pos, n_zero, n_neg = (np.asarray(a, float) for a in (n_pos, n_zero, n_neg))

    def rejected(delta: np.ndarray) -> np.ndarray:
        if lower:
            return _log_e_up(n_pos, n_zero, n_neg, delta, bets) >= threshold
        return _log_e_down(n_pos, n_zero, n_neg, delta, bets) >= threshold

    edge = 1 - 1e-12
    lo, hi = np.full(n_pos.shape, -edge), np.full(n_pos.shape, edge)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        # lower: the rejected set is (-1, L], so a rejected mid lies below L; upper: rejected set is [U, 1).
        below = rejected(mid) == lower
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    if lower:
        return np.where(rejected(np.full(n_pos.shape, -edge)), lo, -1.0)
    return np.where(rejected(np.full(n_pos.shape, edge)), hi, 1.0)


# --------------------------------------------------------------------------------------------------
# Sequential design and its decision step (shared by the objects and the vectorised simulations)
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SequentialDesign:
    """Settings of a sequential paired test. See :class:`SequentialPairedTest` for the decision rules.

    ``min_effect`` is the smallest change in the event rate (in the claimed direction, as a difference of
    rates) worth calling an effect: the futility rule refutes the claim once the data show the change is
    below it. ``futility_alpha`` (default ``alpha``) bounds the chance of refuting a true effect of at least
    ``min_effect``. ``n_bets`` is the size of the grid of bets the e-values average over.
    """

    alpha: float = 0.05
    direction: Direction = "increase"
    max_pairs: int = 400
    min_effect: float = 0.05
    futility_alpha: float | None = None
    n_bets: int = 20

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        _check_direction(self.direction)
        if self.futility_alpha is not None:
            _check_alpha(self.futility_alpha, "futility_alpha")
        if int(self.max_pairs) != self.max_pairs or self.max_pairs < 1:
            raise StatsInputError(f"max_pairs must be a positive integer (the budget of paired episodes); "
                                  f"got {self.max_pairs}")
        if not 0.0 < self.min_effect < 1.0:
            raise StatsInputError(f"min_effect is a difference of rates in (0, 1) (e.g. 0.05 = 5 points); "
                                  f"got {self.min_effect}")
        if self.n_bets < 1:
            raise StatsInputError(f"n_bets must be >= 1; got {self.n_bets}")

    @property
    def sign(self) -> int:
        return _check_direction(self.direction)

    @property
    def refute_alpha(self) -> float:
        return self.alpha if self.futility_alpha is None else self.futility_alpha

    @property
    def bets(self) -> np.ndarray:
        return _bets(self.n_bets)

    def decision_rule(self, n_hypotheses: int = 1) -> str:
        """The decision rule in one line, for reports."""
        holm_note = f", Holm over {n_hypotheses}" if n_hypotheses > 1 else ""
        verb = "raise" if self.direction == "increase" else "lower"
        return (f"sequential paired (mixture SPRT on discordant pairs, a look per batch{holm_note}): supported if "
                f"always-valid p <= {self.alpha:g} against 'does not {verb} the rate'; refuted if always-valid p "
                f"<= {self.refute_alpha:g} against '{verb}s it by >= {self.min_effect:g}'; inconclusive at "
                f"{self.max_pairs} pairs")


def _settle(codes: np.ndarray, p_support: np.ndarray, p_futility: np.ndarray, n_pairs: int | np.ndarray,
            design: SequentialDesign, adjust: bool) -> np.ndarray:
    """One look of the decision rule over hypotheses on the last axis (any leading run axes).

    Settled hypotheses keep their code (and the caller keeps their p-values frozen, still counted by Holm).
    Among the open ones: supported if the (Holm-adjusted) support p <= alpha; else refuted if the
    (Holm-adjusted) futility p <= futility alpha; else inconclusive once ``n_pairs >= max_pairs``.
    """
    if adjust and p_support.shape[-1] > 1:
        p_support, p_futility = _holm_adjust(p_support), _holm_adjust(p_futility)
    open_ = codes == _CONTINUE
    supported = open_ & (p_support <= design.alpha)
    refuted = open_ & ~supported & (p_futility <= design.refute_alpha)
    exhausted = open_ & ~supported & ~refuted & (np.asarray(n_pairs) >= design.max_pairs)
    out = codes.copy()
    out[supported], out[refuted], out[exhausted] = _SUPPORTED, _REFUTED, _INCONCLUSIVE
    return out


@dataclasses.dataclass(frozen=True)
class Decision:
    """What one ``update`` concluded. ``verdict`` is None while the test continues."""

    stop: bool
    verdict: VerdictName | None
    n: int
    n_used: int
    p_value: float
    futility_p_value: float


class _PairedEvidence:
    """Running evidence of one hypothesis: paired counts, running maxima of the two e-values, and the counts at
    every look (for the running intersection of the always-valid confidence bounds, in the claimed direction)."""

    def __init__(self, design: SequentialDesign) -> None:
        self.design = design
        self.counts = PairedCounts(0, 0, 0, 0)
        self.log_e_support = 0.0  # running max of log E_up(0); E starts at 1
        self.log_e_futility = 0.0  # running max of log E_down(min_effect)
        self.looks: list[tuple[int, int, int]] = []  # (n_pos, n_zero, n_neg) at each look

    def add(self, baseline: np.ndarray, treatment: np.ndarray) -> None:
        new = PairedCounts.from_outcomes(baseline, treatment)
        c = self.counts = PairedCounts(*(x + y for x, y in zip(dataclasses.astuple(self.counts),
                                                                dataclasses.astuple(new))))
        n_pos, n_neg = (c.treatment_only, c.baseline_only) if self.design.sign > 0 else (c.baseline_only,
                                                                                          c.treatment_only)
        n_zero, d, bets = c.both + c.neither, self.design, self.design.bets
        self.log_e_support = max(self.log_e_support, float(_log_e_up(n_pos, n_zero, n_neg, 0.0, bets)))
        self.log_e_futility = max(self.log_e_futility, float(_log_e_down(n_pos, n_zero, n_neg, d.min_effect, bets)))
        self.looks.append((n_pos, n_zero, n_neg))

    @property
    def p_support(self) -> float:
        return min(1.0, math.exp(-self.log_e_support))

    @property
    def p_futility(self) -> float:
        return min(1.0, math.exp(-self.log_e_futility))

    def ci(self) -> tuple[float, float]:
        """Running intersection over the looks of the always-valid bounds, as an interval for
        treatment - baseline (mapped back from the claimed direction)."""
        if not self.looks:
            return -1.0, 1.0
        counts = np.array(self.looks).T
        lower = float(_confidence_bounds(*counts, self.design.alpha, self.design.bets, lower=True).max())
        upper = float(_confidence_bounds(*counts, self.design.refute_alpha, self.design.bets, lower=False).min())
        return (lower, upper) if self.design.sign > 0 else (-upper, -lower)


class SequentialPairedFamily:
    """Several sequential paired hypotheses sharing one baseline (e.g. "ablating head h raises collisions",
    one per head), decided jointly with Holm's correction at every look.

    Feed it batch by batch: ``update(baseline, {name: treatment})`` with the outcomes of the same seeds.
    Decision rule at each look, over all hypotheses (those already settled keep their frozen p-values):
    a hypothesis still open is ``supported`` when its Holm-adjusted always-valid support p <= alpha,
    ``refuted`` when its Holm-adjusted always-valid futility p <= futility alpha, and ``inconclusive`` once
    ``max_pairs`` pairs have been used. Running p-values only fall and Holm is monotone, so everything ever
    supported is supported by Holm on the final always-valid p-values: the familywise error rate stays
    <= alpha whenever and however the looks stop (the same holds for refutations at futility alpha).
    Outcomes given for settled hypotheses are not used. Verdict p-values are Holm-adjusted; verdict
    intervals are per hypothesis, not adjusted for multiplicity.
    """

    def __init__(self, claims: Mapping[str, str | None] | Sequence[str], design: SequentialDesign | None = None,
                 **design_kwargs: Any) -> None:
        if design is not None and design_kwargs:
            raise StatsInputError("give either a SequentialDesign or its settings as keywords, not both")
        self.design = design if design is not None else SequentialDesign(**design_kwargs)
        claims = dict(claims) if isinstance(claims, Mapping) else {name: None for name in claims}
        if not claims:
            raise StatsInputError("a family needs at least one hypothesis")
        self.claims: dict[str, str | None] = claims
        self.names: tuple[str, ...] = tuple(claims)
        self._evidence = {name: _PairedEvidence(self.design) for name in self.names}
        self._codes = np.full(len(self.names), _CONTINUE)
        self._n = np.zeros(len(self.names), dtype=int)

    @property
    def active(self) -> tuple[str, ...]:
        """Hypotheses that still need episodes."""
        return tuple(name for name, code in zip(self.names, self._codes) if code == _CONTINUE)

    @property
    def stopped(self) -> bool:
        return not self.active

    def update(self, baseline: ArrayLike, treatments: Mapping[str, ArrayLike]) -> dict[str, Decision]:
        """Add one batch of paired outcomes (same seeds for baseline and every treatment) and decide.

        Pairs beyond ``max_pairs`` are not used (``Decision.n_used`` says how many were).
        """
        active = self.active
        if not active:
            raise StatsInputError("every hypothesis of this family is settled; read verdicts() instead of adding "
                                  "episodes")
        unknown = sorted(set(treatments) - set(self.names))
        missing = sorted(set(active) - set(treatments))
        if unknown or missing:
            raise StatsInputError(f"treatments must cover the open hypotheses {list(active)}; missing {missing}, "
                                  f"unknown {unknown}")
        base = _as_outcomes(baseline, "baseline")
        room = self.design.max_pairs - int(self._n[self.names.index(active[0])])
        used = min(room, base.size)
        for name in active:
            _, treat = _paired_outcomes(base, treatments[name])
            self._evidence[name].add(base[:used], treat[:used])
            self._n[self.names.index(name)] += used
        p_s = np.array([self._evidence[name].p_support for name in self.names])
        p_f = np.array([self._evidence[name].p_futility for name in self.names])
        self._codes = _settle(self._codes, p_s, p_f, self._n, self.design, adjust=True)
        return {name: self._decision(i, used) for i, name in enumerate(self.names) if name in active}

    def _adjusted(self) -> tuple[np.ndarray, np.ndarray]:
        p_s = np.array([self._evidence[name].p_support for name in self.names])
        p_f = np.array([self._evidence[name].p_futility for name in self.names])
        return (_holm_adjust(p_s), _holm_adjust(p_f)) if len(self.names) > 1 else (p_s, p_f)

    def _decision(self, i: int, used: int) -> Decision:
        p_s, p_f = self._adjusted()
        code = int(self._codes[i])
        return Decision(stop=code != _CONTINUE, verdict=_CODE_NAMES.get(code), n=int(self._n[i]), n_used=used,
                        p_value=float(p_s[i]), futility_p_value=float(p_f[i]))

    def verdicts(self) -> dict[str, Verdict]:
        """A verdict per hypothesis. One still open (the caller stopped before ``max_pairs``) is inconclusive,
        and its decision rule says the budget was cut short."""
        p_s, p_f = self._adjusted()
        out = {}
        for i, name in enumerate(self.names):
            ev, code = self._evidence[name], int(self._codes[i])
            rule = self.design.decision_rule(len(self.names))
            if code == _CONTINUE:
                rule += f" (stopped by the caller at {int(self._n[i])} pairs, before max_pairs)"
            c = ev.counts
            out[name] = Verdict(claim=self.claims[name], verdict=_CODE_NAMES.get(code, "inconclusive"),
                                n=c.n, effect=c.difference, ci=ev.ci(), p_value=float(p_s[i]), decision_rule=rule,
                                discordant=(c.baseline_only, c.treatment_only), direction=self.design.direction,
                                alpha=self.design.alpha, baseline_rate=c.baseline_rate,
                                treatment_rate=c.treatment_rate, futility_p_value=float(p_f[i]))
        return out


class SequentialPairedTest:
    """A sequential paired test of one directional claim, e.g. "ablating head 1 raises the collision rate".

    Feed it batch by batch with ``update(baseline_bools, treatment_bools)`` (same seeds, in the same order);
    each call is a look and returns a :class:`Decision`. Decision rule at each look:

    * ``supported`` when the always-valid p-value of H0 "the treatment does not change the rate in the
      claimed direction" is <= ``alpha``. The p-value is ``1 / max_t E_t`` of a mixture SPRT on the
      discordant pairs (a uniform mixture of likelihood ratios q = (1 + g)/2 against q = 1/2, where q is the
      share of discordant pairs that go the claimed way), valid at any stopping time by Ville's inequality.
    * ``refuted`` (futility) when the always-valid p-value of H0 "the rate changes in the claimed direction
      by at least ``min_effect``" is <= ``futility_alpha``: the data show the effect, if any, is smaller.
    * ``inconclusive`` when ``max_pairs`` pairs are used without either.

    The verdict's interval is the running intersection of always-valid bounds on the paired difference:
    its end towards 0 clears 0 exactly when the claim is supported, and its far end falls below
    ``min_effect`` exactly when it is refuted.
    """

    def __init__(self, alpha: float = 0.05, direction: Direction = "increase", max_pairs: int = 400,
                 min_effect: float = 0.05, futility_alpha: float | None = None, n_bets: int = 20,
                 claim: str | None = None) -> None:
        self.design = SequentialDesign(alpha=alpha, direction=direction, max_pairs=max_pairs, min_effect=min_effect,
                                       futility_alpha=futility_alpha, n_bets=n_bets)
        self._family = SequentialPairedFamily({"claim": claim}, self.design)

    @property
    def n(self) -> int:
        return int(self._family._n[0])

    @property
    def stopped(self) -> bool:
        return self._family.stopped

    def update(self, baseline: ArrayLike, treatment: ArrayLike) -> Decision:
        """Add one batch of paired outcomes and apply the decision rule. Raises once the test has stopped."""
        if self.stopped:
            raise StatsInputError(f"this test already stopped ({self.verdict().verdict} at n={self.n}); "
                                  f"start a new test for new claims")
        return self._family.update(baseline, {"claim": treatment})["claim"]

    def verdict(self) -> Verdict:
        return self._family.verdicts()["claim"]


# --------------------------------------------------------------------------------------------------
# Vectorised simulation of the sequential design (calibration, power, design comparison)
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PairedRates:
    """Per-pair probabilities of the paired 2x2 cells (``neither`` is the rest)."""

    both: float
    baseline_only: float
    treatment_only: float

    def __post_init__(self) -> None:
        cells = (self.both, self.baseline_only, self.treatment_only)
        if min(cells) < 0 or sum(cells) > 1 + 1e-12:
            raise StatsInputError(f"paired cell probabilities must be >= 0 and sum to <= 1; got {cells}")

    @classmethod
    def null(cls, rate: float, discordance: float) -> "PairedRates":
        """No true difference: both conditions have ``rate``, and a share ``discordance`` of pairs disagree."""
        return cls(both=rate - discordance / 2, baseline_only=discordance / 2, treatment_only=discordance / 2)

    @classmethod
    def from_counts(cls, counts: PairedCounts) -> "PairedRates":
        return cls(counts.both / counts.n, counts.baseline_only / counts.n, counts.treatment_only / counts.n)

    @property
    def baseline_rate(self) -> float:
        return self.both + self.baseline_only

    @property
    def treatment_rate(self) -> float:
        return self.both + self.treatment_only

    @property
    def difference(self) -> float:
        return self.treatment_only - self.baseline_only


def simulate_paired_outcomes(rates: PairedRates, *, n_runs: int, n_pairs: int, n_treatments: int = 1,
                             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic paired outcomes: ``baseline [runs, pairs]`` and ``treatments [runs, n_treatments, pairs]``.

    Every treatment has the same paired table with the shared baseline; treatments are independent of each
    other given the baseline (a simulation assumption, not one the tests rely on).
    """
    base_rate = rates.baseline_rate
    baseline = rng.random((n_runs, n_pairs)) < base_rate
    p_if_event = rates.both / base_rate if base_rate > 0 else 0.0
    p_if_none = rates.treatment_only / (1 - base_rate) if base_rate < 1 else 0.0
    p_treat = np.where(baseline, p_if_event, p_if_none)[:, None, :]
    treatments = rng.random((n_runs, n_treatments, n_pairs)) < p_treat
    return baseline, treatments


@dataclasses.dataclass(frozen=True)
class SequentialSimulation:
    """Outcomes of many simulated sequential runs: verdict codes and stopping n, both ``[runs, hypotheses]``."""

    codes: np.ndarray
    stop_n: np.ndarray
    design: SequentialDesign

    @property
    def supported(self) -> np.ndarray:
        return self.codes == _SUPPORTED

    @property
    def refuted(self) -> np.ndarray:
        return self.codes == _REFUTED

    @property
    def inconclusive(self) -> np.ndarray:
        return self.codes == _INCONCLUSIVE

    def verdict_names(self) -> np.ndarray:
        return np.vectorize(_CODE_NAMES.get)(self.codes)


def _look_ends(max_pairs: int, batch_pairs: int) -> np.ndarray:
    ends = np.arange(batch_pairs, max_pairs + 1, batch_pairs)
    return ends if ends.size and ends[-1] == max_pairs else np.append(ends, max_pairs)


def run_sequential(design: SequentialDesign, baseline: np.ndarray, treatments: np.ndarray, *, batch_pairs: int,
                   holm_adjust: bool = True) -> SequentialSimulation:
    """Run the sequential decision rule on many runs at once.

    ``baseline [runs, pairs]``, ``treatments [runs, hypotheses, pairs]`` (booleans, ``pairs >= max_pairs``);
    looks after every ``batch_pairs`` pairs. Uses the same e-values and the same per-look decision step as
    :class:`SequentialPairedFamily` (with ``holm_adjust``) so a simulated run and an object fed the same
    batches reach the same verdict at the same n.
    """
    baseline, treatments = np.asarray(baseline, bool), np.asarray(treatments, bool)
    if baseline.ndim != 2 or treatments.ndim != 3 or treatments.shape[::2] != baseline.shape:
        raise StatsInputError(f"need baseline [runs, pairs] and treatments [runs, hypotheses, pairs]; got "
                              f"{baseline.shape} and {treatments.shape}")
    if baseline.shape[1] < design.max_pairs:
        raise StatsInputError(f"simulated runs hold {baseline.shape[1]} pairs, fewer than max_pairs="
                              f"{design.max_pairs}")
    if batch_pairs < 1:
        raise StatsInputError(f"batch_pairs must be >= 1; got {batch_pairs}")
    ends = _look_ends(design.max_pairs, batch_pairs)
    x = design.sign * (treatments[..., : design.max_pairs].astype(np.int8)
                       - baseline[:, None, : design.max_pairs].astype(np.int8))
    n_pos = np.cumsum(x == 1, axis=-1, dtype=np.int32)[..., ends - 1]
    n_neg = np.cumsum(x == -1, axis=-1, dtype=np.int32)[..., ends - 1]
    n_zero = ends - n_pos - n_neg
    bets = design.bets
    log_support = np.maximum.accumulate(_log_e_up(n_pos, n_zero, n_neg, 0.0, bets), axis=-1)
    log_futility = np.maximum.accumulate(_log_e_down(n_pos, n_zero, n_neg, design.min_effect, bets), axis=-1)
    p_support, p_futility = np.minimum(1.0, np.exp(-log_support)), np.minimum(1.0, np.exp(-log_futility))

    runs, hyps = baseline.shape[0], treatments.shape[1]
    codes = np.full((runs, hyps), _CONTINUE)
    stop_n = np.zeros((runs, hyps), dtype=int)
    frozen_s, frozen_f = np.ones((runs, hyps)), np.ones((runs, hyps))
    for k, n in enumerate(ends):
        open_ = codes == _CONTINUE
        frozen_s = np.where(open_, p_support[..., k], frozen_s)
        frozen_f = np.where(open_, p_futility[..., k], frozen_f)
        codes = _settle(codes, frozen_s, frozen_f, int(n), design, adjust=holm_adjust)
        stop_n[open_ & (codes != _CONTINUE)] = n
        if not (codes == _CONTINUE).any():
            break
    return SequentialSimulation(codes=codes, stop_n=stop_n, design=design)


def simulate_sequential(design: SequentialDesign, rates: PairedRates, *, n_runs: int, n_hypotheses: int = 1,
                        batch_pairs: int = 10, seed: int = 0, holm_adjust: bool = True) -> SequentialSimulation:
    """Simulate ``n_runs`` independent sequential runs on synthetic paired outcomes drawn from ``rates``."""
    rng = np.random.default_rng(seed)
    baseline, treatments = simulate_paired_outcomes(rates, n_runs=n_runs, n_pairs=design.max_pairs,
                                                    n_treatments=n_hypotheses, rng=rng)
    return run_sequential(design, baseline, treatments, batch_pairs=batch_pairs, holm_adjust=holm_adjust)


# --------------------------------------------------------------------------------------------------
# Episodes needed: unpaired fixed-n vs paired designs
# --------------------------------------------------------------------------------------------------

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
    n = NormalIndPower().solve_power(effect_size=h, alpha=_check_alpha(alpha), power=power, ratio=1.0,
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
    ends = _look_ends(cap, batch_pairs)
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
