"""Mutation testing of the decision code with mutmut (opt-in; not part of ``.ci/run``).

    python -m benchmarks.mutation [--minutes 30] [--module stats-intervals --module claims ...] [--sample N] [--report]

What is mutated (``MODULES``): the statistics layer ``interp/statistics/*.py`` (intervals, McNemar, the sequential
test, Holm; one module per file, ``stats-intervals`` ... ``stats-design``; docs/validation/mutation.md gives the scores per file),
``specs/support/claims.py`` (the specs' decision rules), ``specs/support/controls.py`` (the negative controls) and,
in ``interp/training/train.py``, the epsilon schedule and the learning step with its target sync (``epsilon``,
``Trainer.select_actions``, ``Trainer.learn``). Each module is tested by a small targeted test subset
(``MODULES[...].tests``), never the whole suite: mutmut runs, per mutant, only the tests of that subset that
execute the mutated function.

Resumable: the work copy lives in ``.mutation/`` (git-ignored). mutmut keeps each mutant's result there, and a
rerun only runs mutants without one (a function whose source changed is run again). This holds for one module selection: a
call with another ``--module`` set rebuilds the work copy, and mutmut drops the results stored there, so score
module groups in one call or keep each call's ``--json`` (``docs/validation/mutation-results-2.json`` merges two). ``--fresh`` starts over.
``--rerun-survivors`` runs the surviving mutants again (after tests were added for them). Time budget: ``--minutes`` (default 30) of wall-clock time for the whole command; when it is spent mutmut is
interrupted (the results so far are kept) and the next run resumes. One mutmut child (``--max-children 1``): the
machine's cores are shared. ``--sample N`` runs a seeded random sample of N mutants per module instead of all
(docs/validation/mutation.md states the sample). ``--report`` only prints the scores from the results so far.

A fresh sample that reproduces (``--sample-file benchmarks/mutation-sample.json``): the file, committed before
the run, holds the seed and the round size. Each module's mutants are put in a random order drawn from that seed;
the run scores them round by round (the next ``round`` mutants of every module per mutmut call), so whatever the
time budget, each module's scored set is a prefix of its random order: a uniform random sample, never "the fast
ones first" (mutmut orders the mutants of one call by their tests' run time). Each score comes with its 95 %
Wilson interval; ``--json`` writes the per-module and pooled results.

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
       for name in ("inputs", "intervals", "verdicts", "sequential", "simulation", "design")},
    "claims": Module("specs/support/claims.py", ("tests/test_spec_controls.py", "tests/test_controls_can_pass.py",
                                                   "tests/test_claims_known_answers.py")),
    "controls": Module("specs/support/controls.py", ("tests/test_spec_controls.py", "tests/test_controls_can_pass.py",
                                                     "tests/test_controls_known_answers.py")),
    # the writer's behaviour tests in this process (not the source scan, which reads the mutated copies of other
    # modules too, nor the fault tests that write from a child process, where mutmut's trampoline cannot run):
    "atomic": Module("interp/atomic.py", tuple(f"tests/test_atomic_writes.py::test_{name}" for name in (
        "a_checkpoint_save_that_fails_half_way_leaves_the_earlier_checkpoint_whole",
        "the_check_turns_red_on_a_save_that_writes_in_place",
        "the_error_says_what_could_not_be_written_and_how_to_fix_it",
        "a_staged_write_that_is_interrupted_changes_nothing",
        "folders_that_do_not_exist_yet_are_created_with_their_parents",
        "an_error_without_an_errno_quotes_its_own_text_and_names_what_and_how",
        "an_error_with_an_errno_names_it")) + tuple(f"tests/test_faults.py::test_{name}" for name in (
        "a_report_on_a_real_full_disk_fails_clearly_and_leaves_the_earlier_report_whole",
        "a_report_whose_write_call_hits_enospc_fails_clearly_and_leaves_the_earlier_report_whole",
        "a_failed_merge_names_its_own_out_option_not_pytests",
        "the_plugin_rescues_the_evidence_in_the_temp_folder")) + ("tests/test_cli_outputs.py",)),
    "train": Module("interp/training/train.py", ("tests/test_train.py::test_epsilon_schedule_is_rl_agents_exponential",
                                                 "tests/test_train.py::test_actions_are_epsilon_greedy_with_the_scheduled_epsilon",
                                                 "tests/test_train.py::test_target_network_syncs_every_target_update_transitions",
                                                 "tests/test_train.py::test_one_learning_step_is_rl_agents_update",
                                                 "tests/test_train.py::test_loss_decreases_on_a_fixed_batch",
                                                 "tests/test_train_pieces.py"),
                    ("x_epsilon__mutmut_*", "xǁTrainerǁselect_actions__mutmut_*", "xǁTrainerǁlearn__mutmut_*",
                     "x_bellman_loss__mutmut_*", "xǁReplayMemoryǁ*__mutmut_*")),
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


def permutation(name: str, all_results: dict[str, int | None], seed: int) -> list[str]:
    """The module's mutants in the random order drawn from ``seed`` (the same order on every run)."""
    names = module_mutants(name, all_results)
    random.Random(f"{seed}:{name}").shuffle(names)
    return names


