"""Every bundled ``findings.json`` belongs to the checkpoint it sits next to: its identity is that checkpoint's
(a file copied to the wrong folder, or left behind when the weights changed, would otherwise apply to no agent and
go unnoticed), and each of its findings names a profile the specs know. Real bundled checkpoints, loaded as a user
loads them."""
from __future__ import annotations

from pathlib import Path

import pytest

from specs.support.budget import PROFILES
from specs.support.findings import read_findings

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "checkpoints").rglob("findings.json"))


def problems(path: Path) -> list[str]:
    """What is wrong with one findings file against the checkpoint in its folder (empty: nothing)."""
    from interp.simulation.agent import load_agent

    data = read_findings(path)
    out = []
    identity = load_agent(path.parent).identity
    if data["identity"] != identity:
        out.append(f"{path}: identity {data['identity']} is not the checkpoint's ({identity})")
    out += [f"{path}: {name}: profile {f.get('profile')!r} is not one of {list(PROFILES)}"
            for name, f in data["findings"].items() if f.get("profile") is not None and f["profile"] not in PROFILES]
    return out


def test_there_are_bundled_findings_to_check():
    assert len(FILES) >= 20  # reference, reference-v1, -2h, -early, 12 zoo members, 12 zoo-1000 members (some)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.parent.relative_to(ROOT / "checkpoints")))
def test_a_bundled_findings_file_belongs_to_its_checkpoint(path):
    assert problems(path) == []


def test_control_a_findings_file_next_to_another_checkpoint_is_caught(tmp_path):
    """The check can fail: reference-v1's findings placed next to the reference's weights."""
    import shutil

    folder = tmp_path / "moved"
    shutil.copytree(ROOT / "checkpoints" / "reference", folder)
    shutil.copy(ROOT / "checkpoints" / "reference-v1" / "findings.json", folder / "findings.json")
    (found,) = problems(folder / "findings.json")
    assert "is not the checkpoint's" in found
