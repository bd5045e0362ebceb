"""Weight averaging of one run's snapshots: known answers (the mean of planted weights, identical snapshots give
the same function), and every refusal (other architecture, other run, too few files, a corrupt file, a file
without a recorded run) on real snapshots of tiny training runs."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from interp.cli import main
from interp.model.checkpoint import safe_torch_load, weights_identity
from interp.simulation.agent import load_agent, save_agent
from interp.training.averaging import AveragingError, average_files, write_average
from tests.tiny_runs import train_tiny


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"a": train_tiny(root / "a", seed=1), "other": train_tiny(root / "other", seed=2),
            "two_heads": train_tiny(root / "two_heads", seed=1, heads=2)}


def snaps(run, *episodes):
    return [run / "snapshots" / f"episode-{e}.pt" for e in episodes]


def _planted(agent, value: float):
    """The agent with every float parameter set to ``value`` (a planted state dict of the same run)."""
    model = type(agent.model)(agent.model.config)
    model.load_state_dict({k: torch.full_like(v, value) for k, v in agent.model.state_dict().items()})
    return dataclasses.replace(agent, model=model, identity=weights_identity(model.state_dict(), model.config))


def test_two_planted_state_dicts_average_to_their_mean(runs, tmp_path):
    base = load_agent(snaps(runs["a"], 1)[0])
    for name, value in (("one", 1.0), ("three", 3.0)):
        save_agent(_planted(base, value), tmp_path / f"{name}.pt")
    avg = average_files([tmp_path / "one.pt", tmp_path / "three.pt"])
    assert all(torch.equal(v, torch.full_like(v, 2.0)) for v in avg.model.state_dict().values())


def test_real_snapshots_average_to_their_elementwise_mean(runs):
    paths = snaps(runs["a"], 1, 2, 3)
    states = [load_agent(p).model.state_dict() for p in paths]
    avg = average_files(paths).model.state_dict()
    for name, tensor in avg.items():
        expected = (sum(s[name].double() for s in states) / 3).float()
        assert torch.equal(tensor, expected), name
    assert not torch.equal(avg["attention_layer.value_all.weight"], states[-1]["attention_layer.value_all.weight"])


def test_averaging_identical_snapshots_gives_the_same_q_values(runs, tmp_path):
    path = snaps(runs["a"], 2)[0]
    agent = load_agent(path)
    avg = write_average([path, path, path], tmp_path / "same.pt")
    obs = torch.randn(16, 15, 7, generator=torch.Generator().manual_seed(0)).numpy()
    assert (load_agent(tmp_path / "same.pt").q_values(obs) == agent.q_values(obs)).all()
    assert avg.identity == agent.identity


def test_the_written_checkpoint_lists_its_sources_and_has_no_optimizer_state(runs, tmp_path):
    paths = snaps(runs["a"], 2, 3)
    write_average(paths, tmp_path / "avg.pt")
    raw = safe_torch_load(tmp_path / "avg.pt")
    assert raw["optimizer"] == {}
    meta = load_agent(tmp_path / "avg.pt").metadata
    assert meta["averaged"]["rule"] == "weights averaged (uniform) over 2 snapshots" == meta["edited"]
    assert [s["episodes"] for s in meta["averaged"]["sources"]] == [2, 3]
    assert [s["identity"] for s in meta["averaged"]["sources"]] == [load_agent(p).identity for p in paths]
    assert meta["episodes"] == 3 and meta["seed"] == 1  # still the run's lineage: head h is the run's head h


def test_another_architecture_is_refused(runs):
    with pytest.raises(AveragingError, match="another architecture"):
        average_files(snaps(runs["a"], 3) + snaps(runs["two_heads"], 3))


def test_another_run_is_refused(runs):
    with pytest.raises(AveragingError, match="another training run"):
        average_files(snaps(runs["a"], 3) + snaps(runs["other"], 3))


def test_fewer_than_two_files_are_refused(runs):
    with pytest.raises(AveragingError, match="at least 2"):
        average_files(snaps(runs["a"], 3))


def test_a_corrupt_file_is_refused_by_name(runs, tmp_path):
    bad = tmp_path / "episode-9.pt"
    bad.write_bytes(snaps(runs["a"], 3)[0].read_bytes()[:500])  # a truncated copy
    with pytest.raises(AveragingError, match="episode-9.pt"):
        average_files(snaps(runs["a"], 3) + [bad])


def test_a_file_without_a_recorded_run_is_refused(runs, tmp_path):
    agent = load_agent(snaps(runs["a"], 2)[0])
    save_agent(dataclasses.replace(agent, metadata={}), tmp_path / "bare.pt")
    with pytest.raises(AveragingError, match="records no training run"):
        average_files(snaps(runs["a"], 3) + [tmp_path / "bare.pt"])


def test_a_refusal_leaves_an_existing_output_untouched(runs, tmp_path):
    out = tmp_path / "avg.pt"
    out.write_bytes(b"earlier")
    with pytest.raises(AveragingError):
        write_average(snaps(runs["a"], 3) + snaps(runs["other"], 3), out)
    assert out.read_bytes() == b"earlier" and [p.name for p in tmp_path.iterdir()] == ["avg.pt"]


def test_the_command_line_writes_the_average_and_refuses_with_a_clear_error(runs, tmp_path, capsys):
    out = tmp_path / "avg.pt"
    assert main(["average", *map(str, snaps(runs["a"], 2, 3)), "--out", str(out)]) == 0
    assert "weights averaged (uniform) over 2 snapshots" in capsys.readouterr().out
    assert load_agent(out).metadata["command"].startswith("python -m interp average ")
    assert main(["average", *map(str, snaps(runs["a"], 3) + snaps(runs["other"], 3)), "--out", str(tmp_path / "x.pt")]) == 2
    assert "another training run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["average", "--help"])
    assert exit_.value.code == 0 and "ONE training run" in capsys.readouterr().out
