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
