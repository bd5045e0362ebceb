"""What a trained network that got a role in the rate tests holds: per try, the roles of the trained network and of
its untrained starting point (the same training seed's initial weights), with the t-statistics of both halves.

Usage: python benchmarks/role_hits.py HEADS short|shuffled K [K ...]   (from the project root; K = the try index,
0-based, as in tests/test_roles.py ``_trained``; the networks come from the cache the rate tests fill, else they are
trained). Why: a role on a briefly trained network is either the null's alpha (then the starting point already
shows the preference) or a preference training put there (the starting point does not)."""
from __future__ import annotations

import sys

sys.path.insert(0, ".")
import numpy as np  # noqa: E402

import tests.test_roles as T  # noqa: E402
from interp import role_selectivity as RS  # noqa: E402
from interp import roles as R  # noqa: E402
from interp.simulation.agent import untrained_agent  # noqa: E402


def most_extreme_head(sel, j: int) -> int:
    """The head whose statistic ``j`` is most extreme on both halves (largest |t| on its weaker half)."""
    return int(np.argmax(np.abs(sel.statistic[:, :, j]).min(axis=0)))


def describe(label: str, sel) -> str:
    roles = {c: h for c, h in sel.roles.items() if h}
    parts = []
    for j, c in enumerate(sel.categories):
        if not sel.testable[:, j].all():
            continue
        h = most_extreme_head(sel, j)
        parts.append(f"{c} h{h} t {sel.statistic[0, h, j]:+.1f}/{sel.statistic[1, h, j]:+.1f}")
    return f"  {label:8s} roles {roles or 'none'}; " + ", ".join(parts)


def main(argv: list[str]) -> None:
    heads, shuffle, ks = int(argv[0]), argv[1] == "shuffled", [int(k) for k in argv[2:]]
    cal = T.calibration_material()
    obs = cal[0]
    agent, null = T.architecture(heads, cal)
    trained_null = R.trained_null_for(heads, obs, cal[3])  # None where the architecture's is incomplete
    for k in ks:
        seed = T._trained_seed(shuffle, k)
        start = untrained_agent(agent.agent_config, agent.env_config, init_seed=seed)
        print(f"try {k} (training seed {seed}, {heads} heads, {'shuffled rewards' if shuffle else 'short'}):")
        for label, net in (("start", start), ("trained", T._trained(agent, k, shuffle))):
            scores = R.head_scores(net.model, obs)
            sel = RS.test_selectivity(cal[3], null, scores)
            line = describe(label, sel)
            if trained_null is not None:
                line += "; " + against_both(RS.test_selectivity(cal[3], null, scores, trained=trained_null), sel)
            print(line, flush=True)


def against_both(both, init_only) -> str:
    """The roles against both nulls, and each initialised-null role's p against the trained null (larger half)."""
    roles = {c: h for c, h in both.roles.items() if h}
    held = [(c, h) for c, hs in init_only.roles.items() for h in hs]
    ps = ", ".join(f"{c} h{h} trained p {np.nanmax(both.p_trained[:, h, both.categories.index(c)]):.3g}"
                   for c, h in held)
    return f"against both nulls roles {roles or 'none'}" + (f" ({ps})" if ps else "")


if __name__ == "__main__":
    main(sys.argv[1:])
