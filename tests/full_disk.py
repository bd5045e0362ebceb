"""A disk that fills up half-way through a write, for the tests of the atomic writer (``interp.atomic``)."""
from __future__ import annotations

import builtins
import errno
import os


class FullDiskFile:
    """A file whose ``write`` stores the first half of the data, then fails with ENOSPC, as a full disk does."""

    def __init__(self, fh) -> None:
        self._fh = fh

    def write(self, data: bytes) -> int:
        self._fh.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()


def full_disk_open(path, mode="r", *args, **kwargs):
    """``open`` whose files fill the disk half-way (monkeypatched into ``interp.atomic``)."""
    return FullDiskFile(builtins.open(path, mode, *args, **kwargs))
