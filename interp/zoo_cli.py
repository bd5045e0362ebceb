"""``python -m interp zoo run`` and ``python -m interp zoo over-training``: the specs on many agents, aggregated.

``zoo run`` runs ``pytest specs/`` once per agent (a subprocess each, as ``--baseline-checkpoint`` does), one
after another, all sharing the rollout cache (``$HYPODRIVE_CACHE_DIR`` or ``.hypodrive-cache``; episodes and role
maps are keyed by checkpoint identity, so nothing is simulated twice). Each agent's report goes to
``OUT/agents/<name>/`` (``evidence.json``, ``index.html``, ``pytest.log``, ``zoo_run.json``). The command is
resumable: an agent whose ``evidence.json`` exists for the same checkpoint identity, profile and spec selection
is skipped. Then ``reports.zoo.aggregate`` aggregates the evidence files into ``OUT/aggregate.json`` +
``OUT/index.html``.

``zoo over-training --run RUN_DIR`` does the same over the snapshots one training run saved
(``RUN_DIR/snapshots/episode-N.pt``, plus the final ``agent.pt``), rollout-free specs by default, and draws
verdicts, roles and each claim's key effect against training episodes (``reports.zoo.over_training``).

This module is the CLI glue: the counting lives in ``reports.zoo.aggregate``, the drawing in ``reports``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from interp.atomic import CLI_REMEDY, write_file

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = PROJECT_ROOT / "checkpoints"
# Bundled references beside the zoo. ``reference`` is zoo member 4h-s3 (the same identity: run once, counted
# once); ``reference-v1`` and ``reference-2h`` are the earlier seed-0 runs (reference-early: a snapshot of v1's run).
REFERENCES = ("reference", "reference-v1", "reference-2h")
PROFILES = ("quick", "default", "full")
ROLLOUT_FREE = "not behavior"
_SNAPSHOT = re.compile(r"episode-(\d+)\.pt$")


# ------------------------------------------------------------------------------------------ the parser


def add_parser(sub) -> None:
    """Add ``zoo`` (with ``run`` and ``over-training``) to ``python -m interp``'s subcommands."""
    z = sub.add_parser("zoo", help="specs on a zoo of independently trained agents: what holds for the architecture",
                       description="Run the specs on many agents and aggregate: in how many independent training "
                                   "runs does each claim hold (k of the applicable agents, undecided ones as bounds; an exact "
                                   "95 % CI per head count and budget, over members that share no seed)?")
    zs = z.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")

    r = zs.add_parser("run", help="the specs on every bundled zoo agent, then the aggregate report",
                      description="One pytest subprocess per agent (sharing the rollout cache), resumable: an agent "
                                  "whose evidence.json exists for the same identity, profile and spec selection is "
                                  "skipped. Writes OUT/agents/<name>/ per agent and OUT/aggregate.json + "
                                  "OUT/index.html: claims x agents verdicts, k of n applicable with undecided agents as "
                                  "bounds, Clopper-Pearson CIs per stratum (head count x budget, independent "
                                  "members), roles per agent, per-head effects by role.")
    r.add_argument("--profile", choices=PROFILES, default="quick", help="spec budget (default quick)")
    r.add_argument("--agents", nargs="+", metavar="AGENT", default=None,
                   help="zoo member names (4h-s1), bundled agents (reference) or checkpoint paths "
                        "(default: every bundled zoo member)")
    r.add_argument("--with-references", action="store_true",
                   help=f"also the bundled reference agents ({', '.join(REFERENCES)}); an agent already covered "
                        "(reference is zoo member 4h-s3: the same identity) is run and counted once")
    r.add_argument("--no-zoo", action="store_true", help="only --agents / --with-references, not the bundled zoo")
    _common(r, default_marks=None)
    r.add_argument("--out", type=Path, default=None, help="output folder (default report/zoo-<profile>)")

    t = zs.add_parser("train", help="train every zoo member not yet bundled (resumable; several processes may share "
                                    "the list), then bundle it",
                      description="Train the zoo members (interp/training/zoo.py: 8 with 4 heads, 2 with 2, 2 with 8, "
                                  "each on its own seed) one after another, each resumable from its resume file, and "
                                  "bundle each into checkpoints/zoo/<name>/ with validation figures. Run it in two "
                                  "terminals to use two cores: members are claimed by lock files.")
    t.add_argument("--members", nargs="+", metavar="NAME", default=None, help="only these members (e.g. 4h-s1)")
    t.add_argument("--episodes", type=int, default=None, help="episodes per member (default: the zoo's EPISODES)")
    t.add_argument("--reverse", action="store_true", help="take the members in reverse order (for a second process)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    zs.add_parser("status", help="which members are bundled, training (episodes done) or not started",
                  description="One line per zoo member: bundled at the zoo's budget (with its identity and "
                              "validation collision rate), training or stopped (episodes done so far; `zoo train` "
                              "resumes it), or not started.")

    b = zs.add_parser("bundle", help="(re)bundle finished zoo runs into checkpoints/zoo/<name>/",
                      description="Copy a finished run's weights and configs (no optimizer state) with its metadata "
                                  "and validation figures into checkpoints/zoo/<name>/.")
    b.add_argument("members", nargs="+", metavar="NAME", help="zoo member names (e.g. 4h-s1)")

    h = zs.add_parser("heldout", help="every bundled zoo member on the 500 held-out seeds (after the reference choice)",
                      description="Greedy evaluation of every bundled zoo member (and the bundled references) on the "
                                  "held-out seeds 0..N-1, the reference agent's evaluation. Choices are made on validation "
                                  "seeds only; run this after them. Writes checkpoints/zoo/heldout.json (atomically) "
                                  "and prints a table; episodes are cached.")
    h.add_argument("--episodes", type=int, default=500, help="held-out episodes per agent (default 500)")
    h.add_argument("--workers", type=int, default=1, help="environment worker processes (default 1)")
    h.add_argument("--out", type=Path, default=None, help="JSON to write (default checkpoints/zoo/heldout.json)")

    o = zs.add_parser("over-training", help="the specs over one training run's snapshots: verdicts vs episodes",
                      description="Run the specs on every snapshot of a training run (RUN_DIR/snapshots/"
                                  "episode-N.pt, written every 250 episodes, plus the final agent.pt), rollout-free "
                                  "specs unless --all, and draw verdicts, head roles and each claim's key effect "
                                  "against training episodes (OUT/over_training.png, index.html, over_training.json).")
    o.add_argument("--run", type=Path, required=True, metavar="RUN_DIR", help="a training run folder")
    o.add_argument("--profile", choices=PROFILES, default="quick", help="spec budget (default quick)")
    o.add_argument("--all", action="store_true", help="all specs, the behavioural ones (rollouts) too")
    _common(o, default_marks=ROLLOUT_FREE)
    o.add_argument("--out", type=Path, default=None, help="output folder (default RUN_DIR/over-training-<profile>)")


