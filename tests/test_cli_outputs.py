"""What ``python -m interp inspect`` and ``bundle`` write: loadable files, named as the user asked (``.npz`` added
as ``np.savez`` would), all or nothing (``interp.atomic``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from interp.cli import main
from interp.model import checkpoint as ckpt
from interp.simulation.agent import load_agent, save_agent

REFERENCE = "checkpoints/reference"


@pytest.mark.parametrize("name", ["out.npz", "out"])
def test_inspect_writes_q_values_and_attention_of_every_observation(tmp_path, name):
    agent = load_agent(REFERENCE)
    obs = np.zeros((3, 15, 7), np.float32)
    obs[:, :2, 0] = 1.0
    np.save(tmp_path / "obs.npy", obs)
    assert main(["inspect", "--checkpoint", REFERENCE, "--obs", str(tmp_path / "obs.npy"),
                 "--out", str(tmp_path / name)]) == 0
    with np.load(tmp_path / "out.npz") as data:
        assert data["q_values"].shape == (3, 3) and data["attention"].shape == (3, agent.n_heads, 1, 15)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.npy", "out.npz"]  # no temporary file left


def test_bundle_copies_a_run_into_a_loadable_checkpoint_folder(tmp_path):
    agent = load_agent(REFERENCE)
    run = tmp_path / "run"
    save_agent(agent, run / "agent.pt")
    ckpt.save_rl_agents(run / "saved_models" / "latest.tar", agent.model.state_dict(), None)
    (run / "metadata.json").write_text("{}")
    (run / "history.json").write_text(json.dumps([{"crashed": False, "arrived": True}]))
    assert main(["bundle", str(run), str(tmp_path / "out")]) == 0
    assert load_agent(tmp_path / "out").identity == agent.identity
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "agent.pt", "latest.tar", "agent_config.json", "env_config.json", "training_history.json", "metadata.json"}
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["bundled_from"] == str(run)


def test_bundle_of_an_incomplete_run_says_what_is_missing_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["bundle", str(tmp_path / "run"), str(tmp_path / "out")]) == 2
    assert "missing" in capsys.readouterr().err and not (tmp_path / "out").exists()
