"""The model layer: the hooked ego-attention network, its hook-name authority, checkpoints and identity,
configs, the observation layout and the greedy policy. Imports nothing above it (no simulator, no probes)."""

from interp.model.network import EgoAttentionNetwork  # noqa: F401  the layer's main class, as before
