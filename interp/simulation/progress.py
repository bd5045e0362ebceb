"""A tqdm progress bar over rollout episodes (done per condition, cached ones, simulator steps/s, ETA)."""
from __future__ import annotations

import time
from collections.abc import Sequence


class Progress:
    """A tqdm bar over episodes: done per condition (cached ones included), simulator steps/s, ETA."""

    def __init__(self, total: int, conditions: Sequence[str], *, enabled: bool = True, desc: str = "episodes") -> None:
        from tqdm import tqdm

        self.done = {name: 0 for name in conditions}
        self.cached = 0
        self.n_steps = 0
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, desc=desc, unit="ep", disable=not enabled, dynamic_ncols=True, mininterval=0.5)

    def episode(self, condition: str, cached: bool = False) -> None:
        self.done[condition] = self.done.get(condition, 0) + 1
        self.cached += cached
        self.bar.update(1)
        self._postfix()

    def steps(self, n: int) -> None:
        self.n_steps += n

    def set_remaining(self, n: int) -> None:
        """Re-aim the ETA: ``n`` episodes are left at most (e.g. after a sequential look settled some)."""
        self.bar.total = self.bar.n + n
        self.bar.refresh()

    def _postfix(self) -> None:
        if self.bar.disable:
            return
        rate = self.n_steps / max(time.perf_counter() - self.t0, 1e-9)
        per = " ".join(f"{name}={n}" for name, n in self.done.items())
        self.bar.set_postfix_str(f"{per} cached={self.cached} steps/s={rate:.1f}", refresh=False)

    def close(self) -> None:
        self.bar.close()
