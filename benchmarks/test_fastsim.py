"""Agent steps per second on intersection-v0 with and without ``interp.simulation.fastsim``, side by side in one process.

Both envs (reference env config) run the same seeded episodes under the same greedy agent (the bundled
reference agent if it exists, else the untrained control network; batch-1 forward, one torch thread), on
one core, interleaved episode by episode (plain, fast, fast, plain, ...) so that a load that comes and
goes (a training run on the other core) weighs on both alike: the ratio is the figure to read, the
absolute rates depend on the load. Resets are included (an episode is reset + steps); reset and step times
are reported apart too, and the same comparison runs under the always-IDLE policy (no network: the
simulator alone). Goals: speed-up >= 2x, stretch >= 4x; whole episode >= 10x, stretch
25x. Both runs must give the same episodes (asserted).

Run:     python -m pytest benchmarks/test_fastsim.py -s --benchmark-columns=mean,rounds
Profile: python benchmarks/test_fastsim.py [episodes]   (cProfile of the plain and the accelerated step)
"""
from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from interp.simulation import fastsim  # noqa: E402
from interp.model.config import load_agent_config, load_env_config  # noqa: E402
from interp.simulation.env import make_env  # noqa: E402

REFERENCE = ROOT / "checkpoints" / "reference"
SEEDS = range(910_000, 910_016)  # 16 episodes, away from training seeds and other tests' seeds


def benchmark_agent():
    import torch

    from interp.simulation.agent import load_agent, untrained_agent

    torch.set_num_threads(1)
    if (REFERENCE / "agent.pt").is_file():
        return load_agent(REFERENCE)
    return untrained_agent(load_agent_config(REFERENCE / "agent_config.json"),
                           load_env_config(REFERENCE / "env_config.json"), init_seed=0)


def one_core() -> int | None:
    """Pin this process to one core (the last one allowed); returns it, or None where not supported."""
    try:
        core = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return core
    except (AttributeError, OSError):
        return None


def episode(env, agent, seed: int) -> tuple[int, float, list[float], float]:
    """(steps, wall seconds, rewards, reset seconds) of one greedy episode (``agent`` None: always IDLE),
    reset included in the wall seconds."""
    started = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    reset = time.perf_counter() - started
    rewards, done = [], False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(1 if agent is None else int(agent.act(obs)[0]))
        rewards.append(reward)
        done = terminated or truncated
    return len(rewards), time.perf_counter() - started, rewards, reset


def side_by_side(agent, seeds) -> dict:
    """Interleaved plain / accelerated episodes on the same seeds; steps per second of each and the ratio,
    and the mean reset, step (network included unless ``agent`` is None) and whole-episode times."""
    config = load_env_config(REFERENCE / "env_config.json")
    envs = {"plain": make_env(config), "fast": make_env(config, fast_sim=True)}
    assert fastsim.is_enabled(envs["fast"]), "fastsim refused this highway-env; nothing to compare"
    for env in envs.values():  # one warm-up episode each, untimed (first-call costs, e.g. kernel loading)
        episode(env, agent, seeds[0] - 1)
    totals = {name: [0, 0.0, 0.0] for name in envs}
    for k, seed in enumerate(seeds):
        order = ("plain", "fast") if k % 2 == 0 else ("fast", "plain")
        outcome = {}
        for name in order:
            steps, seconds, rewards, reset = episode(envs[name], agent, seed)
            totals[name][0] += steps
            totals[name][1] += seconds
            totals[name][2] += reset
            outcome[name] = rewards
        assert outcome["plain"] == outcome["fast"], f"seed {seed}: the accelerated episode differs"
    for env in envs.values():
        env.close()
    rate = {name: steps / seconds for name, (steps, seconds, _) in totals.items()}
    ms = {name: {"reset_ms": round(1e3 * reset / len(seeds), 2),
                 "step_ms": round(1e3 * (seconds - reset) / steps, 2),
                 "episode_ms": round(1e3 * seconds / len(seeds), 1)} for name, (steps, seconds, reset) in totals.items()}
    return {"episodes": len(seeds), "steps": totals["plain"][0],
            "plain_steps_per_s": round(rate["plain"], 2), "fast_steps_per_s": round(rate["fast"], 2),
            "speedup": round(rate["fast"] / rate["plain"], 2), "plain": ms["plain"], "fast": ms["fast"],
            "reset_speedup": round(ms["plain"]["reset_ms"] / ms["fast"]["reset_ms"], 2)}


@pytest.mark.benchmark(group="fastsim")
def test_agent_steps_per_second_with_and_without_fastsim(benchmark):
    agent = benchmark_agent()
    core = one_core()
    result = benchmark.pedantic(side_by_side, args=(agent, SEEDS), rounds=1, iterations=1)
    idle = side_by_side(None, SEEDS)
    result.update({"core": core, "goal_speedup": 2.0, "stretch_speedup": 4.0,
                   "goal_met": result["speedup"] >= 2.0, "stretch_met": result["speedup"] >= 4.0,
                   "idle_policy": idle, "idle_goal_speedup": 10.0, "idle_stretch_speedup": 25.0,
                   "kernels": fastsim.USE_KERNELS,
                   "highway_env": fastsim.highway_env_version(), "load_average_1min": os.getloadavg()[0],
                   "agent": getattr(agent, "source", "untrained control")})
    benchmark.extra_info.update(result)
    print(f"\n{result['episodes']} episodes, {result['steps']} agent steps each way, core {core}: "
          f"plain {result['plain_steps_per_s']} steps/s, fastsim {result['fast_steps_per_s']} steps/s = "
          f"{result['speedup']}x (goal >= 2x, stretch >= 4x; load average {result['load_average_1min']:.1f})")
    for name, figures in (("agent", result), ("always IDLE", idle)):
        print(f"{name}: reset {figures['plain']['reset_ms']} -> {figures['fast']['reset_ms']} ms, "
              f"step {figures['plain']['step_ms']} -> {figures['fast']['step_ms']} ms, "
              f"episode {figures['plain']['episode_ms']} -> {figures['fast']['episode_ms']} ms = {figures['speedup']}x "
              f"steps/s (reset {figures['reset_speedup']}x)")
    assert np.isfinite(result["speedup"]) and np.isfinite(idle["speedup"])


def profile(episodes: int = 6, top: int = 25) -> None:
    """cProfile of the plain and the accelerated step on the same random-action episodes."""
    config = load_env_config(REFERENCE / "env_config.json")
    for fast in (False, True):
        env = make_env(config, fast_sim=fast)
        profiler = cProfile.Profile()
        steps = 0
        for seed in range(episodes):
            env.reset(seed=seed)
            rng, done = np.random.default_rng(seed), False
            profiler.enable()
            while not done:
                _, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
                steps += 1
                done = terminated or truncated
            profiler.disable()
        print(f"\n=== {'fastsim' if fast else 'plain'}: {steps} steps (resets excluded) ===")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    profile(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
