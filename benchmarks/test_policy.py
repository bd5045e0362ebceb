"""What one row per forward pass costs (``interp.model.policy``): a greedy decision for 8 observations one at a
time vs the old batched forward of 8 rows, against one simulator step. On one core, reference architecture.

Run: python -m pytest benchmarks/test_policy.py --benchmark-only -s
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.model import policy
from interp.simulation.agent import REFERENCE_DIR, load_agent
from interp.simulation.env import make_env
from tests.planted import random_observations

ROWS = 8


@pytest.fixture(scope="module")
def agent():
    torch.set_num_threads(1)
    return load_agent(REFERENCE_DIR)


@pytest.fixture(scope="module")
def obs():
    return np.asarray(random_observations(ROWS, seed=0), np.float32)


def test_decide_one_row_at_a_time(benchmark, agent, obs):
    benchmark.group = "greedy decisions for 8 observations"
    decisions = benchmark(policy.decide, agent.model, obs)
    assert decisions.actions.shape == (ROWS,)
    benchmark.extra_info["us_per_row"] = benchmark.stats.stats.mean / ROWS * 1e6
    print(f"\none row at a time: {benchmark.stats.stats.mean / ROWS * 1e6:.0f} us per row")


def test_batched_forward_for_comparison(benchmark, agent, obs):
    benchmark.group = "greedy decisions for 8 observations"
    x = torch.from_numpy(obs)

    def batched():
        with torch.no_grad():
            return agent.model(x).argmax(1)

    assert benchmark(batched).shape == (ROWS,)
    benchmark.extra_info["us_per_row"] = benchmark.stats.stats.mean / ROWS * 1e6
    print(f"\none batch of 8: {benchmark.stats.stats.mean / ROWS * 1e6:.0f} us per row")


def test_one_fast_simulator_step_for_scale(benchmark, agent):
    benchmark.group = "one simulator step (fast path)"
    env = make_env(agent.env_config, fast_sim=True)
    env.reset(seed=0)

    def step():
        _, _, terminated, truncated, _ = env.step(1)
        if terminated or truncated:
            env.reset(seed=0)

    benchmark.pedantic(step, rounds=60, iterations=1)
    print(f"\none fast simulator step: {benchmark.stats.stats.mean * 1e3:.1f} ms")