def _common(p: argparse.ArgumentParser, *, default_marks: str | None) -> None:
    p.add_argument("-m", "--markers", dest="markers", default=None, metavar="EXPR",
                   help="pytest -m expression selecting the specs (default: "
                        + ("all specs" if default_marks is None else f"{default_marks!r}") + ")")
    p.add_argument("-k", dest="keyword", default=None, metavar="EXPR", help="pytest -k expression")
    p.add_argument("--rerun", action="store_true", help="run every agent again even if its evidence exists")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="the shared rollout cache (default $HYPODRIVE_CACHE_DIR or .hypodrive-cache)")
    p.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for each pytest run (repeatable), e.g. --pytest-arg=--seed-offset=7")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------------------------ agents


def _load_agent(path: Path):
    try:
        from interp.simulation.agent import load_agent
    except ImportError:  # before the layered package
        from interp.agent import load_agent
    return load_agent(path)


def _bundled_zoo() -> list[Path]:
    try:
        from interp.training import zoo
    except ImportError:
        from interp import zoo
    return zoo.bundled()


def resolve_agent(name: str) -> Path:
    """A zoo member's name, a bundled agent's name or a checkpoint path -> its path."""
    for candidate in (Path(name), CHECKPOINTS / "zoo" / name, CHECKPOINTS / name):
        if candidate.exists():
            return candidate.resolve()
    from interp.errors import HypodriveError

    raise HypodriveError(f"no agent {name!r}: not a path, nor checkpoints/zoo/{name}, nor checkpoints/{name}")


