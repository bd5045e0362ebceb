"""Why do networks trained on shuffled rewards get attention roles? A paired measurement of one explanation.

The explanation under test (docs/guide/roles.md): with shuffled rewards the *bootstrapped* target (a shuffled reward
plus gamma x the next observation's value) still depends on the observations, so training learns structure of the
observation space and the attention follows it. With ``gamma = 0`` the target is the shuffled reward alone, which
carries nothing about the scene. For each try k this trains the same training seed twice, 100 episodes with shuffled
rewards, once with the agent's own gamma (the rate test's network, from its cache) and once with gamma = 0, and
prints both networks' roles and their largest |t| per category (the most extreme head on both halves).

Usage: python benchmarks/role_shuffled_gamma.py HEADS K [K ...]   (from the project root; K = the rate test's try
index); ``python benchmarks/role_shuffled_gamma.py --summary FILE`` summarises a saved output (tries with a role per
condition with 95 % Wilson CIs, and the paired Wilcoxon signed-rank test of the largest |ego t|). The gamma-0 networks are cached next to the rate test's (``role-check-networks/...-gamma0``), so a rerun
trains nothing. Data: docs/results/data/role-shuffled-gamma0-4h.txt."""
from __future__ import annotations

import sys

sys.path.insert(0, ".")
import numpy as np  # noqa: E402

import tests.test_roles as T  # noqa: E402
from benchmarks.role_hits import most_extreme_head  # noqa: E402
from interp import role_selectivity as RS  # noqa: E402
from interp import roles as R  # noqa: E402
from interp.training.role_networks import trained_network  # noqa: E402


def gamma0(agent, k: int):
    """Try k's network trained exactly like the rate test's shuffled-reward one, with gamma = 0."""
    return trained_network(agent, T._trained_seed(True, k), T.SHUFFLED_EPISODES, shuffle_rewards=True, gamma=0.0)


def extremes(sel) -> dict[str, float]:
    """Per testable category, the largest |t| that some head reaches on both halves (signed)."""
    out = {}
    for j, c in enumerate(sel.categories):
        if not sel.testable[:, j].all():
            continue
        h = most_extreme_head(sel, j)
        out[c] = float(np.sign(sel.statistic[0, h, j]) * np.abs(sel.statistic[:, h, j]).min())
    return out


def summary(text: str) -> str:
    """Tries with a role per condition, and the paired comparison of the largest |ego t| (scipy's Wilcoxon)."""
    import re

    from scipy.stats import wilcoxon
    from statsmodels.stats.proportion import proportion_confint

    rows = {"gamma": [], "gamma 0": []}
    for line in text.splitlines():
        m = re.match(r"\s+(gamma 0|gamma)\s+roles (.*?); ego ([+-][\d.]+)", line)
        if m:
            rows[m.group(1)].append((m.group(2) != "none", abs(float(m.group(3)))))
    out = []
    for label, got in rows.items():
        hits = sum(h for h, _ in got)
        low, high = proportion_confint(hits, len(got), 0.05, "wilson")
        out.append(f"{label}: a role in {hits}/{len(got)} tries (95 % Wilson CI {low:.3f}-{high:.3f}); "
                   f"median largest |ego t| {np.median([v for _, v in got]):.1f}")
    test = wilcoxon([v for _, v in rows["gamma"]], [v for _, v in rows["gamma 0"]])
    out.append(f"paired Wilcoxon signed-rank, largest |ego t|: statistic {test.statistic:.0f}, p {test.pvalue:.3f}")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    if argv[0] == "--summary":
        print(summary(open(argv[1]).read()))
        return
    heads, ks = int(argv[0]), [int(k) for k in argv[1:]]
    cal = T.calibration_material()
    obs, design = cal[0], cal[3]
    agent, null = T.architecture(heads, cal)
    print(f"{heads} heads, 100 episodes with shuffled rewards; per try: roles, then the most extreme t (both halves)")
    for k in ks:
        row = []
        for label, net in (("gamma", T._trained(agent, k, True)), ("gamma 0", gamma0(agent, k))):
            sel = RS.test_selectivity(design, null, R.head_scores(net.model, obs))
            roles = {c: h for c, h in sel.roles.items() if h}
            ext = extremes(sel)
            row.append(f"{label:7s} roles {roles or 'none'}; " + ", ".join(f"{c} {v:+.1f}" for c, v in ext.items()))
        print(f"try {k} (seed {T._trained_seed(True, k)}):\n  " + "\n  ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
