"""Validation figures of a trained agent: greedy episodes on the ``validation`` seed range (``interp.seeds``),
disjoint from the held-out, ablation, A/A, calibration and training ranges; used to compare and choose agents
without touching the held-out seeds."""
from __future__ import annotations

from interp.seeds import first


def validation_figures(agent, episodes: int, *, workers: int = 1, offset: int = 0) -> dict:
    """Collision and arrival rates with Wilson 95 % CIs, and the episodes with a near-tie step, on the first
    ``episodes`` validation seeds after ``offset`` (cached like every rollout)."""
    from interp.simulation.rollout import RolloutEngine
    from interp.stats import wilson_interval

    seeds = range(first("validation") + offset, first("validation") + offset + episodes)
    with RolloutEngine(workers=workers, cache="default") as engine:
        records = engine.run(agent, seeds)
    n = len(records)
    crashes, arrivals = sum(r.crashed for r in records), sum(r.arrived for r in records)
    return {"seeds": f"{seeds[0]}..{seeds[-1]}", "n": n,
            "collision_rate": crashes / n, "collision_ci95": list(wilson_interval(crashes, n)),
            "arrival_rate": arrivals / n, "arrival_ci95": list(wilson_interval(arrivals, n)),
            "near_tie_episodes": sum(r.near_ties > 0 for r in records)}
