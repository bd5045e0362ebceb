"""The always-valid sequential test of a share: is the rate p of a 0/1 outcome (e.g. "this crossing's PET was at
most 1 s") below a bound b (supported), above it (refuted), or still undecided when the budget ends?

Hand-written (neither scipy nor statsmodels has sequential tests) on the betting e-values that
``interp.statistics.sequential`` already has for outcomes X in {-1, 0, 1}: an outcome B in {0, 1} is X = 2B - 1
and the bound b is delta = 2b - 1, so with bets g in (0, 1) on a fixed grid (Waudby-Smith & Ramdas 2024,
"Estimating means of bounded random variables by betting", JRSS-B; the grid mixture keeps each a test
supermartingale):

    E_below(b) = mean_g prod_i (1 - g (B_i - b) / (1 - b))   a supermartingale under H0: p >= b
    E_above(b) = mean_g prod_i (1 + g (B_i - b) / b)         a supermartingale under H0: p <= b

The bets g / (1 - b) and g / b span the whole range that keeps every factor positive. Both depend on the
outcomes only through (events k, outcomes n), so a whole grid of (n, k) is computed at once.

Decision rule, checked after every outcome, in the order they come: **supported** at the first n where
E_below(b) >= 1/alpha; **refuted** at the first n where E_above(b) >= 1/alpha; **inconclusive** when the budget
ends first. By Ville's inequality P(ever supported | p >= b) <= alpha and P(ever refuted | p <= b) <= alpha,
however and whenever the looks stop. Reported: the always-valid p-value min(1, 1 / max_n E_below(b)) and the
confidence sequence {b': E_below(b') < 1/alpha and E_above(b') < 1/alpha}, intersected over the looks (each
end a one-sided 1 - alpha bound, so the interval excludes b exactly when the test decided).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike

from interp.statistics.inputs import CODE_NAMES, CONTINUE, REFUTED, SUPPORTED, StatsInputError, as_outcomes, check_alpha
from interp.statistics.sequential import betting_fractions, confidence_bounds, log_e_value_down, log_e_value_up


def check_bound(bound: float) -> float:
    if not 0.0 < bound < 1.0:
        raise StatsInputError(f"the bound on the share must lie in (0, 1) (e.g. 0.05 for 5 %); got {bound}")
    return float(bound)


def log_e_below(k: ArrayLike, n: ArrayLike, bound: float, bets: np.ndarray) -> np.ndarray:
    """log E_below(bound) after ``n`` outcomes of which ``k`` are events: evidence that the share is below."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    return log_e_value_down(k, 0.0, n - k, 2 * bound - 1, bets)


def log_e_above(k: ArrayLike, n: ArrayLike, bound: float, bets: np.ndarray) -> np.ndarray:
    """log E_above(bound): evidence that the share is above ``bound``."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    return log_e_value_up(k, 0.0, n - k, 2 * bound - 1, bets)


def first_decisions(outcomes: ArrayLike, bound: float, alpha: float = 0.05,
                    n_bets: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The decision rule on many runs at once: ``outcomes`` is (runs, T) of 0/1 in the order observed. Returns
    per run the verdict code (SUPPORTED, REFUTED or CONTINUE when neither e-value reached 1/alpha within T) and
    the number of outcomes at the decision (T for an undecided run)."""
    b = np.asarray(outcomes)
    if b.ndim != 2 or not np.isin(b, (0, 1)).all():
        raise StatsInputError(f"outcomes must be a (runs, T) array of 0/1; got shape {b.shape}")
    runs, length = b.shape
    if length == 0:
        return np.full(runs, CONTINUE), np.zeros(runs, int)
    bets, threshold = betting_fractions(n_bets), math.log(1 / check_alpha(alpha))
    # The e-values depend on (n, k) only: one table over the triangle 0 <= k <= n <= T, read along each path.
    n_grid = np.arange(1, length + 1)[:, None]
    k_grid = np.arange(length + 1)[None, :]
    valid = k_grid <= n_grid
    k_safe = np.where(valid, k_grid, 0)
    supported_table = valid & (log_e_below(k_safe, n_grid, check_bound(bound), bets) >= threshold)
    refuted_table = valid & (log_e_above(k_safe, n_grid, bound, bets) >= threshold)
    k_path = np.cumsum(b.astype(int), axis=1)
    steps = np.broadcast_to(np.arange(length), (runs, length))
    return _first_decision(supported_table[steps, k_path], refuted_table[steps, k_path])


