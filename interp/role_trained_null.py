"""The trained role null: what heads of networks trained *without task information* prefer, so that an attention
role means a preference the task taught, not one that any training produces.

Why. The role rule (``interp.role_selectivity``) refers each head's t-statistics to randomly
*initialised* networks of the architecture. Networks trained 100 episodes with shuffled rewards get a role in
3.5-4.2 % of tries against that null, most of them far beyond every null network: training alone moves heads out
of the initial distribution (``docs/guide/roles.md``). A role therefore has to beat both nulls.

The networks. Each is trained 100 episodes by the real trainer with each replay sample's rewards shuffled and
``gamma = 0`` (``RECIPE``): the target is the shuffled reward alone, so nothing of an episode's outcome reaches it
(with ``gamma > 0`` the terminal flags, which stay with their transitions, still tie the bootstrapped target to
how soon an episode ends). Network i trains from seed ``interp.seeds.INITS["role_null_trained"][0] + i`` on its
own block of env seeds (``interp.seeds.role_null_block``). Only their heads' statistics on the calibration scenes
are kept, as committed data (``data/role_trained_null/<H>h.npz``, grown by ``benchmarks/role_trained_null.py``).

The test. Heads are exchangeable under this training (permuting heads is a symmetry of the init distribution and
of the trainer), so the K networks give K x H draws of each statistic. A head's Monte-Carlo p-value is its rank
among the pooled draws of the same half and test ((1 + as extreme) / (K x H + 1); ``proximity``'s two tails are
two tests), and Bonferroni over heads x tests bounds the family-wise error whatever the dependence between tests.
A role needs adjusted p <= alpha on both halves against this null *and* against the initialised one (an
intersection-union test: the role's null is the union, each part tested at alpha). Resolution: Bonferroni needs
p <= alpha / (H x tests), so K x H >= H x tests / alpha: ``tests / alpha`` = 900 networks whatever the head count
(``networks_needed``). Draws of one network are dependent, so the p-value's sample is effectively between K and
K x H draws; the rate tests on networks the null was not drawn from are what check the rule as a whole.

An architecture whose trained null is missing or smaller than ``networks_needed`` is tested against the
initialised null only, and its role map says so (``TrainedNull.complete``). Pure numpy."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "role_trained_null"
RECIPE = {"episodes": 100, "shuffle_rewards": True, "gamma": 0.0}


def networks_needed(n_tests: int, alpha: float) -> int:
    """Networks for a Bonferroni-adjusted pooled p-value to reach ``alpha``: ``n_tests / alpha`` (rounded up)."""
    return int(np.ceil(n_tests / alpha - 1e-9))


def design_digest(obs: np.ndarray, vehicles: np.ndarray, categories: tuple[str, ...]) -> str:
    """What the stored statistics depend on besides the network: the scenes (rounded, so that another CPU's last
    bits do not change it), the vehicle rows and the categories."""
    return hashlib.sha256(np.round(np.asarray(obs, np.float64), 4).tobytes() + np.asarray(vehicles, bool).tobytes()
                          + repr(tuple(categories)).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class TrainedNull:
    """Statistics [K, 2, H, P] of K trained networks' heads (per half, head, statistic), and what they belong to."""

    stats: np.ndarray
    index: np.ndarray  # [K] network indices (seeds: the module docstring)
    categories: tuple[str, ...]
    digest: str
    path: Path

    @property
    def n_networks(self) -> int:
        return int(self.stats.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.stats.shape[2])

    def complete(self, n_tests: int, alpha: float) -> bool:
        return self.n_networks >= networks_needed(n_tests, alpha)


def data_path(n_heads: int, folder: Path | None = None) -> Path:
    return (folder or DATA) / f"{n_heads}h.npz"


def load(n_heads: int, folder: Path | None = None) -> TrainedNull | None:
    """The stored trained null of the ``n_heads`` architecture, or None where there is none. One read per version
    of the file: a role map's cache key and its test both ask for it, and a regrown file (new size or mtime) is
    read afresh."""
    path = data_path(n_heads, folder)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _read(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read(path: Path, size: int, mtime_ns: int) -> TrainedNull:
    """``load``'s read; ``size`` and ``mtime_ns`` are only part of the memo key."""
    with np.load(path, allow_pickle=False) as f:
        stats = f["stats"]
        stats.setflags(write=False)  # shared between callers by the memo
        return TrainedNull(stats=stats, index=f["index"], categories=tuple(str(c) for c in f["categories"]),
                           digest=str(f["digest"]), path=path)


def adjusted_p(null: TrainedNull, statistic: np.ndarray, testable: np.ndarray, two_sided: np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted pooled Monte-Carlo p-values [2, H, P] of an agent's statistics [2, H, P] (NaN where
    untestable): per half and test, the rank among all null networks' heads; upper tail, or where ``two_sided``
    [P] the smaller tail, each tail one test of the family."""
    k, _, h, p = null.stats.shape
    if statistic.shape[1:] != (h, p):
        raise ValueError(f"the trained null has {h} heads x {p} statistics per network, the agent "
                         f"{statistic.shape[1]} x {statistic.shape[2]}: grow the null of the agent's architecture")
    out = np.full(statistic.shape, np.nan)
    for half in range(2):
        n_tests = h * int(np.where(two_sided, 2, 1)[testable[half]].sum())
        for j in np.flatnonzero(testable[half]):
            pool = np.sort(null.stats[:, half, :, j].ravel())  # [K x H]
            value = statistic[half, :, j]
            up = (1 + len(pool) - np.searchsorted(pool, value, side="left")) / (len(pool) + 1)
            p_j = up
            if two_sided[j]:
                low = (1 + np.searchsorted(pool, value, side="right")) / (len(pool) + 1)
                p_j = np.minimum(up, low)
            out[half, :, j] = np.minimum(1.0, p_j * n_tests)
    return out
