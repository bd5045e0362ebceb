"""Grow the *trained* role null of one architecture: networks trained without task information, kept as their heads'
role statistics on the calibration scenes (a few hundred bytes each), committed so that the job accumulates
across sessions.

Why a trained null (issue #22). The role rule refers each head's t-statistics to randomly *initialised* networks of
the architecture. Networks trained 100 episodes with shuffled rewards get a role in 3.5-4.2 % of tries against
that null, most of them far beyond every null network (``docs/guide/roles.md``): training itself, without the
task, moves heads out of the initial distribution. A null that answers "is this preference taught by the task?"
must be drawn from trained networks that saw no task information.

Which recipe, and why not the shuffled-reward networks of the rate test. Each network here is trained 100 episodes
by the real trainer with each replay sample's rewards shuffled **and gamma = 0**: the target is then the shuffled
reward alone, so nothing of an episode's outcome reaches it (with gamma > 0 the terminal flags, which stay with
their transitions, still tie the bootstrapped target to how soon an episode ends: a crash or an arrival). The rate
test's shuffled-reward networks (gamma 0.95) are thus *not* drawn from this null, so their rate test stays one that
can fail (a null drawn from the tested family would pass it by exchangeability, the flaw #22 names).

Size. Heads are exchangeable under this training (permuting heads is a symmetry of the init distribution and of
the trainer), so each network gives ``heads`` draws per test. Bonferroni over heads x tests at ``RS.ALPHA`` needs a
Monte-Carlo p-value of ``RS.ALPHA / (heads x tests)``, i.e. ``heads x tests / RS.ALPHA`` pooled draws: ``tests /
RS.ALPHA`` = 900 networks whatever the head count (``TARGET``). At ~18 s per network on one core that is ~4.5
core-hours per architecture, so the job is resumable and its output is committed data
(``docs/results/data/role-trained-null/<H>h.npz``): a rerun trains only the networks the file lacks.

Seeds: network i trains from seed ``INITS["role_null_trained"][0] + i`` on env seeds ``role_null_block(i)`` ..
+ 99 (``interp.seeds``), disjoint from every other run.

Usage (from the project root): ``python benchmarks/role_trained_null.py HEADS [--until N] [--part P/Q]``;
``--part 0/2`` and ``1/2`` split the indices between two processes (they share the file under a lock);
``--summary`` prints how many networks each architecture holds."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, ".")
import numpy as np  # noqa: E402
from filelock import FileLock  # noqa: E402

DATA = Path("docs/results/data/role-trained-null")
EPISODES = 100
GAMMA = 0.0
TARGET = 900  # tests / ALPHA networks: see the module docstring


def data_path(n_heads: int) -> Path:
    return DATA / f"{n_heads}h.npz"


def design_digest(obs: np.ndarray, design) -> str:
    """What the stored statistics depend on besides the network: the scenes (rounded, so that another CPU's last
    bits do not change it), the vehicle rows and the categories."""
    return hashlib.sha256(np.round(np.asarray(obs, np.float64), 4).tobytes() + design.vehicles.tobytes()
                          + repr(design.categories).encode()).hexdigest()[:16]


def load(n_heads: int) -> dict:
    """The stored null of an architecture: ``index`` [K], ``stats`` [K, 2, H, P], ``digest``, ``categories``."""
    path = data_path(n_heads)
    if not path.exists():
        return {"index": np.zeros(0, int), "stats": None, "digest": None, "categories": None}
    with np.load(path, allow_pickle=False) as f:
        return {"index": f["index"], "stats": f["stats"], "digest": str(f["digest"]),
                "categories": tuple(str(c) for c in f["categories"])}


def _append(n_heads: int, i: int, stats: np.ndarray, digest: str, categories: tuple[str, ...]) -> None:
    """Add network i's statistics [2, H, P] (atomic write, under a lock shared by the job's processes)."""
    path = data_path(n_heads)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        have = load(n_heads)
        if have["digest"] not in (None, digest):
            raise SystemExit(f"{path} was computed on other calibration scenes (digest {have['digest']}, now "
                             f"{digest}); move it away to start a new null")
        if i in set(have["index"].tolist()):
            return
        index = np.append(have["index"], i)
        stack = stats[None] if have["stats"] is None else np.concatenate([have["stats"], stats[None]])
        order = np.argsort(index)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, index=index[order], stats=stack[order], digest=np.array(digest),
                 categories=np.array(categories), episodes=np.array(EPISODES), gamma=np.array(GAMMA))
        os.replace(tmp, path)


def grow(n_heads: int, until: int, part: tuple[int, int]) -> None:
    import tests.test_roles as T
    from interp import role_selectivity as RS
    from interp import roles as R
    from interp import seeds as S
    from interp.simulation.agent import load_agent
    from interp.training.role_networks import trained_network

    obs, _, _, design = T.calibration_material()
    digest = design_digest(obs, design)
    agent = load_agent(T.ARCHITECTURES[n_heads])
    first_seed = S.INITS["role_null_trained"][0]
    for i in range(part[0], until, part[1]):
        if i in set(load(n_heads)["index"].tolist()):
            continue
        t0 = time.perf_counter()
        net = trained_network(agent, first_seed + i, EPISODES, shuffle_rewards=True, gamma=GAMMA,
                              episode_seed_base=S.role_null_block(i))
        stats = RS.statistics(design, np.moveaxis(R.head_scores(net.model, obs), 1, 0))  # [2, H, P]
        _append(n_heads, i, stats, digest, design.categories)
        print(f"{n_heads}h network {i}: {time.perf_counter() - t0:.1f} s; {len(load(n_heads)['index'])} stored",
              flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", type=int, nargs="?", choices=(2, 4, 8))
    parser.add_argument("--until", type=int, default=TARGET, help="grow to network indices 0 .. N-1 (default 900)")
    parser.add_argument("--part", default="0/1", help="P/Q: this process takes indices i with i %% Q == P")
    parser.add_argument("--summary", action="store_true", help="print the stored networks per architecture")
    args = parser.parse_args(argv)
    if args.summary or args.heads is None:
        for h in (2, 4, 8):
            print(f"{h} heads: {len(load(h)['index'])} of {TARGET} networks")
        return
    p, q = (int(x) for x in args.part.split("/"))
    grow(args.heads, args.until, (p, q))


if __name__ == "__main__":
    main(sys.argv[1:])