def agent_name(path: Path) -> str:
    """The folder name of a bundled agent, the stem of a checkpoint file (``episode-250``)."""
    if path.is_file() and path.stem in ("agent", "latest"):
        return path.parent.name
    return path.stem if path.is_file() else path.name


def _bundled_identity(path: Path) -> str | None:
    """The identity a bundled folder's metadata.json records (None for a bare checkpoint file: no cheap way to
    know it without loading the weights)."""
    meta = (path if path.is_dir() else path.parent) / "metadata.json"
    try:
        return json.loads(meta.read_text()).get("identity")
    except (OSError, ValueError):
        return None


def zoo_agents(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """(name, path) of every agent ``zoo run`` covers, in order: zoo members, references, then --agents. An agent
    met twice (the same path, or a bundled folder with the same identity, e.g. ``reference`` = zoo member 4h-s3)
    is covered once, under its first name."""
    paths = [] if args.no_zoo else list(_bundled_zoo())
    if args.with_references:
        paths += [CHECKPOINTS / r for r in REFERENCES]
    paths += [resolve_agent(a) for a in args.agents or []]
    out, seen, names = [], set(), set()
    for path in paths:
        path = Path(path).resolve()
        key = _bundled_identity(path) or path  # one agent: its identity where the folder records it, else its path
        if key in seen:
            continue
        seen.add(key)
        name, k = agent_name(path), 1
        while name in names:  # two agents with one folder name must not share a report folder
            k += 1
            name = f"{agent_name(path)}_{k}"
        names.add(name)
        out.append((name, path))
    return out


def snapshots(run: Path) -> list[tuple[int, Path]]:
    """(episode, path) of a training run's snapshots, in training order; the final ``agent.pt`` too when it is
    not the last snapshot (its episode count from ``history.json``)."""
    found = []
    for path in (run / "snapshots").glob("episode-*.pt"):
        match = _SNAPSHOT.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    final = run / "agent.pt"
    if final.is_file():
        try:
            episodes = len(json.loads((run / "history.json").read_text()))
        except (OSError, ValueError):
            episodes = None
        if episodes is not None and (not found or episodes > found[-1][0]):
            found.append((episodes, final))
    return found


# ------------------------------------------------------------------------------------------ one agent


def selection(args: argparse.Namespace, default_marks: str | None) -> dict:
    """What the per-agent pytest runs select (recorded with each run; a rerun with another selection reruns)."""
    marks = args.markers if args.markers is not None else default_marks
    return {"profile": args.profile, "markers": marks, "keyword": args.keyword, "pytest_args": list(args.pytest_arg)}


def pytest_command(checkpoint: Path, out: Path, sel: dict) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "specs/", "--checkpoint", str(checkpoint), "--profile", sel["profile"],
           "--report-dir", str(out), "-q", "-rN"]
    if sel["markers"]:
        cmd += ["-m", sel["markers"]]
    if sel["keyword"]:
        cmd += ["-k", sel["keyword"]]
    return cmd + list(sel["pytest_args"])


