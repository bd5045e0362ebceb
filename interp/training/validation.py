"""Validation figures of a trained agent: greedy episodes on the ``validation`` seed range (``interp.seeds``),
disjoint from the held-out, ablation, A/A, calibration and training ranges; used to compare and choose agents
without touching the held-out seeds. ``seed_range_figures`` gives the same figures on any named range (the
held-out figures of agents already chosen, e.g. the zoo's after the reference choice)."""
from __future__ import annotations

from interp.seeds import first


def validation_figures(agent, episodes: int, *, workers: int = 1, offset: int = 0) -> dict:
    """Collision and arrival rates with Wilson 95 % CIs, and the episodes with a near-tie step, on the first
    ``episodes`` validation seeds after ``offset`` (cached like every rollout)."""
    return seed_range_figures(agent, "validation", episodes, workers=workers, offset=offset)


def seed_range_figures(agent, range_name: str, episodes: int, *, workers: int = 1, offset: int = 0) -> dict:
    """The figures of ``validation_figures`` on the first ``episodes`` seeds of ``interp.seeds.EPISODES[range_name]``
    after ``offset``."""
    from interp.simulation.rollout import RolloutEngine
    from interp.stats import wilson_interval

    seeds = range(first(range_name) + offset, first(range_name) + offset + episodes)
    with RolloutEngine(workers=workers, cache="default") as engine:
        records = engine.run(agent, seeds)
    n = len(records)
    crashes, arrivals = sum(r.crashed for r in records), sum(r.arrived for r in records)
    return {"seeds": f"{seeds[0]}..{seeds[-1]}", "n": n,
            "collision_rate": crashes / n, "collision_ci95": list(wilson_interval(crashes, n)),
            "arrival_rate": arrivals / n, "arrival_ci95": list(wilson_interval(arrivals, n)),
            "near_tie_episodes": sum(r.near_ties > 0 for r in records)}
