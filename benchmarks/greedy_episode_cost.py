"""Wall time of 100 greedy episodes (``RolloutEngine``, an empty rollout cache), then of the same 100 from the cache.

    python -m benchmarks.greedy_episode_cost checkpoints/reference 1     # checkpoint, rollout workers

Sizes evaluation budgets such as the reference search's stage 3 (18,000 episodes). Seeds 0..99 of the held-out
range: a timing only, no figure of it is used to decide anything.
"""
from __future__ import annotations

import sys
import tempfile
import time


def main() -> None:
    from interp.seeds import episode_seeds
    from interp.simulation.agent import load_agent
    from interp.simulation.rollout import RolloutEngine

    agent = load_agent(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    seeds = episode_seeds("heldout", 100)
    with tempfile.TemporaryDirectory() as cache:
        for label in ("empty cache", "cached rerun"):
            with RolloutEngine(workers=workers, cache=cache) as engine:
                started = time.perf_counter()
                engine.run(agent, seeds)
                print(f"{sys.argv[1]}, {workers} worker(s), {label}: 100 episodes in "
                      f"{time.perf_counter() - started:.2f} s", flush=True)


if __name__ == "__main__":  # the rollout workers re-import this module: no work at import time
    main()
