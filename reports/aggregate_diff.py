"""The aggregate diff: each claim's k/n (and each role's resolution share) in two aggregates compared with
Barnard's exact test, and per-agent verdict changes (agents matched by identity). Split from
``reports.aggregate`` (which re-exports it) to keep one job per module."""
from __future__ import annotations



from reports.aggregate import DEFAULT_ALPHA, FORMAT, validate_aggregate


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


def diff_aggregates(base: dict, new: dict, *, alpha: float = DEFAULT_ALPHA) -> dict:
    """Claims (and roles) whose share changed significantly, and per-agent verdict changes (see the docstring)."""
    validate_aggregate(base)
    validate_aggregate(new)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    base_claims = {c["nodeid"]: c for c in base["claims"]}
    new_claims = {c["nodeid"]: c for c in new["claims"]}
    base_agents = {a["identity"]: a["label"] for a in base["agents"]}
    new_agents = {a["identity"]: a["label"] for a in new["agents"]}
    shared_agents = [i for i in new_agents if i in base_agents]
    claims, verdict_changes = [], []
    for nodeid, nc in new_claims.items():
        bc = base_claims.get(nodeid)
        if bc is None:
            continue
        test = compare_shares(bc, nc)
        significant = test["p_value"] is not None and test["p_value"] < alpha
        claims.append({"nodeid": nodeid, "claim": nc["claim"], "base": _kn(bc), "new": _kn(nc), **test,
                       "significant": significant, "worse": significant and test["change"] < 0})
        for identity in shared_agents:
            b_label, n_label = base_agents[identity], new_agents[identity]
            if b_label not in bc["verdicts"] or n_label not in nc["verdicts"]:
                continue
            bv, nv = bc["verdicts"][b_label], nc["verdicts"][n_label]
            if bv != nv:
                verdict_changes.append({"nodeid": nodeid, "agent": n_label, "identity": identity, "base": bv,
                                        "new": nv, "worse": _rank(nv) < _rank(bv), "better": _rank(nv) > _rank(bv)})
    roles = []
    for role, nr in new["roles"].items():
        br = base["roles"].get(role)
        if br is None:
            continue
        test = compare_shares(br, nr)
        significant = test["p_value"] is not None and test["p_value"] < alpha
        roles.append({"role": role, "base": _kn(br), "new": _kn(nr), **test, "significant": significant,
                      "worse": significant and test["change"] < 0})
    regressions = [f"{c['nodeid']}: holds in {c['base']} -> {c['new']} (p = {c['p_value']:.2g})"
                   for c in claims if c["worse"]]
    regressions += [f"role {r['role']!r}: resolves in {r['base']} -> {r['new']} (p = {r['p_value']:.2g})"
                    for r in roles if r["worse"]]
    return {"format": FORMAT + "-diff", "alpha": alpha,
            "base": {"agents": len(base["agents"]), "profiles": base.get("profiles"), "created": base.get("created")},
            "new": {"agents": len(new["agents"]), "profiles": new.get("profiles"), "created": new.get("created")},
            "claims": claims, "significant": [c for c in claims if c["significant"]], "roles": roles,
            "verdict_changes": verdict_changes,
            "only_in_base": [n for n in base_claims if n not in new_claims],
            "only_in_new": [n for n in new_claims if n not in base_claims],
            "agents_only_in_base": sorted(base_agents[i] for i in base_agents if i not in new_agents),
            "agents_only_in_new": sorted(new_agents[i] for i in new_agents if i not in base_agents),
            "regressions": regressions, "regressed": bool(regressions)}


_RANK = {"supported": 3, "inconclusive": 2, "refuted": 1, "vacuous": 1, "not-applicable": 1, "unmeasured": 1, None: 0}


def _rank(verdict: str | None) -> int:
    return _RANK.get(verdict, 0)


def _kn(entry: dict) -> str:
    return f"{entry['k']}/{entry['n']}"


def format_diff(diff: dict) -> str:
    """The text ``python -m reports diff`` prints for two aggregate reports."""
    lines = [f"base: aggregate over {diff['base']['agents']} agents (profiles {diff['base']['profiles']})",
             f"new:  aggregate over {diff['new']['agents']} agents (profiles {diff['new']['profiles']})",
             f"alpha = {diff['alpha']:g} (two-sided, per claim; Barnard's exact test on k/n)", ""]
    significant = diff["significant"]
    lines.append(f"Claims whose share changed significantly ({len(significant)} of {len(diff['claims'])} compared):")
    for c in significant:
        tag = "REGRESSION" if c["worse"] else "improved"
        lines.append(f"  {tag:<10}  {c['nodeid']}: holds in {c['base']} -> {c['new']} (p = {c['p_value']:.2g})")
    if not significant:
        lines.append("  none")
    changed = [r for r in diff["roles"] if r["significant"]]
    if changed:
        lines += ["", "Roles whose resolution share changed significantly:"]
        lines += [f"  {'REGRESSION' if r['worse'] else 'improved':<10}  {r['role']}: {r['base']} -> {r['new']} "
                  f"(p = {r['p_value']:.2g})" for r in changed]
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
