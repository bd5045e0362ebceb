"""hypodrive's interpretability core: the hooked ego-attention model, checkpoints, probes, rollouts, statistics.

Never imports pytest or plotting libraries: specs and reports build on this package, not the reverse.
"""
