"""Episodes needed to decide "ablating a head raises collisions": paired sequential design vs unpaired fixed n.

The effect is the one measured on a public 4-head checkpoint: crashes 28.5 % -> 37 %, discordant
pairs 4 vs 21 per 200 seeds; alpha 0.01, power 0.8. Episodes count both arms (a pair is two episodes).
Goal: the paired sequential design needs <= 1/3 of the unpaired fixed-n episodes.
Run: python -m pytest benchmarks/test_stats_design.py
"""
from __future__ import annotations

from interp.stats import PairedRates, compare_designs, unpaired_sample_size

ISSUE_EFFECT = PairedRates(both=0.265, baseline_only=4 / 200, treatment_only=21 / 200)


def test_episodes_needed_paired_sequential_vs_unpaired_fixed(benchmark):
    comparison = benchmark.pedantic(compare_designs, args=(ISSUE_EFFECT,),
                                    kwargs={"alpha": 0.01, "power": 0.8, "batch_pairs": 10, "n_runs": 4000,
                                            "seed": 0}, rounds=1, iterations=1)
    two_sided = unpaired_sample_size(ISSUE_EFFECT.baseline_rate, ISSUE_EFFECT.treatment_rate, alpha=0.01,
                                     power=0.8, alternative="two-sided")
    info = comparison.to_dict()
    info["unpaired_two_sided_episodes"] = 2 * two_sided
    info["goal_ratio"] = 1 / 3
    info["goal_met"] = comparison.ratio <= 1 / 3
    benchmark.extra_info.update(info)
    print(f"\nunpaired fixed n (one-sided z): {comparison.unpaired_episodes} episodes "
          f"({comparison.unpaired_per_arm}/arm; two-sided {2 * two_sided})\n"
          f"paired fixed n (exact McNemar): {comparison.paired_fixed_episodes} episodes\n"
          f"paired sequential: mean {comparison.sequential_mean_episodes:.0f} episodes, median "
          f"{2 * comparison.sequential.median_pairs:.0f}, max {2 * comparison.sequential.max_pairs} "
          f"(simulated power {comparison.sequential.power:.3f})\n"
          f"ratio sequential/unpaired = {comparison.ratio:.2f} (goal <= 0.33)")
    assert comparison.sequential.power >= 0.8
    assert comparison.ratio <= 1 / 3
