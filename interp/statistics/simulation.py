"""Vectorised simulation of the sequential design: calibration, power and design comparison."""
from __future__ import annotations

import dataclasses

import numpy as np

from interp.statistics.inputs import CODE_NAMES, CONTINUE, INCONCLUSIVE, REFUTED, SUPPORTED, StatsInputError
from interp.statistics.intervals import PairedCounts
from interp.statistics.sequential import SequentialDesign, log_e_value_down, log_e_value_up, settle


@dataclasses.dataclass(frozen=True)
class PairedRates:
    """Per-pair probabilities of the paired 2x2 cells (``neither`` is the rest)."""

    both: float
    baseline_only: float
    treatment_only: float

    def __post_init__(self) -> None:
        cells = (self.both, self.baseline_only, self.treatment_only)
        if min(cells) < 0 or sum(cells) > 1 + 1e-12:
            raise StatsInputError(f"paired cell probabilities must be >= 0 and sum to <= 1; got {cells}")

    @classmethod
    def null(cls, rate: float, discordance: float) -> "PairedRates":
        """No true difference: both conditions have ``rate``, and a share ``discordance`` of pairs disagree."""
        return cls(both=rate - discordance / 2, baseline_only=discordance / 2, treatment_only=discordance / 2)

    @classmethod
    def from_counts(cls, counts: PairedCounts) -> "PairedRates":
        return cls(counts.both / counts.n, counts.baseline_only / counts.n, counts.treatment_only / counts.n)

    @property
    def baseline_rate(self) -> float:
        return self.both + self.baseline_only

    @property
    def treatment_rate(self) -> float:
        return self.both + self.treatment_only

    @property
    def difference(self) -> float:
        return self.treatment_only - self.baseline_only


def simulate_paired_outcomes(rates: PairedRates, *, n_runs: int, n_pairs: int, n_treatments: int = 1,
                             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic paired outcomes: ``baseline [runs, pairs]`` and ``treatments [runs, n_treatments, pairs]``.

    Every treatment has the same paired table with the shared baseline; treatments are independent of each
    other given the baseline (a simulation assumption, not one the tests rely on).
    """
    base_rate = rates.baseline_rate
    baseline = rng.random((n_runs, n_pairs)) < base_rate
    p_if_event = rates.both / base_rate if base_rate > 0 else 0.0
    p_if_none = rates.treatment_only / (1 - base_rate) if base_rate < 1 else 0.0
    p_treat = np.where(baseline, p_if_event, p_if_none)[:, None, :]
    treatments = rng.random((n_runs, n_treatments, n_pairs)) < p_treat
    return baseline, treatments


@dataclasses.dataclass(frozen=True)
class SequentialSimulation:
    """Outcomes of many simulated sequential runs: verdict codes and stopping n, both ``[runs, hypotheses]``."""

    codes: np.ndarray
    stop_n: np.ndarray
    design: SequentialDesign

    @property
    def supported(self) -> np.ndarray:
        return self.codes == SUPPORTED

    @property
    def refuted(self) -> np.ndarray:
        return self.codes == REFUTED

    @property
    def inconclusive(self) -> np.ndarray:
        return self.codes == INCONCLUSIVE

    def verdict_names(self) -> np.ndarray:
        return np.vectorize(CODE_NAMES.get)(self.codes)


def look_ends(max_pairs: int, batch_pairs: int) -> np.ndarray:
    ends = np.arange(batch_pairs, max_pairs + 1, batch_pairs)
    return ends if ends.size and ends[-1] == max_pairs else np.append(ends, max_pairs)


def run_sequential(design: SequentialDesign, baseline: np.ndarray, treatments: np.ndarray, *, batch_pairs: int,
                   holm_adjust: bool = True) -> SequentialSimulation:
    """Run the sequential decision rule on many runs at once.

    ``baseline [runs, pairs]``, ``treatments [runs, hypotheses, pairs]`` (booleans, ``pairs >= max_pairs``);
    looks after every ``batch_pairs`` pairs. Uses the same e-values and the same per-look decision step as
    :class:`SequentialPairedFamily` (with ``holm_adjust``) so a simulated run and an object fed the same
    batches reach the same verdict at the same n.
    """
    baseline, treatments = np.asarray(baseline, bool), np.asarray(treatments, bool)
    if baseline.ndim != 2 or treatments.ndim != 3 or treatments.shape[::2] != baseline.shape:
        raise StatsInputError(f"need baseline [runs, pairs] and treatments [runs, hypotheses, pairs]; got "
                              f"{baseline.shape} and {treatments.shape}")
    if baseline.shape[1] < design.max_pairs:
        raise StatsInputError(f"simulated runs hold {baseline.shape[1]} pairs, fewer than max_pairs="
                              f"{design.max_pairs}")
    if batch_pairs < 1:
        raise StatsInputError(f"batch_pairs must be >= 1; got {batch_pairs}")
    ends = look_ends(design.max_pairs, batch_pairs)
    x = design.sign * (treatments[..., : design.max_pairs].astype(np.int8)
                       - baseline[:, None, : design.max_pairs].astype(np.int8))
    n_pos = np.cumsum(x == 1, axis=-1, dtype=np.int32)[..., ends - 1]
    n_neg = np.cumsum(x == -1, axis=-1, dtype=np.int32)[..., ends - 1]
    n_zero = ends - n_pos - n_neg
    bets = design.bets
    log_support = np.maximum.accumulate(log_e_value_up(n_pos, n_zero, n_neg, 0.0, bets), axis=-1)
    log_futility = np.maximum.accumulate(log_e_value_down(n_pos, n_zero, n_neg, design.min_effect, bets), axis=-1)
    p_support, p_futility = np.minimum(1.0, np.exp(-log_support)), np.minimum(1.0, np.exp(-log_futility))

    runs, hyps = baseline.shape[0], treatments.shape[1]
    codes = np.full((runs, hyps), CONTINUE)
    stop_n = np.zeros((runs, hyps), dtype=int)
    frozen_s, frozen_f = np.ones((runs, hyps)), np.ones((runs, hyps))
    for k, n in enumerate(ends):
        open_ = codes == CONTINUE
        frozen_s = np.where(open_, p_support[..., k], frozen_s)
        frozen_f = np.where(open_, p_futility[..., k], frozen_f)
        codes = settle(codes, frozen_s, frozen_f, int(n), design, adjust=holm_adjust)
        stop_n[open_ & (codes != CONTINUE)] = n
        if not (codes == CONTINUE).any():
            break
    return SequentialSimulation(codes=codes, stop_n=stop_n, design=design)


def simulate_sequential(design: SequentialDesign, rates: PairedRates, *, n_runs: int, n_hypotheses: int = 1,
                        batch_pairs: int = 10, seed: int = 0, holm_adjust: bool = True) -> SequentialSimulation:
    """Simulate ``n_runs`` independent sequential runs on synthetic paired outcomes drawn from ``rates``."""
    rng = np.random.default_rng(seed)
    baseline, treatments = simulate_paired_outcomes(rates, n_runs=n_runs, n_pairs=design.max_pairs,
                                                    n_treatments=n_hypotheses, rng=rng)
    return run_sequential(design, baseline, treatments, batch_pairs=batch_pairs, holm_adjust=holm_adjust)
