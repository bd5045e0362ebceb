"""The agent under test: a hooked model plus the configs and identity that say which agent it is."""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp.model import checkpoint as ckpt
from interp.model.config import canonical_json, load_agent_config, load_env_config, resolve_model_config
from interp.simulation.env import env_spec
from interp.errors import CheckpointError, ConfigError
from interp.model.network import EgoAttentionNetwork

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # interp/<layer>/<module>.py
REFERENCE_DIR = PROJECT_ROOT / "checkpoints" / "reference"
DEFAULT_ENV_CONFIG = REFERENCE_DIR / "env_config.json"


@dataclasses.dataclass
class Agent:
    """A loaded agent. ``identity`` names the weights + model config, whatever file held them."""

    model: EgoAttentionNetwork
    agent_config: dict
    env_config: dict
    action_names: list[str]
    identity: str
    source: str = ""
    format: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def model_config(self) -> dict:
        return self.model.config

    @property
    def n_heads(self) -> int:
        return self.model.n_heads

    @torch.no_grad()
    def q_values(self, obs: np.ndarray | torch.Tensor) -> np.ndarray:
        """Q-values [B, A] of observations [B, N, F] (or one [N, F])."""
        x = torch.as_tensor(np.array(obs, dtype=np.float32))  # a copy: scenes hold read-only arrays
        if x.ndim == 2:
            x = x[None]
        return self.model(x).numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions [B] by ``interp.model.policy`` (one row at a time, the near-tie rule), as in rollouts."""
        from interp.model.policy import decide

        return decide(self.model, obs).actions

    def with_model(self, model: EgoAttentionNetwork, note: str) -> "Agent":
        """A new Agent around an edited model (the original untouched); its identity is recomputed."""
        return dataclasses.replace(
            self, model=model, identity=ckpt.weights_identity(model.state_dict(), model.config),
            source=f"{self.source} [{note}]", metadata={**self.metadata, "edited": note},
        )

    def describe(self) -> dict[str, Any]:
        from interp.simulation.lineage import lineage

        return {"identity": self.identity, "source": self.source, "format": self.format,
                "heads": self.n_heads, "actions": self.action_names,
                "lineage": lineage(self.metadata, self.agent_config, self.env_config)}


@functools.lru_cache(maxsize=16)
def _env_spec_cached(env_json: str) -> tuple[tuple[int, int], tuple[str, ...]]:
    shape, names = env_spec(json.loads(env_json))
    return shape, tuple(names)


def build_model(agent_config: Mapping, env_config: Mapping) -> tuple[EgoAttentionNetwork, list[str]]:
    """An (untrained) model sized by the env, exactly as rl-agents would build it."""
    if "model" not in agent_config:
        raise ConfigError("agent config has no 'model' section; is this an rl-agents agent config?")
    (n_entities, n_features), names = _env_spec_cached(canonical_json(env_config))
    model_config = resolve_model_config(agent_config["model"], n_entities, n_features, len(names))
    return EgoAttentionNetwork(model_config), list(names)


def untrained_agent(agent_config: Mapping, env_config: Mapping, init_seed: int = 0) -> Agent:
    """The untrained control: the same architecture with PyTorch's default init under a fixed seed.

    ``python -m interp train --seed S`` initialises its network exactly so, so ``init_seed=S`` is that run's
    own starting point (the bundled reference agents were trained with seed 0).
    """
    with torch.random.fork_rng():
        torch.manual_seed(init_seed)
        model, names = build_model(agent_config, env_config)
    model.eval()
    return Agent(model=model, agent_config=copy.deepcopy(dict(agent_config)), env_config=copy.deepcopy(dict(env_config)),
                 action_names=names, identity=ckpt.weights_identity(model.state_dict(), model.config),
                 source=f"untrained(init_seed={init_seed})", format="untrained")


def _sibling_configs(path: Path) -> tuple[dict | None, dict | None]:
    """Configs next to a checkpoint: a bundled folder's JSON files, or an rl-agents run's metadata.*.json."""
    for folder in (path.parent, path.parent.parent):
        agent_file, env_file = folder / "agent_config.json", folder / "env_config.json"
        if agent_file.is_file():
            return load_agent_config(agent_file), (load_env_config(env_file) if env_file.is_file() else None)
        for meta in sorted(folder.glob("metadata.*.json")):
            data = json.loads(meta.read_text())
            if isinstance(data, dict) and "agent" in data and "env" in data:
                return data["agent"], data["env"]
    return None, None


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the file to use inside a bundled checkpoint folder."""
    path = Path(path)
    if path.is_dir():
        for name in (ckpt.PROJECT_FILE, ckpt.RL_AGENTS_FILE, f"saved_models/{ckpt.RL_AGENTS_FILE}"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(
            f"{path} is a folder with no {ckpt.PROJECT_FILE} or {ckpt.RL_AGENTS_FILE}; give the checkpoint file itself"
        )
    return path


def load_agent(checkpoint: str | Path, agent_config: str | Path | Mapping | None = None,
               env_config: str | Path | Mapping | None = None) -> Agent:
    """Load any supported checkpoint; explicit configs override those stored with it."""
    path = resolve_checkpoint_path(checkpoint)
    raw = ckpt.safe_torch_load(path)
    fmt, state_dict = ckpt.classify(raw, path)
    stored_agent, stored_env, metadata = (None, None, {})
    if fmt == "hypodrive":
        stored_agent, stored_env, metadata = ckpt.project_payload(raw, path)
    else:
        stored_agent, stored_env = _sibling_configs(path)
    explicit_agent = _as_config(agent_config, load_agent_config)
    agent_cfg = explicit_agent or stored_agent
    env_cfg = _as_config(env_config, load_env_config) or stored_env
    if agent_cfg is None:
        raise CheckpointError(
            f"{path} is an {fmt} checkpoint and carries no agent config: pass --agent-config CONFIG.json "
            "(the rl-agents agent config it was trained with)"
        )
    if env_cfg is None:
        env_cfg = load_env_config(DEFAULT_ENV_CONFIG)
    model, names = build_model(agent_cfg, env_cfg)
    if explicit_agent is not None and stored_agent is not None:
        _check_same_heads(model, build_model(stored_agent, env_cfg)[0], path, fmt)
    ckpt.check_state_dict(model.state_dict(), state_dict, str(path))
    model.load_state_dict(state_dict)
    model.eval()
    return Agent(model=model, agent_config=dict(agent_cfg), env_config=dict(env_cfg), action_names=names,
                 identity=ckpt.weights_identity(model.state_dict(), model.config), source=str(path),
                 format=fmt, metadata=metadata)


def _check_same_heads(given: EgoAttentionNetwork, stored: EgoAttentionNetwork, path: Path, fmt: str) -> None:
    """Refuse an agent config whose head count disagrees with the one stored with the checkpoint.

    Parameter shapes do not depend on the head count (heads split ``feature_size``), so a 4-head checkpoint
    loads silently into a 2-head network: a different function under a different identity. Where the files
    say which count is right (the one-file format's config, a bundled folder's or an rl-agents run's
    metadata), the two must agree."""
    def heads(config: Mapping, layer: str) -> int | None:
        return (config.get(layer) or {}).get("heads")

    mismatched = [(layer, heads(given.config, layer), heads(stored.config, layer))
                  for layer in ("attention_layer", "self_attention_layer")
                  if heads(given.config, layer) != heads(stored.config, layer)]
    if mismatched:
        where = "inside the checkpoint" if fmt == "hypodrive" else "beside the checkpoint (agent_config.json or metadata.*.json)"
        detail = "; ".join(f"{name}.heads: given {g}, stored {s_}" for name, g, s_ in mismatched)
        raise CheckpointError(
            f"{path}: the --agent-config disagrees with the agent config stored {where}: {detail}. The weights "
            "would load into a network with another head count (same parameter shapes, a different function). "
            "Drop --agent-config to use the stored one, or fix its 'heads'."
        )


def save_agent(agent: Agent, path: str | Path, *, optimizer_state: Mapping | None = None,
               metadata: Mapping | None = None) -> None:
    """Save in the hypodrive one-file format."""
    ckpt.save_project(path, agent.model.state_dict(), agent_config=agent.agent_config, env_config=agent.env_config,
                      metadata={**agent.metadata, **(metadata or {})}, optimizer_state=optimizer_state)


def _as_config(value: str | Path | Mapping | None, loader) -> dict | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    return loader(value)
