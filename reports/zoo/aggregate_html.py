"""The aggregate report over many agents as one self-contained page: ``DIR/index.html`` + ``DIR/aggregate.json``.

Same style as the single-run report (``reports.run.html``: its CSS, verdict colours and badges); the one picture
(each claim's share of agents with its Clopper-Pearson interval) is drawn by ``reports.run.figures`` and embedded
as a PNG data URI with alt text. Everything taken from the aggregate is HTML-escaped.
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from reports.run import figures as figures_mod
from reports.zoo.aggregate import NO_ROLE, SPEC_CHOSEN, validate_aggregate
from reports.atomic import CLI_REMEDY, write_files
from reports.run.html import _CSS, VERDICT_STYLE, _badge, _e
from interp.vocabulary import VERDICT_SHORT

_GRID_CSS = """
.grid td.v{text-align:center;padding:3px 4px;font-size:.8em;font-weight:600;white-space:nowrap}
.grid th.agent{writing-mode:vertical-rl;transform:rotate(180deg);font-size:.8em;padding:6px 2px;white-space:nowrap}
.legend span{margin-right:10px}
table.claims code,table.grid code,table.role-effects code{word-break:break-word}
"""
_SHORT = VERDICT_SHORT


def write_aggregate_report(agg: dict, out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/aggregate.json`` and ``out_dir/index.html`` (all or none); return the HTML path."""
    validate_aggregate(agg)
    out = Path(out_dir)
    text = json.dumps(agg, indent=1, allow_nan=False) + "\n"
    write_files(out, {"aggregate.json": text, "index.html": build_aggregate_html(agg)}, remedy=CLI_REMEDY)
    return out / "index.html"


def build_aggregate_html(agg: dict) -> str:
    agents = sorted(agg["agents"], key=lambda a: (a["heads"] is None, a["heads"] or 0, a["label"]))
    heads = ", ".join(f"{n} with {h} heads" for h, n in agg["head_counts"].items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>hypodrive aggregate: {len(agents)} agents</title>",
        f"<style>{_CSS}{_GRID_CSS}</style></head><body><main>",
        f"<h1>{_e(agg['title'])}</h1>",
        f'<div class="meta">{len(agents)} agents ({_e(heads)}) &middot; profile(s) {_e(", ".join(agg["profiles"]))}'
        f' &middot; created {_e(agg["created"])}</div>',
        f"<p>{_e(agg['counting'])}. The interval is for the share of independent training runs of one stratum's "
        "recipe in which the claim would hold; members sharing a training seed, and snapshots of one run, are not "
        "independent runs.</p>",
    ]
    commits = agg.get("git_commits") or []
    if len(commits) > 1:  # resumed runs can span commits: say so (zoo run --rerun runs every agent again)
        parts.append(f'<p class="bad">The agents\' runs used {len(commits)} different commits of the code and specs '
                     f'({_e(", ".join(c[:10] for c in commits))}); see the agents table. Rerun with '
                     "<code>--rerun</code> to run every agent on one commit.</p>")
    if agg.get("command"):
        parts.append(f"<p>Command: <code>{_e(agg['command'])}</code></p>")
    parts += [_claims_table(agg), _forest(agg), _grid(agg, agents), _roles(agg, agents), _role_effects(agg),
              _agents_table(agents), "</main></body></html>"]
    return "\n".join(parts)


def _ci(ci: list | None) -> str:
    return "&ndash;" if ci is None else f"{ci[0]:.2f}&ndash;{ci[1]:.2f}"


def _kn(entry: dict) -> str:
    return f"{entry['k']}/{entry['n']}"


