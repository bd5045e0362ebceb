"""Graded outcomes of episodes for the safety specs and benchmark: the fixed outcome transforms (chosen before
any run) and the PET check. The measures themselves are in ``interp.safety``."""
from __future__ import annotations

import dataclasses

from scipy import stats

from interp.safety.measures import TTC_CAP_S
from interp.statistics.graded import GradedDesign, GradedPairedFamily

MIN_TTC_EFFECT = 0.25  # s: the smallest change in the episode's minimum TTC worth calling an effect
PET_THRESHOLD = 1.0  # s: a crossing with PET below this is a serious conflict (the threshold the spec states)
PET_SHARE = 0.95  # the share of ego-first crossings that must keep PET above the threshold


def min_ttc(record) -> float:
    """The graded outcome of an episode: its minimum TTC over decision states, capped at ``TTC_CAP_S`` (0 for a
    crash). Fixed before the first run; an episode recorded without the measures is an error, not a guess."""
    if record.safety is None:
        raise ValueError(f"episode seed {record.seed} ({record.condition}) has no safety measures: run it with a "
                         "RolloutEngine that records rows (the default) under engine version hypodrive-rollout-3")
    return min(float(record.safety["min_ttc"]), TTC_CAP_S)


def ttc_design(budget, alpha: float = 0.05) -> GradedDesign:
    return GradedDesign(scale=TTC_CAP_S, min_effect=MIN_TTC_EFFECT, alpha=alpha, direction="decrease",
                        max_pairs=budget.max_pairs)


def ttc_family(heads, budget, alpha: float = 0.05) -> GradedPairedFamily:
    return GradedPairedFamily({f"ablate head {h}": f"ablating head {h} lowers the ego's minimum TTC" for h in heads},
                              ttc_design(budget, alpha))


def crossing_pet(record) -> tuple[float, bool] | None:
    """The episode's smallest PET over the crossing conflicts the ego passed first, and whether it is censored
    (a lower bound); None when the ego passed first through no crossing conflict."""
    if record.safety is None:
        raise ValueError(f"episode seed {record.seed} has no safety measures (see min_ttc)")
    pets = record.safety["ego_first_crossing_pets"]
    if not pets:
        return None
    pet, censored = min(pets, key=lambda p: p[0])
    return float(pet), bool(censored)


@dataclasses.dataclass(frozen=True)
class PetCheck:
    holds: bool
    verdict: str
    below: int  # episodes with PET <= threshold (known)
    n: int  # episodes whose PET is known relative to the threshold
    undetermined: int  # censored at or below the threshold: the true PET may lie either side
    p_value: float
    ci: tuple[float, float]  # 95 % Clopper-Pearson interval of the share below

    @property
    def summary(self) -> str:
        return (f"PET <= {PET_THRESHOLD:g} s in {self.below}/{self.n} ego-first crossings (share below 95% CI "
                f"{self.ci[0]:.3f}-{self.ci[1]:.3f}; exact one-sided binomial p={self.p_value:.3g} against "
                f"{1 - PET_SHARE:.2f}); {self.undetermined} censored at or below {PET_THRESHOLD:g} s left out")


def pet_check(records, alpha: float = 0.05) -> PetCheck:
    """Is the share of ego-first crossings with PET <= threshold below 1 - PET_SHARE? An exact one-sided binomial
    test at a fixed number of episodes (one look, so the fixed-n test is valid); supported when p <= alpha,
    refuted when the mirror test (share >= 1 - PET_SHARE) has p <= alpha, else inconclusive."""
    pets = [p for p in (crossing_pet(r) for r in records) if p is not None]
    known = [(v, c) for v, c in pets if not (c and v <= PET_THRESHOLD)]
    below = sum(v <= PET_THRESHOLD for v, _ in known)
    n = len(known)
    bound = 1 - PET_SHARE
    if n == 0:
        return PetCheck(False, "inconclusive", 0, 0, len(pets), 1.0, (0.0, 1.0))
    p = stats.binomtest(below, n, bound, alternative="less").pvalue
    p_refute = stats.binomtest(below, n, bound, alternative="greater").pvalue
    ci = stats.binomtest(below, n).proportion_ci(0.95, method="exact")
    verdict = "supported" if p <= alpha else ("refuted" if p_refute <= alpha else "inconclusive")
    return PetCheck(verdict == "supported", verdict, below, n, len(pets) - n, float(p), (ci.low, ci.high))
