"""Scenes per second from SceneBuilder, next to the cost of an env.reset() (goal: >= 200 scenes/s on one core).

Run: python -m pytest benchmarks/test_scene_build.py --benchmark-columns=mean,ops
"""
import json
from pathlib import Path

import pytest

from fixtures.builder import SceneBuilder
from fixtures.canonical import CANONICAL

ROOT = Path(__file__).resolve().parent.parent
CONFIG = json.loads((ROOT / "checkpoints/reference/env_config.json").read_text())


@pytest.fixture(scope="module")
def builders():
    made = {"fast": SceneBuilder(CONFIG), "env": SceneBuilder(CONFIG, observation="env"),
            "no_snapshot": SceneBuilder(CONFIG, snapshot=False)}
    yield made
    for b in made.values():
        b.close()


@pytest.mark.parametrize("scenario", ["crossing_left_near", "dense"])
@pytest.mark.parametrize("path", ["fast", "env", "no_snapshot"])
def test_build_scene(benchmark, builders, path, scenario):
    benchmark.group = f"scene build: {scenario}"
    benchmark(builders[path].build, CANONICAL[scenario])


def test_env_reset(benchmark, builders):
    benchmark.group = "env.reset() for scale"
    env = builders["fast"].env
    seeds = iter(range(10**6))
    benchmark(lambda: env.reset(seed=next(seeds)))


@pytest.mark.parametrize("fast_sim", [False, True], ids=["plain", "fast"])
def test_branch_six_steps(benchmark, fast_sim):
    """A fuzz branch: build a dense scene and roll it 6 policy steps (the avoidable-collision property's unit of
    work), on the plain and on the fast simulator (identical results: tests/test_builder_fast_sim.py)."""
    from fixtures.branching import branch

    builder = SceneBuilder(CONFIG, fast_sim=fast_sim)
    benchmark.group = "build + branch 6 steps (dense)"

    def work():
        return branch(builder.build(CANONICAL["dense"]), lambda obs: 1, 6)

    benchmark.pedantic(work, rounds=15, iterations=1)
    print(f"\n{'fast' if fast_sim else 'plain'}: {benchmark.stats.stats.mean * 1e3:.0f} ms per build + 6-step branch")
    builder.close()
