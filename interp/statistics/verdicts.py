"""Verdicts: the decision a test reaches on a claim, with its effect, interval, n and rule."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from numpy.typing import ArrayLike

from interp.statistics.inputs import Direction, StatsInputError, VerdictName, check_alpha, check_direction, float_or_none
from interp.statistics.intervals import PairedCounts, mcnemar_exact, newcombe_paired_interval


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
                "effect": float_or_none(self.effect),
                "ci": [float_or_none(self.ci[0]), float_or_none(self.ci[1])],
                "p_value": float_or_none(self.p_value), "decision_rule": self.decision_rule,
                "discordant": {"baseline_only": int(self.discordant[0]), "treatment_only": int(self.discordant[1])},
                "direction": self.direction, "alpha": float(self.alpha),
                "baseline_rate": float_or_none(self.baseline_rate),
                "treatment_rate": float_or_none(self.treatment_rate),
                "futility_p_value": float_or_none(self.futility_p_value)}

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
    sign = check_direction(direction)
    counts = PairedCounts.from_outcomes(baseline, treatment)
    if counts.n == 0:
        raise StatsInputError("mcnemar_verdict needs at least one pair of episodes")
    test = mcnemar_exact(counts, alternative="greater" if sign > 0 else "less")
    low, high = newcombe_paired_interval(counts, alpha=2 * check_alpha(alpha))  # each end one-sided 1 - alpha
    far_end = high if sign > 0 else -low
    verdict = "supported" if test.p_value <= alpha else ("refuted" if far_end < min_effect else "inconclusive")
    rule = (f"fixed n: supported if exact one-sided McNemar p <= {alpha:g}; refuted if the Newcombe paired "
            f"{1 - alpha:.0%} bound excludes a change of {min_effect:g} in the claimed direction ({direction})")
    return Verdict(claim=claim, verdict=verdict, n=counts.n, effect=counts.difference, ci=(low, high),
                   p_value=test.p_value, decision_rule=rule,
                   discordant=(counts.baseline_only, counts.treatment_only), direction=direction, alpha=alpha,
                   baseline_rate=counts.baseline_rate, treatment_rate=counts.treatment_rate)
