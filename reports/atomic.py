"""The report's atomic writes: ``interp.atomic``'s writer with the report's wording ("could not write the report")
and pytest's remedy (``--report-dir``) as defaults. A reader never sees half a report, and a failure changes
nothing (the mechanism is in ``interp.atomic``)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from interp.atomic import CLI_REMEDY, WriteError
from interp.atomic import write_files as _write_files

ReportWriteError = WriteError  # the name report code and its tests catch; one class, so any atomic write matches

PYTEST_REMEDY = "choose another folder with --report-dir=DIR"

__all__ = ["CLI_REMEDY", "PYTEST_REMEDY", "ReportWriteError", "write_files"]


def write_files(folder: str | os.PathLike, files: Mapping[str, str | bytes], *,
                remedy: str = PYTEST_REMEDY) -> list[Path]:
    """Write ``{relative name: text or bytes}`` under ``folder``: all of them, or none (``interp.atomic``)."""
    return _write_files(folder, files, remedy=remedy, what="the report")
