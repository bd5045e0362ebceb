"""The role map in the report: heads x vehicle categories (attention against the random-network null) and heads x
{collisions, arrivals} (zero-ablation effects with CIs), from ``run.role_map`` (``interp.roles.RoleMap.to_dict``).

Plain HTML tables with shaded cells, so the map needs no plotting library and reads in any browser.
"""
from __future__ import annotations

import html
from typing import Any


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _top(values: list) -> float | None:
    values = [v for v in values or [] if v is not None]
    return max(values) if values else None


def role_map_html(data: dict) -> str:
    """The "Head roles" section: two tables and the unresolved roles' reasons."""
    heads = data.get("heads") or []
    null = (data.get("null") or {}).get("categories") or {}
    categories = list(null)
    parts = ['<h2 id="roles">Head roles</h2>',
             f"<p>Attention roles: mean attention mass per vehicle category on two disjoint calibration halves, "
             f"against the maximum over {_e((data.get('null') or {}).get('networks'))} randomly initialised networks "
             f"(best head). A cell is <strong>bold and green</strong> when the head beats that maximum on both halves "
             f"(the head holds the role). Shown: half 1 / half 2, and the null's band (median to maximum, higher half).</p>"]
    if heads and categories:
        head_row = "<tr><th>head</th>" + "".join(f"<th>{_e(c)}</th>" for c in categories) + "</tr>"
        band_row = "<tr><th>null (median&ndash;max)</th>" + "".join(
            f'<td class="num">{_num(_top(null[c]["median"]), ".3f")}&ndash;{_num(_top(null[c]["max"]), ".3f")}</td>'
            for c in categories) + "</tr>"
        rows = []
        for entry in heads:
            cells = []
            for c in categories:
                prof = entry["profile"].get(c) or {}
                halves = prof.get("halves") or [None, None]
                held = c in entry.get("roles", [])
                style = ' style="background:#bbf7d0;font-weight:600"' if held else ""
                cells.append(f'<td class="num"{style}>{_num(halves[0])} / {_num(halves[1])}</td>')
            rows.append(f"<tr><th>head {entry['head']}</th>{''.join(cells)}</tr>")
        parts.append(f'<table class="rolemap">{head_row}{band_row}{"".join(rows)}</table>')
    metrics = [m for m in ("collisions", "arrivals") if any(m in (e.get("effects") or {}) for e in heads)]
    if metrics:
        parts.append("<p>Causal roles: paired change when the head's output is zero-ablated (calibration episode "
                     "seeds, sequential test, Holm across heads). <code>safety</code>: collisions rise; "
                     "<code>progress</code>: arrivals fall.</p>")
        head_row = "<tr><th>head</th>" + "".join(f"<th>{m}: change [CI] (n, verdict)</th>" for m in metrics) + "</tr>"
        rows = []
        for entry in heads:
            cells = []
            for m in metrics:
                eff = (entry.get("effects") or {}).get(m) or {}
                ci = eff.get("ci") or [None, None]
                held = eff.get("verdict") == "supported"
                style = ' style="background:#bbf7d0;font-weight:600"' if held else ""
                cells.append(f'<td class="num"{style}>{_num(eff.get("effect"), "+.3f")} '
                             f'[{_num(ci[0], "+.3f")}, {_num(ci[1], "+.3f")}] ({_e(eff.get("n"))}, '
                             f'{_e(eff.get("verdict"))})</td>')
            rows.append(f"<tr><th>head {entry['head']}</th>{''.join(cells)}</tr>")
        parts.append(f'<table class="rolemap">{head_row}{"".join(rows)}</table>')
    roles = data.get("roles") or {}
    reasons = data.get("reasons") or {}
    items = "".join(f"<li><code>{_e(r)}</code>: {'heads ' + ', '.join(map(str, h)) if h else 'unresolved'} "
                    f"&mdash; {_e(reasons.get(r, ''))}</li>" for r, h in roles.items())
    parts.append(f"<ul>{items}</ul>")
    stability = data.get("stability") or {}
    if stability:
        parts.append(f"<p>Split-half stability: best head agrees on {_e(stability.get('best_head_agrees'))}/"
                     f"{_e(stability.get('categories'))} categories; profile correlation "
                     f"{_num(stability.get('profile_correlation'), '.3f')}.</p>")
    return "\n".join(parts)
