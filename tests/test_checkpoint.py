"""Checkpoint files: every bad input gives a CheckpointError saying what is wrong; formats and identity."""
from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.model import checkpoint as ckpt
from interp.simulation.agent import load_agent, save_agent, untrained_agent
from interp.model.config import load_agent_config, load_env_config
from interp.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent
AGENT_CONFIG_4H = ROOT / "checkpoints" / "reference" / "agent_config.json"
AGENT_CONFIG_2H = ROOT / "checkpoints" / "configs" / "config" / "agents" / "DQNAgent" / "ego_attention_2h.json"
ENV_CONFIG = ROOT / "checkpoints" / "reference" / "env_config.json"
NOT_A_CHECKPOINT = r"not a (readable )?torch checkpoint"

# Side effects of unpickling the payload classes below: if anything lands here, code ran at load time.
SIDE_EFFECTS: list[str] = []


def _record(what: str) -> str:
    SIDE_EFFECTS.append(what)
    return what


class ReducePayload:
    """An object whose unpickling calls a function (the classic malicious-pickle shape, made harmless)."""

    def __reduce__(self):
        return (_record, ("__reduce__ ran",))


class SetStatePayload:
    """An object whose unpickling runs ``__setstate__``."""

    def __init__(self) -> None:
        self.value = 1

    def __setstate__(self, state: dict) -> None:
        _record("__setstate__ ran")
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def env_config() -> dict:
    return load_env_config(ENV_CONFIG)


@pytest.fixture(scope="module")
def agent(env_config):
    return untrained_agent(load_agent_config(AGENT_CONFIG_4H), env_config, init_seed=3)


@pytest.fixture
def obs() -> torch.Tensor:  # reference-architecture inputs (not the planted model's): dense random scenes
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(16, 15, 7)).astype(np.float32)
    x[:, :, 0] = (rng.random((16, 15)) < 0.7).astype(np.float32)
    x[:, 0, 0] = 1.0
    return torch.from_numpy(x)


