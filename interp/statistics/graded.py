"""The always-valid sequential paired test for *graded* (bounded continuous) outcomes, e.g. an episode's minimum
time-to-collision capped at 5 s: e-values on paired differences, a family decided with Holm at every look.

Hand-written (neither scipy nor statsmodels has sequential tests; the binary version in
``interp.statistics.sequential`` is the same construction on {-1, 0, 1}). Outcomes lie in [0, scale]; each pair
gives X = sign * (treatment - baseline) / scale in [-1, 1] (sign: +1 for a claimed increase, -1 for a decrease),
with mean theta. For a threshold delta, two betting processes averaged over a fixed grid of bets g in (0, 1)
(Waudby-Smith & Ramdas 2024, "Estimating means of bounded random variables by betting", JRSS-B):
    E_up(delta)   = mean_g prod_i (1 + g (X_i - delta) / (1 + delta))   a supermartingale under H0: theta <= delta
    E_down(delta) = mean_g prod_i (1 - g (X_i - delta) / (1 - delta))   a supermartingale under H0: theta >= delta
Every factor is positive (g < 1, |X| <= 1) with conditional mean <= 1 under its H0, so by Ville's inequality
P(sup_t E_t >= 1/alpha) <= alpha: min(1, 1 / max_t E_t) is a p-value valid at any stopping time.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from interp.statistics.inputs import CODE_NAMES, CONTINUE, INCONCLUSIVE, REFUTED, SUPPORTED, Direction, StatsInputError
from interp.statistics.intervals import holm_adjusted
from interp.statistics.sequential import PairedSettings, betting_fractions
from interp.statistics.verdicts import Verdict


def log_e_up(x: np.ndarray, delta: float, bets: np.ndarray) -> float:
    """log E_up(delta) of the differences ``x`` (in [-1, 1]): evidence that their mean exceeds delta."""
    terms = np.log1p(bets[None, :] * (np.asarray(x, float)[:, None] - delta) / (1 + delta)).sum(0)
    return float(logsumexp(terms) - math.log(bets.size))


def log_e_down(x: np.ndarray, delta: float, bets: np.ndarray) -> float:
    """log E_down(delta): evidence that the mean of ``x`` is below delta."""
    terms = np.log1p(-bets[None, :] * (np.asarray(x, float)[:, None] - delta) / (1 - delta)).sum(0)
    return float(logsumexp(terms) - math.log(bets.size))


@dataclasses.dataclass(frozen=True)
class GradedDesign(PairedSettings):
    """Settings of a graded sequential paired test. ``scale`` bounds the outcomes ([0, scale], e.g. the TTC cap);
    ``min_effect`` (outcome units, e.g. seconds) is the smallest change worth calling an effect: the futility rule
    refutes the claim once the data show the change is below it."""

    scale: float
    min_effect: float
    alpha: float = 0.05
    direction: Direction = "decrease"
    max_pairs: int = 400
    futility_alpha: float | None = None
    n_bets: int = 20

    def __post_init__(self) -> None:
        self.check_settings()
        if not self.scale > 0:
            raise StatsInputError(f"scale must be > 0 (outcomes lie in [0, scale]); got {self.scale}")
        if not 0 < self.min_effect < self.scale:
            raise StatsInputError(f"min_effect must lie in (0, scale={self.scale}); got {self.min_effect}")

    def decision_rule(self, n_hypotheses: int = 1) -> str:
        holm = f", Holm over {n_hypotheses}" if n_hypotheses > 1 else ""
        verb = "raise" if self.direction == "increase" else "lower"
        return (f"sequential paired betting e-values on graded outcomes in [0, {self.scale:g}]{holm}: supported if "
                f"always-valid p <= {self.alpha:g} against 'does not {verb} the mean'; refuted if always-valid p <= "
                f"{self.refute_alpha:g} against '{verb}s it by >= {self.min_effect:g}'; inconclusive at "
                f"{self.max_pairs} pairs")


class GradedPairedFamily:
    """Graded hypotheses sharing one baseline, decided jointly with Holm at every look: the same interface and
    decision rule as ``interp.statistics.sequential.SequentialPairedFamily`` (``update``, ``active``,
    ``stopped``, ``verdicts``), on outcomes in [0, scale] instead of booleans."""

    def __init__(self, claims: Mapping[str, str | None] | Sequence[str], design: GradedDesign) -> None:
        self.design = design
        self.claims = dict(claims) if isinstance(claims, Mapping) else {name: None for name in claims}
        if not self.claims:
            raise StatsInputError("a family needs at least one hypothesis")
        self.names = tuple(self.claims)
        self._base: dict[str, list[float]] = {n: [] for n in self.names}
        self._treat: dict[str, list[float]] = {n: [] for n in self.names}
        self._log_support = np.zeros(len(self.names))  # running max of log E_up(0)
        self._log_futility = np.zeros(len(self.names))  # running max of log E_down(min_effect / scale)
        self._codes = np.full(len(self.names), CONTINUE)

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(n for n, c in zip(self.names, self._codes) if c == CONTINUE)

    @property
    def stopped(self) -> bool:
        return not self.active

    def _x(self, name: str) -> np.ndarray:
        d = self.design
        return d.sign * (np.asarray(self._treat[name]) - np.asarray(self._base[name])) / d.scale

    def update(self, baseline: ArrayLike, treatments: Mapping[str, ArrayLike]) -> None:
        """Add one batch of paired outcomes (same seeds) for every open hypothesis, then decide."""
        active = self.active
        if not active:
            raise StatsInputError("every hypothesis of this family is settled; read verdicts()")
        missing = sorted(set(active) - set(treatments))
        if missing:
            raise StatsInputError(f"treatments must cover the open hypotheses {list(active)}; missing {missing}")
        base = np.asarray(baseline, float)
        d = self.design
        for name in active:
            treat = np.asarray(treatments[name], float)
            if treat.shape != base.shape or base.ndim != 1:
                raise StatsInputError(f"{name}: baseline and treatment must be 1-D of the same length; got "
                                      f"{base.shape} and {treat.shape}")
            both = np.concatenate([base, treat])
            if np.isnan(both).any() or both.min() < 0 or both.max() > d.scale:
                raise StatsInputError(f"{name}: graded outcomes must lie in [0, {d.scale:g}] (cap them first); got "
                                      f"range {np.nanmin(both):g}..{np.nanmax(both):g}")
            room = d.max_pairs - len(self._base[name])
            self._base[name] += base[:room].tolist()
            self._treat[name] += treat[:room].tolist()
            i, x = self.names.index(name), self._x(name)
            bets = betting_fractions(d.n_bets)
            self._log_support[i] = max(self._log_support[i], log_e_up(x, 0.0, bets))
            self._log_futility[i] = max(self._log_futility[i], log_e_down(x, d.min_effect / d.scale, bets))
        p_s, p_f = self._adjusted()
        open_ = self._codes == CONTINUE
        n = np.array([len(self._base[name]) for name in self.names])
        supported = open_ & (p_s <= d.alpha)
        refuted = open_ & ~supported & (p_f <= d.refute_alpha)
        exhausted = open_ & ~supported & ~refuted & (n >= d.max_pairs)
        self._codes = np.where(supported, SUPPORTED, np.where(refuted, REFUTED, np.where(
            exhausted, INCONCLUSIVE, self._codes)))

    def status(self, name: str) -> str | None:
        """The hypothesis' verdict so far (None while open), without computing its interval."""
        return CODE_NAMES.get(int(self._codes[self.names.index(name)]))

    def _adjusted(self) -> tuple[np.ndarray, np.ndarray]:
        p_s, p_f = np.minimum(1.0, np.exp(-self._log_support)), np.minimum(1.0, np.exp(-self._log_futility))
        return (holm_adjusted(p_s), holm_adjusted(p_f)) if len(self.names) > 1 else (p_s, p_f)

    def ci(self, name: str) -> tuple[float, float]:
        """Always-valid one-sided bounds at the last look on the mean paired difference treatment - baseline
        (outcome units), by bisection over delta (E_up falls and E_down rises with delta)."""
        d, x = self.design, self._x(name)
        if x.size == 0:
            return -d.scale, d.scale
        bets, threshold = betting_fractions(d.n_bets), math.log(1 / d.alpha)

        def bound(lower: bool) -> float:
            lo, hi = -1 + 1e-9, 1 - 1e-9
            for _ in range(40):
                mid = (lo + hi) / 2
                rejected = (log_e_up(x, mid, bets) if lower else log_e_down(x, mid, bets)) >= threshold
                if rejected == lower:
                    lo = mid
                else:
                    hi = mid
            return lo if lower else hi

        lower, upper = bound(True) * d.scale, bound(False) * d.scale
        return (lower, upper) if d.sign > 0 else (-upper, -lower)

    def verdicts(self) -> dict[str, Verdict]:
        p_s, p_f = self._adjusted()
        out = {}
        for i, name in enumerate(self.names):
            base, treat = np.asarray(self._base[name]), np.asarray(self._treat[name])
            code = int(self._codes[i])
            rule = self.design.decision_rule(len(self.names))
            if code == CONTINUE:
                rule += f" (stopped by the caller at {base.size} pairs, before max_pairs)"
            diff = treat - base
            out[name] = Verdict(
                claim=self.claims[name], verdict=CODE_NAMES.get(code, "inconclusive"), n=int(base.size),
                effect=float(diff.mean()) if diff.size else math.nan, ci=self.ci(name), p_value=float(p_s[i]),
                decision_rule=rule, discordant=(int((diff < 0).sum()), int((diff > 0).sum())),
                direction=self.design.direction, alpha=self.design.alpha,
                baseline_rate=float(base.mean()) if base.size else math.nan,
                treatment_rate=float(treat.mean()) if treat.size else math.nan, futility_p_value=float(p_f[i]))
        return out

