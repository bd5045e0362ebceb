"""Measure head-role rates: how often each condition of tests/test_roles.py gets (or, planted, resolves) its role.

Usage: python benchmarks/role_rates.py TRIES HEADS[,HEADS] "CONDITION[;CONDITION]" [RESULTS.jsonl] (run from the
project root; conditions as named in tests/test_roles.py NAMES and TRAINED_NAMES; TRIES "full" = RATE_TRIES).
Prints hits/tries, the 95 % Wilson interval and the wall time per line; with RESULTS.jsonl, also appends each line
there and skips the (heads, condition, tries) already in it, so an interrupted run resumes where it stopped."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, ".")
import tests.test_roles as T  # noqa: E402
from interp import role_selectivity as RS  # noqa: E402
from reports.atomic import CLI_REMEDY, write_files  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402


def main(argv: list[str]) -> None:
    n = RS.RATE_TRIES if argv[0] == "full" else int(argv[0])
    results = Path(argv[3]) if len(argv) > 3 else None
    done = set()
    if results is not None and results.exists():
        done = {(r["heads"], r["condition"], r["tries"]) for r in map(json.loads, results.read_text().splitlines())}
    cal = T.calibration_material()
    for heads in (int(h) for h in argv[1].split(",")):
        for name in argv[2].split(";"):
            if (heads, name, n) in done:
                continue
            t = time.time()
            hits, tries = T._run(cal, heads, name, n)
            lo, hi = proportion_confint(hits, tries, 0.05, "wilson")
            row = {"heads": heads, "condition": name, "tries": tries, "hits": hits, "wilson_low": round(lo, 4),
                   "wilson_high": round(hi, 4), "alpha": RS.ALPHA, "wall_s": round(time.time() - t)}
            print(f"{heads} heads | {name} | {hits}/{tries} | Wilson 95% {lo:.3f}-{hi:.3f} | {row['wall_s']}s",
                  flush=True)
            if results is not None:  # the whole file rewritten atomically: a torn run loses at most this line
                previous = results.read_text() if results.exists() else ""
                write_files(results.parent, {results.name: previous + json.dumps(row) + "\n"}, remedy=CLI_REMEDY)


if __name__ == "__main__":
    main(sys.argv[1:])
