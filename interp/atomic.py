"""Write a set of files so that a reader never sees half of one, and a failure changes nothing: the one atomic
writer of the project (checkpoints, training runs, role maps, reports all go through it).

Every file is first written in full to a temporary name in the target folder (where a full or read-only
disk fails), and only then renamed over its target (renames need no space). On any error the temporary
files are removed and the previous files stay as they were. Hand-written: the standard library has
``os.replace`` but no multi-file transaction, and the usual helpers (e.g. ``atomicwrites``) are unmaintained.
It lives at the bottom of the stack (no project imports but the error base) so that the model layer can save
checkpoints with it; ``reports.atomic`` is its report-facing form.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from interp.errors import HypodriveError


class WriteError(HypodriveError, OSError):
    """Files could not be written (full disk, read-only folder, no permission); nothing was changed."""


CLI_REMEDY = "choose another path with --out"
JSON_REMEDY = "choose another path with --json"


def _temporary(target: Path, suffix: str = "") -> Path:
    """A name beside ``target`` that no other writer (process or call) uses; ``suffix`` for encoders that read it."""
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


def _write_error(err: OSError, what: str, folder: Path, remedy: str) -> WriteError:
    """The one message of a failed write: what, where, why (with the errno's name), and how to fix it."""
    reason = err.strerror or str(err)
    name = errno.errorcode.get(err.errno, "")  # "" where there is no errno, or one without a name
    return WriteError(
        f"could not write {what} in {folder}: {reason}{f' ({name})' if name else ''}. Nothing there was "
        f"changed (no half-written file; an earlier version stays as it was). Free some space or make the "
        f"folder writable, or {remedy}.")


def write_files(folder: str | os.PathLike, files: Mapping[str, str | bytes], *, remedy: str = CLI_REMEDY,
                what: str = "the files") -> list[Path]:
    """Write ``{relative name: text or bytes}`` under ``folder``: all of them, or none. ``what`` names them in
    the error ("the report", "the checkpoint"); ``remedy`` ends it: how the caller's user picks another place."""
    folder = Path(folder)
    staged: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temporary(target)
            staged.append((tmp, target))
            data = content.encode("utf-8") if isinstance(content, str) else content
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException as err:  # an interrupted write (Ctrl-C) leaves no temporary file either
        for tmp, _ in staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        if not isinstance(err, OSError):
            raise
        raise _write_error(err, what, folder, remedy) from None
    return [target for _, target in staged]


def write_file(path: str | os.PathLike, content: str | bytes, *, remedy: str = CLI_REMEDY,
               what: str | None = None) -> Path:
    """One file, atomically (``write_files`` with one entry)."""
    path = Path(path)
    return write_files(path.parent, {path.name: content}, remedy=remedy, what=what or str(path.name))[0]


def torch_bytes(obj: Any) -> bytes:
    """What ``torch.save(obj, path)`` would write, as bytes, so a checkpoint goes through ``write_files``."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def staged(path: str | os.PathLike, *, remedy: str = CLI_REMEDY, what: str | None = None) -> Iterator[Path]:
    """For writers that need a file name (ffmpeg): yields a temporary name beside ``path``; renamed over
    ``path`` when the block finishes, removed if it fails, so ``path`` is never half-written."""
    path = Path(path)
    tmp = _temporary(path, path.suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if not isinstance(err, OSError) or isinstance(err, WriteError):
            raise
        raise _write_error(err, what or path.name, path.parent, remedy) from None
