"""Multiplicity across a run: Benjamini–Yekutieli q-values over every claim that was decided with a p-value.

The claims of one run share an agent and its seeds, so their tests are not independent, and positive
dependence (which Benjamini–Hochberg needs) is not guaranteed: Benjamini–Yekutieli controls the false discovery
rate under any dependence (statsmodels' ``fdr_by``). The verdicts stay as each spec decided them; the q-values
are shown beside them. A claim's p-value is the smallest among its own effects (not its controls': effects named
"control: ..."), e.g. the head whose ablation decided "some head raises collisions"; specs without one (rules on
shares, CIs or controls only) are listed as outside the family.
"""
from __future__ import annotations

from collections.abc import Sequence

from statsmodels.stats.multitest import multipletests

METHOD = "Benjamini-Yekutieli"


def claim_p_value(entry: dict) -> float | None:
    """The p-value of a spec's claim: the smallest of its own effects' (controls' effects left out); None if none."""
    ps = [float(e["p_value"]) for e in entry.get("effects", [])
          if isinstance(e.get("p_value"), (int, float)) and 0.0 <= e["p_value"] <= 1.0
          and not str(e.get("name", "")).startswith("control")]
    return min(ps) if ps else None


def across_claims(entries: Sequence[dict]) -> dict:
    """``{"method", "claims_tested", "family": [{nodeid, verdict, p_value, q_value}], "outside": [nodeid]}``."""
    family = [(entry, claim_p_value(entry)) for entry in entries]
    tested = [(entry, p) for entry, p in family if p is not None]
    q = multipletests([p for _, p in tested], method="fdr_by")[1] if tested else []
    return {
        "method": METHOD,
        "claims_tested": len(tested),
        "family": [{"nodeid": entry["nodeid"], "verdict": entry.get("verdict"), "p_value": p, "q_value": float(qv)}
                   for (entry, p), qv in zip(tested, q)],
        "outside": [entry["nodeid"] for entry, p in family if p is None],
    }


def summary_line(multiplicity: dict) -> str:
    """One line for the terminal: how many claims were tested with a p-value and their q-values."""
    family = multiplicity["family"]
    if not family:
        return f"hypodrive multiplicity: no claim was decided with a p-value ({len(multiplicity['outside'])} outside)"
    shown = ", ".join(f"{f['nodeid'].split('::')[-1][:40]} q={f['q_value']:.2g}"
                      for f in sorted(family, key=lambda f: f["q_value"])[:4])
    return (f"hypodrive multiplicity: {multiplicity['claims_tested']} claims with a p-value, {METHOD} q-values "
            f"(verdicts unchanged): {shown}{' ...' if len(family) > 4 else ''}; "
            f"{len(multiplicity['outside'])} specs outside the family")
