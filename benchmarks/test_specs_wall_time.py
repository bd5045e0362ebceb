"""Wall time of ``pytest specs/`` on the bundled reference, cold (an empty rollout cache) then warm (the same
cache again), in one pytest run so the two share the machine's state.

Each run is a subprocess (the documented way of running the specs) with its own ``HYPODRIVE_CACHE_DIR`` under
``tmp_path``; ``HYPODRIVE_BENCH_PROFILE`` picks the profile (default ``default``, the one findings come from;
``quick`` for the CI profile) and ``HYPODRIVE_BENCH_WORKERS`` the pytest-xdist workers (default 2). A
measurement, not a test: the specs' verdicts are whatever they are (refuted specs exit 1), only the run's
completion is required. Wall-clock figures need otherwise idle cores.
Run: python -m pytest benchmarks/test_specs_wall_time.py --benchmark-only -s
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = os.environ.get("HYPODRIVE_BENCH_PROFILE", "default")
WORKERS = int(os.environ.get("HYPODRIVE_BENCH_WORKERS", "2"))


def _run_specs(cache: Path, report: Path) -> float:
    command = [sys.executable, "-m", "pytest", "specs/", f"--profile={PROFILE}", "-q", "-p", "no:randomly",
               f"--report-dir={report}"]
    if WORKERS > 1:
        command += ["-n", str(WORKERS), "--dist", "loadfile"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "HYPODRIVE_CACHE_DIR": str(cache)},
                          capture_output=True, text=True, timeout=3 * 3600)
    elapsed = time.perf_counter() - start
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]  # 1: refuted specs, as expected
    assert json.loads((report / "evidence.json").read_text())["specs"], "the run wrote no evidence"
    return elapsed


def _verdicts(path: Path) -> dict[str, str]:
    return {spec["nodeid"]: spec["verdict"] for spec in json.loads(path.read_text())["specs"]}


def test_pytest_specs_cold_then_warm(benchmark, tmp_path):
    cache = tmp_path / "cache"
    cold = _run_specs(cache, tmp_path / "cold")
    warm = benchmark.pedantic(lambda: _run_specs(cache, tmp_path / "warm"), rounds=1, iterations=1)
    cold_verdicts, warm_verdicts = (_verdicts(tmp_path / name / "evidence.json") for name in ("cold", "warm"))
    assert cold_verdicts == warm_verdicts  # the cache changes the time, never the verdicts (xdist's order may)
    benchmark.extra_info.update({"profile": PROFILE, "workers": WORKERS, "cold_s": round(cold, 1),
                                 "warm_s": round(warm, 1), "specs": len(cold_verdicts)})
    print(f"\npytest specs/ --profile={PROFILE} with {WORKERS} worker(s): cold {cold:.0f} s, warm {warm:.0f} s "
          f"({len(cold_verdicts)} specs)")
