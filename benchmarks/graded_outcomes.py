"""Episodes to a decision for the per-head ablation: binary collisions vs the graded minimum TTC.

Design, fixed before the first run:
- agents: the earlier bundled reference (``checkpoints/reference-v1``) and two zoo members
  (``checkpoints/zoo-1000/4h-s1``, ``checkpoints/zoo-1000/2h-s1``);
- a pool of ``N`` paired seeds per agent from the ablation range (the plain agent and each head zero-ablated on
  the same seeds), and the plain agent on ``N`` seeds of the disjoint A/A range (paired index by index);
- outcomes of the same episodes: ``crashed`` (binary), and the minimum TTC over the episode's decision states,
  capped at 5 s, 0 for a crash (``specs.support.graded.min_ttc``; the transform was fixed before any run);
- tests, at the same error rates (alpha 0.05, futility alpha 0.05, Holm across heads, looks every ``BATCH``
  pairs, at most ``N`` pairs): the binary sequential family of the per-head ablation spec
  (``claims.ablation_design``, "raises collisions", minimum effect 5 points) and the graded family
  (``graded.ttc_design``, "lowers the minimum TTC", minimum effect 0.25 s);
- episodes to a decision: the episodes a sequential run spends until every head is settled (baseline plus the
  heads still open at each look), censored at the pool's size (a head still open at ``N`` pairs is inconclusive;
  ``undecided_share`` is the share of runs that ended so);
- the spread: ``RUNS`` runs per agent on seed orders resampled with replacement from the pool; the ratio of mean
  episodes (binary / graded) with a 95 % percentile interval from ``OUTER`` outer resamples of the pool;
- agreement: per head, whether the two tests reach the same verdict on the pool in seed order (the spec's run);
- false positives: the A/A pairs run through both tests (share of runs calling a difference "supported").

Run: ``python -m benchmarks.graded_outcomes collect`` (simulates, resumable: the rollout cache keeps every
finished episode; progress in the log), then ``python -m benchmarks.graded_outcomes analyse`` (seconds; writes
``docs/results/graded-outcomes.json``).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from interp import seeds as seedmap
from interp.probes.interventions import head_ablation
from interp.simulation.agent import load_agent
from interp.simulation.rollout import RolloutEngine, records_by_condition
from interp.statistics.graded import GradedPairedFamily
from interp.statistics.inputs import CODE_NAMES
from interp.stats import SequentialPairedFamily
from specs.support import graded
from specs.support.budget import Budget
from specs.support.claims import ablation_design

AGENTS = ("checkpoints/reference-v1", "checkpoints/zoo-1000/4h-s1", "checkpoints/zoo-1000/2h-s1")
N = 200
BATCH = 10
RUNS = 100
OUTER = 20
SEED = 20261207
OUT = Path("docs/results/graded-outcomes.json")
BUDGET = Budget("benchmark", heldout_episodes=0, max_pairs=N, batch_pairs=BATCH, calibration_scenes=0,
                test_scenes=0, sweep_points=0, fuzz_examples=0)


def pool(agent_path: str, engine: RolloutEngine, progress: bool = False) -> dict:
    """The agent's paired pool: outcome arrays [N] per condition, and the A/A arm."""
    agent = load_agent(agent_path)
    conditions = {"baseline": None, **{f"ablate head {h}": head_ablation([h], n_heads=agent.n_heads)
                                       for h in range(agent.n_heads)}}
    first = seedmap.first("ablation")
    grouped = records_by_condition(engine.run(agent, range(first, first + N), conditions, progress=progress))
    aa_first = seedmap.first("aa")
    aa = engine.run(agent, range(aa_first, aa_first + N), progress=progress)
    out = {name: {"crashed": np.array([r.crashed for r in recs], bool),
                  "ttc": np.array([graded.min_ttc(r) for r in recs])} for name, recs in grouped.items()}
    out["A/A"] = {"crashed": np.array([r.crashed for r in aa], bool), "ttc": np.array([graded.min_ttc(r) for r in aa])}
    return out


