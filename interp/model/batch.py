"""Observations as the network's input: the one function that turns what callers hold into a batch tensor."""
from __future__ import annotations

import numpy as np
import torch

from interp.errors import ConfigError


def as_batch(obs) -> torch.Tensor:
    """Observations as a float32 tensor [B, N, F]: arrays, lists or tensors; one scene [N, F] becomes a batch
    of one. A tensor is detached (probes never backpropagate into their inputs unless they say so)."""
    x = obs.detach().float() if isinstance(obs, torch.Tensor) else torch.as_tensor(np.asarray(obs, dtype=np.float32))
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ConfigError(f"observations must be [batch, rows, features] (or one [rows, features] scene), "
                          f"got shape {tuple(x.shape)}")
    return x
