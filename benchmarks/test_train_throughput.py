"""Training throughput (transitions per second, gradient updates included) with 1 and 2 env workers.

The trainer steps its slots in lock-step rounds; the network and the updates run in the parent. Each run
trains a fresh network for ``HYPODRIVE_BENCH_EPISODES`` episodes (default 200: shorter runs are dominated by
start-up) with the reference configs, one worker vs two, measured in one pytest run. Wall-clock figures need
otherwise idle cores.
Run: python -m pytest benchmarks/test_train_throughput.py --benchmark-only -s
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from interp.model.config import load_agent_config, load_env_config
from interp.training.train import Trainer, TrainSettings

ROOT = Path(__file__).resolve().parent.parent
AGENT = {**load_agent_config(ROOT / "checkpoints" / "reference" / "agent_config.json"), "batch_size": 64}
ENV = load_env_config(ROOT / "checkpoints" / "reference" / "env_config.json")
EPISODES = int(os.environ.get("HYPODRIVE_BENCH_EPISODES", "200"))


@pytest.mark.parametrize("workers", [1, 2])
def test_training_transitions_per_second(benchmark, tmp_path, workers):
    def run():
        out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        trainer = Trainer(TrainSettings(agent_config=AGENT, env_config=ENV, episodes=EPISODES, seed=0, out=out,
                                        workers=workers, slots=4, save_every=10_000))
        trainer.run(progress=False)
        return trainer

    trainer = benchmark.pedantic(run, rounds=1, iterations=1)
    rate = trainer.transitions / benchmark.stats.stats.mean
    benchmark.extra_info.update({"workers": workers, "episodes": EPISODES, "transitions": trainer.transitions,
                                 "transitions_per_s": round(rate, 2)})
    print(f"\n{workers} worker(s): {trainer.transitions} transitions, {rate:.1f} transitions/s")