def scored_prefix(name: str, all_results: dict[str, int | None], seed: int) -> list[str]:
    """The longest prefix of the module's random order whose mutants all have a result: the scored sample."""
    prefix = []
    for n in permutation(name, all_results, seed):
        if all_results[n] is None:
            break
        prefix.append(n)
    return prefix


def wilson(killed: int, n: int) -> list[float] | None:
    """95 % Wilson score interval of killed / n (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    return [float(b) for b in proportion_confint(killed, n, alpha=0.05, method="wilson")] if n else None


def run_rounds(modules: list[str], seed: int, round_size: int, deadline: float) -> None:
    """Score the random orders round by round until every mutant has a result or the budget is spent."""
    if not (WORKDIR / "mutants").exists() or not any(module_mutants(m, results()) for m in modules):
        _mutmut(["run", "--max-children", "1", "hypodrive.generate_only"], deadline)
    k = 0
    while time.monotonic() < deadline:
        all_results = results()
        orders = {m: permutation(m, all_results, seed) for m in modules}
        if all(len(order) <= k * round_size for order in orders.values()):
            break
        batch = [n for order in orders.values() for n in order[k * round_size:(k + 1) * round_size]
                 if all_results[n] is None]
        if batch:
            print(f"round {k}: {len(batch)} mutants", flush=True)
            _mutmut(["run", "--max-children", "1", *batch], deadline)
        k += 1


def report_sample(modules: list[str], seed: int) -> dict:
    """Per-module and pooled scores of the scored prefixes, each with its 95 % Wilson interval."""
    all_results = results()
    table: dict = {"seed": seed, "modules": {}, "groups": {}}
    for name in modules:
        names = scored_prefix(name, all_results, seed)
        codes = [all_results[n] for n in names]
        killed = sum(c in KILLED for c in codes)
        survived = [n for n, c in zip(names, codes) if c in SURVIVED]
        n = killed + len(survived)
        table["modules"][name] = {"file": MODULES[name].path, "mutants": len(permutation(name, all_results, seed)),
                                  "scored": n, "other": len(names) - n, "killed": killed, "survived": len(survived),
                                  "score": killed / n if n else None, "wilson95": wilson(killed, n),
                                  "survivors": survived}
    groups = {"statistics layer": [m for m in modules if m.startswith("stats-")],
              "decision rules": [m for m in modules if m == "claims"],
              "controls": [m for m in modules if m == "controls"],
              "trainer": [m for m in modules if m == "train"], "all": modules}
    for group, members in groups.items():
        if not members:
            continue
        killed = sum(table["modules"][m]["killed"] for m in members)
        n = sum(table["modules"][m]["scored"] for m in members)
        table["groups"][group] = {"modules": members, "scored": n, "killed": killed,
                                  "score": killed / n if n else None, "wilson95": wilson(killed, n)}
    for name, row in [*table["modules"].items(), *table["groups"].items()]:
        ci = row["wilson95"]
        print(f"{name:17s} scored {row['scored']:4d}: killed {row['killed']:4d} -> "
              + (f"{100 * row['score']:.1f} % (95 % Wilson {100 * ci[0]:.1f}-{100 * ci[1]:.1f} %)" if ci else "-"))
    return table


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
    parser.add_argument("--sample-file", type=Path,
                        help="JSON with the committed seed and round size of a fresh random sample (see above)")
    args = parser.parse_args(argv)
    modules = args.module or list(MODULES)
    deadline = time.monotonic() + 60 * args.minutes
    if args.sample_file:
        spec = json.loads(args.sample_file.read_text())
        if not args.report:
            sync_workdir(modules, args.fresh)
            run_rounds(modules, int(spec["seed"]), int(spec["round"]), deadline)
        table = report_sample(modules, int(spec["seed"]))
        if args.json:
            from reports.atomic import CLI_REMEDY, write_files

            write_files(args.json.parent, {args.json.name: json.dumps(table, indent=2) + "\n"}, remedy=CLI_REMEDY)
        return 0
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
