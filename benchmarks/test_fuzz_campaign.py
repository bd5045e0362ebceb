"""Guided fuzzing vs uniform random testing: distinct failures per hour, same property, same wall-clock budget.

Guided = hypothesis with ``target()`` on the property's score, each failure shrunk (at most 30 s) and its scene class
then excluded so later rounds look for new classes; random = scenes drawn uniformly from the same scene space, no
target, no shrinking. A distinct failure is a distinct scene class (``specs.fuzzing.scene_class``).

Run (one minute per mode and property by default, ``--fuzz-minutes M`` for M; the agent under test as in the specs):
    python -m pytest benchmarks/test_fuzz_campaign.py --checkpoint checkpoints/reference -s
    python -m pytest benchmarks/test_fuzz_campaign.py -k crossing_first --fuzz-minutes 5 \
        --checkpoint checkpoints/reference-early
The figures land in ``benchmark.extra_info`` (``--benchmark-json OUT.json`` keeps them).
"""
from __future__ import annotations

import pytest

from specs import fuzzing as fz

DEFAULT_SECONDS = 60.0


@pytest.mark.parametrize("name", fz.PROPERTY_NAMES)
def test_guided_vs_random_distinct_failures_per_hour(benchmark, name, agent, scene_builder, request, pytestconfig):
    minutes = float(pytestconfig.getoption("--fuzz-minutes"))
    seconds = minutes * 60 if minutes > 0 else DEFAULT_SECONDS
    head = request.getfixturevalue("crossing_head") if name == "crossing_head_attends_nearest" else None
    prop = fz.make_property(name, head)
    results = {}

    def run() -> None:
        results["guided"] = fz.campaign(prop, agent, scene_builder, seconds, seed=0, shrink_seconds=30.0)
        results["random"] = fz.random_campaign(prop, agent, scene_builder, seconds, seed=0)

    benchmark.group = "fuzz campaign: guided vs random"
    benchmark.pedantic(run, rounds=1, iterations=1)
    guided, uniform = results["guided"], results["random"]
    benchmark.extra_info.update({
        "property": name, "checkpoint": agent.identity, "seconds_per_mode": seconds,
        "guided_distinct_per_hour": round(guided.distinct_per_hour, 1),
        "random_distinct_per_hour": round(uniform.distinct_per_hour, 1),
        "guided_distinct": guided.distinct, "random_distinct": uniform.distinct,
        "guided_seen_per_hour": round(guided.seen_per_hour, 1), "random_seen_per_hour": round(uniform.seen_per_hour, 1),
        "guided_distinct_seen": len(guided.seen), "random_distinct_seen": len(uniform.seen),
        "guided_scenes": guided.evaluations, "random_scenes": uniform.evaluations,
        "guided_failing_scenes": guided.failing_scenes, "random_failing_scenes": uniform.failing_scenes,
        "guided_classes": [f.scene_class for f in guided.failures],
        "random_classes": [f.scene_class for f in uniform.failures],
    })
    print(f"\n{name} on {agent.identity}: guided {guided.distinct} distinct ({guided.distinct_per_hour:.0f}/h, "
          f"{guided.evaluations} scenes) vs random {uniform.distinct} ({uniform.distinct_per_hour:.0f}/h, "
          f"{uniform.evaluations} scenes) in {seconds:g} s each")
    assert guided.seconds >= seconds * 0.9 and uniform.seconds >= seconds * 0.9