def _first_decision(supported: np.ndarray, refuted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rule itself, on (runs, T) booleans "E_below / E_above >= 1/alpha after outcome t": per run the code of
    the first crossing and the number of outcomes it took (T when neither crossed). Both at one n would need k
    below and above b n at once; a tie goes to supported. ``first_decisions`` and ``SequentialShareTest.add`` both
    decide through it."""
    runs, length = supported.shape
    first_s = np.where(supported.any(1), supported.argmax(1), length)
    first_r = np.where(refuted.any(1), refuted.argmax(1), length)
    codes, at = np.full(runs, CONTINUE), np.full(runs, length)
    won_s = (first_s <= first_r) & (first_s < length)
    won_r = first_r < first_s
    codes[won_s], codes[won_r] = SUPPORTED, REFUTED
    at[won_s], at[won_r] = first_s[won_s] + 1, first_r[won_r] + 1
    return codes, at


@dataclasses.dataclass(frozen=True)
class ShareDecision:
    """Where the test stands: ``verdict`` None while open; ``n`` outcomes used (those after a decision are not);
    ``events`` among them; ``ci`` the always-valid interval of the share; ``p_value`` against "share >= bound"
    (supports the claim), ``refute_p_value`` against "share <= bound"."""

    verdict: str | None
    n: int
    events: int
    ci: tuple[float, float]
    p_value: float
    refute_p_value: float
    bound: float
    alpha: float

    @property
    def share(self) -> float:
        return self.events / self.n if self.n else math.nan


class SequentialShareTest:
    """One always-valid sequential test of "the share of events is below ``bound``" (module docstring: the rule).

    Feed outcomes in the order observed with ``add`` (a batch at a time or one by one: the rule looks after every
    outcome either way); outcomes after the decision are not used. ``decision(exhausted=True)`` at the budget's end
    turns an open test into inconclusive. Everything is updated per outcome added (running maxima of the e-values,
    running intersection of the confidence sequence), so a decision costs the same at any n."""

    def __init__(self, bound: float, alpha: float = 0.05, n_bets: int = 20) -> None:
        self.bound, self.alpha, self.n_bets = check_bound(bound), check_alpha(alpha), int(n_bets)
        if self.n_bets < 1:
            raise StatsInputError(f"n_bets must be >= 1; got {n_bets}")
        self._bets = betting_fractions(self.n_bets)
        self._code, self._n, self._events = CONTINUE, 0, 0
        self._log_below = self._log_above = 0.0  # running maxima of log E (E starts at 1)
        self._lower, self._upper = 0.0, 1.0  # running intersection of the confidence sequence

    @property
    def decided(self) -> bool:
        return self._code != CONTINUE

    def decision_rule(self) -> str:
        return (f"always-valid sequential test of the share (betting e-values, a grid of {self.n_bets} bets, a look "
                f"after every outcome in seed order): supported when the e-value against 'share >= "
                f"{self.bound:g}' reaches 1/alpha = {1 / self.alpha:g}; refuted when the e-value against 'share <= "
                f"{self.bound:g}' does; inconclusive when the episode budget ends first")

    def add(self, outcomes: ArrayLike) -> ShareDecision:
        """Add outcomes (booleans or 0/1, in order) and apply the rule; once decided, more outcomes are ignored."""
        new = as_outcomes(outcomes, "outcomes").astype(int)
        if self.decided or not new.size:
            return self.decision()
        k = self._events + np.cumsum(new)
        steps = self._n + np.arange(1, new.size + 1)
        threshold = math.log(1 / self.alpha)
        below = log_e_below(k, steps, self.bound, self._bets)
        above = log_e_above(k, steps, self.bound, self._bets)
        codes, at = _first_decision((below >= threshold)[None], (above >= threshold)[None])
        used = int(at[0])
        if codes[0] != CONTINUE:
            self._code = int(codes[0])
        k, steps = k[:used], steps[:used]
        self._log_below = max(self._log_below, float(below[:used].max()))
        self._log_above = max(self._log_above, float(above[:used].max()))
        # confidence_bounds bound theta = 2 p - 1 of X = 2 B - 1 (counts: n_pos = k, n_zero = 0, n_neg = n - k).
        zeros = np.zeros(used)
        lower = confidence_bounds(k, zeros, steps - k, self.alpha, self._bets, lower=True).max()
        upper = confidence_bounds(k, zeros, steps - k, self.alpha, self._bets, lower=False).min()
        self._lower = max(self._lower, float((lower + 1) / 2))
        self._upper = min(self._upper, float((upper + 1) / 2))
        self._n, self._events = int(steps[-1]), int(k[-1])
        return self.decision()

    def decision(self, exhausted: bool = False) -> ShareDecision:
        verdict = CODE_NAMES.get(self._code) or ("inconclusive" if exhausted else None)
        return ShareDecision(verdict, self._n, self._events, (self._lower, self._upper),
                             min(1.0, math.exp(-self._log_below)), min(1.0, math.exp(-self._log_above)), self.bound,
                             self.alpha)
