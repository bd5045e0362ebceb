"""Rare failures: how many scenes (and seconds) until a search meets its first failure, guided vs uniform random.

The failing region of a rare planted weakness (``planted.spurious_go``, ``planted.blind_spot``) covers well under
1 % of the scene space,
so random search needs hundreds of scenes; a guided search can get there sooner only by following the property's
score, which the weakness makes rise smoothly towards its region. Three searches over the same ``SceneSpace``,
each capped by a budget of scenes (a campaign that meets no failure within it is *censored*):

* ``random``: scenes drawn uniformly (``SceneSpace.sample``), the baseline;
* ``hypothesis``: hypothesis with ``target()`` on the score (``search.search``), in rounds of ``round_examples``;
* ``evolution``: a score-guided evolutionary search over the *draws* of ``SceneSpace.sample`` (``Genome``): the
  scene space's own sampler reads its numbers from a genome in [0, 1)^D, so a uniform genome is a uniform scene
  and mutating a genome moves its scene a little. It sees only each scene's outcome (in the domain? score?).

None of them knows where the planted region is: this module imports nothing from ``planted``, and
``tests/test_rare_failures.py`` moves the region to another arm and checks that ``evolution`` finds it there.
``Comparison`` summarises campaigns of two searches: medians (censored campaigns count as the budget, a
lower bound: with every censoring at the same budget the Kaplan-Meier median equals that median while fewer than
half are censored), a bootstrap CI for the ratio of medians and a one-sided Mann-Whitney test (scipy).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from fixtures.builder import SceneBuilder
from fixtures.scenario import Scenario
from specs.fuzzing.properties import Property, Subject
from specs.fuzzing.search import Evaluator, OutOfTime, search, search_settings
from specs.fuzzing.space import SceneSpace


# ------------------------------------------------------------------------------------------ the region's share
@dataclasses.dataclass(frozen=True)
class Share:
    """The share of uniformly drawn scenes on which a property fails, with a Clopper-Pearson CI."""

    failing: int
    n: int  # scenes drawn (valid scenarios, in the domain or not)
    applicable: int
    ci: tuple[float, float]
    confidence: float

    @property
    def value(self) -> float:
        return self.failing / self.n

    def to_dict(self) -> dict:
        return {"failing": self.failing, "n": self.n, "applicable": self.applicable, "share": self.value,
                "ci": list(self.ci), "confidence": self.confidence}


def failing_share(prop: Property, subject: Subject, builder: SceneBuilder, n: int, *, seed: int = 0,
                  confidence: float = 0.95, space: SceneSpace | None = None) -> Share:
    """Draw ``n`` scenes uniformly from ``prop``'s space (the random baseline's draws) and count the failures."""
    from scipy.stats import binomtest

    space = space or prop.space(builder)
    rng = np.random.default_rng(seed)
    evaluator = Evaluator(prop, subject, builder, None, None, frozenset(), remember=False)
    failing = 0
    while evaluator.evaluations < n:
        scenario = space.sample(rng)
        if scenario is not None and evaluator.fails(evaluator(scenario)):
            failing += 1
    ci = binomtest(failing, n).proportion_ci(confidence, method="exact")
    return Share(failing, n, evaluator.applicable, (float(ci.low), float(ci.high)), confidence)


# ------------------------------------------------------------------------------------------ genomes
class Genome:
    """Numbers in [0, 1) that ``SceneSpace.sample`` reads in place of a numpy Generator's draws (``uniform``,
    ``integers``, ``permutation``: the calls it makes), so a genome *is* a scene of the space and a uniform genome is
    a uniform scene, with no second description of the space to keep in step. A genome grows with fresh uniform
    numbers when a scene reads past its end (more vehicles than its parent had)."""

    def __init__(self, values: Sequence[float], rng: np.random.Generator):
        self.values, self.rng, self.read = list(values), rng, 0

    def _next(self) -> float:
        if self.read == len(self.values):
            self.values.append(float(self.rng.random()))
        self.read += 1
        return self.values[self.read - 1]

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * self._next()

    def integers(self, low: int, high: int | None = None) -> int:
        low, high = (0, low) if high is None else (low, high)
        return low + min(int(self._next() * (high - low)), high - low - 1)

    def permutation(self, n: int) -> np.ndarray:
        """Fisher-Yates with one number per position: uniform over permutations for a uniform genome."""
        order = np.arange(n)
        for i in range(n - 1):
            j = self.integers(i, n)
            order[i], order[j] = order[j], order[i]
        return order

    def scene(self, space: SceneSpace) -> Scenario | None:
        """The genome's scene (None: not a valid scenario, as ``SceneSpace.sample``); only the numbers read are kept,
        so mutations act on what shapes the scene."""
        self.read = 0
        scenario = space.sample(self)  # type: ignore[arg-type]  (duck-typed Generator)
        del self.values[self.read:]
        return scenario


# ------------------------------------------------------------------------------------------ time to first failure
@dataclasses.dataclass(frozen=True)
class FirstFailure:
    """One campaign: scenes and seconds until the first failing scene, or the whole budget when none failed."""

    mode: str
    seed: int
    scenes: int
    seconds: float
    found: bool
    budget: int
    summary: str = ""

    @property
    def censored(self) -> bool:
        return not self.found

    def to_dict(self) -> dict:
        return {"mode": self.mode, "seed": self.seed, "scenes": self.scenes, "seconds": round(self.seconds, 3),
                "found": self.found, "budget": self.budget, "summary": self.summary}


def _result(mode: str, seed: int, evaluator: Evaluator, budget: int) -> FirstFailure:
    found = evaluator.first_failure_scenes is not None
    return FirstFailure(mode, seed, evaluator.first_failure_scenes if found else evaluator.evaluations,
                        evaluator.first_failure_at if found else time.monotonic() - evaluator.started, found, budget,
                        evaluator.last_failure.outcome.summary if found and evaluator.last_failure else "")


def random_first_failure(prop: Property, subject: Subject, builder: SceneBuilder, *, seed: int, budget: int,
                         space: SceneSpace | None = None) -> FirstFailure:
    """Uniform draws (the baseline of ``campaigns.random_campaign``) until the first failure or ``budget`` scenes."""
    space = space or prop.space(builder)
    rng = np.random.default_rng(seed)
    evaluator = Evaluator(prop, subject, builder, None, None, frozenset(), remember=False, max_scenes=budget)
    try:
        while True:
            scenario = space.sample(rng)
            if scenario is None:
                continue
            outcome = evaluator(scenario)
            if evaluator.fails(outcome):
                evaluator.record_failure(scenario, outcome)
                break
    except OutOfTime:
        pass
    return _result("random", seed, evaluator, budget)


def hypothesis_first_failure(prop: Property, subject: Subject, builder: SceneBuilder, *, seed: int, budget: int,
                             round_examples: int = 200, space: SceneSpace | None = None) -> FirstFailure:
    """``search.search`` with ``target()`` on the score, no shrinking, in rounds of ``round_examples`` examples (a
    fresh hypothesis seed each, as ``campaigns.campaign``) until the first failure or ``budget`` scenes in all.
    Hypothesis starts its target phase halfway through a round below 1000 examples, after 200 valid ones above."""
    space = space or prop.space(builder)
    rng = np.random.default_rng(seed)
    scenes, seconds = 0, 0.0
    while scenes < budget:
        result = search(prop, subject, builder, seed=int(rng.integers(2**31)), space=space,
                        max_scenes=budget - scenes,
                        config=search_settings(round_examples, shrink=False, derandomize=False, database=None))
        if result.first_failure_scenes is not None:
            return FirstFailure("hypothesis", seed, scenes + result.first_failure_scenes,
                                seconds + result.first_failure_s, True, budget,
                                result.failure.outcome.summary if result.failure else "")
        scenes, seconds = scenes + result.evaluations, seconds + result.seconds
        if result.evaluations == 0:
            break  # nothing generated at all: no point in another round
    return FirstFailure("hypothesis", seed, scenes, seconds, False, budget)


@dataclasses.dataclass(frozen=True)
class Evolution:
    """A score-guided evolutionary search over genomes: a (mu + 1) steady state with uniform immigrants and a
    self-adapting step (the 1/5th success rule of evolution strategies).

    Hand-written rather than scipy's global optimisers: those need a population of at least the dimension (here
    ~50 numbers, most of them placing cars that do not matter) before their first step, i.e. hundreds of scenes,
    and have no notion of "out of the property's domain"; the budget here is tens of scenes. sklearn and cma are
    not installed. Each step: for the first ``initial`` scenes and with probability ``immigrants`` a uniform
    genome; otherwise a parent (the best scene so far with probability ``greedy``, else a tournament of
    ``tournament`` among the ``elite`` best) gets Gaussian noise of scale ``step`` on every number (reflected into
    [0, 1)), and with probability ``jump`` one number redrawn (a jump: another route, another count of cars). A
    child better than its parent widens ``step`` by ``grow``, a worse one narrows it by ``grow ** -1/4`` (so the
    step settles where about 1 child in 5 improves). Scenes out of the domain have no score and never become
    parents. ``niches``: the elite is the best scene of each of the best scene classes instead of the best scenes
    (diversity by coverage of classes: without it the elite filled with copies of one hill that does not fail).
    The defaults were chosen on seeds 100-109 of the rare planted case (docs/results/benchmarks.md, *Rare failures*)."""

    initial: int = 20
    elite: int = 8
    tournament: int = 3
    immigrants: float = 0.1
    greedy: float = 0.25
    step: float = 0.05
    step_range: tuple[float, float] = (0.005, 0.3)
    grow: float = 1.5
    jump: float = 0.2
    niches: bool = True
    patience: int | None = None  # a restart (elite forgotten, ``initial`` uniform scenes again) after this many
    # scenes without a new best score

    def mutate(self, parent: Sequence[float], step: float, rng: np.random.Generator) -> list[float]:
        child = np.asarray(parent, dtype=float) + rng.normal(0.0, step, size=len(parent))
        if len(child) and rng.random() < self.jump:
            child[rng.integers(len(child))] = rng.random()
        child = np.abs(child)  # reflect at 0 ...
        child = np.where(child >= 1.0, 2.0 - child, child)  # ... and at 1
        return np.clip(child, 0.0, np.nextafter(1.0, 0.0)).tolist()

    def adapted(self, step: float, improved: bool) -> float:
        step *= self.grow if improved else self.grow ** -0.25
        return float(np.clip(step, *self.step_range))


def evolution_first_failure(prop: Property, subject: Subject, builder: SceneBuilder, *, seed: int, budget: int,
                            evolution: Evolution = Evolution(), space: SceneSpace | None = None) -> FirstFailure:
    """``Evolution`` until the first failure or ``budget`` scenes; it sees only each scene's outcome."""
    space = space or prop.space(builder)
    rng = np.random.default_rng(seed)
    # remember: a mutation of numbers the scene does not read gives the parent's scene again, not a new evaluation
    evaluator = Evaluator(prop, subject, builder, None, None, frozenset(), remember=True, max_scenes=budget)
    best: dict[str, tuple[float, list[float]]] = {}  # niche -> (score, genome) of its best scene so far
    step, started, best_at, best_score = evolution.step, 0, 0, -math.inf
    try:
        while True:
            if evolution.patience is not None and evaluator.evaluations - max(best_at, started) > evolution.patience:
                best.clear()  # a restart: stuck on a hill that does not fail
                step, started, best_score = evolution.step, evaluator.evaluations, -math.inf
            parent_score = None
            if (evaluator.evaluations - started < evolution.initial or not best
                    or rng.random() < evolution.immigrants):
                genome = Genome([], rng)
            else:
                pool = sorted(best.values(), key=lambda entry: -entry[0])[:evolution.elite]
                if rng.random() < evolution.greedy:
                    pick = 0
                else:
                    pick = int(min(rng.choice(len(pool), size=min(evolution.tournament, len(pool)), replace=False)))
                parent_score, parent = pool[pick]
                genome = Genome(evolution.mutate(parent, step, rng), rng)
            scenario = genome.scene(space)
            if scenario is None:
                continue
            before = evaluator.evaluations
            outcome = evaluator(scenario)
            if evaluator.fails(outcome):
                evaluator.record_failure(scenario, outcome)
                break
            if evaluator.evaluations == before:
                continue  # the parent's scene again (only unread numbers moved)
            scored = outcome.applicable and math.isfinite(outcome.score)
            if parent_score is not None:
                step = evolution.adapted(step, scored and outcome.score > parent_score)
            if scored and outcome.score > best_score:
                best_score, best_at = outcome.score, evaluator.evaluations
            if scored:
                niche = outcome.scene_class if evolution.niches else scenario.content_hash()
                kept = best.get(niche)
                if kept is None or outcome.score > kept[0]:
                    best[niche] = (outcome.score, genome.values)
    except OutOfTime:
        pass
    return _result("evolution", seed, evaluator, budget)


