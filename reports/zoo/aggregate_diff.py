"""The aggregate diff: what changed between two aggregate reports (``python -m reports diff`` on two
``aggregate.json`` files). It reads ``reports.zoo.aggregate``'s format, never the other way round (one job per module, no import cycle).

**Same agents: paired, descriptive.** Where the two aggregates share agents (matched by checkpoint identity),
the comparison is per agent: each claim's verdict on that agent before and after. With a dozen agents, a
paired test over agents can only flag very large shifts, so none is run; the changes are listed, and per claim
the number that moved up and down the one verdict ranking (``interp.vocabulary.VERDICT_RANK``). A verdict
that moved down on an agent is a regression on that agent, as in the single-run diff (``reports.compare.diff``).

**Disjoint agents: per stratum, Barnard.** Only when no agent is shared are the two aggregates independent
samples; then each (head count x budget) stratum present in both compares its decided share (supported of
supported + refuted + vacuous, independent members only; undecided agents left out) with Barnard's exact test
(``scipy.stats.barnard_exact``, two-sided). A significant drop is a regression. Agents that overlap only in
part get the per-agent list and no test.
"""
from __future__ import annotations

from interp.vocabulary import verdict_rank
from reports.zoo.aggregate import DEFAULT_ALPHA, FORMAT, validate_aggregate

SAME, DISJOINT, PARTIAL = "same agents", "disjoint agents", "partly shared agents"


def compare_shares(base: dict, new: dict) -> dict:
    """Barnard's exact test (two-sided) of k1/n1 against k2/n2; p None when either n is 0."""
    from scipy import stats

    k1, n1, k2, n2 = base["k"], base["n"], new["k"], new["n"]
    if n1 == 0 or n2 == 0:
        return {"p_value": None, "test": "none (no decided agent in one report)", "change": None}
    change = k2 / n2 - k1 / n1
    if k1 + k2 in (0, n1 + n2):  # both all-fail or both all-hold: nothing to test
        p_value = 1.0
    else:
        p_value = float(stats.barnard_exact([[k1, k2], [n1 - k1, n2 - k2]], alternative="two-sided").pvalue)
    return {"p_value": min(1.0, p_value), "test": "Barnard exact (two-sided)", "change": change}


def _decided_share(stratum: dict) -> dict:
    """Supported of decided, over the stratum's independent members (undecided ones left out)."""
    ind = stratum["independent"]
    return {"k": ind["k"], "n": ind["n"] - ind["undecided"]}


def diff_aggregates(base: dict, new: dict, *, alpha: float = DEFAULT_ALPHA) -> dict:
    """Per-agent verdict changes on shared agents; per-stratum Barnard tests on disjoint ones (see above)."""
    validate_aggregate(base)
    validate_aggregate(new)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    base_claims = {c["nodeid"]: c for c in base["claims"]}
    new_claims = {c["nodeid"]: c for c in new["claims"]}
    base_agents = {a["identity"]: a["label"] for a in base["agents"]}
    new_agents = {a["identity"]: a["label"] for a in new["agents"]}
    shared_agents = [i for i in new_agents if i in base_agents]
    overlap = (SAME if set(base_agents) == set(new_agents) else DISJOINT if not shared_agents else PARTIAL)
    claims, verdict_changes = [], []
    for nodeid, nc in new_claims.items():
        bc = base_claims.get(nodeid)
        if bc is None:
            continue
        changes = []
        for identity in shared_agents:
            b_label, n_label = base_agents[identity], new_agents[identity]
            if b_label not in bc["verdicts"] or n_label not in nc["verdicts"]:
                continue
            bv, nv = bc["verdicts"][b_label], nc["verdicts"][n_label]
            if bv != nv:
                changes.append({"nodeid": nodeid, "agent": n_label, "identity": identity, "base": bv, "new": nv,
                                "worse": verdict_rank(nv) < verdict_rank(bv),
                                "better": verdict_rank(nv) > verdict_rank(bv)})
        verdict_changes += changes
        row = {"nodeid": nodeid, "claim": nc["claim"], "base": bc["holds"], "new": nc["holds"],
               "paired": {"agents": len(shared_agents), "worse": sum(c["worse"] for c in changes),
                          "better": sum(c["better"] for c in changes),
                          "sideways": sum(not c["worse"] and not c["better"] for c in changes)},
               "strata": []}
        if overlap == DISJOINT:
            for key, ns in nc["strata"].items():
                bs = bc["strata"].get(key)
                if bs is None:
                    continue
                b, n = _decided_share(bs), _decided_share(ns)
                test = compare_shares(b, n)
                significant = test["p_value"] is not None and test["p_value"] < alpha
                row["strata"].append({"stratum": key, "base": _kn(b), "new": _kn(n), **test,
                                      "significant": significant, "worse": significant and test["change"] < 0})
        claims.append(row)
    roles = []
    if overlap == DISJOINT:  # each role's resolution share per stratum, independent members
        for role, nr in new["roles"].items():
            for key, ns in (nr.get("strata") or {}).items():
                bs = ((base["roles"].get(role) or {}).get("strata") or {}).get(key)
                if bs is None:
                    continue
                test = compare_shares(bs["independent"], ns["independent"])
                significant = test["p_value"] is not None and test["p_value"] < alpha
                roles.append({"role": role, "stratum": key, "base": _kn(bs["independent"]),
                              "new": _kn(ns["independent"]), **test, "significant": significant,
                              "worse": significant and test["change"] < 0})
    if overlap == SAME or overlap == PARTIAL:
        regressions = [f"{v['nodeid']}: on {v['agent']}, verdict {v['base']} -> {v['new']}"
                       for v in verdict_changes if v["worse"]]
    else:
        regressions = [f"{c['nodeid']} [{s['stratum']}]: holds in {s['base']} -> {s['new']} of decided "
                       f"(p = {s['p_value']:.2g})" for c in claims for s in c["strata"] if s["worse"]]
        regressions += [f"role {r['role']!r} [{r['stratum']}]: resolves in {r['base']} -> {r['new']} "
                        f"(p = {r['p_value']:.2g})" for r in roles if r["worse"]]
    return {"format": FORMAT + "-diff", "alpha": alpha, "overlap": overlap, "shared_agents": len(shared_agents),
            "base": {"agents": len(base["agents"]), "profiles": base.get("profiles"), "created": base.get("created")},
            "new": {"agents": len(new["agents"]), "profiles": new.get("profiles"), "created": new.get("created")},
            "claims": claims,
            "significant": [dict(s, nodeid=c["nodeid"]) for c in claims for s in c["strata"] if s["significant"]],
            "roles": roles, "verdict_changes": verdict_changes,
            "only_in_base": [n for n in base_claims if n not in new_claims],
            "only_in_new": [n for n in new_claims if n not in base_claims],
            "agents_only_in_base": sorted(base_agents[i] for i in base_agents if i not in new_agents),
            "agents_only_in_new": sorted(new_agents[i] for i in new_agents if i not in base_agents),
            "regressions": regressions, "regressed": bool(regressions)}


