"""``python -m interp``: inspect, evaluate and train ego-attention agents from the command line."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from interp.atomic import JSON_REMEDY, staged, write_file, write_files
from interp.model import names
from interp.errors import HypodriveError


DESCRIPTION = """\
hypodrive's agent tools. The agent is a checkpoint (an rl-agents .tar, a bare state dict, or a hypodrive
one-file checkpoint, or a folder holding one such as checkpoints/reference) plus its agent and env configs
(stored in hypodrive checkpoints and bundled folders; give --agent-config/--env-config for rl-agents files).
Checkpoints are always loaded with torch.load(weights_only=True): loading never runs code."""


def _agent_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint file or bundled checkpoint folder")
    p.add_argument("--agent-config", help="rl-agents agent config JSON (base_config is resolved)")
    p.add_argument("--env-config", help="rl-agents env config JSON (default: the one stored with the checkpoint)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m interp", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="Q-values and attention of given observations",
                       description="Run observations (.npy, float32 [batch, vehicles, features]) through the agent and "
                                   "write q_values [batch, actions] and attention [batch, heads, 1, vehicles] to an .npz.")
    _agent_args(p)
    p.add_argument("--obs", required=True, help="observations .npy, float32 [batch, vehicles, features]")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--ablate-head", type=int, action="append", default=[], metavar="H",
                   help="zero head H's output z before attention_combine (repeatable)")

    p = sub.add_parser("evaluate", help="greedy episodes on seeds S..S+N-1: collision and arrival rates with 95%% CIs",
                       description="Run greedy episodes with seeds S..S+N-1 in parallel workers and print collision "
                                   "and arrival rates (Wilson 95% CIs), mean return and episode length; optionally "
                                   "under head ablations, compared with the plain agent on the same seeds. Episodes "
                                   "are cached on disk (keyed by checkpoint identity, resolved env config, seed, "
                                   "intervention, engine and library versions), so a rerun costs nothing.")
    _agent_args(p)
    p.add_argument("--no-fast-sim", action="store_true",
                   help="step the plain highway-env simulator instead of interp.simulation.fastsim (the same trajectories inside its "
                        "verified scope, ~10x slower per episode; outside that scope the plain one runs anyway)")
    p.add_argument("--episodes", type=int, default=100,
                   help="number of episodes (default 100; with --sequential the maximum number of pairs)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0; training seeds are >= 1e6)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--slots", type=int, default=None,
                   help="episodes in flight at once (default two per worker; results do not depend on it)")
    p.add_argument("--ablate-head", type=int, action="append", default=[], metavar="H",
                   help="evaluate with head H's output z zeroed (repeatable: all listed heads at once)")
    p.add_argument("--ablate-each-head", action="store_true",
                   help="one condition per head, each with that head's output z zeroed")
    p.add_argument("--against", action="append", default=[], metavar="CK",
                   help="also run another checkpoint (file or bundled folder, or 'untrained' for the untrained "
                        "control) on the same seeds; with --compare, "
                        "its paired verdict against the agent (e.g. --against checkpoints/reference-early "
                        "--metric arrived --direction decrease)")
    p.add_argument("--compare", action="store_true",
                   help="also run the plain agent on the same seeds and print the paired verdict of each "
                        "intervention (exact McNemar, Holm across interventions; --sequential for the sequential test)")
    p.add_argument("--sequential", action="store_true",
                   help="with --compare: add seeds in batches until the sequential paired test decides "
                        "(always-valid p-values, Holm across interventions), at most --episodes pairs")
    p.add_argument("--batch", type=int, default=20, help="pairs per look of --sequential (default 20)")
    p.add_argument("--metric", choices=("crashed", "arrived"), default="crashed",
                   help="paired outcome of --compare (default crashed)")
    p.add_argument("--direction", choices=("increase", "decrease"), default="increase",
                   help="claimed direction of the change in --metric (default increase)")
    p.add_argument("--alpha", type=float, default=0.05, help="error rate of --compare verdicts (default 0.05)")
    p.add_argument("--min-effect", type=float, default=0.05,
                   help="smallest change in the rate worth calling an effect (refutation threshold; default 0.05)")
    p.add_argument("--no-cache", action="store_true", help="simulate every episode; neither read nor write the cache")
    p.add_argument("--cache-dir", default=None, help="episode cache folder (default $HYPODRIVE_CACHE_DIR or .hypodrive-cache)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="run environment workers as local processes (default) or Ray actors")
    p.add_argument("--ray-address", default=None,
                   help="with --backend ray: the cluster to join (e.g. auto, ray://host:10001); default a local instance")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", help="write per-episode results (and verdicts) to this JSON file")

    p = sub.add_parser("cache", help="show or clear the episode cache",
                       description="The rollout engine caches episode records on disk. 'info' shows where and how "
                                   "many; 'clear' removes them all.")
    p.add_argument("action", choices=("info", "clear"))
    p.add_argument("--cache-dir", default=None, help="cache folder (default $HYPODRIVE_CACHE_DIR or .hypodrive-cache)")

    p = sub.add_parser("train", help="train a DQN ego-attention agent (rl-agents' algorithm, parallel envs)",
                       description="DQN as rl-agents does it (double DQN, one update per transition, epsilon-greedy, "
                                   "target network, replay memory), experience collected from parallel workers. "
                                   "Writes rl-agents files (saved_models/latest.tar, checkpoint-<ep>.tar) and the "
                                   "hypodrive one-file checkpoint (agent.pt) to --out. Interrupt and rerun with "
                                   "--resume to continue exactly.")
    p.add_argument("--agent-config", required=True)
    p.add_argument("--env-config", required=True)
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="env worker processes (default: all cores)")
    p.add_argument("--slots", type=int, default=4, help="parallel episodes (default 4; part of the result)")
    p.add_argument("--save-every", type=int, default=250, help="episodes between snapshots (default 250)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its resume.pt")
    p.add_argument("--shuffle-rewards", action="store_true",
                   help="a negative control: permute each replay sample's rewards among its transitions, so no reward "
                        "is tied to its state (recorded in metadata.json; off by default)")
    p.add_argument("--no-fast-sim", action="store_true",
                   help="step the plain highway-env simulator instead of interp.simulation.fastsim (the same trajectories inside its "
                        "verified scope, ~10x slower per episode; outside that scope the plain one runs anyway)")

    b = sub.add_parser("bundle", help="copy a training run (or a snapshot of it) into a checkpoint folder",
                       description="Copy a training run's hypodrive checkpoint (agent.pt), rl-agents file (as latest.tar), "
                                   "resolved configs, metadata and learning curve into a self-contained folder that "
                                   "--checkpoint accepts (as checkpoints/reference is made).")
    b.add_argument("run", help="the training run folder (python -m interp train --out)")
    b.add_argument("out", help="the checkpoint folder to write")
    b.add_argument("--episode", type=int, default=None, help="bundle the snapshot taken after this many episodes")
    p.add_argument("--no-progress", action="store_true")
    _replay_parser(sub)
    _roles_parser(sub)
    from interp.zoo_cli import add_parser as _zoo_parser  # zoo run / over-training (interp/zoo_cli.py)

    _zoo_parser(sub)
    _average_parser(sub)
    return parser


def cmd_inspect(args: argparse.Namespace) -> int:
    import torch

    from interp.simulation.agent import load_agent
    from interp.probes.interventions import ablate_heads

    agent = load_agent(args.checkpoint, args.agent_config, args.env_config)
    obs = np.load(args.obs)
    if obs.ndim == 2:
        obs = obs[None]
    expected = agent.model.config["embedding_layer"]["in"]
    if obs.ndim != 3 or obs.shape[-1] != expected:
        raise HypodriveError(f"--obs has shape {obs.shape}; expected float32 [batch, vehicles, {expected}]")
    hooks = ablate_heads(args.ablate_head, agent.n_heads) if args.ablate_head else []
    with torch.no_grad():
        q, cache = agent.model.run_with_cache(torch.from_numpy(obs.astype(np.float32)),
                                              names.PATTERN, fwd_hooks=hooks)
    out = Path(args.out) if str(args.out).endswith(".npz") else Path(f"{args.out}.npz")  # as np.savez names it
    with staged(out, what="the Q-values and attention") as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.savez would add .npz to the temporary name
            np.savez(fh, q_values=q.numpy(), attention=cache[names.PATTERN].numpy(),
                     action_names=np.array(agent.action_names))
    print(f"wrote {out}: q_values {tuple(q.shape)}, attention {tuple(cache['attention_layer.hook_pattern'].shape)} "
          f"(checkpoint identity {agent.identity}, heads {agent.n_heads})")
    return 0


def _evaluate_conditions(args: argparse.Namespace, agent) -> dict:
    """Condition name -> intervention (None = the plain agent), from the evaluate options."""
    from interp.probes.interventions import head_ablation

    conditions: dict = {}
    if args.compare or not (args.ablate_head or args.ablate_each_head):
        conditions["agent"] = None
    if args.ablate_head:
        heads = sorted(set(args.ablate_head))
        conditions["ablate_heads=" + ",".join(map(str, heads))] = head_ablation(heads, n_heads=agent.n_heads)
    if args.ablate_each_head:
        for h in range(agent.n_heads):
            conditions.setdefault(f"ablate_heads={h}", head_ablation([h], n_heads=agent.n_heads))
    if args.against:
        from interp.simulation.agent import load_agent

        conditions["agent"] = None
        from interp.simulation.agent import untrained_agent

        for path in args.against:
            if path == "untrained":  # the untrained control: the same config at the trainer's initialisation
                conditions["untrained"] = untrained_agent(agent.agent_config, agent.env_config)
            else:
                conditions[f"checkpoint {path}"] = load_agent(path)  # another agent on the same seeds
    return conditions


def _print_rates(name: str, mine: list) -> None:
    from interp.stats import wilson_interval

    crashes, arrivals = sum(r.crashed for r in mine), sum(r.arrived for r in mine)
    c_lo, c_hi = wilson_interval(crashes, len(mine))
    a_lo, a_hi = wilson_interval(arrivals, len(mine))
    print(f"[{name}] n={len(mine)}  collision rate {crashes / len(mine):.3f} (95% CI {c_lo:.3f}-{c_hi:.3f})  "
          f"arrival rate {arrivals / len(mine):.3f} (95% CI {a_lo:.3f}-{a_hi:.3f})  "
          f"mean return {np.mean([r.ret for r in mine]):.3f}  mean length {np.mean([r.length for r in mine]):.2f}")


def _claim(args: argparse.Namespace, name: str) -> str:
    rate = {"crashed": "collision", "arrived": "arrival"}[args.metric]
    return f"{name} {'raises' if args.direction == 'increase' else 'lowers'} the {rate} rate"


def _fixed_verdicts(args: argparse.Namespace, grouped: dict, treatments: list[str]) -> dict:
    """Exact McNemar per intervention on all seeds, p-values Holm-adjusted across interventions."""
    import dataclasses

    from interp.stats import holm, mcnemar_verdict

    base = [getattr(r, args.metric) for r in grouped["agent"]]
    verdicts = {name: mcnemar_verdict(base, [getattr(r, args.metric) for r in grouped[name]],
                                      claim=_claim(args, name),
                                      alpha=args.alpha, direction=args.direction, min_effect=args.min_effect)
                for name in treatments}
    if len(verdicts) > 1:
        reject, adjusted = holm([v.p_value for v in verdicts.values()], alpha=args.alpha)
        for (name, v), ok, p_adj in zip(list(verdicts.items()), reject, adjusted):
            verdict = "supported" if ok else ("inconclusive" if v.verdict == "supported" else v.verdict)
            verdicts[name] = dataclasses.replace(v, p_value=float(p_adj), verdict=verdict,
                                                 decision_rule=v.decision_rule + f"; Holm across {len(verdicts)}")
    return verdicts


def cmd_evaluate(args: argparse.Namespace) -> int:
    from interp.simulation.agent import load_agent
    from interp.simulation.rollout import RolloutEngine, records_by_condition, run_sequential

    if args.sequential and not args.compare:
        raise HypodriveError("--sequential needs --compare (it decides interventions against the plain agent)")
    if args.compare and not (args.ablate_head or args.ablate_each_head or args.against):
        raise HypodriveError("--compare needs something to compare: --ablate-head H, --ablate-each-head or --against CK")
    if args.episodes < 1:
        raise HypodriveError("--episodes must be at least 1")
    agent = load_agent(args.checkpoint, args.agent_config, args.env_config)
    conditions = _evaluate_conditions(args, agent)
    treatments = [name for name in conditions if name != "agent"]
    seeds = range(args.seed, args.seed + args.episodes)
    cache = None if args.no_cache else (args.cache_dir or "default")
    verdicts: dict = {}
    with RolloutEngine(workers=args.workers, slots=args.slots, backend=args.backend, ray_address=args.ray_address,
                       fast_sim=not args.no_fast_sim,
                       cache=cache) as engine:
        if args.sequential:
            from interp.stats import SequentialDesign

            design = SequentialDesign(alpha=args.alpha, direction=args.direction, max_pairs=args.episodes,
                                      min_effect=args.min_effect)
            claims = {name: _claim(args, name) for name in treatments}
            result = run_sequential(engine, agent, conditions, baseline="agent", seeds=seeds, design=design,
                                    batch_pairs=args.batch, outcome=args.metric, claims=claims,
                                    progress=not args.no_progress)
            records, verdicts = result.records, result.verdicts
        else:
            records = engine.run(agent, seeds, conditions, progress=not args.no_progress)
    grouped = records_by_condition(records)
    used = sorted({r.seed for r in records})
    print(f"checkpoint {agent.source}  identity {agent.identity}  heads {agent.n_heads}  "
          f"seeds {used[0]}..{used[-1]} ({len(used)})  "
          f"simulated {engine.stats.simulated} episodes, {engine.stats.cached} from the cache")
    for name in conditions:
        if grouped.get(name):
            _print_rates(name, grouped[name])
    if args.compare and not args.sequential:
        verdicts = _fixed_verdicts(args, grouped, treatments)
    for name, verdict in verdicts.items():
        print(f"[{name} vs agent] {verdict.summary()}")
    if args.json:
        write_file(args.json, json.dumps({
            "identity": agent.identity, "source": agent.source, "heads": agent.n_heads,
            "episodes": [r.to_dict(trace=False) for r in records],
            "verdicts": {name: v.to_dict() for name, v in verdicts.items()},
        }, indent=1), remedy=JSON_REMEDY)
        print(f"wrote {args.json}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from interp.simulation.cache import RolloutCache, default_cache_dir

    directory = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if args.action == "clear":
        if not directory.exists():
            print(f"no cache at {directory}")
            return 0
        with RolloutCache(directory) as cache:
            print(f"removed {cache.clear()} episode records from {directory}")
        return 0
    if not directory.exists():
        print(f"{directory}: no cache yet")
        return 0
    with RolloutCache(directory) as cache:
        print(f"{directory}: {len(cache)} episode records")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from interp.model.config import load_agent_config, load_env_config
    from interp.training.train import RESUME_FILE, TrainSettings, Trainer

    out = Path(args.out)
    if (out / RESUME_FILE).exists() and not args.resume:
        raise HypodriveError(f"{out} already holds a run ({RESUME_FILE}); pass --resume to continue it or choose another --out")
    settings = TrainSettings(agent_config=load_agent_config(args.agent_config), env_config=load_env_config(args.env_config),
                             episodes=args.episodes, seed=args.seed, out=out, workers=args.workers, slots=args.slots,
                             save_every=args.save_every, fast_sim=not args.no_fast_sim,
                             shuffle_rewards=args.shuffle_rewards,
                             command="python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    trainer = Trainer(settings)
    trainer.run(progress=not args.no_progress)
    meta = trainer.metadata()
    print(f"trained {meta['episodes']} episodes, {meta['transitions']} transitions in {meta['wall_time_s']} s -> {out}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    """Copy a training run (or one of its snapshots) into a self-contained checkpoint folder."""
    from interp.simulation.agent import load_agent

    run, out = Path(args.run), Path(args.out)
    if args.episode is None:
        project, rl_agents = run / "agent.pt", run / "saved_models" / "latest.tar"
    else:
        project = run / "snapshots" / f"episode-{args.episode}.pt"
        rl_agents = run / "saved_models" / f"checkpoint-{args.episode}.tar"
    missing = [str(p) for p in (project, rl_agents, run / "metadata.json") if not p.is_file()]
    if missing:
        raise HypodriveError(f"cannot bundle {run}: missing {', '.join(missing)} (snapshots exist every --save-every episodes)")
    agent = load_agent(project)
    meta = {**agent.metadata, "identity": agent.identity, "bundled_from": str(run),
            "snapshot_episode": args.episode}
    files = {"agent.pt": project.read_bytes(), "latest.tar": rl_agents.read_bytes(),
             "agent_config.json": json.dumps(agent.agent_config, indent=2) + "\n",
             "env_config.json": json.dumps(agent.env_config, indent=2) + "\n"}
    history = run / "history.json"
    if history.is_file():
        episodes = json.loads(history.read_text())
        if args.episode is not None:
            episodes = episodes[:args.episode]  # history is in finishing order; the snapshot followed the N-th
        files["training_history.json"] = json.dumps(episodes)
    files["metadata.json"] = json.dumps(meta, indent=2) + "\n"
    # all files or none: never half a checkpoint
    write_files(out, files, remedy="choose another checkpoint folder", what="the bundle")
    print(f"bundled {project} -> {out} (identity {agent.identity})")
    return 0


def _replay_parser(sub) -> None:
    p = sub.add_parser("replay", help="watch one greedy episode: scene, per-head attention, Q-values, action taken",
                       description="Replay the greedy episode of --seed (the one 'evaluate' runs on that seed, taken "
                                   "from the rollout engine) as a GIF, MP4 or self-contained HTML page: per frame the "
                                   "rendered scene, lines from the ego to each observed vehicle per head (width and "
                                   "opacity by attention; vehicles found by the recorded row identity), Q-values and "
                                   "softmax probabilities per action, the action taken, crash and arrival. With "
                                   "--ablate-head or --against, the two runs on the seed side by side, the step where "
                                   "they diverge highlighted. A replay has steps + 1 frames.")
    _agent_args(p)
    p.add_argument("--seed", type=int, required=True, help="the episode's seed (as in evaluate)")
    other = p.add_mutually_exclusive_group()
    other.add_argument("--ablate-head", type=int, default=None, metavar="H",
                       help="also run the agent with head H's output z zeroed, side by side")
    other.add_argument("--against", default=None, metavar="CK",
                       help="also run another checkpoint (or 'untrained') on the seed, side by side")
    p.add_argument("--out", required=True, help="output file: .gif, .mp4 (imageio-ffmpeg) or .html (slider, play/pause)")
    p.add_argument("--json", help="also write per-step actions, Q-values, attention, crashed and arrived as JSON")
    p.add_argument("--no-cache", action="store_true", help="simulate the episode; neither read nor write the cache")
    p.add_argument("--cache-dir", default=None, help="episode cache folder (default $HYPODRIVE_CACHE_DIR or .hypodrive-cache)")
    p.add_argument("--no-fast-sim", action="store_true", help="run the engine on the plain highway-env simulator")


def cmd_replay(args: argparse.Namespace) -> int:
    import time

    from interp.simulation.agent import load_agent, untrained_agent
    from interp.evidence import jsonable
    from interp.replay import build_replay
    from interp.simulation.rollout import RolloutEngine
    from reports.replay import FORMATS, draw_frames, run_outcome, write_replay

    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise HypodriveError(f"--out {out}: write a replay as {', '.join(FORMATS)}")
    started = time.perf_counter()
    agent = load_agent(args.checkpoint, args.agent_config, args.env_config)
    against = None
    if args.against == "untrained":
        against = untrained_agent(agent.agent_config, agent.env_config)
    elif args.against:
        against = load_agent(args.against)
    cache = None if args.no_cache else (args.cache_dir or "default")
    with RolloutEngine(workers=0, slots=1, cache=cache, fast_sim=not args.no_fast_sim) as engine:
        replay = build_replay(agent, args.seed, ablate_head=args.ablate_head, against=against,
                              against_label=args.against, engine=engine)
    write_replay(replay, out, frames=draw_frames(replay))
    for run in replay.runs:
        names = " ".join(run.action_names[a] for a in run.actions)
        print(f"[{run.label}] seed {run.seed}: {run.length} steps, {run_outcome(run)}; actions {names}")
    if len(replay.runs) > 1:
        print("the runs take the same actions throughout" if replay.divergence is None
              else f"the runs diverge at step {replay.divergence}")
    print(f"wrote {out} ({replay.n_frames} frames, {out.stat().st_size / 1024:.0f} KiB) in "
          f"{time.perf_counter() - started:.1f} s")
    if args.json:
        data = Path(args.json)
        write_files(data.parent, {data.name: json.dumps(jsonable(replay.to_dict()), indent=1)},
                    remedy=JSON_REMEDY)
        print(f"wrote {args.json}")
    return 0


COMMANDS = {"bundle": cmd_bundle, "inspect": cmd_inspect, "evaluate": cmd_evaluate, "train": cmd_train, "cache": cmd_cache}
COMMANDS["replay"] = cmd_replay


def _roles_parser(sub) -> None:
    p = sub.add_parser("roles", help="each head's roles against random networks: by attention and by ablation effect",
                       description="Attention roles: each head's selectivity per vehicle category (a within-scene "
                                   "fit of its pre-softmax scores on the categories and distance, scene fixed "
                                   "effects; proximity = the distance slope) against random networks of the same "
                                   "architecture tempered to the head's own entropy over the vehicles, max statistic "
                                   "over heads x categories, on each of two disjoint halves (interp/role_selectivity.py). "
                                   "Causal roles: paired zero-ablation of each head on the calibration episode seeds "
                                   "(interp/seeds.py), sequential test, Holm across heads x outcomes: safety "
                                   "(collisions rise), progress (arrivals fall). Prints each role's heads, or why it "
                                   "is unresolved. "
                                   "Cached per checkpoint identity, as the spec plugin uses it.")
    _agent_args(p)
    p.add_argument("--json", metavar="OUT", help="write the role map as JSON: roles, per head x category the statistic, p-value and "
                                                       "null quantile, ablation effects, the null")
    p.add_argument("--no-causal", action="store_true", help="attention roles only (no rollouts)")
    p.add_argument("--quick", action="store_true",
                   help="causal roles on the quick profile's budget: changes of >= 20 points decided at >= 80 %% "
                        "power, smaller ones reported 'unmeasured'")
    p.add_argument("--max-pairs", type=int, default=None, help="paired episodes per head at most (default 200)")
    p.add_argument("--workers", type=int, default=None, help="worker processes for the rollouts (default: all cores)")
    p.add_argument("--no-cache", action="store_true", help="recompute (the role map and the episodes)")


def cmd_roles(args: argparse.Namespace) -> int:
    from fixtures.role_scenes import calibration  # the CLI is the top of the stack: it may build scenes
    from interp import roles
    from interp.simulation.agent import load_agent

    agent = load_agent(args.checkpoint, args.agent_config, args.env_config)
    kwargs = {"use_cache": not args.no_cache, "max_pairs": args.max_pairs or roles.CAUSAL_MAX_PAIRS}
    if args.no_causal:
        data = roles.role_map(agent, lambda: calibration(agent.env_config), skip_causal_reason="--no-causal", **kwargs)
    else:
        from interp.simulation.rollout import RolloutEngine

        with RolloutEngine(workers=args.workers, cache=None if args.no_cache else "default") as engine:
            data = roles.role_map(agent, lambda: calibration(agent.env_config), engine=engine, causal=True,
                                  progress=True, quick=args.quick, **kwargs)
    print(roles.format_roles(data))
    if args.json:
        write_file(args.json, json.dumps(data, indent=1) + "\n", remedy=JSON_REMEDY)
        print(f"wrote {args.json}")
    return 0


COMMANDS["roles"] = cmd_roles


def cmd_zoo(args: argparse.Namespace) -> int:
    from interp.zoo_cli import cmd_zoo as run

    return run(args)


COMMANDS["zoo"] = cmd_zoo


def _average_parser(sub) -> None:
    p = sub.add_parser("average", help="average the weights of several snapshots of one training run",
                       description="Write a new one-file checkpoint whose weights are the uniform mean of the given "
                                   "snapshots' weights (no optimizer state). The snapshots must come from ONE training "
                                   "run (same training seed, env seeds and configs, as recorded in each file) and "
                                   "have one architecture: heads of different runs do not correspond, so averaging "
                                   "across runs is refused. Why average: a DQN run's greedy policy swings from "
                                   "snapshot to snapshot, and the mean of late snapshots smooths that out. The "
                                   "output's metadata lists each source file with its identity and episode.")
    p.add_argument("snapshots", nargs="+", metavar="SNAPSHOT",
                   help="hypodrive one-file checkpoints of one run (RUN/snapshots/episode-N.pt, RUN/agent.pt); at least 2")
    p.add_argument("--out", required=True, help="the checkpoint file to write (atomically)")


def cmd_average(args: argparse.Namespace) -> int:
    from interp.training.averaging import write_average

    command = "python -m interp average " + " ".join(shlex.quote(s) for s in args.snapshots) + \
        f" --out {shlex.quote(args.out)}"
    agent = write_average(args.snapshots, args.out, command=command)
    episodes = [s["episodes"] for s in agent.metadata["averaged"]["sources"]]
    print(f"wrote {args.out}: {agent.metadata['averaged']['rule']} (episodes {episodes}), identity {agent.identity}")
    return 0


COMMANDS["average"] = cmd_average


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HypodriveError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every finished episode is already in the cache (written one by one)
        print("\ninterrupted: the episodes finished so far are cached; run the same command again to resume "
              "from them (the result will be the same as an uninterrupted run)", file=sys.stderr)
        return 130
