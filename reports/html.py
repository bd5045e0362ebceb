"""Write the run's report: REPORT_DIR/index.html (self-contained, figures embedded as PNG data URIs) and
REPORT_DIR/evidence.json.

Plain HTML and inline CSS, no external resources, so the page can be attached to a CI run, mailed, or
opened years later; its one script drives the replay players (slider, play/pause) and is included only when the
page has a replay. Replays past a size cap are written beside index.html and linked (``reports.replay``). Everything taken from the evidence is HTML-escaped. A figure that cannot be
drawn shows its error in place instead of losing the whole report.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from reports import figures as figures_mod
from reports.atomic import PYTEST_REMEDY, write_files
from reports.replay import PLAYER_CSS, PLAYER_JS, ReplayEmbedder
from reports.schema import dumps, validate

VERDICT_STYLE = {  # verdict -> (text colour, background, label)
    "supported": ("#14532d", "#bbf7d0", "supported"),
    "refuted": ("#7f1d1d", "#fecaca", "refuted"),
    "inconclusive": ("#713f12", "#fde68a", "inconclusive"),
    "vacuous": ("#ffffff", "#7e22ce", "vacuous"),
    "not-applicable": ("#374151", "#e5e7eb", "not applicable"),
    "unmeasured": ("#1e3a8a", "#dbeafe", "unmeasured"),
    None: ("#ffffff", "#6b7280", "no verdict"),
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.3em;margin-top:36px;border-bottom:1px solid #d0d7de}
h3{font-size:1.1em;margin:0 0 6px}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6}
tr:nth-child(even) td{background:#fafbfc}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88em}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:8px;overflow-x:auto;white-space:pre-wrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:.85em;white-space:nowrap}
.summary span{margin-right:12px}
.spec{border:1px solid #d0d7de;border-radius:6px;padding:14px 18px;margin:18px 0}
.meta{color:#57606a;font-size:.88em;margin-bottom:8px}
figure{margin:14px 0}figure img{max-width:100%;border:1px solid #e5e7eb}
figcaption{color:#57606a;font-size:.9em;margin-top:4px}
.figerror{color:#7f1d1d;background:#fef2f2;border:1px solid #fecaca;padding:8px}
.notes{background:#fffbeb;border-color:#fde68a}
.ok{color:#14532d;font-weight:600}.bad{color:#7f1d1d;font-weight:600}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
details summary{cursor:pointer;color:#1f5fa8}
"""


def write_report(evidence: dict, out_dir: str | os.PathLike, *, diff: dict | None = None,
                 remedy: str = PYTEST_REMEDY) -> Path:
    """Validate, then write ``out_dir/evidence.json`` and ``out_dir/index.html``; return the HTML path.

    ``diff`` is the JSON form of a comparison with a baseline run (``EvidenceDiff.to_dict()``), shown on top.
    """
    validate(evidence)
    out = Path(out_dir)
    replays = ReplayEmbedder()  # replays past its size cap become files beside index.html
    page = build_html(evidence, diff=diff, replays=replays)
    evidence_text = dumps(evidence)
    # All files or none, never half of one (a full or read-only disk raises ReportWriteError, changing nothing).
    write_files(out, {**replays.files, "evidence.json": evidence_text, "index.html": page}, remedy=remedy)
    return out / "index.html"