def _kn(entry: dict) -> str:
    return f"{entry['k']}/{entry['n']}"


def format_diff(diff: dict) -> str:
    """The text ``python -m reports diff`` prints for two aggregate reports."""
    lines = [f"base: aggregate over {diff['base']['agents']} agents (profiles {diff['base']['profiles']})",
             f"new:  aggregate over {diff['new']['agents']} agents (profiles {diff['new']['profiles']})",
             f"agents: {diff['overlap']} ({diff['shared_agents']} in both)"]
    if diff["overlap"] == DISJOINT:
        lines += [f"alpha = {diff['alpha']:g} (two-sided, per claim and stratum; Barnard's exact test on the "
                  "decided share of independent members)", ""]
        significant = diff["significant"]
        lines.append(f"Claims whose share changed significantly in a stratum ({len(significant)}):")
        for s in significant:
            tag = "REGRESSION" if s["worse"] else "improved"
            lines.append(f"  {tag:<10}  {s['nodeid']} [{s['stratum']}]: {s['base']} -> {s['new']} "
                         f"(p = {s['p_value']:.2g})")
        if not significant:
            lines.append("  none")
        changed = [r for r in diff["roles"] if r["significant"]]
        if changed:
            lines += ["", "Roles whose resolution share changed significantly in a stratum:"]
            lines += [f"  {'REGRESSION' if r['worse'] else 'improved':<10}  {r['role']} [{r['stratum']}]: "
                      f"{r['base']} -> {r['new']} (p = {r['p_value']:.2g})" for r in changed]
    else:
        lines += ["paired and descriptive: each shared agent's verdicts before and after, no test over agents", ""]
        lines.append("Per claim (holds before -> after; shared agents whose verdict went down / up):")
        for c in diff["claims"]:
            p = c["paired"]
            lines.append(f"  {c['nodeid']}: {c['base']} -> {c['new']}; down {p['worse']}, up {p['better']}"
                         + (f", sideways {p['sideways']}" if p["sideways"] else ""))
    lines += ["", f"Verdict changes on agents in both reports ({len(diff['verdict_changes'])}):"]
    for v in diff["verdict_changes"]:
        tag = "worse" if v["worse"] else ("better" if v["better"] else "changed")
        lines.append(f"  {tag:<10}  {v['agent']}: {v['nodeid']}: {v['base']} -> {v['new']}")
    if not diff["verdict_changes"]:
        lines.append("  none")
    for key, what in (("only_in_base", "Claims only in base"), ("only_in_new", "Claims only in new"),
                      ("agents_only_in_base", "Agents only in base"), ("agents_only_in_new", "Agents only in new")):
        if diff[key]:
            lines += ["", f"{what} ({len(diff[key])}): " + ", ".join(diff[key])]
    lines.append("")
    if diff["regressed"]:
        lines.append(f"RESULT: REGRESSION ({len(diff['regressions'])})")
        lines += [f"  - {r}" for r in diff["regressions"]]
    else:
        lines.append("RESULT: no regression")
    return "\n".join(lines)
