"""The one authority for hook-point names, in the style of TransformerLens' ``get_act_name``.

Probes, interventions and specs spell a hook point through this module, never as a string of their own, so
that a renamed hook point is renamed in one place (``tests/test_names.py`` checks every name here exists on
the model). The table of hook points, with shapes, is in docs/how-it-works/hook-points.md.
"""
from __future__ import annotations

INPUT = "hook_input"  # [B, N, F] the observation
MASK = "hook_mask"  # [B, N] True where a row is absent
RESIDUAL = "hook_residual"  # [B, F] (attention_combine(z) + ego) / 2
Q_VALUES = "hook_q"  # [B, A]

_ATTENTION = "attention_layer"
QUERIES = f"{_ATTENTION}.hook_q"  # [B, H, 1, D]
KEYS = f"{_ATTENTION}.hook_k"  # [B, H, N, D]
VALUES = f"{_ATTENTION}.hook_v"  # [B, H, N, D]
SCORES = f"{_ATTENTION}.hook_scores"  # [B, H, 1, N]
PATTERN = f"{_ATTENTION}.hook_pattern"  # [B, H, 1, N]
Z = f"{_ATTENTION}.hook_z"  # [B, H, D] per-head output before attention_combine
HEAD_OUT = f"{_ATTENTION}.hook_head_out"  # [B, H, F] each head's contribution after attention_combine
COMBINED = f"{_ATTENTION}.hook_combined"  # [B, F]
EGO = f"{_ATTENTION}.hook_ego"  # [B, F] the ego embedding entering the residual

_SHORT = {"input": INPUT, "mask": MASK, "residual": RESIDUAL, "q_values": Q_VALUES, "queries": QUERIES,
          "keys": KEYS, "values": VALUES, "scores": SCORES, "pattern": PATTERN, "z": Z, "head_out": HEAD_OUT,
          "combined": COMBINED, "ego": EGO}
_LAYERED = {"ego_hidden": "ego_embedding", "others_hidden": "others_embedding", "output_hidden": "output_layer"}


def act_name(name: str, layer: int | None = None) -> str:
    """The hook-point name of an activation: ``act_name("pattern")`` -> ``attention_layer.hook_pattern``;
    ``act_name("output_hidden", 0)`` -> ``output_layer.hook_hidden.0`` (MLP layers need ``layer``)."""
    if name in _SHORT:
        if layer is not None:
            raise ValueError(f"{name!r} has no layers; call act_name({name!r})")
        return _SHORT[name]
    if name in _LAYERED:
        if layer is None or layer < 0:
            raise ValueError(f"{name!r} is an MLP with several layers: give its index, e.g. act_name({name!r}, 0)")
        return f"{_LAYERED[name]}.hook_hidden.{layer}"
    raise ValueError(f"unknown activation {name!r}; known: {', '.join([*_SHORT, *_LAYERED])}")

