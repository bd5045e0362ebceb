"""What recording the safety measures costs the fast simulator's step, and what computing them costs per episode.

One worker's environments (``_SlotEnvs``, fast simulator) with and without the safety recorder, interleaved on
the same seeds under the always-IDLE policy; then ``summarise`` on each recorded episode (done in the rollout
engine's process). Run: ``python -m benchmarks.safety_overhead [SEEDS]`` (default 40 seeds)."""
from __future__ import annotations

import sys
import time

from interp.safety.recorder import summarise
from interp.simulation.agent import load_agent
from interp.simulation.workers import Reset, Step, _SlotEnvs


def main(n_seeds: int = 40) -> None:
    agent = load_agent("checkpoints/reference")
    envs = {rec: _SlotEnvs(agent.env_config, record_rows=True, fast_sim=True, record_safety=rec) for rec in (False, True)}
    for e in envs.values():
        e.run(0, Reset(seed=0))  # warm up (compiled kernels, env construction)
    step_time = {False: 0.0, True: 0.0}
    steps = {False: 0, True: 0}
    summary_time = 0.0
    for seed in range(n_seeds):
        for rec, e in envs.items():
            result = e.run(0, Reset(seed=seed))
            while not result.done:
                started = time.perf_counter()
                result = e.run(0, Step(1))
                step_time[rec] += time.perf_counter() - started
                steps[rec] += 1
            if rec:
                started = time.perf_counter()
                summarise(**result.safety)
                summary_time += time.perf_counter() - started
    for rec in (False, True):
        print(f"record_safety={rec}: {steps[rec]} steps, {1000 * step_time[rec] / steps[rec]:.2f} ms/step")
    print(f"measures: {1000 * summary_time / n_seeds:.1f} ms/episode over {n_seeds} episodes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
