"""Train the networks of the trained-network rate tests (``tests/test_roles.py``, ``-m slow``) ahead of the test,
split between processes: the test trains one network per try on one core, so two processes halve its wall time.
Networks land in the cache the test reads (``interp.training.role_networks``); a rerun trains only what is missing.

Usage (from the project root): ``python benchmarks/role_rate_networks.py HEADS {short,shuffled} N [--part P/Q]``
trains tries 0 .. N-1 (``--part 0/2`` and ``1/2``: even and odd tries, one process each)."""
from __future__ import annotations

import argparse
import sys
import time

sys.path.insert(0, ".")
from benchmarks._parts import part  # noqa: E402


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", type=int, choices=(2, 4, 8))
    parser.add_argument("condition", choices=("short", "shuffled"),
                        help="short: trained SHORT_EPISODES episodes; shuffled: SHUFFLED_EPISODES, rewards shuffled")
    parser.add_argument("tries", type=int, help="train the networks of tries 0 .. N-1")
    parser.add_argument("--part", type=part, default="0/1", help="P/Q: this process takes tries k with k %% Q == P")
    args = parser.parse_args(argv)
    import tests.test_roles as T
    from interp.simulation.agent import load_agent

    agent = load_agent(T.ARCHITECTURES[args.heads])
    p, q = args.part
    for k in range(p, args.tries, q):
        t0 = time.perf_counter()
        T._trained(agent, k, args.condition == "shuffled")
        print(f"{args.heads}h {args.condition} try {k}: {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
