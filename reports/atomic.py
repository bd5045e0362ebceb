"""Write a set of files so that a reader never sees half of one, and a failure changes nothing.

Every file is first written in full to a temporary name in the target folder (where a full or read-only
disk fails), and only then renamed over its target (renames need no space). On any error the temporary
files are removed and the previous files stay as they were. Hand-written: the standard library has
``os.replace`` but no multi-file transaction, and the usual helpers (e.g. ``atomicwrites``) are unmaintained.
"""
from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from interp.errors import HypodriveError


class ReportWriteError(HypodriveError, OSError):
    """The report could not be written (full disk, read-only folder, no permission)."""


PYTEST_REMEDY = "choose another folder with --report-dir=DIR"
CLI_REMEDY = "choose another path with --out"


def write_files(folder: str | os.PathLike, files: Mapping[str, str | bytes], *,
                remedy: str = PYTEST_REMEDY) -> list[Path]:
    """Write ``{relative name: text or bytes}`` under ``folder``: all of them, or none. ``remedy`` ends the
    error message: how the caller's user picks another place (pytest's option, or a command's ``--out``)."""
    folder = Path(folder)
    staged: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
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
        reason = err.strerror or str(err)
        name = errno.errorcode.get(err.errno, "") if err.errno else ""
        raise ReportWriteError(
            f"could not write the report in {folder}: {reason}{f' ({name})' if name else ''}. Nothing there was "
            "changed (no half-written file; an earlier report stays as it was). Free some space or make the "
            f"folder writable, or {remedy}."
        ) from None
    return [target for _, target in staged]
