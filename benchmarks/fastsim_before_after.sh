#!/bin/bash
# Interleaved before/after runs of benchmarks/test_fastsim.py: six runs each, the order alternating per round
# (before, after; after, before; ...), so that a load that comes and goes weighs on both alike.
# Usage: benchmarks/fastsim_before_after.sh BEFORE_CHECKOUT AFTER_CHECKOUT [LOG]   (e.g. two git worktrees)
# Then:  python benchmarks/fastsim_before_after.py LOG   (the medians of the speed-ups, before and after)
set -u
BEFORE=$1; AFTER=$2; LOG=${3:-fastsim_before_after.log}
PY=${PYTHON:-python}
for i in 1 2 3 4 5 6; do
  sides="before after"; [ $((i % 2)) = 0 ] && sides="after before"
  for side in $sides; do
    dir=$BEFORE; [ "$side" = after ] && dir=$AFTER
    echo "=== run $i $side $(date -u +%H:%M:%S)" >> "$LOG"
    (cd "$dir" && nice -n 10 "$PY" -m pytest benchmarks/test_fastsim.py -s -q -p no:xdist 2>&1 \
      | grep -E "steps/s|agent:|always IDLE:|passed|failed|Error") >> "$LOG"
  done
done
echo DONE >> "$LOG"
