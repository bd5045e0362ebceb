"""Mutation testing of the decision code with mutmut (opt-in; not part of ``.ci/run``).

    python -m benchmarks.mutation [--minutes 30] [--module stats-intervals --module claims ...] [--sample N] [--report]

What is mutated (``MODULES``): the statistics layer ``interp/statistics/*.py`` (intervals, McNemar, the sequential
test, Holm; one module per file, ``stats-intervals`` ... ``stats-design``; the README's scores are per file),
``specs/support/claims.py`` (the specs' decision rules), ``specs/support/controls.py`` (the negative controls) and,
in ``interp/train.py``, the epsilon schedule and the learning step with its target sync (``epsilon``,
``Trainer.select_actions``, ``Trainer.learn``). Each module is tested by a small targeted test subset
(``MODULES[...].tests``), never the whole suite: mutmut runs, per mutant, only the tests of that subset that
execute the mutated function.

Resumable: the work copy lives in ``.mutation/`` (git-ignored). mutmut keeps each mutant's result there, and a
rerun only runs mutants without one (a function whose source changed is run again). ``--fresh`` starts over.
``--rerun-survivors`` runs the surviving mutants again (after tests were added for them). Time budget: ``--minutes`` (default 30) of wall-clock time for the whole command; when it is spent mutmut is
interrupted (the results so far are kept) and the next run resumes. One mutmut child (``--max-children 1``): the
machine's cores are shared. ``--sample N`` runs a seeded random sample of N mutants per module instead of all
(the README states the sample). ``--report`` only prints the scores from the results so far.

Score = killed / (killed + survived), per module; timeouts count as killed (mutmut's convention); a mutant that no
test of the subset reaches counts as survived.
"""
from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / ".mutation"


@dataclasses.dataclass(frozen=True)
class Module:
    path: str  # file to mutate, relative to the project root
    tests: tuple[str, ...]  # the targeted test subset that must kill its mutants
    functions: tuple[str, ...] = ("*",)  # mutmut name patterns of the functions to mutate (after "<module>.")


MODULES = {
    # the statistics layer (interp/statistics/, behind the interp.stats front door), one module per file:
    **{f"stats-{name}": Module(f"interp/statistics/{name}.py", ("tests/test_stats.py", "tests/test_stats_decisions.py"))
       for name in ("intervals", "verdicts", "sequential", "simulation", "design")},
    "claims": Module("specs/support/claims.py", ("tests/test_spec_controls.py", "tests/test_controls_can_pass.py")),
    "controls": Module("specs/support/controls.py", ("tests/test_spec_controls.py", "tests/test_controls_can_pass.py")),
    "train": Module("interp/training/train.py", ("tests/test_train.py::test_epsilon_schedule_is_rl_agents_exponential",
                                                 "tests/test_train.py::test_actions_are_epsilon_greedy_with_the_scheduled_epsilon",
                                                 "tests/test_train.py::test_target_network_syncs_every_target_update_transitions",
                                                 "tests/test_train.py::test_one_learning_step_is_rl_agents_update"),
                    ("x_epsilon__mutmut_*", "xǁTrainerǁselect_actions__mutmut_*", "xǁTrainerǁlearn__mutmut_*")),
}
KILLED = {1, 3, 36, -24, 24, 152, 255}  # mutmut exit codes: test failure, internal error, timeouts
SURVIVED = {0, 5, 33}  # a test run that passed, or no test of the subset runs the function (not covered)


def _dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _config(modules: list[str]) -> str:
    tests = sorted({t for name in modules for t in MODULES[name].tests if (ROOT / t.split("::")[0]).exists()})
    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["interp", "specs"]',
        f"only_mutate = {json.dumps([MODULES[name].path for name in MODULES])}",
        'also_copy = ["conftest.py", "fixtures", "reports", "checkpoints", "tests", "benchmarks"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q"]',
        'process_isolation = "forkserver"',  # torch is not fork-safe after use
        "timeout_multiplier = 5.0",
        "use_git_change_detection = false", "",
    ])


