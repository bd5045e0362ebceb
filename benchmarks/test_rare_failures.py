"""Time to the first failure on rare planted weaknesses: guided search vs uniform random over the same scene space.

Per case, campaigns on fresh seeds (1000, 1001, ...; the searches were tuned on seeds 0-5 and 100-109), each capped at
``BUDGET`` scenes (a campaign that meets no failure is censored and counts as the budget, a lower bound):

* ``random``: uniform draws (``SceneSpace.sample``);
* ``hypothesis``: hypothesis with ``target()`` on the keep-speed margin, rounds of 200 examples, no shrinking;
* ``evolution``: the score-guided evolutionary search of ``specs.fuzzing.rare`` (``Evolution()`` defaults).

Cases (the crossing-first property; tests/planted.py's network made cautious, which never fails it unedited):

* ``rare``: ``planted.spurious_go``, a "go" cue for cars on the right arm 22-23 m from the centre at 6.9-7.1 m/s,
  fading smoothly (its share of the space is measured here: 0.08 %, 95 % CI 0.05-0.13 %, on 20,000 draws);
* ``masked``: ``planted.blind_spot``, the same region misjudged as 100 m farther: the agent fails only if no other
  car is near, so other cars hide the score's slope;
* ``frequent``: ``ignoring_approach(..., "right")``, blind to the whole right arm (the control: failures are
  frequent, random finds one in a few scenes).

Run (about 6 minutes on a shared core; 50 + 50 + 10 campaigns per case):
    python -m pytest benchmarks/test_rare_failures.py -s -p no:randomly --benchmark-json rare.json
The figures land in ``benchmark.extra_info`` and are printed as the rows of the table in docs/results/benchmarks.md.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from fixtures.builder import SceneBuilder
from specs import fuzzing as fz
from specs.fuzzing import planted as planted_weaknesses
from specs.fuzzing import rare
from tests import planted

BUDGET = 5000  # scenes per campaign
CAMPAIGNS = {"random": 50, "evolution": 50, "hypothesis": 10}
SEEDS_FROM = 1000
SHARE_DRAWS = 20000


@pytest.fixture(scope="module")
def builder():
    b = SceneBuilder(json.loads(planted.ENV_CONFIG_PATH.read_text()))
    yield b
    b.close()


def _subject(case: str, builder):
    cautious = planted.cautious_agent()
    if case == "rare":
        return planted_weaknesses.spurious_go(cautious, builder)
    if case == "masked":
        return planted_weaknesses.blind_spot(cautious, builder)
    return fz.ignoring_approach(cautious, "right", builder)


def _row(case: str, share: rare.Share, comparison: rare.Comparison) -> str:
    s, t = comparison.summary()["scenes"], comparison.summary()["seconds"]
    bound = lambda which: ">= " if comparison.median_is_lower_bound(which) else ""  # noqa: E731
    return (f"| {case} ({100 * share.value:.2f} %, CI {100 * share.ci[0]:.2f}-{100 * share.ci[1]:.2f}) "
            f"| {comparison.guided[0].mode} | {len(comparison.guided)} vs {len(comparison.baseline)} "
            f"| {bound('guided')}{s['median_guided']:g} vs {bound('baseline')}{s['median_baseline']:g} "
            f"| {t['median_guided']:.2f} vs {t['median_baseline']:.2f} "
            f"| {s['ratio']:.2f} ({s['ratio_ci'][0]:.2f}-{s['ratio_ci'][1]:.2f}) "
            f"| {t['ratio']:.2f} ({t['ratio_ci'][0]:.2f}-{t['ratio_ci'][1]:.2f}) "
            f"| {s['p_mann_whitney']:.2g} | {comparison.censored('guided')} / {comparison.censored('baseline')} |")


@pytest.mark.parametrize("case", ["rare", "masked", "frequent"])
def test_time_to_first_failure_guided_vs_random(benchmark, case, builder):
    prop = fz.CrossingFirstSlows()
    subject = _subject(case, builder)
    results: dict = {}

    def run() -> None:
        started = time.monotonic()
        results["share"] = rare.failing_share(prop, subject, builder, SHARE_DRAWS if case != "frequent" else 2000,
                                              seed=SEEDS_FROM)
        results["share_s"] = time.monotonic() - started
        for mode, n in CAMPAIGNS.items():
            results[mode] = rare.campaigns(mode, prop, subject, builder, budget=BUDGET,
                                           seeds=range(SEEDS_FROM, SEEDS_FROM + n))

    benchmark.group = "rare failures: time to first failure"
    benchmark.pedantic(run, rounds=1, iterations=1)
    share: rare.Share = results["share"]
    comparisons = {mode: rare.Comparison(results[mode], results["random"]) for mode in ("evolution", "hypothesis")}
    benchmark.extra_info.update({
        "case": case, "subject": subject.source, "budget": BUDGET, "share": share.to_dict(),
        "comparisons": {mode: c.summary() for mode, c in comparisons.items()},
        "runs": {mode: [r.to_dict() for r in results[mode]] for mode in CAMPAIGNS},
    })
    print(f"\n{case}: {subject.source}\nshare {share.failing}/{share.n} = {100 * share.value:.3f} % "
          f"(95 % CI {100 * share.ci[0]:.3f}-{100 * share.ci[1]:.3f} %), {share.applicable} in the domain")
    for mode in CAMPAIGNS:
        print(f"{mode}: scenes {sorted(r.scenes for r in results[mode])}")
    for comparison in comparisons.values():
        print(_row(case, share, comparison))
    assert all(len(results[mode]) == n for mode, n in CAMPAIGNS.items())
    assert np.isfinite(comparisons["evolution"].ratio())
