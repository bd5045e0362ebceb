"""``python -m interp``: inspect, evaluate and train ego-attention agents from the command line."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

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
                                   "and arrival rates (Wilson 95%% CIs), mean return and episode length.")
    _agent_args(p)
    p.add_argument("--episodes", type=int, default=100, help="number of episodes (default 100)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0; training seeds are >= 1e6)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--ablate-head", type=int, action="append", default=[], metavar="H",
                   help="evaluate with head H's output zeroed (repeatable)")
    p.add_argument("--compare", action="store_true",
                   help="also run the plain agent on the same seeds and print the paired verdict (exact McNemar)")
    p.add_argument("--json", help="write per-episode records to this JSON file")

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
    p.add_argument("--no-progress", action="store_true")
    return parser


def cmd_inspect(args: argparse.Namespace) -> int:
    import torch

    from interp.agent import load_agent
    from interp.interventions import ablate_heads

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
                                              "attention_layer.hook_pattern", fwd_hooks=hooks)
    np.savez(args.out, q_values=q.numpy(), attention=cache["attention_layer.hook_pattern"].numpy(),
             action_names=np.array(agent.action_names))
    print(f"wrote {args.out}: q_values {tuple(q.shape)}, attention {tuple(cache['attention_layer.hook_pattern'].shape)}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from interp.agent import load_agent
    from interp.interventions import ablate_heads
    from interp.rollout import rollout
    from interp.stats import wilson_interval

    agent = load_agent(args.checkpoint, args.agent_config, args.env_config)
    seeds = list(range(args.seed, args.seed + args.episodes))
    treated = f"ablate_heads={args.ablate_head}" if args.ablate_head else "agent"
    conditions = {treated: ablate_heads(args.ablate_head, agent.n_heads) if args.ablate_head else ()}
    if args.compare:
        conditions = {"agent": (), **conditions} if args.ablate_head else conditions
    records = rollout(agent, seeds, conditions, workers=args.workers, progress=sys.stderr.isatty() or True)
    print(f"checkpoint {agent.source}  identity {agent.identity}  seeds {seeds[0]}..{seeds[-1]}")
    for name in conditions:
        mine = [r for r in records if r.condition == name]
        crashes, arrivals = sum(r.crashed for r in mine), sum(r.arrived for r in mine)
        c_lo, c_hi = wilson_interval(crashes, len(mine))
        a_lo, a_hi = wilson_interval(arrivals, len(mine))
        print(f"[{name}] n={len(mine)}  collision rate {crashes / len(mine):.3f} (95% CI {c_lo:.3f}-{c_hi:.3f})  "
              f"arrival rate {arrivals / len(mine):.3f} (95% CI {a_lo:.3f}-{a_hi:.3f})  "
              f"mean return {np.mean([r.ret for r in mine]):.3f}  mean length {np.mean([r.length for r in mine]):.2f}")
    if args.compare and args.ablate_head:
        from interp.stats import mcnemar_verdict

        base = [r.crashed for r in records if r.condition == "agent"]
        treat = [r.crashed for r in records if r.condition == treated]
        print(mcnemar_verdict(base, treat, claim=f"{treated} raises the collision rate").summary())
    if args.json:
        Path(args.json).write_text(json.dumps({"identity": agent.identity, "source": agent.source,
                                               "episodes": [r.to_dict() for r in records]}, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from interp.config import load_agent_config, load_env_config
    from interp.train import RESUME_FILE, TrainSettings, Trainer

    out = Path(args.out)
    if (out / RESUME_FILE).exists() and not args.resume:
        raise HypodriveError(f"{out} already holds a run ({RESUME_FILE}); pass --resume to continue it or choose another --out")
    settings = TrainSettings(agent_config=load_agent_config(args.agent_config), env_config=load_env_config(args.env_config),
                             episodes=args.episodes, seed=args.seed, out=out, workers=args.workers, slots=args.slots,
                             save_every=args.save_every,
                             command="python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    trainer = Trainer(settings)
    trainer.run(progress=not args.no_progress)
    meta = trainer.metadata()
    print(f"trained {meta['episodes']} episodes, {meta['transitions']} transitions in {meta['wall_time_s']} s -> {out}")
    return 0


COMMANDS = {"inspect": cmd_inspect, "evaluate": cmd_evaluate, "train": cmd_train}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HypodriveError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
