"""Checkpoint files: safe loading of rl-agents, bare state-dict and hypodrive files; saving; identity.

Three formats hold the same network:
- rl-agents: ``torch.save({"state_dict": ..., "optimizer": ...})`` (``saved_models/latest.tar``); configs
  come from ``--agent-config``/``--env-config`` or from an rl-agents run's ``metadata.*.json``.
- bare: a state dict alone.
- hypodrive: one file with the weights, optimizer state, resolved agent config, env config and metadata.

Every load uses ``torch.load(weights_only=True)``: a checkpoint never runs code. A file that would need
code to unpickle is refused with the reason, never retried unsafely.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from interp.atomic import torch_bytes, write_file
from interp.model.config import canonical_json
from interp.errors import CheckpointError

PROJECT_FORMAT = "hypodrive-checkpoint"
PROJECT_FORMAT_VERSION = 1
PROJECT_FILE = "agent.pt"  # the one-file checkpoint inside a bundled checkpoint folder
RL_AGENTS_FILE = "latest.tar"
# Messages of torch's weights_only unpickler that mean "this pickle needs code to load".
_NEEDS_CODE = re.compile(r"Unsupported global|is blocked|unrecognized function|Can only create new object|Can only build")


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` with errors a user can act on."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a checkpoint file or a bundled checkpoint folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        # torch prefixes *every* weights_only failure (random bytes included) with "Weights only load
        # failed"; only these markers mean the pickle itself asks for code (a global, a call, a build).
        needs_code = [line.strip() for line in text.splitlines() if _NEEDS_CODE.search(line)]
        if needs_code:
            raise CheckpointError(
                f"refusing to load {path}: it contains pickled Python objects that would run code when "
                "loaded (only tensors, numbers, strings and containers are allowed). hypodrive never loads "
                "such files unsafely. Re-save the checkpoint from plain tensors, e.g. "
                "torch.save({'state_dict': net.state_dict(), 'optimizer': opt.state_dict()}, path)."
                f"\nDetail: {needs_code[0].split(' Please use')[0]}"
            ) from None
        raise CheckpointError(
            f"{path} is not a torch checkpoint (its content is not a pickle torch can read); "
            "was it written by torch.save and copied completely?"
        ) from None
    except Exception as err:  # torch's parsers raise KeyError, IndexError, RuntimeError... on junk input
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err}); "
            "was it written by torch.save and copied completely?"
        ) from None


def classify(raw: Any, path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(format name, state dict) of a loaded checkpoint object."""
    if isinstance(raw, Mapping) and raw.get("format") == PROJECT_FORMAT:
        return "hypodrive", dict(raw["state_dict"])
    if isinstance(raw, Mapping) and "state_dict" in raw:
        return "rl-agents", dict(raw["state_dict"])
    if isinstance(raw, Mapping) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        return "bare", dict(raw)
    kind = type(raw).__name__
    keys = f" with keys {sorted(raw)[:8]}" if isinstance(raw, Mapping) else ""
    raise CheckpointError(
        f"{path}: a {kind}{keys} is not a checkpoint hypodrive knows. Expected an rl-agents file "
        "({'state_dict', 'optimizer'}), a bare state dict, or a hypodrive checkpoint."
    )


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: str) -> None:
    """Missing/unexpected keys and shape mismatches, all listed in one message."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(found[k].shape)}"
        for k in expected
        if k in found and tuple(expected[k].shape) != tuple(found[k].shape)
    ]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if shapes:
        problems.append("shape mismatches: " + "; ".join(shapes))
    if problems:
        raise CheckpointError(
            f"{source} does not match the model built from the agent config:\n  " + "\n  ".join(problems)
            + "\nCheck that --agent-config is the config this checkpoint was trained with (layer sizes, "
            "self_attention_layer, heads) and that --env-config gives the same observation."
        )


def weights_identity(state_dict: Mapping[str, torch.Tensor], model_config: Mapping) -> str:
    """A hash of the weights and the resolved model config: the same whatever file format holds them.

    The head count is not visible in the shapes, so the config is part of the identity.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    digest.update(canonical_json(model_config).encode())
    return digest.hexdigest()[:16]


def save_rl_agents(path: str | Path, state_dict: Mapping[str, torch.Tensor], optimizer_state: Mapping | None) -> None:
    """An rl-agents checkpoint, loadable by rl-agents' own ``DQNAgent.load``; written atomically (a killed run or
    a full disk leaves the previous file whole)."""
    write_file(path, torch_bytes({"state_dict": dict(state_dict), "optimizer": optimizer_state or {}}),
               what="the checkpoint")


def save_project(path: str | Path, state_dict: Mapping[str, torch.Tensor], *, agent_config: Mapping,
                 env_config: Mapping, metadata: Mapping | None = None, optimizer_state: Mapping | None = None) -> None:
    """The one-file hypodrive format: weights, optimizer, configs and metadata (configs as JSON text); written
    atomically."""
    write_file(path, torch_bytes(
        {
            "format": PROJECT_FORMAT,
            "version": PROJECT_FORMAT_VERSION,
            "state_dict": dict(state_dict),
            "optimizer": optimizer_state or {},
            "agent_config": json.dumps(agent_config),
            "env_config": json.dumps(env_config),
            "metadata": json.dumps(metadata or {}, default=str),
        }), what="the checkpoint")


def project_payload(raw: Mapping, path: Path) -> tuple[dict, dict, dict]:
    """(agent config, env config, metadata) stored in a hypodrive checkpoint."""
    version = raw.get("version")
    if version != PROJECT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is a hypodrive checkpoint of format version {version}; this hypodrive reads version "
            f"{PROJECT_FORMAT_VERSION}. Upgrade hypodrive or re-save the checkpoint."
        )
    try:
        return json.loads(raw["agent_config"]), json.loads(raw["env_config"]), json.loads(raw.get("metadata", "{}"))
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: hypodrive checkpoint with a damaged config entry ({err})") from None
