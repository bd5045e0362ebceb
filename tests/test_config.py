"""rl-agents config files: base_config inheritance, where it is looked up, and model-config resolution."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from interp.model.config import (
    SELF_ATTENTION_DEFAULTS,
    canonical_json,
    load_agent_config,
    load_env_config,
    resolve_model_config,
)
from interp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"  # the configs the project was given (../shared)
PROJECT_COPY = ROOT / "checkpoints" / "configs"  # the project's unchanged copy (checkpoints/configs/SOURCE.md)
RESOLVED_4H = ROOT / "checkpoints" / "reference" / "agent_config.json"
CHILD = "config/agents/DQNAgent/ego_attention_4h.json"
BASE = "config/agents/DQNAgent/ego_attention.json"

# The reference env observation: 15 vehicles x 7 features, 3 actions.
N_ENTITIES, N_FEATURES, N_ACTIONS = 15, 7, 3


def _config_folders() -> list:
    folders = [pytest.param(PROJECT_COPY, id="project-copy")]
    folders.append(pytest.param(
        SHARED_REFERENCE, id="shared-reference",
        marks=pytest.mark.skipif(not SHARED_REFERENCE.is_dir(), reason="../shared/reference is not on this machine")))
    return folders


def _expected_4h(folder: Path) -> dict:
    """The base config with the 4h file's one change, merged by hand."""
    expected = json.loads((folder / BASE).read_text())
    expected["model"]["attention_layer"]["heads"] = 4
    return expected


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------------------------------------
# Loading with base_config.

@pytest.mark.parametrize("folder", _config_folders())
def test_reference_configs_load_from_the_folder_that_holds_config(folder, monkeypatch):
    monkeypatch.chdir(folder)
    config = load_agent_config(CHILD)
    assert "base_config" not in config
    assert config == _expected_4h(folder)
    assert config["model"]["attention_layer"] == {"type": "EgoAttention", "feature_size": 64, "heads": 4}
    assert config["gamma"] == 0.95 and config["exploration"]["tau"] == 15000  # inherited from the base
    assert load_env_config("config/env.json")["id"] == "intersection-v0"