SEARCHES: dict[str, Callable[..., FirstFailure]] = {
    "random": random_first_failure,
    "hypothesis": hypothesis_first_failure,
    "evolution": evolution_first_failure,
}


def campaigns(mode: str, prop: Property, subject: Subject, builder: SceneBuilder, *, seeds: Sequence[int],
              budget: int, **options) -> tuple[FirstFailure, ...]:
    """One first-failure campaign per seed with the search ``mode`` (a key of ``SEARCHES``)."""
    space = prop.space(builder)
    return tuple(SEARCHES[mode](prop, subject, builder, seed=seed, budget=budget, space=space, **options)
                 for seed in seeds)


# ------------------------------------------------------------------------------------------ comparison
@dataclasses.dataclass(frozen=True)
class Comparison:
    """Guided vs baseline campaigns: medians, the ratio baseline / guided with a bootstrap CI, and the one-sided
    Mann-Whitney p-value for "guided needs fewer", per measure ("scenes" or "seconds"). Censored campaigns count
    as their budget (scenes) or run time (seconds): lower bounds, so a censored baseline can only understate the
    ratio, a censored guided campaign only overstate guided's median."""

    guided: tuple[FirstFailure, ...]
    baseline: tuple[FirstFailure, ...]
    confidence: float = 0.95
    resamples: int = 9999
    seed: int = 0

    def values(self, which: str, measure: str) -> np.ndarray:
        runs = self.guided if which == "guided" else self.baseline
        return np.array([getattr(r, measure) for r in runs], dtype=float)

    def median(self, which: str, measure: str = "scenes") -> float:
        return float(np.median(self.values(which, measure)))

    def censored(self, which: str) -> int:
        return sum(r.censored for r in (self.guided if which == "guided" else self.baseline))

    def median_is_lower_bound(self, which: str) -> bool:
        """At least half censored: the median is only known to be at least the budget."""
        runs = self.guided if which == "guided" else self.baseline
        return 2 * self.censored(which) >= len(runs)

    def ratio(self, measure: str = "scenes") -> float:
        return self.median("baseline", measure) / self.median("guided", measure)

    def ratio_ci(self, measure: str = "scenes") -> tuple[float, float]:
        """Percentile bootstrap (scipy.stats.bootstrap, each group resampled on its own)."""
        from scipy.stats import bootstrap

        def statistic(baseline, guided, axis=-1):
            return np.median(baseline, axis=axis) / np.median(guided, axis=axis)

        result = bootstrap((self.values("baseline", measure), self.values("guided", measure)), statistic,
                           n_resamples=self.resamples, confidence_level=self.confidence, method="percentile",
                           vectorized=True, rng=np.random.default_rng(self.seed))
        return float(result.confidence_interval.low), float(result.confidence_interval.high)

    def p_value(self, measure: str = "scenes") -> float:
        """One-sided Mann-Whitney U: the baseline needs more than guided (scipy picks exact or asymptotic)."""
        from scipy.stats import mannwhitneyu

        return float(mannwhitneyu(self.values("baseline", measure), self.values("guided", measure),
                                  alternative="greater").pvalue)

    def summary(self) -> dict:
        out: dict = {"n_guided": len(self.guided), "n_baseline": len(self.baseline),
                     "guided_mode": self.guided[0].mode if self.guided else "",
                     "baseline_mode": self.baseline[0].mode if self.baseline else "",
                     "censored_guided": self.censored("guided"), "censored_baseline": self.censored("baseline")}
        for measure in ("scenes", "seconds"):
            low, high = self.ratio_ci(measure)
            out[measure] = {"median_guided": self.median("guided", measure),
                            "median_baseline": self.median("baseline", measure),
                            "ratio": self.ratio(measure), "ratio_ci": [low, high],
                            "p_mann_whitney": self.p_value(measure)}
        return out
