"""Probe throughput on one core: attention + per-head contributions for 10k scenes, IG for 1k scenes, and
the OV-to-action patching of every (head, vehicle) for 1k scenes, on the 4-head reference architecture
(untrained weights: the cost does not depend on the values).

Run: python -m pytest benchmarks/test_probe_throughput.py --benchmark-columns=mean,min,rounds
"""
from __future__ import annotations

import pytest

from interp.probes import attention
from interp.probes import attributions
from interp.probes import circuits
from interp.probes import qk_ov
from interp.simulation.agent import REFERENCE_DIR, untrained_agent
from interp.model.config import load_agent_config, load_env_config
from tests.planted import random_observations


@pytest.fixture(scope="module")
def agent():
    return untrained_agent(load_agent_config(REFERENCE_DIR / "agent_config.json"),
                           load_env_config(REFERENCE_DIR / "env_config.json"), init_seed=0)


def _report(benchmark, scenes: int) -> None:
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update({"scenes": scenes, "scenes_per_s": scenes / mean})
    print(f"\n{benchmark.group}: {scenes / mean:,.0f} scenes/s ({mean:.2f} s for {scenes} scenes)")


def test_attention_and_head_contributions_10k_scenes(benchmark, agent):
    obs = random_observations(10_000, seed=0)
    benchmark.group = "attention + per-head Q contributions, 10k scenes"

    def probe():
        return attention.attention_patterns(agent.model, obs), circuits.head_contributions(agent.model, obs)

    patterns, contributions = benchmark.pedantic(probe, rounds=2, iterations=1)
    assert patterns.pattern.shape == (10_000, 4, 15) and contributions.exact.shape == (10_000, 4, 3)
    _report(benchmark, 10_000)


def test_integrated_gradients_1k_scenes(benchmark, agent):
    obs = random_observations(1_000, seed=1)
    benchmark.group = "integrated gradients (50 steps), 1k scenes"
    result = benchmark.pedantic(attributions.integrated_gradients, args=(agent.model, obs, attributions.QTarget(2)),
                                rounds=2, iterations=1)
    assert result.per_feature.shape == (1_000, 15, 6)
    _report(benchmark, 1_000)


def test_ov_action_effects_1k_scenes(benchmark, agent):
    obs = random_observations(1_000, seed=2)
    benchmark.group = "OV to actions, every (head, vehicle) patched, 1k scenes"
    result = benchmark.pedantic(qk_ov.ov_action_effects, args=(agent.model, obs), rounds=2, iterations=1)
    assert result.patched.shape == (1_000, 4, 15, 3)
    _report(benchmark, 1_000)
