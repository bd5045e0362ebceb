"""Medians of ``benchmarks/fastsim_before_after.sh``'s runs: the speed-ups (agent, always IDLE) and the fast
simulator's steps/s, before and after, and their ratios (after / before). The speed-up is the figure to
compare: plain and fast episodes interleave within each run, so the load weighs on both alike.
Hand-written: a few regular expressions over the log lines the benchmark prints."""
from __future__ import annotations

import re
import statistics
import sys


def parse(path: str) -> list[dict]:
    runs: list[dict] = []
    for line in open(path, encoding="utf-8"):
        header = re.match(r"=== run (\d+) (\w+)", line)
        if header:
            runs.append({"side": header.group(2), "run": int(header.group(1))})
            continue
        agent = re.search(r"plain ([\d.]+) steps/s, fastsim ([\d.]+) steps/s = ([\d.]+)x.*load average ([\d.]+)", line)
        if agent and runs:
            runs[-1].update(fast=float(agent.group(2)), agent_x=float(agent.group(3)), load=float(agent.group(4)))
        idle = re.search(r"always IDLE: .* = ([\d.]+)x steps/s", line)
        if idle and runs:
            runs[-1]["idle_x"] = float(idle.group(1))
    return [run for run in runs if "idle_x" in run and "agent_x" in run]


def main(path: str) -> None:
    runs = parse(path)
    medians = {}
    for side in ("before", "after"):
        mine = [run for run in runs if run["side"] == side]
        print(f"{side}: {len(mine)} runs")
        for key in ("agent_x", "idle_x", "fast", "load"):
            values = [run[key] for run in mine]
            medians[side, key] = statistics.median(values)
            print(f"  {key}: median {medians[side, key]:.2f}  runs {values}")
    for key in ("agent_x", "idle_x", "fast"):
        print(f"{key}: after / before medians = {medians['after', key] / medians['before', key]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fastsim_before_after.log")
