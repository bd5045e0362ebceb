"""Run in a subprocess by ``tests/test_faults.py``: write a report with a limit imposed first.

``python -m tests.report_writer OUT fsize BYTES`` caps the size of any file this process writes (a full
disk, as the writer sees it); ``python -m tests.report_writer OUT user`` drops root to the ``nobody`` user
(so a read-only folder is read-only even for a root test runner). Prints the error, exits 3 on one."""
from __future__ import annotations

import os
import resource
import signal
import sys


def main(out: str, limit: str, value: str = "0") -> int:
    from reports.atomic import ReportWriteError
    from reports.run.html import write_report
    from tests.test_reports import synthetic_run

    evidence = synthetic_run(0, 1)
    if limit == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(value), int(value)))
    elif limit == "user" and os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    try:
        write_report(evidence, out)
    except ReportWriteError as err:
        print(err)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
