"""Engine efficiency, like for like (issue 18): (episodes/s with W workers) / (W x episodes/s with 1 worker), the
same fast simulator and agent, 500 held-out episodes, timed from the pool being up (a warm-up run starts it) to
the last episode; pool start-up timed apart. Opt-in: ``python -m pytest benchmarks/test_engine_efficiency.py -s``
(about 2 min on 2 free cores)."""
from __future__ import annotations

import time

import pytest

from interp.simulation.agent import REFERENCE_DIR, load_agent
from interp.simulation.rollout import RolloutEngine

EPISODES = 500


def _rate(agent, workers: int) -> tuple[float, float]:
    with RolloutEngine(workers=workers, cache=None) as engine:
        t0 = time.perf_counter()
        engine.run(agent, [10**5 - 1])  # warm-up: starts the pool (timed apart)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        engine.run(agent, range(EPISODES))
        return EPISODES / (time.perf_counter() - t1), startup


@pytest.mark.benchmark(group="engine efficiency")
def test_engine_efficiency_on_2_workers(benchmark):
    agent = load_agent(REFERENCE_DIR)
    one, start_one = _rate(agent, 1)
    two, start_two = _rate(agent, 2)
    efficiency = two / (2 * one)
    benchmark.extra_info.update({"episodes": EPISODES, "eps_per_s_1": one, "eps_per_s_2": two,
                                 "efficiency": efficiency, "startup_s_1": start_one, "startup_s_2": start_two})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\n1 worker {one:.2f} ep/s, 2 workers {two:.2f} ep/s: efficiency {efficiency:.2f} "
          f"(start-up {start_one:.1f} s / {start_two:.1f} s)")
