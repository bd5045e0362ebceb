"""What holds for the architecture: one spec run per agent (``evidence.json`` each), aggregated over the agents.

Pure computation on evidence dicts (no model, no simulator, no plotting): ``aggregate(evidences)`` returns a
JSON-able dict (``aggregate.json``; ``reports.zoo.aggregate_html`` draws it); ``reports.zoo.aggregate_diff.diff_aggregates(base, new)``
compares two of them (``python -m reports diff`` detects the format).

**Counting.** Claims are matched across agents by pytest node id (a parametrised spec is one claim per
parameter set). For each claim and agent the verdict is one of the vocabulary's ``VERDICTS``, ``None`` (the
spec ended without a verdict: an error) or absent (the spec was not run on that agent). A claim *applies* to an
agent unless its verdict there is ``not-applicable`` (e.g. a head role it needs did not resolve). Of the
applicable agents, the claim is *decided* where its verdict is ``supported``, ``refuted`` or ``vacuous``
(``vacuous`` counts against the claim: the check could not fail there); ``inconclusive`` (the budget ran out)
and no verdict are *undecided*. Undecided agents stay in n, as bounds:

    holds in k of n:  k = supported, n = applicable; with u undecided, between k/n and (k+u)/n

(2 supported and 12 undecided read "between 2/14 and 14/14", never "2/2").

**Strata, never pooled.** Agents with different head counts or training budgets (episodes) are different
populations, so each (head count, budget) stratum gets its own counts and its own exact 95 % interval
(Clopper-Pearson, ``scipy.stats.binomtest(...).proportion_ci(method="exact")``) for the share of training
runs of that recipe in which the claim holds: from the lower bound at k to the upper bound at k + u, so it
covers every way the undecided agents could fall. There is no interval over all agents. The interval counts
only *independent* agents: members that share a training seed (the same seed gives the same initial
weights, and the same env seed range) are one draw, so within a stratum only the first member per seed (by
label) counts; the others are listed as dependent. An agent whose evidence records no training seed
(``run.checkpoint.lineage``) cannot be shown independent and is left out of the interval too.

**Roles.** Each agent's roles come from its run metadata (``run.head_roles``, what the specs used, pins
included; ``run.role_map`` for the per-head attention profiles and ablation effects). Per role: in how many
agents it resolved (k of n, Clopper-Pearson), by head count. Effects whose name names one head (``"ablate head
1: collision rate change"``) are regrouped by the roles that head holds on its agent (``"ablate head {h}: ..."``
under ``crossing``, ``safety``, ... or ``(no role)``), so that heads are compared by role, never by index; an
effect naming several heads is kept as one row per agent under ``(chosen by the spec)``.

**Diff** (``reports.zoo.aggregate_diff``). Where the two aggregates cover the same agents (matched by checkpoint
identity), it lists each agent's verdict changes: paired and descriptive, with no test (with a dozen agents a
paired test could only flag very large shifts). Only on disjoint sets of agents does it test each stratum's
decided share with Barnard's exact test.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.vocabulary import (DECIDED, INCONCLUSIVE, NOT_APPLICABLE, REFUTED, SUPPORTED, UNDECIDED,  # noqa: F401
                               VACUOUS, VERDICT_LABELS, VERDICTS)
from reports.zoo.counting import (CI_LEVEL, _is_int, _list, bounded_interval, bounds, clopper_pearson,  # noqa: F401
                              holds_text, independent, share, stratum_key, training_of)
from reports.schema import upgrade, validate

FORMAT = "hypodrive-aggregate"
VERSION = 2  # 2: k over all applicable agents with undecided bounds, strata by heads x budget, no pooled CI
DEFAULT_ALPHA = 0.01  # two-sided, per claim (as for evidence diffs: python -m reports diff --alpha)
NO_ROLE = "(no role)"
SPEC_CHOSEN = "(chosen by the spec)"
_HEAD = re.compile(r"\bhead (\d+)\b")


def is_aggregate(data: Any) -> bool:
    """True for an aggregate report (``aggregate.json``), False for anything else (e.g. an evidence file)."""
    return isinstance(data, dict) and data.get("format") == FORMAT


# ------------------------------------------------------------------------------------------------ agents


def agent_label(evidence: dict) -> str:
    """A short name for the agent of a run: its folder name (``checkpoints/zoo/4h-s1`` -> ``4h-s1``), else
    the identity's first 12 characters."""
    checkpoint = evidence["run"]["checkpoint"]
    source = checkpoint.get("source")
    if source:
        path = Path(source)
        if path.suffix in (".pt", ".tar", ".pth"):
            return path.parent.name if path.stem in ("agent", "latest") and path.parent.name else path.stem
        return path.name or str(source)
    return checkpoint["identity"][:12]