def up_to_date(out: Path, identity: str, sel: dict) -> bool:
    """True when ``out`` holds a finished run of these specs on this checkpoint identity."""
    from reports.schema import EvidenceError, load

    try:
        record = json.loads((out / "zoo_run.json").read_text())
        evidence = load(out / "evidence.json")
    except (OSError, ValueError, EvidenceError):
        return False
    run = evidence["run"]
    return (run["checkpoint"]["identity"] == identity and run.get("profile") == sel["profile"]
            and record.get("identity") == identity and record.get("selection") == sel)


def run_agent(name: str, checkpoint: Path, out: Path, sel: dict, *, env: dict, rerun: bool = False) -> dict:
    """Run the specs on one agent in a subprocess (unless already done); returns what happened."""
    identity = _load_agent(checkpoint).identity
    if not rerun and up_to_date(out, identity, sel):
        return {"name": name, "status": "skipped", "identity": identity, "seconds": 0.0}
    out.mkdir(parents=True, exist_ok=True)
    (out / "evidence.json").unlink(missing_ok=True)  # a stale file must not pass for this run's
    cmd = pytest_command(checkpoint, out, sel)
    started = time.time()
    with open(out / "pytest.log", "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n\n")
        log.flush()
        code = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              check=False).returncode
    seconds = time.time() - started
    ok = (out / "evidence.json").is_file()
    record = {"name": name, "checkpoint": str(checkpoint), "identity": identity, "selection": sel,
              "command": cmd, "returncode": code, "seconds": round(seconds, 1),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if ok:  # written last: its presence says the evidence beside it is complete
        write_file(out / "zoo_run.json", json.dumps(record, indent=1) + "\n", remedy=CLI_REMEDY)
    return {**record, "status": "done" if ok else "failed"}


def run_all(agents: Sequence[tuple[str, Path]], out: Path, sel: dict, *, cache_dir: Path | None, rerun: bool,
            progress: bool) -> list[dict]:
    """``run_agent`` on each agent in turn, with a progress bar; one line per agent."""
    from tqdm import tqdm

    env = dict(os.environ)
    if cache_dir is not None:
        env["HYPODRIVE_CACHE_DIR"] = str(cache_dir.resolve())
    results = []
    bar = tqdm(agents, desc="agents", unit="agent", disable=not progress, file=sys.stderr)
    for name, path in bar:
        bar.set_postfix_str(name)
        result = run_agent(name, path, out / "agents" / name, sel, env=env, rerun=rerun)
        results.append(result)
        if result["status"] == "skipped":
            line = f"{name}: skipped (evidence for this identity, profile and selection already in {out / 'agents' / name})"
        elif result["status"] == "failed":
            line = (f"{name}: FAILED, no evidence written (pytest exit {result['returncode']}); see "
                    f"{out / 'agents' / name / 'pytest.log'}")
        else:
            line = f"{name}: {_verdict_counts(out / 'agents' / name / 'evidence.json')} ({result['seconds']:.0f} s)"
        tqdm.write(line, file=sys.stdout)
    bar.close()
    return results


def _verdict_counts(path: Path) -> str:
    counts: dict[str, int] = {}
    for entry in json.loads(path.read_text())["specs"]:
        key = entry["verdict"] or "no verdict"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _evidences(results: Sequence[dict], out: Path,
               checkpoints: dict[str, Path] | None = None) -> tuple[list[dict], list[str]]:
    from reports.schema import load

    evidences, names = [], []
    for result in results:
        path = out / "agents" / result["name"] / "evidence.json"
        if result["status"] != "failed" and path.is_file():
            evidences.append(with_lineage(load(path), (checkpoints or {}).get(result["name"])))
            names.append(result["name"])
    return evidences, names


def with_lineage(evidence: dict, checkpoint: Path | None) -> dict:
    """Evidence written before runs recorded ``run.checkpoint.lineage`` gets it from its checkpoint, in memory,
    if the checkpoint still has the evidence's identity: the aggregate needs each member's training seed and
    budget, and a skipped (up-to-date) agent is not rerun."""
    described = evidence["run"]["checkpoint"]
    if described.get("lineage") or checkpoint is None:
        return evidence
    from interp.simulation.agent import load_agent

    agent = load_agent(checkpoint)
    if agent.identity == described["identity"]:
        described["lineage"] = agent.describe()["lineage"]
    return evidence


# ------------------------------------------------------------------------------------------ commands


def cmd_zoo(args: argparse.Namespace) -> int:
    from interp.errors import HypodriveError

    if args.zoo_command == "run":
        return cmd_run(args)
    if args.zoo_command == "over-training":
        return cmd_over_training(args)
    if args.zoo_command in ("train", "bundle"):
        return cmd_train_or_bundle(args)
    if args.zoo_command == "heldout":
        return cmd_heldout(args)
    if args.zoo_command == "status":
        return cmd_status(args)
    raise HypodriveError(f"unknown zoo command {args.zoo_command!r}")


def cmd_train_or_bundle(args: argparse.Namespace) -> int:
    from interp.errors import HypodriveError
    from interp.training import zoo

    by_name = {m.name: m for m in zoo.MEMBERS}
    names = args.members or ([] if args.zoo_command == "train" else None)
    unknown = sorted(set(names or ()) - set(by_name))
    if unknown:
        raise HypodriveError(f"unknown zoo member(s) {', '.join(unknown)}; the zoo is {', '.join(by_name)}")
    if args.zoo_command == "bundle":
        for name in names:
            print(f"bundled {zoo.bundle(by_name[name])}")
        return 0
    members = tuple(by_name[n] for n in names) if names else zoo.MEMBERS
    members = tuple(reversed(members)) if args.reverse else members
    trained = zoo.train(members, episodes=args.episodes or zoo.EPISODES, progress=not args.no_progress)
    print(f"trained and bundled: {', '.join(trained) or 'nothing (every member is bundled or being trained)'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from interp.training import zoo

    rows = zoo.status()
    print(f"{'member':8s} {'heads':>5s} {'seed':>4s}  {'state':22s} {'episodes':>11s}  identity / validation collisions")
    for r in rows:
        extra = (f"{r['identity']} / {r['validation_collision_rate']:.1%}" if r["state"] == "bundled"
                 and r.get("validation_collision_rate") is not None else "")
        print(f"{r['member']:8s} {r['heads']:5d} {r['seed']:4d}  {r['state']:22s} {r['episodes']:5d}/{r['of']:<5d}  {extra}")
    done = sum(r["state"] == "bundled" for r in rows)
    print(f"{done} of {len(rows)} members bundled" + ("" if done == len(rows) else "; `python -m interp zoo train` "
                                                      "trains (or resumes) the rest"))
    return 0


def cmd_heldout(args: argparse.Namespace) -> int:
    import json

    from interp.simulation.agent import load_agent
    from interp.training import zoo
    from interp.training.validation import seed_range_figures
    from interp.atomic import CLI_REMEDY, write_files

    agents = [(p.name, p / "agent.pt") for p in zoo.bundled()]
    agents += [(name, PROJECT_ROOT / "checkpoints" / name) for name in REFERENCES]
    rows, seen = [], set()
    print(f"{'agent':14s} {'heads':>5s} {'collisions (95% CI)':>24s} {'arrivals (95% CI)':>24s}")
    for name, path in agents:
        agent = load_agent(path)
        if agent.identity in seen:  # one row per identity: ``reference`` is member 4h-s3
            continue
        seen.add(agent.identity)
        f = seed_range_figures(agent, "heldout", args.episodes, workers=args.workers)
        rows.append({"agent": name, "identity": agent.identity, "heads": agent.n_heads, **f})
        print(f"{name:14s} {agent.n_heads:5d} {f['collision_rate']:9.3f} ({f['collision_ci95'][0]:.3f}-"
              f"{f['collision_ci95'][1]:.3f}) {f['arrival_rate']:9.3f} ({f['arrival_ci95'][0]:.3f}-"
              f"{f['arrival_ci95'][1]:.3f})", flush=True)
    out = args.out or zoo.ZOO_DIR / "heldout.json"
    write_files(out.parent, {out.name: json.dumps(rows, indent=1) + "\n"}, remedy=CLI_REMEDY)
    print(f"wrote {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from interp.errors import HypodriveError
    from reports.zoo.aggregate import aggregate, format_table
    from reports.zoo.aggregate_html import write_aggregate_report

    agents = zoo_agents(args)
    if not agents:
        raise HypodriveError("no agents: nothing is bundled under checkpoints/zoo yet (python -m interp zoo train); "
                             "add --with-references or --agents NAME...")
    out = (args.out or PROJECT_ROOT / "report" / f"zoo-{args.profile}").resolve()
    sel = selection(args, None)
    print(f"zoo run: {len(agents)} agents ({', '.join(n for n, _ in agents)}), profile {args.profile}"
          + (f", -m {sel['markers']!r}" if sel["markers"] else "") + f"; reports in {out}")
    results = run_all(agents, out, sel, cache_dir=args.cache_dir, rerun=args.rerun, progress=not args.no_progress)
    evidences, names = _evidences(results, out, dict(agents))
    if not evidences:
        raise HypodriveError(f"no agent's spec run wrote its evidence (see {out}/agents/*/pytest.log)")
    agg = aggregate(evidences, labels=names, command=_command_line())
    page = write_aggregate_report(agg, out)
    print()
    print(format_table(agg))
    print(f"\naggregate over {len(evidences)} agents: {page} and {out / 'aggregate.json'}")
    if len(agg["git_commits"]) > 1:
        print(f"note: the agents' runs used {len(agg['git_commits'])} different commits (resumed runs); "
              "--rerun runs every agent on this one")
    failed = [r["name"] for r in results if r["status"] == "failed"]
    if failed:
        print(f"FAILED (no evidence, left out of the aggregate): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_over_training(args: argparse.Namespace) -> int:
    from interp.errors import HypodriveError
    from reports.zoo.over_training import over_training, write_over_training_report

    run = args.run.resolve()
    points = snapshots(run)
    if not points:
        raise HypodriveError(f"no snapshots in {run / 'snapshots'} (the trainer writes episode-N.pt every "
                             "--save-every episodes) and no final agent.pt")
    sel = selection(args, None if args.all else ROLLOUT_FREE)
    suffix = "-all" if args.all else ""
    out = (args.out or run / f"over-training-{args.profile}{suffix}").resolve()
    print(f"over training: {len(points)} checkpoints of {run} (episodes {', '.join(str(e) for e, _ in points)}), "
          f"profile {args.profile}" + (f", -m {sel['markers']!r}" if sel["markers"] else "") + f"; reports in {out}")
    agents = [(f"episode-{episode}", path) for episode, path in points]
    results = run_all(agents, out, sel, cache_dir=args.cache_dir, rerun=args.rerun, progress=not args.no_progress)
    evidences, names = _evidences(results, out, dict(agents))
    if not evidences:
        raise HypodriveError(f"no snapshot's spec run wrote its evidence (see {out}/agents/*/pytest.log)")
    episode_of = {f"episode-{e}": e for e, _ in points}
    data = over_training(evidences, [episode_of[n] for n in names], run=str(run), command=_command_line())
    page = write_over_training_report(data, out)
    print(f"\nover training ({len(evidences)} checkpoints): {page}, {out / 'over_training.png'}")
    failed = [r["name"] for r in results if r["status"] == "failed"]
    if failed:
        print(f"FAILED (no evidence, left out): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _command_line() -> str:
    return "python -m interp " + " ".join(sys.argv[1:])
