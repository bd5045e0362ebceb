"""How many greedy steps the near-tie rule decides differently from rl-agents' plain argmax.

    python -m benchmarks.tie_rule --checkpoint checkpoints/reference --seeds 0 200 [--out FILE.json]

Runs the greedy episodes of seeds ``[start, stop)`` through the rollout engine (the rule of
``interp.model.policy`` chooses every action) with per-step Q-values, and counts the steps where ``np.argmax``
of the same Q-values (rl-agents' ``DQNAgent.act``: the first maximum) names another action. Only the first
such step of an episode is one where both rules saw the same state; later steps of that episode follow the
rule's trajectory, so the count is "steps decided differently on the episodes the engine runs", and the
episodes with at least one such step are reported too.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from interp.model import policy
from interp.simulation.agent import load_agent
from interp.simulation.rollout import RolloutEngine


def count_changes(q_per_episode: list[np.ndarray]) -> dict:
    """Counts over episodes' per-step Q-values [T, A]: steps, rule-vs-argmax differences, near-ties."""
    steps = changed = near = episodes_changed = 0
    for q in q_per_episode:
        rule, near_tie = policy.choose(q)
        diff = rule != np.argmax(q, axis=-1)
        steps += len(q)
        changed += int(diff.sum())
        near += int(near_tie.sum())
        if diff.any():
            episodes_changed += 1
    return {"steps": steps, "changed_steps": changed, "near_tie_steps": near,
            "episodes": len(q_per_episode), "episodes_with_a_change": episodes_changed}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 200), metavar=("START", "STOP"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the counts as JSON here (atomically)")
    args = parser.parse_args(argv)
    agent = load_agent(args.checkpoint)
    with RolloutEngine(workers=args.workers, cache="default") as engine:
        records = engine.run(agent, range(*args.seeds), trace=True)
    result = {"checkpoint": args.checkpoint, "identity": agent.identity, "seeds": list(args.seeds),
              "tie_tol": policy.TIE_TOL, **count_changes([r.trace.q for r in records])}
    print(json.dumps(result))
    if args.out:
        from reports.atomic import write_files

        out = Path(args.out)
        write_files(out.parent, {out.name: json.dumps(result, indent=1) + "\n"})
    return result


if __name__ == "__main__":
    main()