def _short(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _claims_table(agg: dict) -> str:
    strata = list(agg.get("strata") or {})
    head = ("<tr><th>#</th><th>claim</th><th>kind</th><th>holds (k of applicable)</th><th>not applicable</th>"
            "<th>undecided</th>" + "".join(f"<th>{_e(k)}<br><small>independent: holds, 95% CI</small></th>"
                                           for k in strata) + "</tr>")
    rows = []
    for i, c in enumerate(agg["claims"]):
        by = "".join(f"<td class='num'>{_stratum_cell(c['strata'][k]) if k in c['strata'] else '&ndash;'}</td>"
                     for k in strata)
        rows.append(f"<tr><td>{i + 1}</td><td><code>{_e(_short(c['nodeid']))}</code><br><small>{_e(c['claim'])}"
                    f"</small></td><td>{_e(c['kind'])}</td><td class='num'><strong>{_e(c['holds'])}</strong></td>"
                    f"<td class='num'>{c['not_applicable']}</td><td class='num'>{c['undecided']}</td>{by}</tr>")
    return ('<h2 id="claims">Claims: in how many agents they hold</h2>'
            "<p>k of all applicable agents; undecided agents (inconclusive, or no verdict) are shown as bounds: "
            "between k/n (none of them holds) and (k+u)/n (all do). Each stratum (head count &times; training "
            "budget) has its own interval, over its independent members only; there is none over all agents.</p>"
            f'<table class="claims"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')


def _stratum_cell(stratum: dict) -> str:
    ind = stratum["independent"]
    dependent = stratum.get("dependent") or {}
    note = (f"<br><small title=\"{_e('; '.join(f'{a}: {w}' for a, w in dependent.items()))}\">"
            f"+{len(dependent)} dependent</small>") if dependent else ""
    return f"{_e(ind['holds'])}<br><small>{_ci(ind['ci'])}</small>{note}"


def _forest(agg: dict) -> str:
    rows = [{"label": f"{i + 1}. {_short(c['nodeid']).removeprefix('test_')[:24]} [{key}]",
             "value": sum(s["independent"]["ci"]) / 2, "ci": s["independent"]["ci"], "n": s["independent"]["n"]}
            for i, c in enumerate(agg["claims"]) for key, s in c["strata"].items() if s["independent"]["n"]]
    if not rows:
        return "<p>No claim was decided on any agent: nothing to draw.</p>"
    figure = {"kind": "forest", "rows": rows, "xlabel": "share of independent agents where the claim holds, per "
              "stratum (95% Clopper-Pearson from k to k + undecided; dot: its middle)",
              "reference": 0.5, "title": "Claims over agents"}
    try:
        png = figures_mod.render(figure)
    except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the report
        return f'<div class="figerror">could not draw the forest figure: {_e(exc)}</div>'
    alt = ("Forest plot: for each decided claim, the share of agents where it holds with its 95% Clopper-Pearson "
           "interval; " + "; ".join(f"{r['label']}: {r['value']:.2f}" for r in rows))
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="fig-forest"><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
            "<figcaption>Per claim and stratum, the exact 95% interval for the share of independent agents where "
            "the claim holds, from its lower end with k to its upper end with k + undecided (dashed line: one "
            "half).</figcaption></figure>")


def _grid(agg: dict, agents: list[dict]) -> str:
    head = ("<tr><th>claim</th>" + "".join(f'<th class="agent" title="{_e(a["identity"])}">{_e(a["label"])} '
                                           f'({_e(a["heads"])}h)</th>' for a in agents) + "</tr>")
    rows = []
    for i, c in enumerate(agg["claims"]):
        cells = []
        for a in agents:
            label = a["label"]
            if label not in c["verdicts"]:
                cells.append('<td class="v" title="not run">&middot;</td>')
                continue
            verdict = c["verdicts"][label]
            fg, bg, text = VERDICT_STYLE.get(verdict, ("#000", "#eee", str(verdict)))
            effect = (c.get("key_effects") or {}).get(label)
            tip = text
            if effect and effect.get("value") is not None:
                tip += f"; {effect['name']} = {effect['value']:.3g}"
            if (c.get("reasons") or {}).get(label):
                tip += f"; {c['reasons'][label]}"
            cells.append(f'<td class="v verdict-{_e(verdict)}" style="color:{fg};background:{bg}" '
                         f'title="{_e(tip)}">{_SHORT.get(verdict, "?")}</td>')
        rows.append(f"<tr><td>{i + 1}. <code>{_e(_short(c['nodeid'])[:70])}</code></td>{''.join(cells)}</tr>")
    legend = " ".join(f"<span>{_badge(v)} = {_SHORT[v]}</span>" for v in VERDICT_STYLE)
    return ('<h2 id="grid">Verdicts: claims &times; agents</h2>'
            f'<p class="legend">{legend} <span>&middot; = not run</span> (hover a cell for the key effect)</p>'
            f'<table class="grid"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')