def _rl_agents_file(path: Path, state_dict: dict, optimizer_state: dict | None = None) -> Path:
    """A checkpoint as rl-agents' DQNAgent.save writes it, in a run's saved_models/ folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state_dict, "optimizer": optimizer_state or {}}, path)
    return path


def _load_error(path: Path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load_agent(path, **kwargs)
    return str(info.value)


# ------------------------------------------------------------------------------------------------
# Files that are not checkpoints.

def test_missing_file(tmp_path):
    message = _load_error(tmp_path / "nope.tar", agent_config=AGENT_CONFIG_4H)
    assert "not found" in message and "nope.tar" in message


def test_folder_without_a_checkpoint(tmp_path):
    message = _load_error(tmp_path, agent_config=AGENT_CONFIG_4H)
    assert str(tmp_path) in message and "agent.pt" in message and "latest.tar" in message


def _junk_files(tmp_path: Path) -> dict[str, Path]:
    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.ones(100)}}, buffer)
    real = buffer.getvalue()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "hi")
    npy = io.BytesIO()
    np.save(npy, np.ones(3))
    contents = {f"random{seed}.bin": np.random.default_rng(seed).bytes(512) for seed in range(5)}
    contents |= {
        "notes.txt": b"hello world\nthis is a text file, not a checkpoint\n",
        "config.json": json.dumps({"state_dict": {}}).encode(),
        "empty.tar": b"",
        "truncated.tar": real[: len(real) // 2],
        "archive.zip": archive.getvalue(),
        "array.npy": npy.getvalue(),
        "plain.pkl": pickle.dumps({"a": 1}, protocol=2),
    }
    files = {}
    for name, data in contents.items():
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    return files


def test_files_that_are_not_torch_checkpoints(tmp_path):
    for name, path in _junk_files(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            ckpt.safe_torch_load(path)
        message = str(info.value)
        assert str(path) in message, name
        assert re.search(NOT_A_CHECKPOINT, message), (name, message)
        # Junk must not be mistaken for a pickle that needs code.
        assert "refusing" not in message, (name, message)
        assert "torch.save" in message, name  # says what a checkpoint should be


def test_text_file_through_load_agent(tmp_path):
    path = tmp_path / "latest.tar"
    path.write_text("not a checkpoint\n")
    assert re.search(NOT_A_CHECKPOINT, _load_error(path, agent_config=AGENT_CONFIG_4H))


def test_a_torch_file_of_something_else(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    message = _load_error(path, agent_config=AGENT_CONFIG_4H)
    assert "list" in message and "state_dict" in message


# ------------------------------------------------------------------------------------------------
# Pickles that need code to load.

@pytest.fixture
def spy_torch_load(monkeypatch) -> list[dict]:
    """Record the keyword arguments of every torch.load the project makes."""
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


@pytest.mark.parametrize("payload_class", [ReducePayload, SetStatePayload])
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickle_that_needs_code_is_refused_and_never_run(tmp_path, agent, payload_class, writer, spy_torch_load):
    path = tmp_path / "saved_models" / "latest.tar"
    path.parent.mkdir()
    if writer == "torch.save":
        torch.save({"state_dict": agent.model.state_dict(), "optimizer": payload_class()}, path)
    else:  # a legacy, non-zip pickle file (no tensors: plain pickle stores those through a global of its own)
        with path.open("wb") as f:
            pickle.dump({"state_dict": {}, "optimizer": payload_class()}, f, protocol=2)
    SIDE_EFFECTS.clear()
    message = _load_error(path, agent_config=AGENT_CONFIG_4H)
    assert SIDE_EFFECTS == [], "unpickling ran code"
    assert spy_torch_load and all(call.get("weights_only") is True for call in spy_torch_load)
    assert "refusing" in message and "run code" in message and "never loads" in message
    expected_global = "_record" if payload_class is ReducePayload else payload_class.__name__
    assert expected_global in message  # names what the file asked for
    assert "torch.save({'state_dict'" in message  # how to fix it
    # Control: the payload really does run code when loaded unsafely, so the assertion above can fail.
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        with path.open("rb") as f:
            pickle.load(f)
    assert SIDE_EFFECTS
    SIDE_EFFECTS.clear()


# ------------------------------------------------------------------------------------------------
# State dicts that do not fit the config.

def test_missing_and_unexpected_keys_are_listed(tmp_path, agent):
    state_dict = dict(agent.model.state_dict())
    del state_dict["attention_layer.key_all.weight"]
    del state_dict["output_layer.predict.bias"]
    state_dict["attention_layer.key_others.weight"] = torch.zeros(64, 64)
    path = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", state_dict)
    message = _load_error(path, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG)
    assert "missing keys: attention_layer.key_all.weight, output_layer.predict.bias" in message
    assert "unexpected keys: attention_layer.key_others.weight" in message
    assert "--agent-config" in message


def test_self_attention_checkpoint_with_a_config_without_it(tmp_path, agent):
    state_dict = dict(agent.model.state_dict())
    for name in ("value_all", "key_all", "query_all", "attention_combine"):
        state_dict[f"self_attention_layer.{name}.weight"] = torch.zeros(64, 64)
    path = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", state_dict)
    message = _load_error(path, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG)
    assert "unexpected keys: self_attention_layer.value_all.weight" in message
    assert "self_attention_layer" in message.split("\n")[-1]  # the hint names the likely cause


def test_shape_mismatch_names_the_tensor_with_expected_and_found(tmp_path, agent):
    state_dict = dict(agent.model.state_dict())
    state_dict["ego_embedding.layers.0.weight"] = torch.zeros(64, 8)
    state_dict["output_layer.predict.bias"] = torch.zeros(5)
    path = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", state_dict)
    message = _load_error(path, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG)
    assert "ego_embedding.layers.0.weight: expected (64, 7), found (64, 8)" in message
    assert "output_layer.predict.bias: expected (3,), found (5,)" in message
    assert "missing keys" not in message and "unexpected keys" not in message


def test_rl_agents_checkpoint_without_agent_config(tmp_path, agent):
    path = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", agent.model.state_dict())
    message = _load_error(path)
    assert "--agent-config" in message and "rl-agents" in message and str(path) in message
    bare = tmp_path / "bare" / "weights.pt"
    bare.parent.mkdir()
    torch.save(agent.model.state_dict(), bare)
    assert "--agent-config" in _load_error(bare)


def test_unsupported_project_format_version(tmp_path, agent):
    path = tmp_path / "agent.pt"
    save_agent(agent, path)
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "version": 99}, path)
    message = _load_error(path)
    assert "version 99" in message and "version 1" in message


# ------------------------------------------------------------------------------------------------
# Round trips and identity.

def test_project_checkpoint_round_trips(tmp_path, agent, obs):
    path = tmp_path / "agent.pt"
    save_agent(agent, path, metadata={"note": "round trip"})
    loaded = load_agent(path)  # one file is enough: no configs given
    assert loaded.format == "hypodrive"
    assert loaded.identity == agent.identity
    assert loaded.agent_config == agent.agent_config and loaded.env_config == agent.env_config
    assert loaded.action_names == agent.action_names == ["SLOWER", "IDLE", "FASTER"]
    assert loaded.metadata["note"] == "round trip"
    with torch.no_grad():
        assert torch.equal(loaded.model(obs), agent.model(obs))
        assert torch.equal(loaded.model.attention(obs), agent.model.attention(obs))
    for (name, a), (name_b, b) in zip(agent.model.state_dict().items(), loaded.model.state_dict().items()):
        assert name == name_b and torch.equal(a, b)
    # A bundled checkpoint folder resolves to its agent.pt; saving again keeps the identity.
    assert load_agent(tmp_path).identity == agent.identity
    save_agent(loaded, tmp_path / "again.pt")
    assert load_agent(tmp_path / "again.pt").identity == agent.identity


def test_identity_is_the_same_in_every_format(tmp_path, agent, obs):
    state_dict = agent.model.state_dict()
    rl_agents = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", state_dict)
    optimizer = torch.optim.Adam(agent.model.parameters(), lr=5e-4)
    other_optimizer = _rl_agents_file(tmp_path / "run2" / "saved_models" / "latest.tar", state_dict,
                                      optimizer.state_dict())
    bare = tmp_path / "bare" / "weights.pt"
    bare.parent.mkdir()
    torch.save(state_dict, bare)
    project = tmp_path / "project" / "agent.pt"
    save_agent(agent, project)
    loaded = {
        "rl-agents": load_agent(rl_agents, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG),
        "rl-agents+optimizer": load_agent(other_optimizer, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG),
        "bare": load_agent(bare, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG),
        "hypodrive": load_agent(project),
    }
    assert {name: a.format for name, a in loaded.items()} == {
        "rl-agents": "rl-agents", "rl-agents+optimizer": "rl-agents", "bare": "bare", "hypodrive": "hypodrive"}
    assert {a.identity for a in loaded.values()} == {agent.identity}
    with torch.no_grad():
        expected = agent.model(obs)
        for name, a in loaded.items():
            assert torch.equal(a.model(obs), expected), name


def test_identity_differs_with_the_head_count_for_the_same_weights(tmp_path, agent, obs):
    path = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", agent.model.state_dict())
    four = load_agent(path, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG)
    two = load_agent(path, agent_config=AGENT_CONFIG_2H, env_config=ENV_CONFIG)
    assert (four.n_heads, two.n_heads) == (4, 2)
    assert four.identity != two.identity
    with torch.no_grad():
        assert not torch.allclose(four.model(obs), two.model(obs))  # the same weights, another network


def test_identity_changes_with_any_weight(agent):
    state_dict = {k: v.clone() for k, v in agent.model.state_dict().items()}
    assert ckpt.weights_identity(state_dict, agent.model_config) == agent.identity
    state_dict["output_layer.predict.bias"][0] += 1e-6
    assert ckpt.weights_identity(state_dict, agent.model_config) != agent.identity


def test_configs_next_to_an_rl_agents_checkpoint_are_used(tmp_path, agent):
    """A bundled folder (agent_config.json + env_config.json beside the .tar) needs no arguments."""
    folder = tmp_path / "bundle"
    path = _rl_agents_file(folder / "latest.tar", agent.model.state_dict())
    (folder / "agent_config.json").write_text(AGENT_CONFIG_4H.read_text())
    (folder / "env_config.json").write_text(ENV_CONFIG.read_text())
    loaded = load_agent(path)
    assert loaded.format == "rl-agents" and loaded.identity == agent.identity


def _head_mismatch(tmp_path, agent, where: str) -> Path:
    """A 4-head checkpoint whose files say so: the one-file format, a bundled folder, or an rl-agents run."""
    if where == "hypodrive":
        path = tmp_path / "agent.pt"
        save_agent(agent, path)
        return path
    if where == "bundled folder":
        path = _rl_agents_file(tmp_path / "bundle" / "latest.tar", agent.model.state_dict())
        (path.parent / "agent_config.json").write_text(AGENT_CONFIG_4H.read_text())
        return path
    path = _rl_agents_file(tmp_path / "run" / "saved_models" / "latest.tar", agent.model.state_dict())
    meta = {"agent": json.loads(AGENT_CONFIG_4H.read_text()), "env": json.loads(ENV_CONFIG.read_text())}
    (tmp_path / "run" / "metadata.1234.json").write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("where", ["hypodrive", "bundled folder", "rl-agents run"])
def test_an_agent_config_with_another_head_count_than_the_stored_one_is_refused(tmp_path, agent, where):
    """Parameter shapes do not depend on the head count, so only the stored config can tell: it must agree."""
    path = _head_mismatch(tmp_path, agent, where)
    message = _load_error(path, agent_config=AGENT_CONFIG_2H, env_config=ENV_CONFIG)
    assert "heads" in message and "given 2, stored 4" in message and "--agent-config" in message
    same = load_agent(path, agent_config=AGENT_CONFIG_4H, env_config=ENV_CONFIG)  # the control: agreeing configs load
    assert same.n_heads == 4 and same.identity == agent.identity
