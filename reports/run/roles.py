"""The role map in the report: heads x vehicle categories (selectivity against the tempered random-network null)
and heads x {collisions, arrivals} (zero-ablation effects with CIs), from ``run.role_map``
(``interp.roles.RoleMap.to_dict``).

Plain HTML tables with shaded cells, so the map needs no plotting library and reads in any browser.
"""
from __future__ import annotations

import html
from typing import Any, Callable


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _top(values: list) -> float | None:
    values = [v for v in values or [] if v is not None]
    return max(values) if values else None


HELD = ' style="background:#bbf7d0;font-weight:600"'  # a held role's cell: green and bold


def _head_table(heads: list[dict], columns: list[str], cell: Callable[[dict, str], tuple[str, bool]]) -> str:
    """One row per head, one column per entry of ``columns``; ``cell`` gives each cell's HTML and whether the
    head holds that column's role (shaded)."""
    head_row = "<tr><th>head</th>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"
    rows = []
    for entry in heads:
        cells = (cell(entry, c) for c in columns)
        rows.append(f"<tr><th>head {entry['head']}</th>"
                    + "".join(f'<td class="num"{HELD if held else ""}>{text}</td>' for text, held in cells) + "</tr>")
    return f'<table class="rolemap">{head_row}{"".join(rows)}</table>'


def _selectivity_cell(entry: dict, category: str) -> tuple[str, bool]:
    """Statistic on half 1 / half 2, the adjusted p-value and the larger null quantile."""
    sel = (entry.get("selectivity") or {}).get(category) or {}
    stat = sel.get("statistic") or [None, None]
    quant = sel.get("quantile") or [None, None]
    return (f'{_num(stat[0], "+.3f")} / {_num(stat[1], "+.3f")}<br>'
            f'p {_num(sel.get("p_value"), ".3g")}, q {_num(_top(quant), ".2f")}', category in entry.get("roles", []))


def _effect_cell(entry: dict, metric: str) -> tuple[str, bool]:
    """The ablation's paired change with its CI, n and verdict."""
    eff = (entry.get("effects") or {}).get(metric) or {}
    ci = eff.get("ci") or [None, None]
    return (f'{_num(eff.get("effect"), "+.3f")} [{_num(ci[0], "+.3f")}, {_num(ci[1], "+.3f")}] '
            f'({_e(eff.get("n"))}, {_e(eff.get("verdict"))})', eff.get("verdict") == "supported")


def role_map_html(data: dict) -> str:
    """The "Head roles" section: two tables and the unresolved roles' reasons."""
    heads = data.get("heads") or []
    null = (data.get("null") or {}).get("categories") or {}
    categories = list(null)
    parts = ['<h2 id="roles">Head roles</h2>',
             f"<p>Attention roles: each head's selectivity per vehicle category (a within-scene fit of its "
             f"pre-softmax scores on the categories and distance, scene fixed effects; <code>proximity</code> is "
             f"the distance slope per metre), against {_e((data.get('null') or {}).get('networks'))} random "
             f"networks of the same architecture tempered to the head's own entropy over the vehicles, max "
             f"statistic over heads &times; categories. A cell is <strong>bold and green</strong> when the head "
             f"holds the role (max-adjusted p &le; {_e((data.get('null') or {}).get('alpha'))} on both halves). "
             f"Shown: statistic on half 1 / half 2, the larger adjusted p-value, and the statistic's quantile "
             f"among the tempered nulls.</p>"]
    if heads and categories:
        parts.append(_head_table(heads, categories, _selectivity_cell))
    metrics = [m for m in ("collisions", "arrivals") if any(m in (e.get("effects") or {}) for e in heads)]
    if metrics:
        parts.append("<p>Causal roles: paired change when the head's output is zero-ablated (calibration episode "
                     "seeds, sequential test, Holm across heads &times; outcomes). <code>safety</code>: collisions rise; "
                     "<code>progress</code>: arrivals fall.</p>")
        parts.append(_head_table(heads, [f"{m}: change [CI] (n, verdict)" for m in metrics],
                                 lambda entry, column: _effect_cell(entry, column.split(":")[0])))
    roles = data.get("roles") or {}
    reasons = data.get("reasons") or {}
    items = "".join(f"<li><code>{_e(r)}</code>: {'heads ' + ', '.join(map(str, h)) if h else 'unresolved'} "
                    f"&mdash; {_e(reasons.get(r, ''))}</li>" for r, h in roles.items())
    parts.append(f"<ul>{items}</ul>")
    stability = data.get("stability") or {}
    if stability:
        parts.append(f"<p>Split-half stability: most selective head agrees on {_e(stability.get('best_head_agrees'))}/"
                     f"{_e(stability.get('categories'))} categories; null-quantile correlation "
                     f"{_num(stability.get('quantile_correlation'), '.3f')}.</p>")
    return "\n".join(parts)
