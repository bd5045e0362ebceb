"""``--part P/Q``: how the long benchmark jobs split their indices between processes (index i goes to the process
with i % Q == P), parsed once for all of them."""
from __future__ import annotations

import argparse


def part(text: str) -> tuple[int, int]:
    """argparse type of ``--part``: "P/Q" with 0 <= P < Q."""
    try:
        p, q = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--part takes P/Q, e.g. 0/2 and 1/2 for two processes; got {text!r}")
    if not 0 <= p < q:
        raise argparse.ArgumentTypeError(f"--part P/Q needs 0 <= P < Q (P/Q: this process takes indices i with "
                                         f"i % Q == P); got {text!r}")
    return p, q
