"""Every file the project writes for a user is written atomically (``interp.atomic``): a save that fails half-way
(full disk, killed process, Ctrl-C) leaves the earlier file whole and no temporary file behind.

The safeguard is tested against its failure: a writer that writes in place is shown to tear the earlier
checkpoint under the same fault, so the check can fail; and a scan of the source finds any new direct write."""
from __future__ import annotations

import builtins
import errno
import re
from pathlib import Path

import pytest
import torch

import interp.atomic
from interp.atomic import WriteError, staged
from interp.model import checkpoint as ckpt
from tests.full_disk import FullDiskFile, full_disk_open

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"model": {"type": "EgoAttentionNetwork"}}


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64, 64), value)}


def _save(path: Path, value: float) -> None:
    ckpt.save_project(path, _weights(value), agent_config=CONFIG, env_config={}, metadata={"value": value})


def _earlier_survives_a_failed_save(path: Path, monkeypatch, save=_save) -> bool:
    """Save version 1, then version 2 under a disk that fills half-way: is version 1 still loadable, whole?"""
    _save(path, 1.0)
    with monkeypatch.context() as m:
        m.setattr(interp.atomic, "open", full_disk_open, raising=False)
        m.setattr(builtins, "open", _full_builtin_open(builtins.open))
        with pytest.raises(OSError):
            save(path, 2.0)
    try:
        raw = torch.load(path, weights_only=True)
    except Exception:
        return False
    return bool(torch.equal(raw["state_dict"]["w"], _weights(1.0)["w"]))


def _full_builtin_open(real_open):
    """``open`` for writers outside ``interp.atomic`` (the in-place mutant): writes fail half-way too."""
    def fake(p, mode="r", *a, **k):
        fh = real_open(p, mode, *a, **k)
        return FullDiskFile(fh) if any(c in mode for c in "wa") else fh
    return fake


def test_a_checkpoint_save_that_fails_half_way_leaves_the_earlier_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "agent.pt"
    assert _earlier_survives_a_failed_save(path, monkeypatch)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.pt"]  # no temporary file left
    _save(path, 2.0)  # control: with room on the disk the same save goes through
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], _weights(2.0)["w"])


def test_the_check_turns_red_on_a_save_that_writes_in_place(tmp_path, monkeypatch):
    """The mutant the safeguard exists for: ``torch.save`` straight onto the target tears the earlier file."""
    def in_place(path: Path, value: float) -> None:
        with open(path, "wb") as fh:
            torch.save({"state_dict": _weights(value)}, fh)

    assert not _earlier_survives_a_failed_save(tmp_path / "agent.pt", monkeypatch, save=in_place)


def test_the_error_says_what_could_not_be_written_and_how_to_fix_it(tmp_path, monkeypatch):
    path = tmp_path / "agent.pt"
    monkeypatch.setattr(interp.atomic, "open", full_disk_open, raising=False)
    with pytest.raises(WriteError) as err:
        _save(path, 1.0)
    message = str(err.value)
    assert "could not write the checkpoint" in message and "ENOSPC" in message and "--out" in message
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("fault", [KeyboardInterrupt, OSError(errno.ENOSPC, "No space left on device")])
def test_a_staged_write_that_is_interrupted_changes_nothing(tmp_path, fault):
    """``staged`` (writers that need a file name: ffmpeg, matplotlib): Ctrl-C or a full disk inside the block
    leaves the earlier file as it was and removes the temporary one."""
    out = tmp_path / "replay.gif"
    out.write_bytes(b"earlier")
    with pytest.raises(WriteError if isinstance(fault, OSError) else KeyboardInterrupt):
        with staged(out) as tmp:
            tmp.write_bytes(b"half")
            raise fault
    assert out.read_bytes() == b"earlier" and [p.name for p in tmp_path.iterdir()] == ["replay.gif"]
    with staged(out) as tmp:  # control: a block that finishes replaces the file
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["replay.gif"]


# Writes that may stay direct, each with its reason: locks (created exclusively, never read for data) and a log
# streamed while a subprocess runs. Everything else goes through interp.atomic.
DIRECT_WRITE = re.compile(r"\.write_text\(|\.write_bytes\(|torch\.save\(|np\.savez?\(|\.savefig\(|imwrite\("
                          r"|mimwrite\(|\bopen\([^)]*[\"'][wa]b?[\"']")
ALLOWED = {
    ("interp/zoo_cli.py", "pytest.log"): "a log streamed from the subprocess as it runs",
    ("interp/training/zoo.py", "os.fdopen(fd"): "a lock file created with O_EXCL",
    ("interp/training/reference_search.py", "os.fdopen(fd"): "the held-out guard, created with O_EXCL",
}
SAFE_TARGET = re.compile(r"\b(tmp|buffer|fh)\b")  # a temporary name (renamed over the target) or an open file


def test_no_module_writes_a_user_file_in_place():
    offenders = []
    for folder in ("interp", "reports", "fixtures", "specs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "interp/atomic.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if not DIRECT_WRITE.search(code) or code.lstrip().startswith(("-", "\"", "'")):
                    continue
                if SAFE_TARGET.search(code) or any(rel == f and marker in code for f, marker in ALLOWED):
                    continue
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "direct writes (use interp.atomic.write_file / write_files / staged):\n" + "\n".join(offenders)


def test_the_scan_finds_a_direct_write():
    assert DIRECT_WRITE.search('    (out / "metadata.json").write_text(json.dumps(meta))')
    assert DIRECT_WRITE.search("    torch.save(payload, path)") and DIRECT_WRITE.search('with open(p, "w") as f:')
    assert not SAFE_TARGET.search('    (out / "metadata.json").write_text(json.dumps(meta))')


def test_folders_that_do_not_exist_yet_are_created_with_their_parents(tmp_path):
    written = interp.atomic.write_files(tmp_path / "a" / "b", {"c/d/f.json": "{}", "e.txt": b"bytes"})
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["a/b/c/d/f.json", "a/b/e.txt"]
    assert (tmp_path / "a/b/c/d/f.json").read_text() == "{}" and (tmp_path / "a/b/e.txt").read_bytes() == b"bytes"


def _failing_open(error: OSError):
    def fake(*args, **kwargs):
        raise error
    return fake


def test_an_error_without_an_errno_quotes_its_own_text_and_names_what_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(interp.atomic, "open", _failing_open(OSError("the device went away")), raising=False)
    with pytest.raises(WriteError) as err:
        interp.atomic.write_files(tmp_path, {"x.json": "{}"})
    assert f"could not write the files in {tmp_path}: the device went away. Nothing there was changed" in str(err.value)
    assert str(err.value).endswith("or choose another path with --out.")
    with pytest.raises(WriteError) as err:  # one file: named by its file name unless told, with the caller's remedy
        interp.atomic.write_file(tmp_path / "scene.json", "{}", remedy="pick another --json")
    assert "could not write scene.json in" in str(err.value) and str(err.value).endswith("or pick another --json.")
    assert not list(tmp_path.iterdir())


def test_an_error_with_an_errno_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(interp.atomic, "open", _failing_open(OSError(errno.EACCES, "Permission denied")),
                        raising=False)
    with pytest.raises(WriteError, match=r": Permission denied \(EACCES\)\. Nothing there was changed"):
        interp.atomic.write_file(tmp_path / "x.json", "{}", what="the scene")
    monkeypatch.setattr(interp.atomic, "open", _failing_open(OSError(99999, "odd")), raising=False)  # no name known
    with pytest.raises(WriteError, match=r": odd\. Nothing there was changed"):
        interp.atomic.write_file(tmp_path / "x.json", "{}")
