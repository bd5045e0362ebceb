"""Run in a subprocess under ``ATEN_CPU_CAPABILITY`` / ``NPY_DISABLE_CPU_FEATURES`` to imitate another CPU:
a few traced episodes of the reference agent (simulator and network in this one process) and the Q-values
of fixed observations, pickled to the path given as the only argument. Used by ``tests/test_policy.py``."""
from __future__ import annotations

import pickle
import sys

import numpy as np
import torch

SEEDS = (0, 1, 2, 3)


def main(out: str) -> None:
    from interp.model import policy
    from interp.simulation.agent import load_agent
    from interp.simulation.rollout import RolloutEngine
    from tests.planted import ROOT
    from tests.rollout_support import random_obs

    torch.set_num_threads(1)
    agent = load_agent(ROOT / "checkpoints" / "reference")
    with RolloutEngine(workers=0, slots=1, cache=None) as engine:
        records = engine.run(agent, SEEDS, trace=True)
    q, _ = policy.q_rows(agent.model, random_obs(500, seed=3).numpy())
    with open(out, "wb") as f:
        pickle.dump({"records": [r.to_dict() for r in records], "q_random": q,
                     "capability": torch.backends.cpu.get_cpu_capability()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
