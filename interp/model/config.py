"""rl-agents configuration files: loading with ``base_config`` inheritance, and resolving a model config.

Resolution follows rl-agents exactly: an agent config is deep-merged over its ``base_config``
(recursively); the model config is merged over the model class's defaults, each sub-layer over its own
class's defaults; ``in``/``out`` come from the environment. Everything a user can get wrong raises a
``ConfigError`` that names the file, the key and the fix.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.errors import ConfigError

# rl-agents' defaults (rl_agents/agents/common/models.py, .../deep_q_network/abstract.py,
# .../exploration/epsilon_greedy.py); written out because rl-agents is not a dependency.
MLP_DEFAULTS: dict[str, Any] = {"in": None, "layers": [64, 64], "activation": "RELU", "reshape": "True", "out": None}
EGO_ATTENTION_DEFAULTS: dict[str, Any] = {"feature_size": 64, "heads": 4, "dropout_factor": 0}
SELF_ATTENTION_DEFAULTS: dict[str, Any] = {"feature_size": 64, "heads": 4, "dropout_factor": 0}
EGO_ATTENTION_NETWORK_DEFAULTS: dict[str, Any] = {
    "in": None,
    "out": None,
    "presence_feature_idx": 0,
    "embedding_layer": {"type": "MultiLayerPerceptron", "layers": [128, 128, 128], "reshape": False},
    "others_embedding_layer": {"type": "MultiLayerPerceptron", "layers": [128, 128, 128], "reshape": False},
    "self_attention_layer": {"type": "SelfAttention", "feature_size": 128, "heads": 4},
    "attention_layer": {"type": "EgoAttention", "feature_size": 128, "heads": 4},
    "output_layer": {"type": "MultiLayerPerceptron", "layers": [128, 128, 128], "reshape": False},
}
DQN_DEFAULTS: dict[str, Any] = {
    "model": {"type": "DuelingNetwork"},
    "optimizer": {"type": "ADAM", "lr": 5e-4, "weight_decay": 0, "k": 5},
    "loss_function": "l2",
    "memory_capacity": 50000,
    "batch_size": 100,
    "gamma": 0.99,
    "n_steps": 1,
    "device": "cuda:best",
    "exploration": {"method": "EpsilonGreedy", "temperature": 1.0, "final_temperature": 0.1, "tau": 5000},
    "target_update": 1,
    "double": True,
}
SUPPORTED_MODELS = ("EgoAttentionNetwork",)


def rec_update(base: dict, update: Mapping) -> dict:
    """Recursively merge ``update`` into ``base`` (in place), as rl-agents' ``Configurable.rec_update``."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = rec_update(dict(base[key]), value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def _find_base(ref: str, child: Path) -> tuple[Path, list[Path]]:
    """Resolve a relative ``base_config`` as rl-agents does (working directory) and then, so that a
    config works from anywhere, against the child file's folder and each of its parents."""
    candidates = [Path(ref)] if Path(ref).is_absolute() else [Path.cwd() / ref]
    if not Path(ref).is_absolute():
        candidates += [folder / ref for folder in [child.parent, *child.parent.parents]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve(), candidates
    return Path(), candidates


def load_agent_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """Load an rl-agents agent config, resolving ``base_config`` recursively (child merged over base)."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"base_config cycle: {cycle}; remove one of these base_config references")
    config = _read_json(path)
    ref = config.pop("base_config", None)
    if ref is None:
        return config
    base_path, tried = _find_base(str(ref), path)
    if not base_path.parts:
        places = "\n  ".join(str(p) for p in tried)
        raise ConfigError(
            f"{path}: base_config {ref!r} not found. Places tried:\n  {places}\n"
            "Run from the folder that holds config/ (as rl-agents does) or make the path absolute."
        )
    return rec_update(load_agent_config(base_path, (*_chain, path)), config)


def load_env_config(path: str | Path) -> dict:
    """Load an rl-agents env config (``id``, ``import_module`` and the highway-env config)."""
    config = _read_json(Path(path))
    if "id" not in config:
        raise ConfigError(f"{path}: an env config needs an 'id' (e.g. \"intersection-v0\")")
    return config


def _layer_config(defaults: dict, given: Mapping | None, where: str) -> dict:
    if given is not None and not isinstance(given, Mapping):
        raise ConfigError(f"model.{where} must be an object, found {given!r}")
    return rec_update(copy.deepcopy(defaults), given or {})


def resolve_model_config(model_config: Mapping, n_entities: int, n_features: int, n_actions: int) -> dict:
    """The complete model config rl-agents would build for an observation [n_entities, n_features].

    Checks what rl-agents would only discover as a shape error deep inside torch.
    """
    model_type = model_config.get("type")
    if model_type not in SUPPORTED_MODELS:
        raise ConfigError(
            f"unknown model type {model_type!r}: hypodrive supports {', '.join(SUPPORTED_MODELS)} "
            "(set agent config model.type)"
        )
    resolved = rec_update(copy.deepcopy(EGO_ATTENTION_NETWORK_DEFAULTS), model_config)
    # size_model_config: the flattened observation size and the number of actions.
    resolved["in"], resolved["out"] = n_entities * n_features, n_actions
    for name in ("embedding_layer", "others_embedding_layer"):
        layer = _layer_config(MLP_DEFAULTS, resolved[name], name)
        if layer.get("type", "MultiLayerPerceptron") != "MultiLayerPerceptron":
            raise ConfigError(f"model.{name}.type must be MultiLayerPerceptron, found {layer['type']!r}")
        layer["in"] = layer["in"] or resolved["in"]
        if layer["in"] != n_features:
            raise ConfigError(
                f"model.{name}.in = {layer['in']} but the environment's observation has {n_features} features "
                f"per vehicle; set model.{name}.in to {n_features} or use the env config the agent was trained on"
            )
        resolved[name] = layer
    if resolved["self_attention_layer"]:
        resolved["self_attention_layer"] = _layer_config(
            SELF_ATTENTION_DEFAULTS, resolved["self_attention_layer"], "self_attention_layer")
        _check_heads(resolved["self_attention_layer"], "self_attention_layer")
    resolved["attention_layer"] = _layer_config(EGO_ATTENTION_DEFAULTS, resolved["attention_layer"], "attention_layer")
    _check_heads(resolved["attention_layer"], "attention_layer")
    feature_size = resolved["attention_layer"]["feature_size"]
    for name in ("embedding_layer", "others_embedding_layer"):
        width = resolved[name]["layers"][-1] if resolved[name]["layers"] else resolved[name]["in"]
        if width != feature_size:
            raise ConfigError(
                f"model.{name} ends with width {width} but attention_layer.feature_size is {feature_size}; "
                "they must be equal"
            )
    if resolved["self_attention_layer"] and resolved["self_attention_layer"]["feature_size"] != feature_size:
        raise ConfigError(
            f"self_attention_layer.feature_size = {resolved['self_attention_layer']['feature_size']} differs from "
            f"attention_layer.feature_size = {feature_size} (rl-agents' default self_attention_layer has 128: set "
            "\"self_attention_layer\": null or give it the same feature_size)"
        )
    output = _layer_config(MLP_DEFAULTS, resolved["output_layer"], "output_layer")
    output["in"], output["out"] = feature_size, n_actions
    resolved["output_layer"] = output
    return resolved


def _check_heads(layer: dict, where: str) -> None:
    heads, size = layer["heads"], layer["feature_size"]
    if not isinstance(heads, int) or heads < 1 or size % heads:
        raise ConfigError(
            f"model.{where}: heads = {heads!r} must be a positive integer dividing feature_size = {size} "
            f"(e.g. one of {[h for h in range(1, size + 1) if size % h == 0][:8]})"
        )


def resolve_agent_config(agent_config: Mapping) -> dict:
    """The agent config with rl-agents' DQN defaults filled in where it is silent (model left as given)."""
    resolved = rec_update(copy.deepcopy(DQN_DEFAULTS), agent_config)
    resolved["model"] = copy.deepcopy(dict(agent_config.get("model", DQN_DEFAULTS["model"])))
    return resolved


def canonical_json(data: Any) -> str:
    """One string per value: sorted keys, no whitespace (used for hashes and cache keys)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
