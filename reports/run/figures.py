"""Draw the declarative figure specs of evidence.json as PNG bytes.

matplotlib's Agg canvas is used directly on ``Figure`` objects: no pyplot, no global backend switch, no
figure left open, so drawing a report never disturbs a caller that uses pyplot itself.

One renderer per figure kind; ``render(figure) -> bytes`` picks it. Scene pictures arrive pre-rendered
(the report cannot run the simulator) and pass through; a filmstrip's frames are laid out in a grid with
their step labels. ``table`` figures are not pictures: ``reports.run.html`` writes them as HTML tables.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.patches import Rectangle

from reports.schema import IMAGE_FIGURE_KINDS, EvidenceError, validate_figure

IMAGE_KINDS = IMAGE_FIGURE_KINDS

_DPI = 100
_WIDTH_IN = 8.0
_ACCENT = "#1f5fa8"
_MUTED = "#8a8f98"
_HIGHLIGHT = "#c2410c"
_LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}


def render(figure: dict) -> bytes:
    """PNG bytes for one figure spec (validated first, so a malformed spec fails with its path)."""
    validate_figure(figure)
    kind = figure["kind"]
    if kind not in _RENDERERS:
        raise EvidenceError(f"a {kind!r} figure is not drawn as a picture (reports.run.html writes it as a table)")
    return _RENDERERS[kind](figure)


def _to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _new_figure(height_in: float, width_in: float = _WIDTH_IN) -> Figure:
    return Figure(figsize=(width_in, max(1.5, height_in)), dpi=_DPI, layout="constrained")


def _decode_png(data: str) -> np.ndarray:
    return imread(io.BytesIO(base64.b64decode(data)), format="png")


def _title(ax: Any, figure: dict) -> None:
    if figure.get("title"):
        ax.set_title(figure["title"], fontsize=12, loc="left")


# ------------------------------------------------------------------------------------------------ pictures


def render_scene(figure: dict) -> bytes:
    """A pre-rendered scene: the PNG itself (the caption goes under it in the HTML)."""
    return base64.b64decode(figure["png_base64"])


def render_filmstrip(figure: dict) -> bytes:
    """Frames of one episode in a grid (at most 5 a row), each with its step label, the seed in the title."""
    frames = [_decode_png(f) for f in figure["frames_png_base64"]]
    labels = figure.get("frame_labels") or [f"step {i}" for i in range(len(frames))]
    columns = min(5, len(frames))
    rows = math.ceil(len(frames) / columns)
    aspect = frames[0].shape[0] / max(1, frames[0].shape[1])
    cell_w = _WIDTH_IN * 1.4 / columns
    fig = _new_figure(rows * (cell_w * aspect + 0.35) + 0.4, width_in=_WIDTH_IN * 1.4)
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(frames):
            ax.imshow(frames[i])
            ax.set_title(labels[i], fontsize=9)
    heading = figure.get("title") or "Episode"
    condition = f", {figure['condition']}" if figure.get("condition") else ""
    fig.suptitle(f"{heading} (seed {figure['seed']}{condition})", fontsize=12, x=0.01, ha="left")
    return _to_png(fig)


def render_attention_scene(figure: dict) -> bytes:
    """Top-down scene, one panel per head: each vehicle shaded and linked to the ego by its attention weight."""
    heads: dict[str, list[float]] = figure["heads"]
    vehicles: list[dict] = figure["vehicles"]
    ego: dict = figure["ego"]
    columns = min(len(heads), 4)
    rows = math.ceil(len(heads) / columns)
    xs = [ego["x"]] + [v["x"] for v in vehicles]
    ys = [ego["y"]] + [v["y"] for v in vehicles]
    margin = 8.0
    span_x, span_y = max(xs) - min(xs) + 2 * margin, max(ys) - min(ys) + 2 * margin
    cell_w = _WIDTH_IN * 1.2 / columns
    fig = _new_figure(rows * cell_w * min(1.6, max(0.6, span_y / span_x)) + 0.6, width_in=_WIDTH_IN * 1.2)
    axes = fig.subplots(rows, columns, squeeze=False)
    cmap = colormaps["Reds"]
    for ax, (name, weights) in zip(axes.flat, heads.items()):
        for vehicle, weight in zip(vehicles, weights):
            ax.plot([ego["x"], vehicle["x"]], [ego["y"], vehicle["y"]], color=_HIGHLIGHT,
                    linewidth=0.3 + 6.0 * weight, alpha=min(1.0, 0.15 + weight), zorder=1)
            _draw_vehicle(ax, vehicle, face=cmap(0.15 + 0.85 * min(1.0, weight)))
            ax.annotate(f"{weight:.2f}", (vehicle["x"], vehicle["y"]), xytext=(0, 10), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8, fontweight="bold", bbox=_LABEL_BOX, zorder=3)
            if vehicle.get("label"):
                ax.annotate(vehicle["label"], (vehicle["x"], vehicle["y"]), xytext=(0, -10),
                            textcoords="offset points", ha="center", va="top", fontsize=7, color="#333333",
                            bbox=_LABEL_BOX, zorder=3)
        _draw_vehicle(ax, ego, face="#2f9e44")
        ax.annotate(ego.get("label") or "ego", (ego["x"], ego["y"]), xytext=(10, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=8, color="#2f9e44", fontweight="bold", bbox=_LABEL_BOX, zorder=3)
        ax.set_xlim(min(xs) - margin, max(xs) + margin)
        ax.set_ylim(max(ys) + margin, min(ys) - margin)  # highway-env draws y downwards
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("x (m)", fontsize=8)
        ax.set_ylabel("y (m)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(heads):]:
        ax.set_axis_off()
    if figure.get("title"):
        fig.suptitle(figure["title"], fontsize=12, x=0.01, ha="left")
    return _to_png(fig)


def _draw_vehicle(ax: Any, vehicle: dict, face: Any) -> None:
    length, width = vehicle.get("length") or 5.0, vehicle.get("width") or 2.0
    ax.add_patch(Rectangle((vehicle["x"] - length / 2, vehicle["y"] - width / 2), length, width,
                           angle=math.degrees(vehicle.get("heading") or 0.0), rotation_point="center",
                           facecolor=face, edgecolor="black", linewidth=0.8, zorder=2))


# -------------------------------------------------------------------------------------------------- charts


def render_forest(figure: dict) -> bytes:
    """Effects with CIs, one row each, against a reference line (0 unless stated); CI text on the right."""
    rows = figure["rows"]
    reference = figure.get("reference", 0.0)
    fig = _new_figure(0.45 * len(rows) + 1.2)
    ax = fig.subplots()
    ys = np.arange(len(rows))[::-1]
    for y, row in zip(ys, rows):
        value = row["value"]
        lo = row["ci"][0] if row["ci"][0] is not None else value
        hi = row["ci"][1] if row["ci"][1] is not None else value
        excludes = lo > reference or hi < reference
        color = _HIGHLIGHT if row.get("highlight") else (_ACCENT if excludes else _MUTED)
        ax.errorbar([value], [y], xerr=[[value - lo], [hi - value]], fmt="o", color=color, capsize=4,
                    markersize=6, linewidth=2)
        n = f"  n={row['n']}" if row.get("n") is not None else ""
        ax.annotate(f"{value:.3g} [{_fmt(row['ci'][0])}, {_fmt(row['ci'][1])}]{n}", xy=(1.01, y),
                    xycoords=("axes fraction", "data"), va="center", fontsize=9)
    ax.axvline(reference, color="black", linewidth=1, linestyle="--")
    ax.set_yticks(ys, [r["label"] for r in rows], fontsize=10)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(figure["xlabel"], fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    _title(ax, figure)
    return _to_png(fig)


def render_heatmap(figure: dict) -> bytes:
    """A labelled matrix (e.g. QK / OV circuits, attributions over features); diverging colours when signed."""
    matrix = np.array([[np.nan if v is None else v for v in row] for row in figure["matrix"]], dtype=float)
    n_rows, n_cols = matrix.shape
    finite = matrix[np.isfinite(matrix)]
    center = figure.get("center")
    if center is None and finite.size and finite.min() < 0 < finite.max():
        center = 0.0
    if center is not None and finite.size:
        reach = max(abs(finite.max() - center), abs(finite.min() - center)) or 1.0
        norm, cmap = TwoSlopeNorm(vcenter=center, vmin=center - reach, vmax=center + reach), "RdBu_r"
    else:
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        norm, cmap = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0), "viridis"
    width = min(14.0, max(5.0, 0.55 * n_cols + 3.0))
    fig = _new_figure(min(14.0, 0.42 * n_rows + 1.8), width_in=width)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(n_cols), figure["col_labels"], rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(n_rows), figure["row_labels"], fontsize=9)
    ax.set_xlabel(figure.get("xlabel") or "", fontsize=10)
    ax.set_ylabel(figure.get("ylabel") or "", fontsize=10)
    colorbar = fig.colorbar(image, ax=ax, shrink=0.9)
    if figure.get("colorbar_label"):
        colorbar.set_label(figure["colorbar_label"])
    annotate = figure.get("annotate", n_rows * n_cols <= 150)
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                shade = norm(value)
                ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=7,
                        color="white" if (shade > 0.8 or shade < 0.2) else "black")
    _title(ax, figure)
    return _to_png(fig)


def render_bars(figure: dict) -> bytes:
    """Bars with optional CIs and an optional reference line (e.g. the chance level)."""
    labels, values = figure["labels"], figure["values"]
    fig = _new_figure(3.8, width_in=min(12.0, max(5.0, 0.7 * len(labels) + 2.5)))
    ax = fig.subplots()
    positions = np.arange(len(labels))
    yerr = None
    if figure.get("ci") is not None:
        # a bar without a CI (or an unbounded side) gets no whisker on that side
        lows = [v - c[0] if c and c[0] is not None else np.nan for v, c in zip(values, figure["ci"])]
        highs = [c[1] - v if c and c[1] is not None else np.nan for v, c in zip(values, figure["ci"])]
        yerr = [lows, highs]
    ax.bar(positions, values, yerr=yerr, color=_ACCENT, capsize=4, alpha=0.85)
    if figure.get("reference") is not None:
        ax.axhline(figure["reference"], color=_HIGHLIGHT, linestyle="--", linewidth=1.2,
                   label=figure.get("reference_label") or "reference")
        ax.legend(fontsize=9)
    ax.set_xticks(positions, labels, rotation=30 if max(len(s) for s in labels) > 8 else 0,
                  ha="right" if max(len(s) for s in labels) > 8 else "center", fontsize=9)
    ax.set_ylabel(figure.get("ylabel") or "", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    _title(ax, figure)
    return _to_png(fig)


def render_line(figure: dict) -> bytes:
    """One line per series over a shared x, with optional CI bands and reference line."""
    x = figure["x"]
    fig = _new_figure(3.8)
    ax = fig.subplots()
    for name, ys in figure["series"].items():
        y = np.array([np.nan if v is None else v for v in ys], dtype=float)
        (line,) = ax.plot(x, y, marker="o", markersize=4, linewidth=1.8, label=name)
        band = (figure.get("bands") or {}).get(name)
        if band:
            lo = [b[0] if b[0] is not None else np.nan for b in band]
            hi = [b[1] if b[1] is not None else np.nan for b in band]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)
    if figure.get("reference") is not None:
        ax.axhline(figure["reference"], color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(figure.get("xlabel") or "", fontsize=10)
    ax.set_ylabel(figure.get("ylabel") or "", fontsize=10)
    ax.grid(alpha=0.3)
    if len(figure["series"]) > 1 or figure.get("bands"):
        ax.legend(fontsize=9)
    _title(ax, figure)
    return _to_png(fig)


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.3g}"


_RENDERERS: dict[str, Callable[[dict], bytes]] = {
    "scene": render_scene, "filmstrip": render_filmstrip, "attention_scene": render_attention_scene,
    "forest": render_forest, "heatmap": render_heatmap, "bars": render_bars, "line": render_line,
}

