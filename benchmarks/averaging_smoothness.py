"""Does the weight average of a run's last snapshots drive like them? A descriptive, paired look on spent seeds.

    python -m benchmarks.averaging_smoothness --run runs/zoo/4h-s1 --k 4 --out benchmarks/results/averaging-4h-s1.json

The run's last ``K`` snapshots and their uniform weight average (``interp.training.averaging``) are rolled out
greedily on the same seeds: by default the 500 validation seeds 400200..400699, which the reference search's
stage 2 spent on its choice and no later choice uses. No choice is made here (stage 3's K and rule are fixed in
code before this runs); the output shows each agent's collision and arrival rates with Wilson 95 % intervals,
the spread of the snapshots' rates, and the average against the run's last snapshot, paired per seed (exact
McNemar, Newcombe interval of the difference).
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from interp.seeds import episode_seeds
from interp.simulation.agent import load_agent
from interp.simulation.rollout import RolloutEngine
from interp.stats import PairedCounts, mcnemar_exact, wilson_interval
from interp.training.averaging import average_files


def _rates(records) -> dict:
    n = len(records)
    crashes, arrivals = sum(r.crashed for r in records), sum(r.arrived for r in records)
    return {"n": n, "collision_rate": crashes / n, "collision_ci95": list(wilson_interval(crashes, n)),
            "arrival_rate": arrivals / n, "arrival_ci95": list(wilson_interval(arrivals, n))}


def _paired(base, new, key: str) -> dict:
    b = [getattr(r, key) for r in base]
    t = [getattr(r, key) for r in new]
    counts = PairedCounts(both=sum(x and y for x, y in zip(b, t)), baseline_only=sum(x and not y for x, y in zip(b, t)),
                          treatment_only=sum(y and not x for x, y in zip(b, t)),
                          neither=sum(not x and not y for x, y in zip(b, t)))
    result = mcnemar_exact(counts)
    return {"baseline_only": counts.baseline_only, "average_only": counts.treatment_only,
            "difference": result.difference, "ci95": list(result.ci), "p_exact_mcnemar": result.p_value}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished training run folder (with snapshots/)")
    parser.add_argument("--k", type=int, default=4, help="snapshots to average (default 4)")
    parser.add_argument("--offset", type=int, default=200, help="validation seed offset (default 200: spent seeds)")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    snaps = sorted((int(m.group(1)), p) for p in (args.run / "snapshots").glob("episode-*.pt")
                   if (m := re.fullmatch(r"episode-(\d+)\.pt", p.name)))[-args.k:]
    seeds = episode_seeds("validation", args.episodes, args.offset)
    agents = {f"episode-{e}": load_agent(p) for e, p in snaps}
    agents[f"average-last-{args.k}"] = average_files([p for _, p in snaps])
    records, started = {}, time.perf_counter()
    with RolloutEngine(workers=args.workers, cache="default") as engine:
        for name, agent in agents.items():
            records[name] = engine.run(agent, seeds)
            print(name, json.dumps(_rates(records[name])), flush=True)
    last, avg = f"episode-{snaps[-1][0]}", f"average-last-{args.k}"
    snapshot_rates = [_rates(records[f"episode-{e}"])["collision_rate"] for e, _ in snaps]
    result = {"run": str(args.run), "k": args.k, "seeds": f"{seeds[0]}..{seeds[-1]}",
              "agents": {name: {"identity": agents[name].identity, **_rates(r)} for name, r in records.items()},
              "snapshot_collision_spread": max(snapshot_rates) - min(snapshot_rates),
              "average_vs_last_snapshot": {key: _paired(records[last], records[avg], key)
                                           for key in ("crashed", "arrived")},
              "wall_s": round(time.perf_counter() - started, 1)}
    from reports.atomic import CLI_REMEDY, write_files

    write_files(args.out.parent, {args.out.name: json.dumps(result, indent=1) + "\n"}, remedy=CLI_REMEDY)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