def build_html(evidence: dict, *, diff: dict | None = None, replays: ReplayEmbedder | None = None) -> str:
    """The whole page as a string (validated evidence assumed). Replays too large to embed are left in
    ``replays.files`` for the caller to write beside the page (``write_report`` does)."""
    replays = replays if replays is not None else ReplayEmbedder()
    run, specs = evidence["run"], evidence["specs"]
    identity = run["checkpoint"]["identity"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>hypodrive evidence: {_e(identity[:16])}</title>",
        f"<style>{_CSS}{PLAYER_CSS}</style></head><body><main>",
        "<h1>hypodrive evidence report</h1>",
        f'<div class="meta">checkpoint <code>{_e(identity)}</code> &middot; profile {_e(run.get("profile"))}'
        f' &middot; schema {evidence["schema"]}</div>',
        _summary(specs),
    ]
    if diff is not None:
        parts.append(_diff_section(diff))
    parts += [_run_section(run)]
    if run.get("role_map"):  # heads x categories and heads x ablation effects (reports/roles.py)
        from reports.roles import role_map_html

        parts.append(role_map_html(run["role_map"]))
    parts += [_spec_table(specs), "<h2>Specs in detail</h2>"]
    parts += [_spec_section(i, entry, replays) for i, entry in enumerate(specs)]
    if replays.used:
        parts.append(f"<script>{PLAYER_JS}</script>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- sections


def _summary(specs: list[dict]) -> str:
    counts: dict[str, int] = {}
    for entry in specs:
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    badges = " ".join(f"<span>{_badge(v)} {counts[v]}</span>" for v in VERDICT_STYLE if v in counts)
    return f'<p class="summary"><strong>{len(specs)} spec(s):</strong> {badges}</p>'


def _multiplicity(m: dict) -> str:
    """Benjamini–Yekutieli q-values beside each tested claim's verdict (the verdicts are not changed by them)."""
    rows = "".join(f"<tr><td><code>{_e(f['nodeid'].split('::')[-1])}</code></td><td>{_badge(f['verdict'] or '')}</td>"
                   f"<td class='num'>{f['p_value']:.3g}</td><td class='num'>{f['q_value']:.3g}</td></tr>"
                   for f in sorted(m.get("family", []), key=lambda f: f["q_value"]))
    outside = len(m.get("outside", []))
    return (f"<p>{m.get('claims_tested', 0)} claims decided with a p-value; {_e(m.get('method', ''))} q-values "
            f"(false discovery rate under any dependence; verdicts unchanged); {outside} specs without a p-value are "
            f"outside the family.</p><table><thead><tr><th>spec</th><th>verdict</th><th>p</th><th>q</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _run_section(run: dict) -> str:
    checkpoint = run["checkpoint"]
    rows = [("checkpoint identity", f"<code>{_e(checkpoint['identity'])}</code>"),
            ("checkpoint source", _e(checkpoint.get("source") or "")),
            ("heads", _e(checkpoint.get("heads", "unknown")))]  # the head count the weights were loaded with
    baseline = run.get("baseline_checkpoint")
    if baseline:
        rows.append(("baseline checkpoint",
                     f"<code>{_e(baseline['identity'])}</code> {_e(baseline.get('source') or '')}"))
    rows += [("profile", _e(run.get("profile"))),
             ("started", _e(run.get("started") or "")), ("finished", _e(run.get("finished") or "")),
             ("git commit", f"<code>{_e(run.get('git_commit') or 'unknown')}</code>")]
    if run.get("head_roles"):
        rows.append(("head roles", _head_roles(run["head_roles"])))
    if run.get("seeds"):
        rows.append(("seeds", _compact_json(run["seeds"])))
    if run.get("versions"):
        rows.append(("library versions", ", ".join(f"{_e(k)}&nbsp;<code>{_e(v)}</code>"
                                                   for k, v in sorted(run["versions"].items()))))
    if run.get("multiplicity"):
        rows.append(("multiplicity across claims", _multiplicity(run["multiplicity"])))
    for key in ("agent_config", "env_config"):
        if run.get(key) is not None:
            rows.append((key.replace("_", " "), _json_details(run[key])))
    known = {"checkpoint", "baseline_checkpoint", "profile", "started", "finished", "git_commit", "head_roles",
             "seeds", "versions", "agent_config", "env_config", "role_map", "multiplicity"}
    for key in sorted(set(run) - known):
        value = run[key]
        rows.append((key, _e(value) if isinstance(value, (str, int, float)) else _json_details(value)))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<h2>Run</h2><table class="run">{body}</table>'


def _head_roles(roles: dict) -> str:
    """One row per role (its head, then its other fields as columns); lists of records (e.g. per-head
    shares) as nested tables, never as a Python repr."""
    values = {role: (value if isinstance(value, dict) else {"head": value}) for role, value in roles.items()}
    keys = [k for k in dict.fromkeys(k for v in values.values() for k in v) if k not in ("head", "role")]
    head = "<tr><th>role</th><th>head</th>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>"
    rows = []
    for role, value in values.items():
        shown = "unresolved" if value.get("head") is None else f"head {value['head']}"
        cells = "".join(f"<td>{_cell(value.get(k))}</td>" for k in keys)
        rows.append(f"<tr><td><strong>{_e(role)}</strong></td><td>{_e(shown)}</td>{cells}</tr>")
    return f'<table class="head-roles"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _cell(value: Any) -> str:
    """A value in a table cell: records as a nested table, lists joined, numbers short, text escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return _e(f"{value:.3g}")
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        cols = list(dict.fromkeys(k for v in value for k in v))
        head = "".join(f"<th>{_e(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v.get(c))}</td>" for c in cols) + "</tr>" for v in value)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return "<br>".join(f"{_e(k)}: {_cell(v)}" for k, v in value.items())
    return _e(value)


def _spec_table(specs: list[dict]) -> str:
    head = ("<tr><th>#</th><th>claim</th><th>kind</th><th>verdict</th><th>outcome</th>"
            "<th>key effect [CI]</th><th>n</th></tr>")
    rows = []
    for i, entry in enumerate(specs):
        effect = entry["effects"][0] if entry["effects"] else None
        key = (f"{_e(effect['name'])}: <span class='num'>{_estimate(effect)}</span>" if effect else "&ndash;")
        n = str(effect["n"]) if effect else "&ndash;"
        rows.append(f'<tr class="spec-row"><td>{i + 1}</td><td><a href="#spec-{i}">{_e(entry["claim"])}</a></td>'
                    f'<td>{_e(entry["kind"])}</td><td>{_badge(entry["verdict"])}</td><td>{_e(entry["outcome"])}</td>'
                    f'<td>{key}</td><td class="num">{n}</td></tr>')
    return f'<h2>Specs</h2><table class="specs"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _spec_section(i: int, entry: dict, replays: ReplayEmbedder | None = None) -> str:
    meta = (f"<code>{_e(entry['nodeid'])}</code> &middot; {_e(entry['kind'])} &middot; outcome "
            f"{_e(entry['outcome'])} &middot; checkpoint <code>{_e(entry['checkpoint'][:16])}</code>")
    if entry.get("duration_s") is not None:
        meta += f" &middot; {entry['duration_s']:.1f} s"
    if entry.get("near_ties") is not None:  # episodes with a step decided on a near-tie (interp.policy)
        ties = entry["near_ties"]
        meta += (f' &middot; <span class="near-ties">near-tie episodes {ties["with_near_tie"]}/{ties["episodes"]}'
                 "</span>")
    parts = [f'<section class="spec" id="spec-{i}">',
             f"<h3>{i + 1}. {_e(entry['claim'])} {_badge(entry['verdict'])}</h3>",
             f'<div class="meta">{meta}</div>']
    if entry.get("reason"):
        parts.append(f"<p><strong>Reason:</strong> {_e(entry['reason'])}</p>")
    if entry["effects"]:
        parts.append(_effects_table(entry["effects"]))
    if entry.get("controls"):
        parts.append(_controls(entry["controls"]))
    parts += [_figure(fig, replays) for fig in entry["figures"]]
    if entry["notes"]:
        parts.append(f'<pre class="notes">{_e(entry["notes"])}</pre>')
    if entry.get("scenes"):
        parts.append(f"<details><summary>scenes used ({len(entry['scenes'])})</summary>"
                     f"<pre>{_e(json.dumps(entry['scenes'], indent=1))}</pre></details>")
    if entry.get("data"):
        parts.append(f"<details><summary>data</summary><pre>{_e(json.dumps(entry['data'], indent=1))}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _effects_table(effects: list[dict]) -> str:
    head = "<tr><th>effect</th><th>value [CI]</th><th>n</th><th>p</th><th>better</th><th>rule</th></tr>"
    rows = []
    for effect in effects:
        paired = f" ({len(effect['paired_seeds'])} paired seeds)" if effect.get("paired_seeds") else ""
        note = f"<br><small>{_e(effect['note'])}</small>" if effect.get("note") else ""
        p = "" if effect.get("p_value") is None else f"{effect['p_value']:.3g}"
        rows.append(f"<tr><td>{_e(effect['name'])}{note}</td><td class='num'>{_estimate(effect)}</td>"
                    f"<td class='num'>{effect['n']}{_e(paired)}</td><td class='num'>{p}</td>"
                    f"<td>{_e(effect.get('better') or '')}</td><td>{_e(effect.get('rule') or '')}</td></tr>")
    return f"<table class='effects'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _controls(controls: list[dict]) -> str:
    items = []
    for control in controls:
        status = ('<span class="ok">rejected (the check bites)</span>' if control["rejected"]
                  else '<span class="bad">NOT rejected: the check is vacuous on this control</span>')
        detail = f" &ndash; {_e(control['detail'])}" if control.get("detail") else ""
        items.append(f"<li>negative control <strong>{_e(control['name'])}</strong>: {status}{detail}</li>")
    return f"<ul class='controls'>{''.join(items)}</ul>"


def _figure(fig: dict, replays: ReplayEmbedder | None = None) -> str:
    caption = fig.get("caption") or ""
    if fig["kind"] == "table":
        return _table_figure(fig)
    if fig["kind"] == "replay":  # an interactive player, or a link past the size cap
        return (replays if replays is not None else ReplayEmbedder()).figure_html(fig)
    try:
        png = figures_mod.render(fig)
    except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the report
        return f'<div class="figerror">could not draw this {_e(fig["kind"])} figure: {_e(exc)}</div>'
    data = base64.b64encode(png).decode("ascii")
    alt = fig.get("title") or caption or f"{fig['kind']} figure"
    title = f"<strong>{_e(fig['title'])}</strong> " if fig.get("title") and fig["kind"] == "scene" else ""
    seed = f" (seed {fig['seed']})" if fig["kind"] == "scene" and fig.get("seed") is not None else ""
    cap = f"<figcaption>{title}{_e(caption)}{_e(seed)}</figcaption>" if (caption or title or seed) else ""
    image = f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
    return f'<figure class="fig-{_e(fig["kind"])}">{image}{cap}</figure>'


def _table_figure(fig: dict) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in fig["columns"])
    rows = "".join("<tr>" + "".join(f"<td>{_e('' if v is None else v)}</td>" for v in row) + "</tr>"
                   for row in fig["rows"])
    title = f"<strong>{_e(fig['title'])}</strong><br>" if fig.get("title") else ""
    cap = f"<figcaption>{_e(fig.get('caption') or '')}</figcaption>" if fig.get("caption") else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<figure class="fig-table">{title}{table}{cap}</figure>'


def _diff_section(diff: dict) -> str:
    verdict = ('<span class="bad">REGRESSION</span>' if diff.get("regressed")
               else '<span class="ok">no regression</span>')
    parts = [f"<h2>Compared with baseline</h2><p>baseline checkpoint <code>{_e(diff['base']['checkpoint'])}</code>"
             f" ({_e(diff['base'].get('source') or '')}); alpha {diff['alpha']:g}: {verdict}</p>"]
    if diff.get("regressions"):
        parts.append("<ul>" + "".join(f"<li class='bad'>{_e(r)}</li>" for r in diff["regressions"]) + "</ul>")
    moved = [c for c in diff.get("role_changes") or [] if not c["lost"]]  # lost roles are in the regressions
    if moved:
        parts.append("<ul>" + "".join(f"<li>role <code>{_e(c['role'])}</code> held by head(s) {_e(c['new_heads'])} "
                                      f"(baseline: {_e(c['base_heads'])})</li>" for c in moved) + "</ul>")
    changes = diff.get("verdict_changes") or []
    if changes:
        rows = "".join(f"<tr><td><code>{_e(c['nodeid'])}</code></td><td>{_badge(c['base'])} &rarr; "
                       f"{_badge(c['new'])}</td></tr>" for c in changes)
        parts.append("<table><thead><tr><th>spec</th><th>verdict change</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    significant = [e for e in diff.get("effects") or [] if e["significant"]]
    if significant:
        rows = "".join(
            f"<tr><td><code>{_e(e['nodeid'])}</code><br>{_e(e['name'])}</td>"
            f"<td class='num'>{_e(_fmt(e['base_value']))} &rarr; {_e(_fmt(e['new_value']))}</td>"
            f"<td>{_e(e['test_description'])}<br><small>{_e(e['detail'])}</small></td>"
            f"<td class='num'>{e['p_value']:.2g}</td><td>{'worse' if e['worse'] else ''}</td></tr>"
            for e in significant)
        parts.append("<table><thead><tr><th>effect</th><th>value</th><th>test</th><th>p</th><th></th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- helpers


def _badge(verdict: str) -> str:
    fg, bg, label = VERDICT_STYLE.get(verdict, ("#000", "#eee", verdict))
    return f'<span class="badge verdict-{_e(verdict)}" style="color:{fg};background:{bg}">{_e(label)}</span>'


def _estimate(effect: dict) -> str:
    unit = f" {effect['unit']}" if effect.get("unit") else ""
    if effect.get("value") is None:  # not measurable in this run (e.g. nothing to recover)
        return "n/a"
    if effect.get("ci") is None:  # a count or deterministic measurement: no interval
        return _e(f"{_fmt(effect['value'])}{unit}")
    lo, hi = effect["ci"]
    return _e(f"{_fmt(effect['value'])} [{_fmt(lo)}, {_fmt(hi)}]{unit}")


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.3g}"


def _compact_json(value: Any) -> str:
    """Short JSON on one line per top-level key; long JSON folded away."""
    if isinstance(value, dict) and all(len(json.dumps(v)) <= 160 for v in value.values()):
        return "<br>".join(f"{_e(k)}: <code>{_e(json.dumps(v))}</code>" for k, v in value.items())
    return _json_details(value)


def _json_details(value: Any) -> str:
    text = json.dumps(value, indent=1, sort_keys=True) if not isinstance(value, str) else value
    return f"<details><summary>show</summary><pre>{_e(text)}</pre></details>"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
