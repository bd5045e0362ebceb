"""Grow the trained role null of one architecture (``interp.role_trained_null``: why, the recipe, the test): train
networks without task information and commit their heads' role statistics on the calibration scenes (a few
hundred bytes each), so that the job accumulates across sessions and a rerun trains only what the file lacks.

Cost: ~12 s per 4-head network on one core, ~900 networks per architecture (``networks_needed``): ~3 core-hours.

Usage (from the project root): ``python benchmarks/role_trained_null.py HEADS [--from M] [--until N] [--part P/Q]``;
``--part 0/2`` and ``1/2`` split the indices between two processes (they share the file under a lock);
``--summary`` prints how many networks each architecture holds."""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, ".")
import numpy as np  # noqa: E402
from filelock import FileLock  # noqa: E402

from interp import role_selectivity as RS  # noqa: E402
from interp import role_trained_null as TN  # noqa: E402
from benchmarks._parts import part  # noqa: E402

EPISODES, GAMMA = TN.RECIPE["episodes"], TN.RECIPE["gamma"]
TARGET = TN.networks_needed(RS.N_TESTS, RS.ALPHA)  # 900


def load(n_heads: int) -> dict:
    """The stored null of an architecture: ``index`` [K], ``stats`` [K, 2, H, P], ``digest``, ``categories``."""
    null = TN.load(n_heads)
    if null is None:
        return {"index": np.zeros(0, int), "stats": None, "digest": None, "categories": None}
    return {"index": null.index, "stats": null.stats, "digest": null.digest, "categories": null.categories}


def _append(n_heads: int, i: int, stats: np.ndarray, digest: str, categories: tuple[str, ...]) -> int:
    """Add network i's statistics [2, H, P] (atomic write, under a lock shared by the job's processes); returns how
    many networks the file holds."""
    path = TN.data_path(n_heads)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        have = load(n_heads)
        if have["digest"] not in (None, digest):
            raise SystemExit(f"{path} was computed on other calibration scenes (digest {have['digest']}, now "
                             f"{digest}); move it away to start a new null")
        if i in set(have["index"].tolist()):
            return len(have["index"])
        index = np.append(have["index"], i)
        stack = stats[None] if have["stats"] is None else np.concatenate([have["stats"], stats[None]])
        order = np.argsort(index)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, index=index[order], stats=stack[order], digest=np.array(digest),
                 categories=np.array(categories), episodes=np.array(EPISODES), gamma=np.array(GAMMA))
        os.replace(tmp, path)
        return len(index)


def grow(n_heads: int, until: int, part: tuple[int, int], start: int = 0) -> None:
    import tests.test_roles as T
    from interp import roles as R
    from interp import seeds as S
    from interp.simulation.agent import load_agent
    from interp.training.role_networks import trained_network

    obs, _, _, design = T.calibration_material()
    digest = TN.design_digest(obs, design.vehicles, design.categories)
    agent = load_agent(T.ARCHITECTURES[n_heads])
    first_seed = S.INITS["role_null_trained"][0]
    for i in range(start + (part[0] - start) % part[1], until, part[1]):
        if i in set(load(n_heads)["index"].tolist()):
            continue
        t0 = time.perf_counter()
        net = trained_network(agent, first_seed + i, EPISODES, shuffle_rewards=True, gamma=GAMMA,
                              episode_seed_base=S.role_null_block(i))
        stats = RS.statistics(design, np.moveaxis(R.head_scores(net.model, obs), 1, 0))  # [2, H, P]
        stored = _append(n_heads, i, stats, digest, design.categories)
        print(f"{n_heads}h network {i}: {time.perf_counter() - t0:.1f} s; {stored} stored", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", type=int, nargs="?", choices=(2, 4, 8))
    parser.add_argument("--until", type=int, default=TARGET, help="grow to network indices 0 .. N-1 (default 900)")
    parser.add_argument("--from", dest="start", type=int, default=0,
                        help="start at network index M (to rebalance processes near the end: give the other --until M)")
    parser.add_argument("--part", type=part, default="0/1", help="P/Q: this process takes indices i with i %% Q == P")
    parser.add_argument("--summary", action="store_true", help="print the stored networks per architecture")
    args = parser.parse_args(argv)
    if args.summary or args.heads is None:
        for h in (2, 4, 8):
            print(f"{h} heads: {len(load(h)['index'])} of {TARGET} networks")
        return
    grow(args.heads, args.until, args.part, args.start)


if __name__ == "__main__":
    main(sys.argv[1:])
