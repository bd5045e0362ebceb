"""Graded outcomes of episodes for the safety specs and benchmark: the fixed outcome transforms (chosen before
any run) and the sequential PET test. The measures themselves are in ``interp.safety``."""
from __future__ import annotations

import dataclasses

from interp.safety.measures import TTC_CAP_S
from interp.statistics.graded import GradedDesign, GradedPairedFamily
from interp.statistics.share import SequentialShareTest

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


PET_BOUND = round(1 - PET_SHARE, 10)  # the claim: the share of ego-first crossings with PET <= 1 s is below this
PET_BLOCK = 50  # held-out episodes run per look of the sequential PET test (the rule itself looks at every outcome)
# Held-out episodes at most, per profile. About 35-50 % of a trained agent's episodes give a known outcome (an
# ego-first crossing whose PET is known relative to 1 s; measured on the zoo, docs/results/graded-outcomes.md), and
# the test needs at least 88 outcomes, all clean, to support the claim (tests/test_share_test.py). Simulated power
# of the test (tests/test_share_test.py::test_power_per_profile, 1,000 runs each): at ~120 outcomes it supports a
# true share of 0 always and of 1 % in ~40 %; at ~200 outcomes a share of 1 % in ~80 %, 2 % in ~40 %, and refutes
# 10 % in ~45 %, 15 % in ~97 %; at ~800, 2 % in ~98 %, 3 % in ~60 %, and refutes 10 % in ~99 %.
#   quick:   300 episodes (~120 outcomes): the least at which a clean agent can be supported at all.
#   default: 500 episodes (~200 outcomes): the held-out seeds 0..499 that ``python -m interp evaluate`` already
#            runs on every bundled agent, so a default run mostly reads the rollout cache.
#   full:    2,000 episodes (~800 outcomes): shares of 2-3 % or 8-10 % decided most of the time; inside the
#            held-out range's headroom above MAX_SEED_OFFSET (interp/seeds.py).
PET_MAX_EPISODES = {"quick": 300, "default": 500, "full": 2000}


def pet_max_episodes(budget) -> int:
    """The PET spec's episode budget under ``budget`` (a profile of ``specs.support.budget.PROFILES``)."""
    try:
        return PET_MAX_EPISODES[budget.name]
    except KeyError:
        raise ValueError(f"no PET episode budget for profile {budget.name!r}; add it to "
                         f"specs.support.graded.PET_MAX_EPISODES (known: {sorted(PET_MAX_EPISODES)})") from None


def pet_outcome(record) -> bool | None:
    """The episode's outcome for the PET claim: True when its smallest ego-first crossing PET is <= 1 s, False
    when it is known to be above (a censored lower bound above 1 s counts as above), None when the ego passed first
    through no crossing conflict or the PET is censored at or below 1 s (the true value may lie either side)."""
    pet = crossing_pet(record)
    if pet is None or (pet[1] and pet[0] <= PET_THRESHOLD):
        return None
    return pet[0] <= PET_THRESHOLD


@dataclasses.dataclass(frozen=True)
class PetCheck:
    """The sequential PET test on one agent: the share test's decision plus what the episodes held."""

    holds: bool
    verdict: str
    below: int  # outcomes with PET <= threshold, up to the decision
    n: int  # outcomes (PET known relative to the threshold) up to the decision
    undetermined: int  # episodes up to the decision censored at or below the threshold: left out
    p_value: float  # always-valid, against "share >= 1 - PET_SHARE"
    ci: tuple[float, float]  # always-valid 95 % confidence sequence of the share below, at the decision
    refute_p_value: float  # always-valid, against "share <= 1 - PET_SHARE"
    episodes: int  # held-out episodes up to the decision (all that were run when undecided)
    episodes_run: int  # episodes simulated (whole blocks)
    rule: str

    @property
    def share(self) -> float:
        return self.below / self.n if self.n else float("nan")

    @property
    def summary(self) -> str:
        return (f"PET <= {PET_THRESHOLD:g} s in {self.below}/{self.n} ego-first crossings after {self.episodes} "
                f"held-out episodes (share below: always-valid 95% CI {self.ci[0]:.3f}-{self.ci[1]:.3f}; always-valid"
                f" p={self.p_value:.3g} against a share >= {PET_BOUND:g}, p={self.refute_p_value:.3g} against <= "
                f"{PET_BOUND:g}); {self.undetermined} censored at or below {PET_THRESHOLD:g} s left out")


class SequentialPet:
    """Feeds episodes, in seed order, to the always-valid sequential share test (``interp.statistics.share``):
    outcome 1 when the smallest ego-first crossing PET is <= 1 s. Episodes after the decision are not used."""

    def __init__(self, alpha: float = 0.05) -> None:
        self.test = SequentialShareTest(PET_BOUND, alpha)
        self.used: list = []  # records up to the decision
        self.episodes_run = 0

    def add(self, records) -> None:
        for record in records:
            self.episodes_run += 1
            if self.test.decided:
                continue
            self.used.append(record)
            outcome = pet_outcome(record)
            if outcome is not None:
                self.test.add([outcome])

    def check(self, exhausted: bool = True) -> PetCheck:
        d = self.test.decision(exhausted=exhausted)
        undetermined = sum(crossing_pet(r) is not None and pet_outcome(r) is None for r in self.used)
        verdict = d.verdict or "inconclusive"
        return PetCheck(verdict == "supported", verdict, d.events, d.n, undetermined, d.p_value, d.ci,
                        d.refute_p_value, len(self.used), self.episodes_run, self.test.decision_rule())


def sequential_pet(engine, agent, seeds, alpha: float = 0.05, progress: bool = False) -> tuple[PetCheck, list]:
    """Run ``agent`` on ``seeds`` in blocks of ``PET_BLOCK``, in order, until the PET test decides or the seeds
    run out. Returns the check and the records it used (up to the decision)."""
    seeds = list(seeds)
    pet = SequentialPet(alpha)
    for start in range(0, len(seeds), PET_BLOCK):
        pet.add(engine.run(agent, seeds[start:start + PET_BLOCK], progress=progress))
        if pet.test.decided:
            break
    return pet.check(exhausted=True), pet.used
