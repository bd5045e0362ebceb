"""The counting behind ``reports.zoo.aggregate``: exact intervals, the undecided agents as bounds, strata and which
members count as independent. Pure functions on counts and agent summaries (see the aggregate's docstring
for the rules they implement)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CI_LEVEL = 0.95


def clopper_pearson(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float] | None:
    """Exact two-sided interval for a binomial proportion k/n (None when n = 0)."""
    from scipy import stats

    if n == 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, n], got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def share(k: int, n: int) -> dict:
    """``{"k", "n", "share", "ci"}`` with the Clopper-Pearson interval (share and ci None when n = 0)."""
    return {"k": k, "n": n, "share": k / n if n else None, "ci": _list(clopper_pearson(k, n))}


def training_of(run: dict) -> tuple[int | None, int | None]:
    """(training seed, episodes) of a run's agent, from ``run.checkpoint.lineage`` (None where not recorded)."""
    lineage = run["checkpoint"].get("lineage") or {}
    seed, episodes = lineage.get("train_seed"), lineage.get("episodes")
    return (seed if _is_int(seed) else None), (episodes if _is_int(episodes) else None)


def stratum_key(heads: int | None, episodes: int | None) -> str:
    """The stratum an agent belongs to: its head count and its training budget."""
    return f"{'?' if heads is None else heads} heads, {'?' if episodes is None else episodes} episodes"


def bounds(k: int, undecided: int, n: int) -> list[float] | None:
    """[k/n, (k+u)/n]: the share if no undecided agent holds, and if every one does (None when n = 0)."""
    return None if n == 0 else [k / n, (k + undecided) / n]


def holds_text(k: int, undecided: int, n: int) -> str:
    """"2/14", or "between 2/14 and 14/14" with undecided agents."""
    if n == 0:
        return "0/0"
    return f"{k}/{n}" if undecided == 0 else f"between {k}/{n} and {k + undecided}/{n}"


def bounded_interval(k: int, undecided: int, n: int, level: float = CI_LEVEL) -> list[float] | None:
    """The exact interval's lower end at k/n and upper end at (k+u)/n: it covers the share whichever way the
    undecided agents fall (None when n = 0)."""
    if n == 0:
        return None
    low, high = clopper_pearson(k, n, level), clopper_pearson(k + undecided, n, level)
    return [low[0], high[1]]


def independent(agents: Sequence[dict]) -> tuple[list[str], dict[str, str]]:
    """The labels that count as independent draws (first by label per training seed; seedless agents never),
    and, for the others, why not."""
    kept: list[str] = []
    why: dict[str, str] = {}
    first: dict[int, str] = {}
    for agent in sorted(agents, key=lambda a: a["label"]):
        seed = agent.get("train_seed")
        if seed is None:
            why[agent["label"]] = "training seed not recorded"
        elif seed in first:
            why[agent["label"]] = f"shares training seed {seed} with {first[seed]}"
        else:
            first[seed] = agent["label"]
            kept.append(agent["label"])
    return kept, why


def _list(ci: tuple | None) -> list | None:
    return None if ci is None else [ci[0], ci[1]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
