"""Claims over training: the specs' verdicts, the head roles and each claim's key effect against training episodes,
from one spec run per snapshot of a training run (``python -m interp zoo over-training``).

``over_training(evidences, episodes)`` is pure computation (a JSON-able dict); ``draw_over_training`` draws it as
one PNG (matplotlib's Agg canvas on a ``Figure``, as ``reports.figures`` does: no pyplot); and
``write_over_training_report`` writes ``over_training.json``, ``over_training.png`` and a self-contained
``index.html``. A key effect is a spec's first effect; its name is matched across snapshots with head indices
blanked (``"share of scenes, head {h}"``), since the head a role picks can change during training.
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from reports.aggregate import _HEAD, role_heads
from reports.atomic import CLI_REMEDY, write_files
from reports.schema import upgrade, validate

FORMAT = "hypodrive-over-training"
VERSION = 1
_VERDICT_COLOURS = {"supported": "#16a34a", "refuted": "#dc2626", "inconclusive": "#f59e0b", "vacuous": "#7e22ce",
                    "not-applicable": "#d1d5db", "unmeasured": "#93c5fd",
                    None: "#6b7280"}
_VERDICT_LABELS = {"supported": "supported", "refuted": "refuted", "inconclusive": "inconclusive",
                   "vacuous": "vacuous", "not-applicable": "not applicable",
                   "unmeasured": "unmeasured", None: "no verdict"}


def over_training(evidences: Sequence[dict], episodes: Sequence[int], *, run: str | None = None,
                  command: str | None = None) -> dict:
    """Per claim: verdict and key effect at each snapshot; per role: the heads holding it at each snapshot."""
    if len(evidences) != len(episodes) or not evidences:
        raise ValueError(f"over_training: {len(evidences)} evidence files for {len(episodes)} episode counts")
    pairs = sorted(zip(episodes, (validate(upgrade(e)) for e in evidences)), key=lambda p: p[0])
    xs = [int(e) for e, _ in pairs]
    claims: dict[str, dict] = {}
    for i, (_, evidence) in enumerate(pairs):
        for entry in evidence["specs"]:
            claim = claims.setdefault(entry["nodeid"], {
                "nodeid": entry["nodeid"], "claim": entry["claim"], "kind": entry["kind"],
                "verdicts": [None] * len(xs), "ran": [False] * len(xs), "effect": None,
                "values": [None] * len(xs), "ci": [None] * len(xs), "n": [None] * len(xs)})
            claim["verdicts"][i], claim["ran"][i] = entry["verdict"], True
            if entry["effects"]:
                effect = entry["effects"][0]
                name = _HEAD.sub("head {h}", effect["name"])
                claim["effect"] = claim["effect"] or name
                if name == claim["effect"] and _finite(effect.get("value")):
                    claim["values"][i] = float(effect["value"])
                    ci = effect.get("ci")
                    claim["ci"][i] = list(ci) if ci and all(_finite(v) for v in ci) else None
                    claim["n"][i] = effect.get("n")
    for claim in claims.values():
        claim["flips"] = [xs[i] for i in range(1, len(xs)) if claim["ran"][i] and claim["ran"][i - 1]
                          and claim["verdicts"][i] != claim["verdicts"][i - 1]]
    roles: dict[str, list] = {}
    for i, (_, evidence) in enumerate(pairs):
        reasons = _role_reasons(evidence["run"])
        for role, heads in role_heads(evidence["run"]).items():
            measured = heads or not reasons.get(role, "").startswith("not measured")
            roles.setdefault(role, [None] * len(xs))[i] = heads if measured else None  # None: not measured
    roles = {role: per_point for role, per_point in roles.items() if any(h is not None for h in per_point)}
    appears = {role: next((xs[i] for i, h in enumerate(heads) if h), None) for role, heads in roles.items()}
    return {"format": FORMAT, "version": VERSION, "run": run, "command": command, "episodes": xs,
            "identities": [e["run"]["checkpoint"]["identity"] for _, e in pairs],
            "profiles": sorted({e["run"].get("profile") for _, e in pairs if e["run"].get("profile")}),
            "claims": list(claims.values()), "roles": roles, "role_first_resolved": appears}


def draw_over_training(data: dict, *, effects: bool = True) -> bytes:
    """One PNG: a verdict strip per claim and a role strip per role (top), then (``effects``) each claim's key
    effect with its CI against training episodes, the marker coloured by that snapshot's verdict."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    xs, roles = data["episodes"], data["roles"]
    claims = [c for c in data["claims"] if _ever_decided(c)]  # e.g. opt-in fuzz campaigns: listed in the table only
    plotted = [c for c in claims if effects and (sum(v is not None for v in c["values"]) >= 2 or len(xs) == 1)]
    strips = len(claims) + len(roles)
    ncols = 4
    nrows = math.ceil(len(plotted) / ncols) if plotted else 0
    top_h = 0.26 * strips + 1.2
    fig = Figure(figsize=(14 if plotted else 10.5, top_h + 2.2 * nrows), dpi=90, layout="constrained")
    grid = fig.add_gridspec(1 + nrows, ncols, height_ratios=[top_h] + [2.2] * nrows)
    ax = fig.add_subplot(grid[0, :])
    labels = []
    for row, claim in enumerate(claims):
        y = strips - 1 - row
        for i, x in enumerate(xs):
            if claim["ran"][i]:
                ax.scatter([i], [y], s=150, marker="s", color=_VERDICT_COLOURS.get(claim["verdicts"][i], "#000"))
        labels.append((y, _short(claim["nodeid"]).removeprefix("test_")))
    for row, (role, per_point) in enumerate(roles.items()):
        y = len(roles) - 1 - row
        for i, heads in enumerate(per_point):
            if heads is None:
                continue
            ax.scatter([i], [y], s=150, marker="s", color="#bbf7d0" if heads else "#f3f4f6",
                       edgecolor="#9ca3af", linewidth=0.5)
            if heads:
                ax.annotate(",".join(map(str, heads[:2])), (i, y), ha="center", va="center", fontsize=7)
        labels.append((y, f"role: {role}"))
    if roles:
        ax.axhline(len(roles) - 0.5, color="#6b7280", linewidth=0.8)
    ax.set_yticks([y for y, _ in labels], [text[:64] for _, text in labels], fontsize=7)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs], fontsize=8)
    ax.set_xlim(-0.6, len(xs) - 0.4)
    ax.set_ylim(-0.7, strips - 0.3)
    ax.set_xlabel("training episodes", fontsize=9)
    ax.set_title("Verdicts (claims) and head roles (heads holding each role) over training", fontsize=10)
    used = sorted({v for c in claims for v, ran in zip(c["verdicts"], c["ran"]) if ran},
                  key=lambda v: list(_VERDICT_COLOURS).index(v))
    ax.legend(handles=[Patch(color=_VERDICT_COLOURS[v], label=_VERDICT_LABELS[v]) for v in used]
              + ([Patch(color="#bbf7d0", label="role resolved (head)")] if roles else []),
              fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for k, claim in enumerate(plotted):
        sub = fig.add_subplot(grid[1 + k // ncols, k % ncols])
        pts = [(x, v, ci, verdict) for x, v, ci, verdict in zip(xs, claim["values"], claim["ci"], claim["verdicts"])
               if v is not None]
        sub.plot([p[0] for p in pts], [p[1] for p in pts], color="#6b7280", linewidth=1)
        for x, v, ci, verdict in pts:
            if ci:
                sub.errorbar([x], [v], yerr=[[v - ci[0]], [ci[1] - v]], color="#9ca3af", capsize=2, linewidth=1)
            sub.scatter([x], [v], color=_VERDICT_COLOURS.get(verdict, "#000"), zorder=3, s=25)
        sub.set_title(_short(claim["nodeid"]).removeprefix("test_")[:38], fontsize=7)
        sub.set_ylabel((claim["effect"] or "")[:34], fontsize=6)
        sub.tick_params(labelsize=7)
        sub.grid(alpha=0.3)
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def alt_text(data: dict) -> str:
    """A text description of the figure (the page's alt text)."""
    parts = [f"Verdicts and key effects of {len(data['claims'])} claims at training episodes "
             f"{', '.join(map(str, data['episodes']))}."]
    for claim in data["claims"]:
        seq = " > ".join(_VERDICT_LABELS.get(v, str(v)) if ran else "not run"
                         for v, ran in zip(claim["verdicts"], claim["ran"]))
        parts.append(f"{_short(claim['nodeid'])}: {seq}.")
    for role, episode in data["role_first_resolved"].items():
        parts.append(f"role {role}: " + (f"first resolved at episode {episode}." if episode is not None
                                        else "never resolved."))
    return " ".join(parts)


def write_over_training_report(data: dict, out_dir: str | os.PathLike) -> Path:
    """``over_training.json``, ``over_training.png`` (strips and effects), ``over_training_summary.png`` (strips
    only) and ``index.html`` (the full figure embedded) in ``out_dir``."""
    from reports.html import _CSS, _badge, _e

    png = draw_over_training(data)
    summary = draw_over_training(data, effects=False)
    xs = data["episodes"]
    head = "<tr><th>claim</th>" + "".join(f"<th>{x}</th>" for x in xs) + "<th>flips at</th></tr>"
    rows = []
    for claim in data["claims"]:
        cells = "".join(f"<td>{_badge(v) if ran else '&middot;'}<br><small>"
                        f"{'' if val is None else format(val, '.3g')}</small></td>"
                        for v, ran, val in zip(claim["verdicts"], claim["ran"], claim["values"]))
        rows.append(f"<tr><td><code>{_e(_short(claim['nodeid']))}</code><br><small>{_e(claim['effect'] or '')}"
                    f"</small></td>{cells}<td>{_e(', '.join(map(str, claim['flips'])) or '-')}</td></tr>")
    role_rows = "".join(
        "<tr><td><code>" + _e(role) + "</code></td>"
        + "".join(f"<td>{'' if h is None else (_e(', '.join(map(str, h))) if h else 'unresolved')}</td>" for h in heads)
        + f"<td>{_e(data['role_first_resolved'].get(role) or 'never')}</td></tr>"
        for role, heads in data["roles"].items())
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>hypodrive: claims over training</title>", f"<style>{_CSS}</style></head><body><main>",
        "<h1>Claims over training</h1>",
        f'<div class="meta">run <code>{_e(data["run"])}</code> &middot; profile(s) {_e(", ".join(data["profiles"]))}'
        f" &middot; {len(xs)} checkpoints</div>",
        f"<p>Command: <code>{_e(data.get('command') or '')}</code></p>" if data.get("command") else "",
        f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" '
        f'alt="{_e(alt_text(data))}"><figcaption>Top: each claim\'s verdict and each head role (the heads '
        "holding it) at each snapshot. Below: each claim's key effect with its CI, coloured by verdict."
        "</figcaption></figure>",
        f"<h2>Verdicts and key effects</h2><table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>",
        "<h2>Head roles</h2><table><thead><tr><th>role</th>" + "".join(f"<th>{x}</th>" for x in xs)
        + f"<th>first resolved</th></tr></thead><tbody>{role_rows}</tbody></table>",
        "</main></body></html>"])
    out = Path(out_dir)
    write_files(out, {"over_training.json": json.dumps(data, indent=1, allow_nan=False) + "\n",
                      "over_training.png": png, "over_training_summary.png": summary, "index.html": page},
                remedy=CLI_REMEDY)
    return out / "index.html"


def _ever_decided(claim: dict) -> bool:
    return any(ran and v is not None for v, ran in zip(claim["verdicts"], claim["ran"]))


def _role_reasons(run: dict) -> dict[str, str]:
    reasons = dict((run.get("role_map") or {}).get("reasons") or {})
    for role, value in (run.get("head_roles") or {}).items():
        if isinstance(value, dict) and value.get("reason"):
            reasons[role] = str(value["reason"])
    return reasons


def _short(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
