"""How far a batched forward's Q-values are from the engine's one-row-at-a-time ones, on real observations.

    python -m benchmarks.batched_bits --checkpoint checkpoints/reference --seeds 0 20

The observations acted on in the greedy episodes of seeds ``[start, stop)`` (the engine's traces) are run
again in consecutive batches of 2, 8 and all of them, with one torch thread as the engine runs, and compared
with the recorded per-row Q-values: the share of Q-values whose bits differ, the largest difference, and the
decisions (``interp.model.policy.choose``) that change. This is the leak the Q-bit layout test guards against:
with batching, a row's bits would depend on which rows share its batch, so on the slot layout.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from interp.model import policy
from interp.simulation.agent import load_agent
from interp.simulation.rollout import RolloutEngine


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 20), metavar=("START", "STOP"))
    args = parser.parse_args(argv)
    agent = load_agent(args.checkpoint)
    with RolloutEngine(workers=1, cache="default") as engine:
        records = engine.run(agent, range(*args.seeds), trace=True)
    obs = np.concatenate([r.trace.obs for r in records])
    per_row = np.concatenate([r.trace.q for r in records])
    result = {"checkpoint": args.checkpoint, "identity": agent.identity, "seeds": list(args.seeds),
              "rows": len(obs), "batches": {}}
    torch.set_num_threads(1)
    for size in (2, 8, len(obs)):
        with torch.no_grad():
            batched = np.concatenate([agent.model(torch.from_numpy(obs[i:i + size])).numpy()
                                      for i in range(0, len(obs), size)])
        result["batches"][str(size)] = {
            "values_with_other_bits": float(np.mean(batched != per_row)),
            "max_abs_difference": float(np.abs(batched - per_row).max()),
            "decisions_changed": int((policy.choose(batched)[0] != policy.choose(per_row)[0]).sum())}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
