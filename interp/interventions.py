"""Interventions expressed as hooks: a list of (hook name, function) pairs that ``run_with_hooks`` installs.

Keeping interventions as plain hook lists lets the same object drive a single forward pass, a probe, or a
rollout condition, and gives each a canonical description for caching.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.errors import ConfigError
from interp.hooks import HookFn

Z_HOOK = "attention_layer.hook_z"


def zero_heads_fn(heads: Sequence[int]) -> HookFn:
    heads = list(heads)

    def hook(z: torch.Tensor, _hook) -> torch.Tensor:
        z = z.clone()
        z[:, heads] = 0.0
        return z

    return hook


def ablate_heads(heads: Sequence[int], n_heads: int) -> list[tuple[str, HookFn]]:
    """Zero the per-head outputs ``z`` of ``heads`` before ``attention_combine``."""
    bad = [h for h in heads if not 0 <= h < n_heads]
    if bad:
        raise ConfigError(f"head(s) {bad} do not exist: this agent has heads 0..{n_heads - 1}")
    return [(Z_HOOK, zero_heads_fn(heads))]