def run_family(data: dict, heads: list[str], order: np.ndarray, kind: str) -> tuple[int, dict[str, str]]:
    """One sequential run on the pairs in ``order``: (episodes spent, verdict per head)."""
    if kind == "binary":
        family, key = SequentialPairedFamily({h: None for h in heads}, ablation_design(BUDGET)), "crashed"
    else:
        family, key = GradedPairedFamily({h: None for h in heads}, graded.ttc_design(BUDGET)), "ttc"
    episodes = 0
    for start in range(0, len(order), BATCH):
        if family.stopped:
            break
        idx = order[start:start + BATCH]
        active = family.active
        episodes += len(idx) * (1 + len(active))
        family.update(data["baseline"][key][idx], {h: data[h][key][idx] for h in active})
    if kind == "binary":  # the decision codes only: the verdicts' intervals cost most of the time and are not used
        verdicts = {h: CODE_NAMES.get(int(code)) or "inconclusive" for h, code in zip(family.names, family._codes)}
    else:
        verdicts = {h: family.status(h) or "inconclusive" for h in heads}
    return episodes, verdicts


def analyse_agent(data: dict) -> dict:
    heads = [name for name in data if name.startswith("ablate head")]
    rng = np.random.default_rng(SEED)
    n = len(data["baseline"]["crashed"])
    ordered = np.arange(n)
    spec = {kind: run_family(data, heads, ordered, kind) for kind in ("binary", "graded")}
    agree = {h: spec["binary"][1][h] == spec["graded"][1][h] for h in heads}

    def runs(sample: np.ndarray, count: int) -> dict:
        out = {"binary": [], "graded": [], "agree": [], "undecided_binary": [], "undecided_graded": [],
               **{f"agree {h}": [] for h in heads}}
        for _ in range(count):
            order = rng.choice(sample, size=n, replace=True)
            b, g = run_family(data, heads, order, "binary"), run_family(data, heads, order, "graded")
            out["binary"].append(b[0])
            out["graded"].append(g[0])
            out["agree"].append(all(b[1][h] == g[1][h] for h in heads))
            out["undecided_binary"].append("inconclusive" in b[1].values())
            out["undecided_graded"].append("inconclusive" in g[1].values())
            for h in heads:
                out[f"agree {h}"].append(b[1][h] == g[1][h])
        return out

    main = runs(ordered, RUNS)
    ratio = float(np.mean(main["binary"]) / np.mean(main["graded"]))
    outer = []
    for _ in range(OUTER):
        inner = runs(rng.choice(ordered, size=n, replace=True), RUNS // 10)
        outer.append(np.mean(inner["binary"]) / np.mean(inner["graded"]))
    aa = {"baseline": data["baseline"], "ablate head A": data["A/A"]}
    fp = {"binary": 0, "graded": 0}
    for _ in range(RUNS):
        order = rng.choice(ordered, size=n, replace=True)
        for kind in fp:
            fp[kind] += run_family(aa, ["ablate head A"], order, kind)[1]["ablate head A"] == "supported"
    max_episodes = n * (1 + len(heads))
    return {
        "pairs_in_pool": n, "heads": len(heads), "max_episodes": max_episodes,
        "crash_rate": {h: float(data[h]["crashed"].mean()) for h in ["baseline", *heads]},
        "mean_min_ttc": {h: float(data[h]["ttc"].mean()) for h in ["baseline", *heads]},
        "spec_order": {kind: {"episodes": spec[kind][0], "verdicts": spec[kind][1]} for kind in spec},
        "verdicts_agree": agree,
        "mean_episodes": {"binary": float(np.mean(main["binary"])), "graded": float(np.mean(main["graded"]))},
        "undecided_share": {"binary": float(np.mean(main["undecided_binary"])),
                            "graded": float(np.mean(main["undecided_graded"]))},
        "head_agree_share": {h: float(np.mean(main[f"agree {h}"])) for h in heads},
        "ratio": ratio, "ratio_ci95": [float(np.percentile(outer, 2.5)), float(np.percentile(outer, 97.5))],
        "runs_agree_share": float(np.mean(main["agree"])), "runs": RUNS, "outer": OUTER,
        "aa_false_positive": {k: v / RUNS for k, v in fp.items()}, "aa_runs": RUNS,
    }


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "analyse"
    agents = argv[1:] or list(AGENTS)
    with RolloutEngine(workers=2) as engine:
        if what == "collect":
            for path in agents:
                started = time.perf_counter()
                pool(path, engine, progress=True)
                print(f"{path}: pool of {N} pairs ready in {time.perf_counter() - started:.0f} s "
                      f"({engine.stats.simulated} simulated, {engine.stats.cached} cached so far)", flush=True)
            return 0
        results = {}
        for path in agents:
            results[path] = analyse_agent(pool(path, engine))
            print(path, json.dumps(results[path], indent=1), flush=True)
    from reports.atomic import write_files

    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_files(OUT.parent, {OUT.name: json.dumps({"design": __doc__.split("Run:")[0].strip(), "N": N, "batch": BATCH,
                                                   "results": results}, indent=1) + "\n"})
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
