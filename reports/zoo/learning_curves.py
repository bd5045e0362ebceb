"""Learning curves of training runs side by side: rolling collision and arrival rates of the training episodes
(epsilon-greedy, so exploration included) against episodes, from each run's ``history.json``."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from interp.atomic import staged


def rolling(values: list[float], window: int) -> np.ndarray:
    """Mean over the last ``window`` episodes (fewer at the start)."""
    x = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def draw(runs: Mapping[str, Path], out: Path, *, window: int = 200) -> Path:
    """One PNG: for each run (label -> folder with history.json), rolling collision and arrival rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for label, folder in runs.items():
        history = json.loads((Path(folder) / "history.json").read_text())
        episodes = np.arange(1, len(history) + 1)
        axes[0].plot(episodes, rolling([h["crashed"] for h in history], window), label=label)
        axes[1].plot(episodes, rolling([h["arrived"] for h in history], window), label=label)
    for ax, what in zip(axes, ("collision rate", "arrival rate")):
        ax.set_xlabel("training episodes")
        ax.set_ylabel(f"{what} (last {window} training episodes)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with staged(out, what="the learning curves") as tmp:
        fig.savefig(tmp, dpi=90, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)
    return out
