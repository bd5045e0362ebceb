"""Power and false positives of the per-head ablation spec, by simulation of the spec's own design.

``specs/test_behavior.py::test_ablating_a_head_raises_collisions`` runs ``interp.simulation.rollout.run_sequential``: one
``SequentialPairedFamily`` (Holm across the heads at every look) with the spec's ``SequentialDesign``
(``specs.support.claims.ablation_design(budget)``: alpha 0.05, "increase", min_effect 0.05, ``budget.max_pairs``) fed
``budget.batch_pairs`` paired seeds per look, only the still-open heads each time. This file feeds the same
objects, in the same batches, with synthetic paired outcomes instead of rollouts:

* ``effect``: one head raises collisions by 8.5 points from 28.5 % (discordant 4 vs 21 per 200 pairs, the effect
  measured on an independently trained 4-head agent), three heads with no effect (same rate, 25
  discordant pairs per 200, half each way), Holm across the 4;
* ``null``: all four heads without effect (the familywise error rate).

Per profile: power (the effect head called supported), the share of no-effect heads called supported, the
familywise error (any no-effect head supported), the effect head wrongly refuted, mean pairs used. Goal:
default profile power >= 0.8; false positives <= alpha in every profile. Run:
``python -m pytest benchmarks/test_power.py --benchmark-only -s`` (about a minute on one core).
"""
from __future__ import annotations

import numpy as np
import pytest

from interp.stats import PairedRates, SequentialPairedFamily, run_sequential
from specs.support.budget import PROFILES
from specs.support.claims import ablation_design as _design
from specs.test_behavior import ALPHA

N_RUNS = 2000  # simulated spec runs per profile and scenario (SequentialPairedFamily objects)
HEADS = 4
EFFECT = PairedRates(both=0.265, baseline_only=4 / 200, treatment_only=21 / 200)  # 28.5 % -> 37 %
NULL = PairedRates.null(0.285, 25 / 200)
POWER_GOAL = 0.8


def _treatment(rates: PairedRates, baseline: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Treatment outcomes paired with ``baseline`` so that the paired 2x2 table has ``rates``."""
    base_rate = rates.baseline_rate
    p = np.where(baseline, rates.both / base_rate, rates.treatment_only / (1 - base_rate))
    return rng.random(baseline.shape) < p


def paired_outcomes(head_rates: list[PairedRates], n_runs: int, n_pairs: int, seed: int):
    """``baseline [runs, pairs]`` (rate 28.5 %) and ``treatments [runs, heads, pairs]``, one table per head."""
    rng = np.random.default_rng(seed)
    rate = head_rates[0].baseline_rate
    assert all(abs(r.baseline_rate - rate) < 1e-9 for r in head_rates), "the heads share one baseline"
    baseline = rng.random((n_runs, n_pairs)) < rate
    return baseline, np.stack([_treatment(r, baseline, rng) for r in head_rates], axis=1)


def spec_verdicts(budget, baseline: np.ndarray, treatments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Verdict names ``[runs, heads]`` and pairs used ``[runs]``: each run fed to a ``SequentialPairedFamily`` the
    way ``interp.simulation.rollout.run_sequential`` feeds it (batches of ``budget.batch_pairs``, open heads only)."""
    design = _design(budget)
    names = [f"ablate head {h}" for h in range(treatments.shape[1])]
    verdicts, used = [], []
    for base, treat in zip(baseline, treatments):
        family = SequentialPairedFamily({name: None for name in names}, design)
        n, verdict = 0, {}
        while not family.stopped and n < design.max_pairs:
            end = min(n + budget.batch_pairs, design.max_pairs)
            decisions = family.update(base[n:end], {name: treat[names.index(name), n:end] for name in family.active})
            verdict.update({name: d.verdict for name, d in decisions.items()})  # what verdicts() reports, without CIs
            n = end
        verdicts.append([verdict[name] or "inconclusive" for name in names])
        used.append(n)
    return np.array(verdicts), np.array(used)


def operating_characteristics(profile: str, n_runs: int = N_RUNS, seed: int = 0) -> dict:
    budget = PROFILES[profile]
    out = {"profile": profile, "max_pairs": budget.max_pairs, "batch_pairs": budget.batch_pairs, "alpha": ALPHA,
           "runs": n_runs}
    base, treat = paired_outcomes([EFFECT] + [NULL] * (HEADS - 1), n_runs, budget.max_pairs, seed)
    verdicts, used = spec_verdicts(budget, base, treat)
    out["power"] = float((verdicts[:, 0] == "supported").mean())
    out["effect_refuted"] = float((verdicts[:, 0] == "refuted").mean())
    out["effect_inconclusive"] = float((verdicts[:, 0] == "inconclusive").mean())
    out["null_head_supported"] = float((verdicts[:, 1:] == "supported").mean())
    out["null_any_supported"] = float((verdicts[:, 1:] == "supported").any(1).mean())
    out["null_head_refuted"] = float((verdicts[:, 1:] == "refuted").mean())
    out["mean_pairs"] = float(used.mean())
    # the vectorised simulation of interp.stats (same e-values and decision step) must agree run for run
    vectorised = run_sequential(_design(budget), base, treat, batch_pairs=budget.batch_pairs).verdict_names()
    out["vectorised_agrees"] = bool((vectorised == verdicts).all())
    base0, treat0 = paired_outcomes([NULL] * HEADS, n_runs, budget.max_pairs, seed + 1)
    verdicts0, _ = spec_verdicts(budget, base0, treat0)
    out["complete_null_familywise_error"] = float((verdicts0 == "supported").any(1).mean())
    return out


def _upper(k: float, n: int) -> float:
    """95 % Wilson upper bound of a simulated share (the simulation's own error)."""
    from interp.stats import wilson_interval

    return wilson_interval(round(k * n), n)[1]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_ablation_spec_power_and_false_positives(benchmark, profile):
    oc = benchmark.pedantic(operating_characteristics, args=(profile,), rounds=1, iterations=1)
    benchmark.extra_info.update(oc)
    print(f"\n{profile}: max_pairs {oc['max_pairs']} (looks every {oc['batch_pairs']}): power {oc['power']:.3f} "
          f"(effect head refuted {oc['effect_refuted']:.4f}, inconclusive {oc['effect_inconclusive']:.3f}); "
          f"no-effect heads supported {oc['null_head_supported']:.4f} per head, {oc['null_any_supported']:.4f} any "
          f"of 3; complete null: familywise {oc['complete_null_familywise_error']:.4f}; mean pairs "
          f"{oc['mean_pairs']:.0f}; {oc['runs']} runs")
    assert oc["vectorised_agrees"]
    # every profile errs at most alpha: no-effect heads called supported, and the true effect refuted
    for key in ("null_head_supported", "null_any_supported", "complete_null_familywise_error", "effect_refuted"):
        assert oc[key] <= ALPHA, (key, oc[key])
    if profile != "quick":  # quick may say inconclusive more often
        assert oc["power"] >= POWER_GOAL, oc["power"]
