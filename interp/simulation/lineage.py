"""Which training run a checkpoint comes from: its lineage, recorded with every spec run so that
``python -m reports diff`` knows whether two checkpoints' head indices mean the same thing.

Head indices are arbitrary per training run; within one run (a snapshot, a continuation, a damaged copy)
head ``h`` stays head ``h``. The trainer is deterministic given its seed, its env seed range and its configs,
so those identify the run: the lineage ``run`` id is a hash of exactly them, taken from the checkpoint's own
training metadata (``interp train`` and ``interp zoo train`` write ``seed`` and ``train_env_seeds``). A
checkpoint without that metadata (an rl-agents file) has ``run`` null: its lineage is unknown.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from interp.model.config import canonical_json


def lineage(metadata: Mapping[str, Any], agent_config: Mapping[str, Any],
            env_config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"run", "train_seed", "episodes", "episodes_requested", "edited"}`` of one checkpoint (``run``
    null when the metadata does not say which seed and env seeds trained it)."""
    seed = metadata.get("seed", metadata.get("train_seed"))
    env_seeds = metadata.get("train_env_seeds")
    run = None
    if seed is not None and isinstance(env_seeds, Mapping):
        key = {"seed": seed, "env_seeds_first": env_seeds.get("first"), "env_seeds_rule": env_seeds.get("rule"),
               "agent_config": agent_config, "env_config": env_config}
        if metadata.get("shuffle_rewards"):  # a shuffled-reward control is another run than its seed's plain one
            key["shuffle_rewards"] = True
        run = hashlib.blake2b(canonical_json(key).encode(), digest_size=8).hexdigest()
    return {"run": run, "train_seed": seed, "episodes": metadata.get("episodes"),
            "episodes_requested": metadata.get("episodes_requested"), "edited": metadata.get("edited")}
