"""Engine efficiency, like for like: (episodes/s with W workers) / (W x episodes/s with 1 worker), the
same fast simulator and agent, 500 held-out episodes, timed from the pool being up (a warm-up run starts it) to
the last episode; pool start-up timed apart. Opt-in: ``python -m pytest benchmarks/test_engine_efficiency.py -s``
(about 2 min on 2 free cores).

Also measured, to explain an efficiency below 1: the main process's CPU seconds per episode during the timed run
(the network's forward passes, batching and dispatch: ``time.process_time``) and the workers' (their CPU time from
``/proc/<pid>/stat``, read just before the pool closes). On W cores, W workers and the main process share the
cores, so the main process's CPU share bounds the efficiency."""
from __future__ import annotations

import os
import time

import pytest

from interp.simulation.agent import REFERENCE_DIR, load_agent
from interp.simulation.rollout import RolloutEngine

EPISODES = 500


def _workers_cpu_s(engine: RolloutEngine) -> float:
    """CPU seconds (user + system) of the engine's worker processes so far, from /proc (Linux; the workers are
    children of the fork server, so the main process's rusage does not count them)."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in engine._pool.pids:  # noqa: SLF001 - a benchmark may look inside
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def _rate(agent, workers: int) -> tuple[float, float, float, float]:
    """Episodes/s, start-up s, and the main process's and the workers' CPU seconds per episode."""
    with RolloutEngine(workers=workers, cache=None) as engine:
        t0 = time.perf_counter()
        engine.run(agent, [10**5 - 1])  # warm-up: starts the pool (timed apart)
        startup = time.perf_counter() - t0
        t1, main0, kids0 = time.perf_counter(), time.process_time(), _workers_cpu_s(engine)
        engine.run(agent, range(EPISODES))
        wall, main, kids = time.perf_counter() - t1, time.process_time() - main0, _workers_cpu_s(engine) - kids0
        return EPISODES / wall, startup, main / EPISODES, kids / EPISODES


@pytest.mark.benchmark(group="engine efficiency")
def test_engine_efficiency_on_2_workers(benchmark):
    agent = load_agent(REFERENCE_DIR)
    one, start_one, main_one, kids_one = _rate(agent, 1)
    two, start_two, main_two, kids_two = _rate(agent, 2)
    efficiency = two / (2 * one)
    # With 2 workers on 2 cores the main process's CPU competes with theirs: the cores can give the workers at most
    # 2 - (main CPU per second of wall time) core-seconds per second.
    main_share_two = main_two * two
    benchmark.extra_info.update({"episodes": EPISODES, "eps_per_s_1": one, "eps_per_s_2": two,
                                 "efficiency": efficiency, "startup_s_1": start_one, "startup_s_2": start_two,
                                 "main_cpu_ms_per_episode_1": 1e3 * main_one, "main_cpu_ms_per_episode_2": 1e3 * main_two,
                                 "worker_cpu_ms_per_episode_1": 1e3 * kids_one, "worker_cpu_ms_per_episode_2": 1e3 * kids_two,
                                 "main_cores_busy_2": main_share_two, "cpus": os.cpu_count()})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\n1 worker {one:.2f} ep/s, 2 workers {two:.2f} ep/s: efficiency {efficiency:.2f} "
          f"(start-up {start_one:.1f} s / {start_two:.1f} s)\n"
          f"CPU ms per episode, main / workers: 1 worker {1e3 * main_one:.1f} / {1e3 * kids_one:.1f}, "
          f"2 workers {1e3 * main_two:.1f} / {1e3 * kids_two:.1f}; with 2 workers the main process keeps "
          f"{main_share_two:.2f} of the {os.cpu_count()} cores busy")