def n_heads(run: dict) -> int | None:
    """The head count of a run's agent (checkpoint description, else the agent config)."""
    heads = run["checkpoint"].get("heads")
    if isinstance(heads, int):
        return heads
    config = run.get("agent_config")
    if isinstance(config, dict):
        try:
            return int(config["model"]["attention_layer"]["heads"])
        except (KeyError, TypeError, ValueError):
            return None
    return None


def role_heads(run: dict) -> dict[str, list[int]]:
    """role -> heads holding it (largest effect first), from ``run.role_map`` overridden by ``run.head_roles``
    (what the specs used, ``--head-role`` pins included). Unresolved roles map to []."""
    roles: dict[str, list[int]] = {}
    role_map = run.get("role_map") or {}
    for role, heads in (role_map.get("roles") or {}).items():
        roles[role] = [int(h) for h in heads or []]
    for role, value in (run.get("head_roles") or {}).items():
        if isinstance(value, dict):
            heads = value.get("heads")
            if heads is None:
                heads = [] if value.get("head") is None else [value["head"]]
        else:
            heads = [] if value is None else [value]
        roles[role] = [int(h) for h in heads]
    return roles


def _agent(evidence: dict, label: str) -> dict:
    run = evidence["run"]
    seed, episodes = training_of(run)
    counts = {v: 0 for v in (*VERDICTS, None)}
    for entry in evidence["specs"]:
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    role_map = run.get("role_map") or {}
    causal = role_map.get("causal") or {}
    reasons = {**(role_map.get("reasons") or {}),
               **{r: v.get("reason") for r, v in (run.get("head_roles") or {}).items()
                  if isinstance(v, dict) and v.get("reason")}}
    return {"label": label, "identity": run["checkpoint"]["identity"], "source": run["checkpoint"].get("source"),
            "heads": n_heads(run), "train_seed": seed, "episodes": episodes,
            "stratum": stratum_key(n_heads(run), episodes), "profile": run.get("profile"), "finished": run.get("finished"),
            "git_commit": run.get("git_commit"), "roles": role_heads(run), "role_reasons": reasons,
            "causal_roles_measured": bool(causal.get("measured")) if causal else False,
            "verdict_counts": {("no verdict" if v is None else v): c for v, c in counts.items() if c},
            "specs": len(evidence["specs"])}


def _one_per_identity(evidences: list[dict], labels: list[str]) -> tuple[list[dict], list[str], dict[str, list[str]]]:
    """One agent per checkpoint identity (the first run of it; a bundled agent under two names, e.g. ``reference``
    = zoo member ``4h-s3``, is one training run and must count once), and label -> the other names it had."""
    kept_e, kept_l, aliases, first = [], [], {}, {}
    for evidence, label in zip(evidences, labels):
        identity = evidence["run"]["checkpoint"]["identity"]
        if identity in first:
            aliases.setdefault(first[identity], []).append(label)
            continue
        first[identity] = label
        kept_e.append(evidence)
        kept_l.append(label)
    return kept_e, kept_l, aliases


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


# ------------------------------------------------------------------------------------------------ claims


def _tally(verdicts: dict[str, str | None], labels: Sequence[str]) -> dict:
    """The counts for one claim over the agents ``labels``: k supported of n applicable, u undecided, and the
    bounds k/n to (k+u)/n (no interval: see ``_stratum_tally``)."""
    present = [verdicts[a] for a in labels if a in verdicts]
    out: dict[str, Any] = {"supported": sum(v == SUPPORTED for v in present)}
    out.update({key: sum(v == verdict for v in present) for key, verdict in _COUNTED.items()})
    out.update({"no_verdict": sum(v is None for v in present), "not_run": len(labels) - len(present),
                "decided": sum(v in DECIDED for v in present)})
    out["undecided"] = out[INCONCLUSIVE] + out["no_verdict"]
    out["applicable"] = out["decided"] + out["undecided"]
    out["k"], out["n"] = out["supported"], out["applicable"]
    out["bounds"] = bounds(out["k"], out["undecided"], out["n"])
    out["holds"] = holds_text(out["k"], out["undecided"], out["n"])
    return out


