"""Uniform weight averaging of several snapshots of ONE training run into a new one-file checkpoint.

Why: a DQN run's greedy policy swings from snapshot to snapshot (the collision rate of one run moves by 10-15
points between snapshots 500 episodes apart), and the mean of late snapshots' weights is a standard way to
smooth that out (stochastic weight averaging, Izmailov et al. 2018). Averaging is only meaningful inside one
run: two runs' heads (and hidden units) are permuted arbitrarily against each other, so their mean is a
different, usually broken, function. The run is checked from each file's lineage (``interp.simulation.lineage``:
training seed, env seeds, configs), the architecture from the model config and the parameter names and shapes.

    python -m interp average runs/zoo/4h-s1/snapshots/episode-{2750,3000,3250,3500}.pt --out avg.pt

Hand-written: the mean itself is one line per tensor; ``torch.optim.swa_utils.AveragedModel`` averages a live
model during training, not files of a finished run, and knows nothing of lineages.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from interp.errors import CheckpointError
from interp.model.checkpoint import weights_identity
from interp.simulation.agent import Agent, load_agent, save_agent
from interp.simulation.lineage import lineage


class AveragingError(CheckpointError):
    """The files cannot be averaged: too few, unreadable, or not snapshots of one run with one architecture."""


def rule(n: int) -> str:
    """The averaging rule as the checkpoint's metadata states it."""
    return f"weights averaged (uniform) over {n} snapshots"


def _load(path: Path) -> Agent:
    try:
        return load_agent(path)
    except CheckpointError as err:  # missing, corrupt, unsafe: the message names the file; nothing is written
        raise AveragingError(f"cannot average: {err}") from None


def _check_one_run(agents: Sequence[Agent], paths: Sequence[Path]) -> None:
    """Same architecture, same configs, same training run; raise naming the first file that differs."""
    first, first_path = agents[0], paths[0]
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in first.model.state_dict().items()}
    run = lineage(first.metadata, first.agent_config, first.env_config)
    for agent, path in zip(agents, paths):
        if agent.metadata.get("edited"):
            raise AveragingError(f"{path} is an edited checkpoint ({agent.metadata['edited']}), not a snapshot of a "
                                 "training run; average the run's own snapshots")
        if agent.model_config != first.model_config:
            raise AveragingError(f"{path} has another architecture than {first_path} (model configs differ: "
                                 f"{agent.n_heads} vs {first.n_heads} heads, or other layers); only snapshots of "
                                 "one run can be averaged")
        got = {k: (tuple(v.shape), v.dtype) for k, v in agent.model.state_dict().items()}
        if got != shapes:
            raise AveragingError(f"{path} has other parameters than {first_path} (names or shapes differ); only "
                                 "snapshots of one run can be averaged")
        if agent.env_config != first.env_config or agent.agent_config != first.agent_config:
            raise AveragingError(f"{path} was trained with other configs than {first_path}; only snapshots of one "
                                 "run (same agent and env config) can be averaged")
        mine = lineage(agent.metadata, agent.agent_config, agent.env_config)
        if mine["run"] is None:
            raise AveragingError(f"{path} records no training run (no seed / train_env_seeds in its metadata), so "
                                 "it cannot be shown to be a snapshot of the same run; use the hypodrive snapshots "
                                 "that `python -m interp train` / `zoo train` write (RUN/snapshots/episode-N.pt)")
        if mine["run"] != run["run"]:
            raise AveragingError(f"{path} comes from another training run (seed {mine['train_seed']}, lineage "
                                 f"{mine['run']}) than {first_path} (seed {run['train_seed']}, lineage {run['run']}): "
                                 "heads of different runs do not correspond, so their weights cannot be averaged")


def average_agents(agents: Sequence[Agent], paths: Sequence[Path]) -> Agent:
    """The uniform mean of the agents' weights (float64 accumulation), after checking they are one run."""
    if len(agents) < 2:
        raise AveragingError(f"averaging needs at least 2 snapshots, got {len(agents)}")
    _check_one_run(agents, paths)
    states = [a.model.state_dict() for a in agents]
    mean = {}
    for name, tensor in states[0].items():
        if not tensor.is_floating_point():
            if any(not torch.equal(s[name], tensor) for s in states):
                raise AveragingError(f"non-float tensor {name!r} differs between the snapshots; cannot average it")
            mean[name] = tensor.clone()
            continue
        total = torch.zeros(tensor.shape, dtype=torch.float64)
        for s in states:
            total += s[name].to(torch.float64)
        mean[name] = (total / len(states)).to(tensor.dtype)
    sources = [{"path": str(p), "identity": a.identity, "episodes": a.metadata.get("episodes")}
               for a, p in zip(agents, paths)]
    episodes = [s["episodes"] for s in sources if isinstance(s["episodes"], int)]
    note = rule(len(agents))
    base = agents[max(range(len(agents)), key=lambda i: agents[i].metadata.get("episodes") or 0)]
    metadata = {**base.metadata, "edited": note, "averaged": {"rule": note, "sources": sources},
                "episodes": max(episodes) if episodes else base.metadata.get("episodes")}
    model = copy.deepcopy(base.model)
    model.load_state_dict(mean)
    model.eval()
    return dataclasses.replace(base, model=model, identity=weights_identity(model.state_dict(), model.config),
                               source=f"{note} ({', '.join(str(p) for p in paths)})", format="hypodrive",
                               metadata=metadata)


def average_files(paths: Sequence[str | Path]) -> Agent:
    """Load and average one run's snapshot files (see ``average_agents``)."""
    paths = [Path(p) for p in paths]
    return average_agents([_load(p) for p in paths], paths)


def write_average(paths: Sequence[str | Path], out: str | Path, *, command: str | None = None) -> Agent:
    """Average the files and write the result atomically as a one-file checkpoint without optimizer state."""
    agent = average_files(paths)
    if command:
        agent.metadata["command"] = command
    save_agent(agent, Path(out))  # atomic (interp.atomic); no optimizer_state: nothing to resume from an average
    return agent