def sync_workdir(modules: list[str], fresh: bool) -> None:
    """Copy the working tree (tracked and untracked, not ignored files) into WORKDIR; keep mutmut's results."""
    if fresh and WORKDIR.exists():
        shutil.rmtree(WORKDIR)
    WORKDIR.mkdir(exist_ok=True)
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src, dst = ROOT / rel, WORKDIR / rel
        if not src.is_file():
            continue
        if not dst.exists() or dst.stat().st_mtime != src.stat().st_mtime:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    pyproject = (ROOT / "pyproject.toml").read_text().split("\n[tool.mutmut]")[0]
    (WORKDIR / "pyproject.toml").write_text(pyproject + _config(modules))


def results() -> dict[str, int | None]:
    """mutant name -> mutmut exit code (None: not run yet), from the .meta files in WORKDIR/mutants."""
    out: dict[str, int | None] = {}
    for meta in (WORKDIR / "mutants").rglob("*.py.meta"):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def module_mutants(name: str, all_results: dict[str, int | None]) -> list[str]:
    module = MODULES[name]
    prefix = _dotted(module.path) + "."
    return sorted(k for k in all_results if k.startswith(prefix)
                  and any(fnmatch.fnmatchcase(k[len(prefix):], f) for f in module.functions))


def selected(name: str, all_results: dict[str, int | None], sample: int | None, seed: int) -> list[str]:
    names = module_mutants(name, all_results)
    if sample is not None and sample < len(names):
        names = sorted(random.Random(f"{seed}:{name}").sample(names, sample))
    return names


def _mutmut(args: list[str], deadline: float) -> int:
    exe = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(exe), *args], cwd=WORKDIR, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        print("time budget spent or interrupted: stopping mutmut (results so far are kept; rerun to resume)",
              flush=True)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()


def report(modules: list[str], sample: int | None, seed: int) -> dict[str, dict]:
    all_results = results()
    table = {}
    for name in modules:
        names = selected(name, all_results, sample, seed)
        codes = [all_results[n] for n in names]
        killed = sum(c in KILLED for c in codes)
        survived = [n for n, c in zip(names, codes) if c in SURVIVED]
        other = sum(c is not None and c not in KILLED | SURVIVED for c in codes)
        done = killed + len(survived)
        table[name] = {"file": MODULES[name].path, "mutants": len(module_mutants(name, all_results)),
                       "selected": len(names), "run": done, "not_run": sum(c is None for c in codes),
                       "killed": killed, "survived": len(survived), "other": other,
                       "score": killed / done if done else None, "survivors": survived}
        score = f"{100 * killed / done:.1f} %" if done else "-"
        print(f"{name:9s} {MODULES[name].path:28s} selected {len(names):4d} of {table[name]['mutants']:4d}; "
              f"run {done:4d}: killed {killed:4d}, survived {len(survived):3d}, other {other} -> {score}")
        for n in survived:
            print(f"    survived: {n}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="module(s) to mutate (default: all)")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of this run (default 30)")
    parser.add_argument("--sample", type=int, default=None, help="a seeded random sample of N mutants per module")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results and start over")
    parser.add_argument("--report", action="store_true", help="only print the scores of the results so far")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="run the surviving mutants again (after adding tests for them)")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON")
    args = parser.parse_args(argv)
    modules = args.module or list(MODULES)
    deadline = time.monotonic() + 60 * args.minutes
    if not args.report:
        sync_workdir(modules, args.fresh)
        pending = None
        if (WORKDIR / "mutants").exists():
            all_results = results()
            redo = {None} | (SURVIVED if args.rerun_survivors else set())
            pending = [n for name in modules for n in selected(name, all_results, args.sample, args.seed)
                       if all_results[n] in redo]
        if pending is None or (not pending and not any(module_mutants(m, results()) for m in modules)):
            # first run: mutmut generates every mutant and maps tests to functions; run the chosen ones
            patterns = [f"{_dotted(MODULES[m].path)}.{f}" for m in modules for f in MODULES[m].functions]
            if args.sample is not None:  # generate only (an unmatched name), then sample from what exists
                _mutmut(["run", "--max-children", "1", "hypodrive.generate_only"], deadline)
                all_results = results()
                pending = [n for name in modules for n in selected(name, all_results, args.sample, args.seed)
                           if all_results[n] is None]
            else:
                pending = patterns
        if pending:
            print(f"running {len(pending)} mutants (budget {args.minutes:g} min)", flush=True)
            _mutmut(["run", "--max-children", "1", *pending], deadline)
        else:
            print("every selected mutant has a result (use --fresh to start over)")
    table = report(modules, args.sample, args.seed)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
