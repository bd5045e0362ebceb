"""The always-valid sequential paired test: e-values on paired differences (hand-written: no library has
them), the design, the decision step, and the family of treatments decided together with Holm at every look."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from interp.statistics.inputs import CODE_NAMES, CONTINUE, Direction, INCONCLUSIVE, REFUTED, SUPPORTED, StatsInputError, VerdictName, as_outcomes, check_alpha, check_direction, paired_outcomes
from interp.statistics.intervals import PairedCounts, holm_adjusted
from interp.statistics.verdicts import Verdict


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

def betting_fractions(n_bets: int) -> np.ndarray:
    return (np.arange(n_bets) + 0.5) / n_bets


def log_e_value_up(n_pos: ArrayLike, n_zero: ArrayLike, n_neg: ArrayLike, delta: ArrayLike, bets: np.ndarray) -> np.ndarray:
    """log E_up(delta): evidence that theta > delta (counts and delta broadcast together)."""
    g, delta = bets, np.asarray(delta, float)[..., None]
    terms = (np.asarray(n_pos, float)[..., None] * np.log1p(g * (1 - delta) / (1 + delta))
             + np.asarray(n_zero, float)[..., None] * np.log1p(-g * delta / (1 + delta))
             + np.asarray(n_neg, float)[..., None] * np.log1p(-g))
    return logsumexp(terms, axis=-1) - math.log(g.size)


def log_e_value_down(n_pos: ArrayLike, n_zero: ArrayLike, n_neg: ArrayLike, delta: ArrayLike,
                bets: np.ndarray) -> np.ndarray:
    """log E_down(delta): evidence that theta < delta (counts and delta broadcast together)."""
    g, delta = bets, np.asarray(delta, float)[..., None]
    terms = (np.asarray(n_pos, float)[..., None] * np.log1p(-g)
             + np.asarray(n_zero, float)[..., None] * np.log1p(g * delta / (1 - delta))
             + np.asarray(n_neg, float)[..., None] * np.log1p(g * (1 + delta) / (1 - delta)))
    return logsumexp(terms, axis=-1) - math.log(g.size)


def confidence_bounds(n_pos: np.ndarray, n_zero: np.ndarray, n_neg: np.ndarray, alpha: float, bets: np.ndarray,
                       *, lower: bool, iterations: int = 40) -> np.ndarray:
    """Always-valid one-sided 1 - alpha bounds on theta, one per set of counts (vectorised bisection; E_up
    falls and E_down rises with delta): lower = sup{delta: E_up(delta) >= 1/alpha} (-1 if none),
    upper = inf{delta: E_down(delta) >= 1/alpha} (+1 if none). Accurate to 2 / 2**iterations."""
    threshold = math.log(1 / alpha)
    n_pos, n_zero, n_neg = (np.asarray(a, float) for a in (n_pos, n_zero, n_neg))

    def rejected(delta: np.ndarray) -> np.ndarray:
        if lower:
            return log_e_value_up(n_pos, n_zero, n_neg, delta, bets) >= threshold
        return log_e_value_down(n_pos, n_zero, n_neg, delta, bets) >= threshold

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


class PairedSettings:
    """What every sequential paired design shares (this one on event rates, ``interp.statistics.graded``'s on
    graded outcomes): the checks of its common settings, the sign of its direction and the futility level."""

    alpha: float
    direction: Direction
    max_pairs: int
    futility_alpha: float | None
    n_bets: int

    def check_settings(self) -> None:
        check_alpha(self.alpha)
        check_direction(self.direction)
        if self.futility_alpha is not None:
            check_alpha(self.futility_alpha, "futility_alpha")
        if int(self.max_pairs) != self.max_pairs or self.max_pairs < 1:
            raise StatsInputError(f"max_pairs must be a positive integer (the budget of paired episodes); "
                                  f"got {self.max_pairs}")
        if self.n_bets < 1:
            raise StatsInputError(f"n_bets must be >= 1; got {self.n_bets}")

    @property
    def sign(self) -> int:
        return check_direction(self.direction)

    @property
    def refute_alpha(self) -> float:
        return self.alpha if self.futility_alpha is None else self.futility_alpha


@dataclasses.dataclass(frozen=True)
class SequentialDesign(PairedSettings):
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
        self.check_settings()
        if not 0.0 < self.min_effect < 1.0:
            raise StatsInputError(f"min_effect is a difference of rates in (0, 1) (e.g. 0.05 = 5 points); "
                                  f"got {self.min_effect}")

    @property
    def bets(self) -> np.ndarray:
        return betting_fractions(self.n_bets)

    def decision_rule(self, n_hypotheses: int = 1) -> str:
        """The decision rule in one line, for reports."""
        holm_note = f", Holm over {n_hypotheses}" if n_hypotheses > 1 else ""
        verb = "raise" if self.direction == "increase" else "lower"
        return (f"sequential paired (mixture SPRT on discordant pairs, a look per batch{holm_note}): supported if "
                f"always-valid p <= {self.alpha:g} against 'does not {verb} the rate'; refuted if always-valid p "
                f"<= {self.refute_alpha:g} against '{verb}s it by >= {self.min_effect:g}'; inconclusive at "
                f"{self.max_pairs} pairs")


def settle(codes: np.ndarray, p_support: np.ndarray, p_futility: np.ndarray, n_pairs: int | np.ndarray,
            design: SequentialDesign, adjust: bool) -> np.ndarray:
    """One look of the decision rule over hypotheses on the last axis (any leading run axes).

    Settled hypotheses keep their code (and the caller keeps their p-values frozen, still counted by Holm).
    Among the open ones: supported if the (Holm-adjusted) support p <= alpha; else refuted if the
    (Holm-adjusted) futility p <= futility alpha; else inconclusive once ``n_pairs >= max_pairs``.
    """
    if adjust and p_support.shape[-1] > 1:
        p_support, p_futility = holm_adjusted(p_support), holm_adjusted(p_futility)
    open_ = codes == CONTINUE
    supported = open_ & (p_support <= design.alpha)
    refuted = open_ & ~supported & (p_futility <= design.refute_alpha)
    exhausted = open_ & ~supported & ~refuted & (np.asarray(n_pairs) >= design.max_pairs)
    out = codes.copy()
    out[supported], out[refuted], out[exhausted] = SUPPORTED, REFUTED, INCONCLUSIVE
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


class PairedEvidence:
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
        self.log_e_support = max(self.log_e_support, float(log_e_value_up(n_pos, n_zero, n_neg, 0.0, bets)))
        self.log_e_futility = max(self.log_e_futility, float(log_e_value_down(n_pos, n_zero, n_neg, d.min_effect, bets)))
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
        lower = float(confidence_bounds(*counts, self.design.alpha, self.design.bets, lower=True).max())
        upper = float(confidence_bounds(*counts, self.design.refute_alpha, self.design.bets, lower=False).min())
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
        self._evidence = {name: PairedEvidence(self.design) for name in self.names}
        self._codes = np.full(len(self.names), CONTINUE)
        self._n = np.zeros(len(self.names), dtype=int)

    @property
    def active(self) -> tuple[str, ...]:
        """Hypotheses that still need episodes."""
        return tuple(name for name, code in zip(self.names, self._codes) if code == CONTINUE)

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
        base = as_outcomes(baseline, "baseline")
        room = self.design.max_pairs - int(self._n[self.names.index(active[0])])
        used = min(room, base.size)
        for name in active:
            _, treat = paired_outcomes(base, treatments[name])
            self._evidence[name].add(base[:used], treat[:used])
            self._n[self.names.index(name)] += used
        p_s = np.array([self._evidence[name].p_support for name in self.names])
        p_f = np.array([self._evidence[name].p_futility for name in self.names])
        self._codes = settle(self._codes, p_s, p_f, self._n, self.design, adjust=True)
        return {name: self._decision(i, used) for i, name in enumerate(self.names) if name in active}

    def _adjusted(self) -> tuple[np.ndarray, np.ndarray]:
        p_s = np.array([self._evidence[name].p_support for name in self.names])
        p_f = np.array([self._evidence[name].p_futility for name in self.names])
        return (holm_adjusted(p_s), holm_adjusted(p_f)) if len(self.names) > 1 else (p_s, p_f)

    def _decision(self, i: int, used: int) -> Decision:
        p_s, p_f = self._adjusted()
        code = int(self._codes[i])
        return Decision(stop=code != CONTINUE, verdict=CODE_NAMES.get(code), n=int(self._n[i]), n_used=used,
                        p_value=float(p_s[i]), futility_p_value=float(p_f[i]))

    def verdicts(self) -> dict[str, Verdict]:
        """A verdict per hypothesis. One still open (the caller stopped before ``max_pairs``) is inconclusive,
        and its decision rule says the budget was cut short."""
        p_s, p_f = self._adjusted()
        out = {}
        for i, name in enumerate(self.names):
            ev, code = self._evidence[name], int(self._codes[i])
            rule = self.design.decision_rule(len(self.names))
            if code == CONTINUE:
                rule += f" (stopped by the caller at {int(self._n[i])} pairs, before max_pairs)"
            c = ev.counts
            out[name] = Verdict(claim=self.claims[name], verdict=CODE_NAMES.get(code, "inconclusive"),
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