def _roles(agg: dict, agents: list[dict]) -> str:
    roles = agg["roles"]
    if not roles:
        return "<h2 id='roles'>Head roles</h2><p>No run recorded head roles.</p>"
    strata = list(agg.get("strata") or {})
    head = ("<tr><th>role</th><th>resolves (k/n)</th><th>not measured</th>"
            + "".join(f"<th>{_e(k)}<br><small>independent, 95% CI</small></th>" for k in strata)
            + "<th>holding head's score (mean, min&ndash;max)</th></tr>")
    rows = []
    for role, r in roles.items():
        by = "".join(f"<td class='num'>{_kn(r['strata'][k]['independent'])}<br>"
                     f"<small>{_ci(r['strata'][k]['independent']['ci'])}</small></td>" if k in r["strata"]
                     else "<td class='num'>&ndash;</td>" for k in strata)
        score = r.get("score")
        score_text = ("&ndash;" if not score else
                      f"{score['mean']:.3f} ({score['min']:.3f}&ndash;{score['max']:.3f}, n={score['n']})")
        rows.append(f"<tr><td><code>{_e(role)}</code></td><td class='num'><strong>{_kn(r)}</strong></td>"
                    f"<td class='num'>{r['not_measured']}</td>{by}"
                    f"<td class='num'>{score_text}</td></tr>")
    names = list(roles)
    ahead = "<tr><th>agent</th><th>heads</th>" + "".join(f"<th>{_e(r)}</th>" for r in names) + "</tr>"
    arows = []
    for a in agents:
        cells = []
        for role in names:
            value = roles[role]["agents"].get(a["label"])
            if value is None:
                cells.append("<td>&ndash;</td>")
            elif value["heads"]:
                cells.append(f'<td class="num" style="background:#bbf7d0;font-weight:600" '
                             f'title="{_e(value.get("reason") or "")}">{_e(", ".join(map(str, value["heads"])))}</td>')
            else:
                cells.append(f'<td title="{_e(value.get("reason") or "")}"><small>unresolved</small></td>')
        arows.append(f"<tr><th>{_e(a['label'])}</th><td class='num'>{_e(a['heads'])}</td>{''.join(cells)}</tr>")
    return ('<h2 id="roles">Head roles</h2>'
            "<p>A role resolves on an agent when some head holds it (<code>interp.roles</code>: attention roles beat "
            "799 random networks on both calibration halves; causal roles by paired zero-ablation, not measured "
            "under the quick profile). Score: the holding head's mean attention mass on the category (attention "
            "roles) or its ablation effect (causal roles).</p>"
            f'<table class="roles"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            "<h3>Every agent's roles (heads holding each role; hover for the reason)</h3>"
            f'<table class="agent-roles"><thead>{ahead}</thead><tbody>{"".join(arows)}</tbody></table>')


def _role_effects(agg: dict) -> str:
    rows = agg.get("role_effects") or []
    if not rows:
        return "<h2 id='role-effects'>Per-head effects by role</h2><p>No effect names a head.</p>"
    body = []
    for r in rows:
        s = r["summary"]
        values = "; ".join(f"{v['agent']} head {v['head']}: {v['value']:.3g}" for v in r["values"])
        verdicts = "" if r.get("with_verdict") is None else f"{r['supported']}/{r['with_verdict']}"
        role = r["role"] if r["role"] in (NO_ROLE, SPEC_CHOSEN) else f"<code>{_e(r['role'])}</code>"
        body.append(f"<tr><td><code>{_e(_short(r['nodeid']))}</code><br>{_e(r['effect'])}</td><td>{role}</td>"
                    f"<td class='num'>{r['agents']}</td>"
                    f"<td class='num'>{'&ndash;' if not s else format(s['mean'], '.3g')}</td>"
                    f"<td class='num'>{'&ndash;' if not s else format(s['median'], '.3g')}</td>"
                    f"<td class='num'>{'&ndash;' if not s else format(s['min'], '.3g') + '&ndash;' + format(s['max'], '.3g')}</td>"
                    f"<td class='num'>{verdicts}</td>"
                    f"<td><details><summary>{len(r['values'])} values</summary><small>{_e(values)}</small>"
                    "</details></td></tr>")
    head = ("<tr><th>spec / effect</th><th>role of the head</th><th>agents</th><th>mean</th><th>median</th>"
            "<th>min&ndash;max</th><th>supported (of effects with a verdict)</th><th>values</th></tr>")
    return ('<h2 id="role-effects">Per-head effects by role</h2>'
            "<p>Effects that name a head, regrouped by the roles that head holds on its own agent (one head can "
            "hold several roles; heads holding none are grouped as <em>(no role)</em>), so that heads are compared "
            "by role, never by index.</p>"
            f'<table class="role-effects"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>')


def _aliases(agent: dict) -> str:
    """The other names the same checkpoint came under (one identity counts once), e.g. `` (= reference)``."""
    names = agent.get("aliases") or []
    return f" <small>(= {_e(', '.join(names))})</small>" if names else ""


def _agents_table(agents: list[dict]) -> str:
    head = ("<tr><th>agent</th><th>heads</th><th>identity</th><th>profile</th><th>verdicts</th><th>finished</th>"
            "<th>git commit</th><th>source</th></tr>")
    rows = "".join(
        f"<tr><th>{_e(a['label'])}{_aliases(a)}</th><td class='num'>{_e(a['heads'])}</td><td><code>{_e(a['identity'])}</code>"
        f"</td><td>{_e(a['profile'])}</td><td>{_e(', '.join(f'{k} {v}' for k, v in a['verdict_counts'].items()))}"
        f"</td><td>{_e(a['finished'])}</td><td><code>{_e((a.get('git_commit') or '')[:10])}</code></td>"
        f"<td><small>{_e(a['source'])}</small></td></tr>" for a in agents)
    return f'<h2 id="agents">Agents</h2><table class="agents"><thead>{head}</thead><tbody>{rows}</tbody></table>'