_COUNTED = {REFUTED: REFUTED, VACUOUS: VACUOUS, "not_applicable": NOT_APPLICABLE, INCONCLUSIVE: INCONCLUSIVE}


def _stratum_tally(verdicts: dict[str, str | None], members: Sequence[dict]) -> dict:
    """One stratum's counts over all its members, and its interval over its independent members only."""
    out = _tally(verdicts, [a["label"] for a in members])
    kept, why = independent(members)
    ind = _tally(verdicts, kept)
    out["independent"] = {"agents": kept, "k": ind["k"], "n": ind["n"], "undecided": ind["undecided"],
                          "holds": ind["holds"], "ci": bounded_interval(ind["k"], ind["undecided"], ind["n"])}
    out["dependent"] = why
    return out


def _strata(agents: Sequence[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for agent in sorted(agents, key=lambda a: (a["heads"] is None, a["heads"] or 0, a["episodes"] is None,
                                               a["episodes"] or 0)):
        groups.setdefault(agent["stratum"], []).append(agent)
    return groups


def _key_effect(entry: dict) -> dict | None:
    """The spec's first effect (what the single-run report shows as its key effect)."""
    if not entry["effects"]:
        return None
    e = entry["effects"][0]
    return {"name": e["name"], "value": e.get("value"), "ci": e.get("ci"), "n": e.get("n")}


def _claims(evidences: Sequence[dict], labels: Sequence[str], agents: Sequence[dict]) -> list[dict]:
    order: dict[str, dict] = {}
    for evidence, label in zip(evidences, labels):
        for entry in evidence["specs"]:
            claim = order.setdefault(entry["nodeid"], {
                "nodeid": entry["nodeid"], "spec_id": entry.get("spec_id"), "claim": entry["claim"],
                "kind": entry["kind"], "verdicts": {}, "key_effects": {}, "reasons": {}})
            claim["verdicts"][label] = entry["verdict"]
            claim["key_effects"][label] = _key_effect(entry)
            if entry["verdict"] not in DECIDED and entry.get("reason"):
                claim["reasons"][label] = entry["reason"][:400]
    strata = _strata(agents)
    claims = []
    for claim in order.values():
        claim.update(_tally(claim["verdicts"], labels))
        claim["strata"] = {key: _stratum_tally(claim["verdicts"], members) for key, members in strata.items()}
        claims.append(claim)
    return claims


def _heads_key(h: int | None) -> str:
    return "unknown" if h is None else str(h)


# ------------------------------------------------------------------------------------------------- roles


def _roles(agents: Sequence[dict], evidences: Sequence[dict]) -> dict[str, dict]:
    """Per role: in how many agents it resolved (k of n, Clopper-Pearson), by head count, which heads, and the
    holding head's calibration score (attention mass on the category, or ablation effect) where recorded."""
    names = list(dict.fromkeys(r for a in agents for r in a["roles"]))
    out = {}
    for role in names:
        per_agent = {}
        for agent, evidence in zip(agents, evidences):
            if role not in agent["roles"]:
                continue
            heads = agent["roles"][role]
            per_agent[agent["label"]] = {"heads": heads, "score": _role_score(evidence["run"], role, heads),
                                         "reason": agent["role_reasons"].get(role)}
        measured = [a for a in agents if a["label"] in per_agent and not _unmeasured(per_agent[a["label"]])]
        k = sum(bool(per_agent[a["label"]]["heads"]) for a in measured)
        entry = share(k, len(measured))
        entry["not_measured"] = len(per_agent) - len(measured)
        entry["ci"] = None  # no interval over all agents: strata differ (see the module docstring)
        strata = {}
        for key, members in _strata(measured).items():
            kept, _ = independent(members)
            strata[key] = {"k": sum(bool(per_agent[a["label"]]["heads"]) for a in members), "n": len(members),
                           "independent": share(sum(bool(per_agent[label]["heads"]) for label in kept), len(kept))}
        entry["strata"] = strata
        entry["agents"] = per_agent
        scores = [v["score"] for v in per_agent.values() if v["heads"] and v["score"] is not None]
        entry["score"] = _summary(scores)
        out[role] = entry
    return out


def _unmeasured(value: dict) -> bool:
    return not value["heads"] and str(value.get("reason") or "").startswith(("not measured", "unmeasured"))


def _role_score(run: dict, role: str, heads: list[int]) -> float | None:
    """The first holding head's calibration score: its selectivity statistic averaged over both halves for an
    attention role, the ablation effect for a causal role (``run.role_map``), else the share recorded in
    ``run.head_roles``."""
    if not heads:
        return None
    head = heads[0]
    for entry in (run.get("role_map") or {}).get("heads") or []:
        if entry.get("head") != head:
            continue
        selectivity = (entry.get("selectivity") or {}).get(role)
        if selectivity:
            values = [v for v in selectivity.get("statistic") or [] if v is not None]
            return sum(values) / len(values) if values else None
        metric = {"safety": "collisions", "progress": "arrivals"}.get(role)
        effect = ((entry.get("effects") or {}).get(metric) or {}).get("effect") if metric else None
        if effect is not None:
            return float(effect)
    value = (run.get("head_roles") or {}).get(role)
    if isinstance(value, dict):
        for s in value.get("shares") or []:
            if isinstance(s, dict) and s.get("head") == head and _finite(s.get("share")):
                return float(s["share"])
    return None


def _role_effects(evidences: Sequence[dict], agents: Sequence[dict]) -> list[dict]:
    """Effects naming a head, regrouped by the roles that head holds on its agent (see the module docstring);
    plus each head's zero-ablation effects from the role map (calibration seeds), grouped the same way."""
    rows: dict[tuple[str, str, str], dict] = {}

    def add(nodeid: str, claim: str, template: str, role: str, value: dict) -> None:
        row = rows.setdefault((nodeid, template, role), {"nodeid": nodeid, "claim": claim, "effect": template,
                                                         "role": role, "values": []})
        row["values"].append(value)

    for evidence, agent in zip(evidences, agents):
        held = agent["roles"]
        for entry in evidence["specs"]:
            for effect in entry["effects"]:
                heads = [int(h) for h in _HEAD.findall(effect["name"])]
                if not heads or effect.get("value") is None:
                    continue
                template = _HEAD.sub("head {h}", effect["name"])
                value = {"agent": agent["label"], "heads": agent["heads"], "head": heads[0] if len(heads) == 1 else heads,
                         "value": effect["value"], "ci": effect.get("ci"), "n": effect.get("n"),
                         "verdict": effect.get("verdict")}
                if len(heads) > 1:
                    add(entry["nodeid"], entry["claim"], template, SPEC_CHOSEN, value)
                    continue
                for role in [r for r, hs in held.items() if heads[0] in hs] or [NO_ROLE]:
                    add(entry["nodeid"], entry["claim"], template, role, value)
        for head_entry in (evidence["run"].get("role_map") or {}).get("heads") or []:
            head = head_entry.get("head")
            for metric, eff in (head_entry.get("effects") or {}).items():
                if not isinstance(eff, dict) or eff.get("effect") is None:
                    continue
                value = {"agent": agent["label"], "heads": agent["heads"], "head": head, "value": eff["effect"],
                         "ci": eff.get("ci"), "n": eff.get("n"), "verdict": eff.get("verdict")}
                template = f"zero-ablating head {{h}}: {metric[:-1]} rate change (role calibration seeds)"
                for role in [r for r, hs in held.items() if head in hs] or [NO_ROLE]:
                    add("role map", "head roles (interp.roles)", template, role, value)
    out = []
    for row in rows.values():
        values = [v["value"] for v in row["values"]]
        verdicts = [v["verdict"] for v in row["values"] if v["verdict"] is not None]
        row.update({"agents": len({v["agent"] for v in row["values"]}), "summary": _summary(values),
                    "supported": sum(v == SUPPORTED for v in verdicts) if verdicts else None,
                    "with_verdict": len(verdicts) if verdicts else None})
        out.append(row)
    out.sort(key=lambda r: (r["nodeid"], r["effect"], r["role"] in (NO_ROLE, SPEC_CHOSEN), r["role"]))
    return out


def _summary(values: Sequence[float]) -> dict | None:
    values = [float(v) for v in values if _finite(v)]
    if not values:
        return None
    return {"n": len(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "min": min(values), "max": max(values)}


# ---------------------------------------------------------------------------------------------- aggregate


def aggregate(evidences: Sequence[dict], *, labels: Sequence[str] | None = None, title: str | None = None,
              command: str | None = None) -> dict:
    """The aggregate report over several agents' evidence dicts (one spec run per agent; see the module
    docstring). ``labels`` name the agents (default: their checkpoint folder names)."""
    evidences = [validate(upgrade(e)) for e in evidences]
    if not evidences:
        raise ValueError("aggregate: no evidence to aggregate (no agent's run finished?)")
    if labels is not None and len(labels) != len(evidences):
        raise ValueError(f"aggregate: {len(labels)} labels for {len(evidences)} evidence files")
    labels = _unique_labels(list(labels) if labels is not None else [agent_label(e) for e in evidences])
    evidences, labels, aliases = _one_per_identity(evidences, labels)
    agents = [{**_agent(e, label), "aliases": aliases.get(label, [])} for e, label in zip(evidences, labels)]
    claims = _claims(evidences, labels, agents)
    profiles = sorted({a["profile"] for a in agents if a["profile"]})
    return {
        "format": FORMAT, "version": VERSION, "title": title or "What holds for the architecture",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
        "profiles": profiles, "ci_level": CI_LEVEL,
        "counting": ("k = agents where the claim is supported; n = agents where it applied (supported, refuted, "
                     "vacuous or undecided); with u undecided (inconclusive or no verdict) it holds in between "
                     "k/n and (k+u)/n; not-applicable runs are counted apart; per stratum (head count x "
                     "training budget), never pooled, a 95% Clopper-Pearson interval over independent members "
                     "(no shared training seed) from k to k+u"),
        "git_commits": sorted({a["git_commit"] for a in agents if a["git_commit"]}),
        "head_counts": {_heads_key(h): sum(a["heads"] == h for a in agents)
                        for h in sorted({a["heads"] for a in agents if a["heads"] is not None})},
        "strata": {key: [a["label"] for a in members] for key, members in _strata(agents).items()},
        "agents": agents, "claims": claims, "roles": _roles(agents, evidences),
        "role_effects": _role_effects(evidences, agents),
    }


def validate_aggregate(data: Any) -> dict:
    """A light structural check of an aggregate report (raises ValueError naming what is wrong)."""
    if not is_aggregate(data):
        raise ValueError(f"not an aggregate report (expected \"format\": {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ValueError(f"aggregate report version {data.get('version')!r}; this reader knows {VERSION}. Rebuild it: "
                         "rerun python -m interp zoo run with the same --out (agents whose evidence is up to date "
                         "are skipped, and the aggregate is written again)")
    for key in ("agents", "claims", "roles"):
        if key not in data:
            raise ValueError(f"aggregate report: missing {key!r}")
    return data


# ------------------------------------------------------------------------------------------------- text


def format_table(agg: dict, *, markdown: bool = True, skip_never_decided: bool = True) -> str:
    """The claims table as Markdown: per claim, k of n applicable (with undecided as bounds), the counts against
    it, and per stratum (head count x budget) its independent members' bounds and exact 95 % interval. Claims
    decided on no agent and not-applicable on none (e.g. opt-in fuzz campaigns) are listed after the table
    instead (``skip_never_decided``)."""
    strata = list(agg.get("strata") or {})
    head = (["claim", "holds (k of applicable)", VERDICT_LABELS[REFUTED], VERDICT_LABELS[VACUOUS],
             VERDICT_LABELS[NOT_APPLICABLE], "undecided"] + strata)
    rows, skipped = [], []
    for c in agg["claims"]:
        if skip_never_decided and c["decided"] == 0 and c["not_applicable"] == 0:
            skipped.append(_short_name(c["nodeid"]))
            continue
        cells = [f"`{_short_name(c['nodeid'])}`" if markdown else _short_name(c["nodeid"]), c["holds"],
                 str(c[REFUTED]), str(c[VACUOUS]), str(c["not_applicable"]), str(c["undecided"])]
        cells += [_stratum_cell(c["strata"][key]) if key in c["strata"] else "–" for key in strata]
        rows.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        out = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in [head, *rows]]
    if skipped:
        out += ["", f"Decided on no agent (not in the table): {', '.join(skipped)}"]
    return "\n".join(out)


def _stratum_cell(stratum: dict) -> str:
    ind = stratum["independent"]
    ci = ind["ci"]
    dependent = f" (+{len(stratum['dependent'])} dependent)" if stratum["dependent"] else ""
    return f"{ind['holds']}{'' if ci is None else f', {ci[0]:.2f}–{ci[1]:.2f}'}{dependent}"


def _short_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["aggregate", "validate_aggregate", "format_table", "clopper_pearson", "share", "is_aggregate", "role_heads", "n_heads", "agent_label"]
