"""Tiny real training runs for the averaging and reference-search tests: a few episodes of the reference's
recipe (small batch and memory so that learning starts at once), a snapshot after every episode."""
from __future__ import annotations

import copy
from pathlib import Path

from interp.model.config import load_agent_config, load_env_config
from interp.training.train import Trainer, TrainSettings

ROOT = Path(__file__).resolve().parent.parent
AGENT = load_agent_config(ROOT / "checkpoints" / "reference" / "agent_config.json")
ENV = load_env_config(ROOT / "checkpoints" / "reference" / "env_config.json")


def train_tiny(out: Path, *, seed: int, episodes: int = 3, heads: int | None = None) -> Path:
    """Train ``episodes`` episodes into ``out`` (snapshots ``out/snapshots/episode-1.pt`` ...); returns ``out``."""
    config = copy.deepcopy({**AGENT, "batch_size": 8, "target_update": 16, "memory_capacity": 200})
    if heads is not None:
        config["model"]["attention_layer"]["heads"] = heads
    Trainer(TrainSettings(agent_config=config, env_config=ENV, episodes=episodes, seed=seed, out=out, workers=0,
                          slots=1, save_every=1)).run(progress=False)
    return out