@pytest.mark.parametrize("folder", _config_folders())
def test_reference_configs_load_from_anywhere_given_a_path(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config/ here: base_config must be found from the file's own folders
    config = load_agent_config(folder / CHILD)
    assert config == _expected_4h(folder)
    monkeypatch.chdir(folder.parent)  # a relative path from another folder
    assert load_agent_config(Path(folder.name) / CHILD) == config


def test_resolved_reference_config_equals_the_inherited_one():
    """checkpoints/reference/agent_config.json is the 4h config with base_config resolved."""
    assert load_agent_config(PROJECT_COPY / CHILD) == json.loads(RESOLVED_4H.read_text())


def test_working_directory_wins_over_the_file_folder_as_in_rl_agents(tmp_path, monkeypatch):
    child = _write(tmp_path / "project" / "config" / "child.json", {"base_config": "config/base.json", "b": 1})
    _write(tmp_path / "project" / "config" / "base.json", {"a": "next to the file", "nested": {"x": 1, "y": 1}})
    _write(tmp_path / "cwd" / "config" / "base.json", {"a": "working directory", "nested": {"x": 2, "y": 2}})
    monkeypatch.chdir(tmp_path / "cwd")
    assert load_agent_config(child)["a"] == "working directory"
    monkeypatch.chdir(tmp_path)
    assert load_agent_config(child)["a"] == "next to the file"


def test_base_config_is_deep_merged_recursively(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "a.json", {"model": {"layer": {"heads": 1, "size": 64}, "keep": True}, "gamma": 0.9})
    _write(tmp_path / "b.json", {"base_config": "a.json", "model": {"layer": {"heads": 2}}})
    _write(tmp_path / "c.json", {"base_config": "b.json", "model": {"layer": {"size": 32}}, "gamma": 0.95})
    assert load_agent_config(tmp_path / "c.json") == {
        "model": {"layer": {"heads": 2, "size": 32}, "keep": True}, "gamma": 0.95}


def test_base_config_cycle_names_the_cycle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = _write(tmp_path / "a.json", {"base_config": "b.json", "x": 1})
    b = _write(tmp_path / "b.json", {"base_config": "a.json", "y": 2})
    with pytest.raises(ConfigError, match="cycle") as info:
        load_agent_config(a)
    message = str(info.value)
    assert str(a) in message and str(b) in message
    assert message.index(str(a)) < message.index(str(b))  # in the order the chain was followed


def test_base_config_pointing_at_itself_is_a_cycle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = _write(tmp_path / "a.json", {"base_config": "a.json"})
    with pytest.raises(ConfigError, match="cycle"):
        load_agent_config(a)


def test_missing_base_config_lists_the_places_tried(tmp_path, monkeypatch):
    child = _write(tmp_path / "runs" / "x" / "child.json", {"base_config": "config/nope.json"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError, match="not found") as info:
        load_agent_config(child)
    message = str(info.value)
    assert "config/nope.json" in message and str(child) in message
    for place in (elsewhere / "config/nope.json", tmp_path / "runs/x/config/nope.json",
                  tmp_path / "runs/config/nope.json", tmp_path / "config/nope.json"):
        assert str(place) in message, place


def test_missing_or_invalid_config_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_agent_config(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_agent_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_agent_config(tmp_path / "list.json")
    _write(tmp_path / "env.json", {"observation": {}})
    with pytest.raises(ConfigError, match="'id'"):
        load_env_config(tmp_path / "env.json")


# ------------------------------------------------------------------------------------------------
# Model config resolution.

@pytest.fixture
def reference_model() -> dict:
    return copy.deepcopy(json.loads(RESOLVED_4H.read_text())["model"])


def _resolve(model: dict) -> dict:
    return resolve_model_config(model, N_ENTITIES, N_FEATURES, N_ACTIONS)


def test_reference_model_resolves_as_rl_agents_would(reference_model):
    resolved = _resolve(reference_model)
    assert resolved["in"] == N_ENTITIES * N_FEATURES and resolved["out"] == N_ACTIONS  # size_model_config
    for name in ("embedding_layer", "others_embedding_layer"):
        assert resolved[name] == {"type": "MultiLayerPerceptron", "in": 7, "layers": [64, 64],
                                  "activation": "RELU", "reshape": False, "out": None}
    assert resolved["self_attention_layer"] is None
    assert resolved["attention_layer"] == {"type": "EgoAttention", "feature_size": 64, "heads": 4, "dropout_factor": 0}
    assert resolved["output_layer"] == {"type": "MultiLayerPerceptron", "in": 64, "layers": [64, 64],
                                        "activation": "RELU", "reshape": False, "out": 3}
    assert resolved["presence_feature_idx"] == 0
    assert canonical_json(_resolve(reference_model)) == canonical_json(resolved)  # deterministic
    assert reference_model == json.loads(RESOLVED_4H.read_text())["model"]  # the input is not mutated


def test_omitted_self_attention_layer_gets_rl_agents_default():
    """rl-agents' EgoAttentionNetwork default includes a SelfAttention of feature_size 128, 4 heads."""
    mlp = {"type": "MultiLayerPerceptron", "layers": [128, 128], "reshape": False, "in": 7}
    model = {"type": "EgoAttentionNetwork", "embedding_layer": dict(mlp), "others_embedding_layer": dict(mlp),
             "attention_layer": {"type": "EgoAttention", "feature_size": 128, "heads": 4}}
    resolved = _resolve(model)
    assert resolved["self_attention_layer"] == {**SELF_ATTENTION_DEFAULTS, "type": "SelfAttention",
                                                "feature_size": 128, "heads": 4}
    assert resolved["self_attention_layer"]["dropout_factor"] == 0
    # Omitted embedding/output layers get rl-agents' 128-wide defaults too.
    assert resolved["output_layer"]["layers"] == [128, 128, 128]


def test_omitted_self_attention_layer_with_feature_size_64_is_a_clear_error(reference_model):
    del reference_model["self_attention_layer"]
    with pytest.raises(ConfigError) as info:
        _resolve(reference_model)
    message = str(info.value)
    assert "self_attention_layer" in message and "128" in message and "64" in message
    assert "null" in message  # says how to fix it


@pytest.mark.parametrize("heads", [3, 5, 0, -4, 128])
def test_heads_not_dividing_feature_size(reference_model, heads):
    reference_model["attention_layer"]["heads"] = heads
    with pytest.raises(ConfigError, match="heads") as info:
        _resolve(reference_model)
    assert str(heads) in str(info.value) and "feature_size = 64" in str(info.value)


def test_self_attention_heads_not_dividing_feature_size(reference_model):
    reference_model["self_attention_layer"] = {"type": "SelfAttention", "feature_size": 64, "heads": 5}
    with pytest.raises(ConfigError, match="self_attention_layer"):
        _resolve(reference_model)


@pytest.mark.parametrize("layer", ["embedding_layer", "others_embedding_layer"])
def test_embedding_in_disagreeing_with_the_env_feature_count(reference_model, layer):
    reference_model[layer]["in"] = 8
    with pytest.raises(ConfigError) as info:
        _resolve(reference_model)
    message = str(info.value)
    assert f"model.{layer}.in = 8" in message and "7 features" in message


def test_embedding_without_in_falls_back_to_the_flattened_size_and_is_refused(reference_model):
    """rl-agents falls back to the model-level ``in`` (15 x 7 = 105), which cannot embed one 7-feature row."""
    del reference_model["embedding_layer"]["in"]
    with pytest.raises(ConfigError, match="105"):
        _resolve(reference_model)


def test_embedding_width_must_equal_the_attention_feature_size(reference_model):
    reference_model["others_embedding_layer"]["layers"] = [64, 32]
    with pytest.raises(ConfigError, match="others_embedding_layer ends with width 32"):
        _resolve(reference_model)


@pytest.mark.parametrize("model_type", ["DuelingNetwork", "EgoAttentionNetwrk", None])
def test_unknown_model_type(reference_model, model_type):
    reference_model["type"] = model_type
    with pytest.raises(ConfigError, match="unknown model type") as info:
        _resolve(reference_model)
    assert repr(model_type) in str(info.value) and "EgoAttentionNetwork" in str(info.value)
