"""Draw a replay (``interp.replay.Replay``) frame by frame and write it as GIF, MP4 or one self-contained HTML.

Each frame: the rendered scene; per head, a line from the ego to every observed vehicle, its width and
opacity by the head's attention to that vehicle (the vehicle found by the engine's recorded row identity);
Q-values and softmax probabilities as one bar per action (action names from the env); the action taken;
crash and arrival marked. Two runs on one seed are drawn side by side, and the step where their actions
first differ is framed in orange. A replay has steps + 1 frames (frame 0 is the state after reset; the
last frame is the final state, with no decision).

Drawing is PIL only (fast, no figure state); encoding is imageio (imageio-ffmpeg for MP4). Nothing here
runs the simulator or the model: everything comes from the replay's data.
"""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from interp.atomic import staged

FORMATS = (".gif", ".mp4", ".html")
SCENE_PX = 420  # the scene is scaled to this width
BAR_PANEL_PX = 190
HEADER_PX = 30
FOOTER_PX = 74
HEAD_COLOURS = [(31, 119, 180), (255, 127, 14), (148, 103, 189), (23, 190, 207), (227, 119, 194), (188, 189, 34),
                (140, 86, 75), (127, 127, 127)]
CRASH = (200, 30, 30)
ARRIVED = (30, 140, 60)
DIVERGE = (234, 88, 12)
TAKEN = (31, 95, 168)
MUTED = (170, 176, 186)
INK = (31, 35, 40)
FRAME_MS = 600  # display time of a frame in GIF and HTML (one agent step is one second of simulated time)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


_FONTS: dict[int, Any] = {}


def font(size: int):
    if size not in _FONTS:
        _FONTS[size] = _font(size)
    return _FONTS[size]


# ---------------------------------------------------------------------------------------------- drawing

def draw_frames(replay, *, scene_px: int = SCENE_PX) -> list[np.ndarray]:
    """RGB frames [H, W, 3] uint8 of the whole replay: ``replay.n_frames`` of them, runs side by side."""
    frames = []
    for i in range(replay.n_frames):
        panels = [_panel(run, min(i, len(run.frames) - 1), i, replay.divergence, scene_px) for run in replay.runs]
        frames.append(_join(panels, replay, i))
    return frames


def frame_captions(replay) -> list[str]:
    """One line per frame: for each run the step, the action taken (or the outcome), crash / arrival."""
    out = []
    for i in range(replay.n_frames):
        parts = []
        for run in replay.runs:
            j = min(i, len(run.frames) - 1)
            parts.append(f"{run.label}: {_status(run, j)}")
        if replay.divergence is not None and i == replay.divergence:
            parts.append(f"runs diverge at step {replay.divergence}")
        out.append(f"frame {i}/{replay.n_frames - 1}: " + "; ".join(parts))
    return out


def _status(run, j: int) -> str:
    frame = run.frames[j]
    if j < run.length:
        step = run.steps[j]
        text = f"step {j}, action {step.action_name} (p={step.probs[step.action]:.2f})"
    else:
        text = f"end after {run.length} steps"
    if frame.crashed:
        text += ", CRASHED"
    if frame.arrived:
        text += ", ARRIVED"
    return text + safety_caption(getattr(run, "safety", None), j)


def safety_caption(safety: dict | None, j: int) -> str:
    """The surrogate safety measures at state ``j`` (interp.safety): TTC (capped), DRAC, and the smallest
    footprint gap since the previous decision; empty when the episode was recorded without them."""
    if not safety or j >= len(safety.get("ttc", ())):
        return ""
    ttc, drac, gap = safety["ttc"][j], safety["drac"][j], safety["min_distance"][j]
    from interp.safety.measures import TTC_CAP_S

    ttc_text = f">={TTC_CAP_S:g} s" if ttc >= TTC_CAP_S else f"{ttc:.2f} s"
    drac_text = "contact" if drac is None else f"{drac:.1f} m/s2"
    gap_text = "-" if gap is None else f"{gap:.1f} m"
    return f" | TTC {ttc_text}, DRAC {drac_text}, min gap {gap_text}"


def _panel(run, j: int, i: int, divergence: int | None, scene_px: int) -> Image.Image:
    frame = run.frames[j]
    step = run.steps[j] if j < run.length else None
    width = scene_px + BAR_PANEL_PX
    panel = Image.new("RGB", (width, HEADER_PX + scene_px + FOOTER_PX), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    # header: who, seed, step, action taken
    title = f"{run.label} | seed {run.seed} | step {j}/{run.length}"
    draw.text((6, 7), title, fill=INK, font=font(14))
    if step is not None:
        draw.text((width - 6, 7), f"action: {step.action_name}", fill=TAKEN, font=font(14), anchor="ra")
    # scene with attention lines
    scene = _scene(frame, step, run.n_heads, scene_px)
    panel.paste(scene, (0, HEADER_PX))
    if frame.crashed or frame.arrived:
        colour, text = (CRASH, "CRASH") if frame.crashed else (ARRIVED, "ARRIVED")
        draw.rectangle((0, HEADER_PX, scene_px - 1, HEADER_PX + scene_px - 1), outline=colour, width=6)
        box = draw.textbbox((scene_px // 2, HEADER_PX + 16), text, font=font(26), anchor="ma")
        draw.rectangle((box[0] - 8, box[1] - 4, box[2] + 8, box[3] + 4), fill=colour)
        draw.text((scene_px // 2, HEADER_PX + 16), text, fill=(255, 255, 255), font=font(26), anchor="ma")
    _bars(draw, step, run.action_names, scene_px, HEADER_PX, scene_px)
    _footer(draw, run, step, HEADER_PX + scene_px, width)
    if divergence is not None and i == divergence and j == i:
        draw.rectangle((0, 0, width - 1, panel.height - 1), outline=DIVERGE, width=5)
    return panel


def _scene(frame, step, n_heads: int, scene_px: int) -> Image.Image:
    if frame.image is None:
        base = Image.new("RGB", (600, 600), (110, 110, 110))
    else:
        base = Image.fromarray(frame.image)
    scale = scene_px / base.width
    base = base.resize((scene_px, int(round(base.height * scale))), Image.Resampling.LANCZOS).convert("RGBA")
    if step is None or 0 not in frame.pixels:
        return base.convert("RGB")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    ex, ey = (c * scale for c in frame.pixels[0])
    weights = step.attention_by_vehicle()
    for h, per_vehicle in enumerate(weights):
        colour = HEAD_COLOURS[h % len(HEAD_COLOURS)]
        offset = (h - (n_heads - 1) / 2) * 3.0
        for vid, w in per_vehicle.items():
            if vid == 0 or vid not in frame.pixels:
                continue
            vx, vy = (c * scale for c in frame.pixels[vid])
            dx, dy = vx - ex, vy - ey
            norm = max(np.hypot(dx, dy), 1e-6)
            ox, oy = -dy / norm * offset, dx / norm * offset
            alpha = int(255 * min(1.0, 0.15 + 0.85 * w))
            draw.line((ex + ox, ey + oy, vx + ox, vy + oy), fill=(*colour, alpha), width=max(1, int(round(1 + 9 * w))))
        own = per_vehicle.get(0, 0.0)  # the ego's attention to itself: a ring around the ego
        if own > 0.02:
            r = 6 + 3 * h + 4 * own
            draw.ellipse((ex - r, ey - r, ex + r, ey + r), outline=(*colour, int(255 * min(1.0, 0.2 + own))),
                         width=max(1, int(round(1 + 3 * own))))
    for vid, (px, py) in frame.pixels.items():
        if vid == 0:
            continue
        x, y = px * scale + 6, py * scale - 16
        label = f"v{vid}"
        box = draw.textbbox((x, y), label, font=font(11))
        draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(255, 255, 255, 200))
        draw.text((x, y), label, fill=(*INK, 255), font=font(11))
    return Image.alpha_composite(base, overlay).convert("RGB")


def _bars(draw: ImageDraw.ImageDraw, step, names: Sequence[str], left: int, top: int, height: int) -> None:
    """The stripes: one vertical bar per action, height = softmax probability; Q-value under it."""
    draw.text((left + 10, top + 6), "P(action) = softmax(Q)", fill=INK, font=font(12))
    n = len(names)
    gap = 8
    bar_w = (BAR_PANEL_PX - 20 - gap * (n - 1)) // n
    bottom, full = top + height - 56, height - 100
    for a, name in enumerate(names):
        x0 = left + 10 + a * (bar_w + gap)
        draw.rectangle((x0, bottom - full, x0 + bar_w, bottom), outline=MUTED, width=1)
        if step is not None:
            p = float(step.probs[a])
            colour = TAKEN if a == step.action else MUTED
            draw.rectangle((x0, bottom - int(round(full * p)), x0 + bar_w, bottom), fill=colour)
            draw.text((x0 + bar_w / 2, bottom - full - 16), f"{p:.2f}", fill=INK, font=font(11), anchor="ma")
            draw.text((x0 + bar_w / 2, bottom + 22), f"Q {float(step.q[a]):+.2f}", fill=INK, font=font(10), anchor="ma")
        weight = font(11)
        draw.text((x0 + bar_w / 2, bottom + 6), str(name), fill=TAKEN if step is not None and a == step.action else INK,
                  font=weight, anchor="ma")
    if step is not None and step.near_tie:
        draw.text((left + 10, top + height - 16), "near-tie decision", fill=DIVERGE, font=font(11))


def _footer(draw: ImageDraw.ImageDraw, run, step, top: int, width: int) -> None:
    """Head legend; per head the vehicle it attends to most (its weight), from the recorded rows."""
    x = 6
    draw.text((x, top + 4), "attention (line width/opacity = weight):", fill=INK, font=font(11))
    y = top + 20
    per_row = 2
    weights = step.attention_by_vehicle() if step is not None else [{} for _ in range(run.n_heads)]
    for h in range(run.n_heads):
        colour = HEAD_COLOURS[h % len(HEAD_COLOURS)]
        cx = 6 + (h % per_row) * (width // per_row)
        cy = y + (h // per_row) * 16
        draw.rectangle((cx, cy + 3, cx + 18, cy + 9), fill=colour)
        text = f"head {h}" + (" (ablated)" if h in getattr(run, "ablated_heads", ()) else "")
        if weights[h]:
            vid, w = max(weights[h].items(), key=lambda kv: kv[1])
            text += f": most on {'ego' if vid == 0 else f'v{vid}'} ({w:.2f})"
        draw.text((cx + 24, cy), text, fill=INK, font=font(11))


def _join(panels: list[Image.Image], replay, i: int) -> np.ndarray:
    width = sum(p.width for p in panels) + 8 * (len(panels) - 1)
    banner = 24 if len(panels) > 1 else 0
    out = Image.new("RGB", (width, max(p.height for p in panels) + banner), (255, 255, 255))
    x = 0
    for panel in panels:
        out.paste(panel, (x, banner))
        x += panel.width + 8
    if banner:
        draw = ImageDraw.Draw(out)
        if replay.divergence is None:
            text, colour = "the two runs take the same actions throughout", INK
        elif i < replay.divergence:
            text, colour = f"same actions so far; the runs diverge at step {replay.divergence}", INK
        elif i == replay.divergence:
            text, colour = f"DIVERGENCE: the runs choose different actions at step {replay.divergence}", DIVERGE
        else:
            text, colour = f"diverged at step {replay.divergence}", DIVERGE
        draw.text((6, 4), text, fill=colour, font=font(14))
    return np.asarray(out)


# ---------------------------------------------------------------------------------------------- encoding

def write_replay(replay, out: str | Path, *, frames: list[np.ndarray] | None = None, frame_ms: int = FRAME_MS) -> Path:
    """Write ``replay`` to ``out`` (.gif, .mp4 or .html, by its suffix); return the path."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{out}: a replay is written as {', '.join(FORMATS)}")
    frames = frames if frames is not None else draw_frames(replay)
    with staged(out, what="the replay") as tmp:  # atomic: a failed or interrupted encode leaves no half file
        if suffix == ".gif":
            _encode_gif(frames, tmp, frame_ms=frame_ms)
        elif suffix == ".mp4":
            _encode_mp4(frames, tmp, fps=1000.0 / frame_ms)
        else:
            tmp.write_text(replay_html(replay, frames=frames, frame_ms=frame_ms), encoding="utf-8")
    return out


def _encode_gif(frames: Sequence[np.ndarray], tmp: Path, *, frame_ms: int = FRAME_MS) -> None:
    """Encode to ``tmp``, the temporary name ``write_replay`` renames over its target."""
    import imageio.v3 as iio

    durations = [frame_ms] * len(frames)
    durations[-1] = frame_ms * 3  # hold the outcome before looping
    iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=durations, loop=0)


def _encode_mp4(frames: Sequence[np.ndarray], tmp: Path, *, fps: float) -> None:
    """Encode to ``tmp`` (see ``_encode_gif``)."""
    import imageio.v2 as iio2

    padded = [_pad16(f) for f in frames]
    iio2.mimwrite(tmp, padded, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                  macro_block_size=16, quality=7)


def _pad16(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = (-h) % 16, (-w) % 16
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)), constant_values=255) if ph or pw else frame


def png_base64(frame: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def run_outcome(run) -> str:
    """How one replayed run really ended, in words: the title of a replay states what happened, never what a
    caller expected to happen."""
    return "crashed" if run.crashed else ("arrived" if run.arrived else "neither crashed nor arrived")


def outcomes_title(replay) -> str:
    """``seed S: <label> <outcome>, <label> <outcome>``, from the replay's own runs."""
    return f"seed {replay.seed}: " + ", ".join(f"{run.label} {run_outcome(run)}" for run in replay.runs)


def replay_figure(replay, *, title: str | None = None, caption: str | None = None,
                  frames: list[np.ndarray] | None = None, max_width: int | None = 760) -> dict:
    """The report's figure spec (kind ``replay``): frames as base64 PNG, one caption per frame, the seed,
    the divergence step. ``max_width`` shrinks wide (side-by-side) frames to keep the report small."""
    frames = frames if frames is not None else draw_frames(replay)
    if max_width and frames[0].shape[1] > max_width:
        frames = [_shrink(f, max_width) for f in frames]
    figure = {"kind": "replay", "frames_png_base64": [png_base64(f) for f in frames],
              "frame_labels": frame_captions(replay), "seed": int(replay.seed),
              "runs": [r.label for r in replay.runs]}
    if replay.divergence is not None:
        figure["divergence"] = int(replay.divergence)
    if title:
        figure["title"] = title
    if caption:
        figure["caption"] = caption
    return figure


def _shrink(frame: np.ndarray, width: int) -> np.ndarray:
    image = Image.fromarray(frame)
    return np.asarray(image.resize((width, int(round(image.height * width / image.width))), Image.Resampling.LANCZOS))


# ---------------------------------------------------------------------------------------------- HTML player

PLAYER_CSS = """
.replay{margin:12px 0}.replay img{max-width:100%;border:1px solid #e5e7eb;display:block}
.replay .controls{display:flex;gap:8px;align-items:center;margin:6px 0;font-size:.9em}
.replay input[type=range]{flex:1}
.replay button{font:inherit;padding:2px 10px;cursor:pointer}
.replay .caption{color:#57606a;font-size:.9em;min-height:1.2em}
"""

# One small script drives every player on a page: frames come from a JSON block beside each player.
PLAYER_JS = """
(function(){
  function setup(root){
    var data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    var img = root.querySelector('img.replay-frame'), slider = root.querySelector('input.replay-slider');
    var play = root.querySelector('button.replay-play'), caption = root.querySelector('.caption');
    var timer = null;
    function show(i){
      i = Math.max(0, Math.min(data.frames.length - 1, i));
      slider.value = i; img.src = 'data:image/png;base64,' + data.frames[i];
      img.alt = data.alt + ' - ' + data.labels[i]; caption.textContent = data.labels[i];
      root.setAttribute('data-frame', String(i));
    }
    function stop(){ if (timer) { clearInterval(timer); timer = null; } play.textContent = 'Play'; }
    play.addEventListener('click', function(){
      if (timer) { stop(); return; }
      if (Number(slider.value) >= data.frames.length - 1) show(0);
      play.textContent = 'Pause';
      timer = setInterval(function(){
        var i = Number(slider.value) + 1;
        if (i >= data.frames.length) { stop(); return; }
        show(i);
      }, data.ms);
    });
    slider.addEventListener('input', function(){ stop(); show(Number(slider.value)); });
    root.querySelector('button.replay-prev').addEventListener('click', function(){ stop(); show(Number(slider.value) - 1); });
    root.querySelector('button.replay-next').addEventListener('click', function(){ stop(); show(Number(slider.value) + 1); });
    show(0);
  }
  function init(){ document.querySelectorAll('.replay[data-replay]').forEach(setup); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
"""


def player_html(frames_b64: Sequence[str], labels: Sequence[str], *, alt: str, frame_ms: int = FRAME_MS,
                element_id: str = "replay") -> str:
    """One replay player (image, slider, play/pause, previous/next, caption); needs ``PLAYER_JS`` on the page."""
    data = json.dumps({"frames": list(frames_b64), "labels": list(labels), "alt": alt, "ms": int(frame_ms)})
    data = data.replace("</", "<\\/")  # never close the script element early
    n = len(frames_b64)
    first = f"data:image/png;base64,{frames_b64[0]}"
    return (f'<div class="replay" data-replay id="{html.escape(element_id)}" data-frame="0" data-frames="{n}">'
            f'<img class="replay-frame" src="{first}" alt="{html.escape(alt + " - " + labels[0])}">'
            '<div class="controls"><button type="button" class="replay-play">Play</button>'
            '<button type="button" class="replay-prev" aria-label="previous frame">&#9664;</button>'
            '<button type="button" class="replay-next" aria-label="next frame">&#9654;</button>'
            f'<input type="range" class="replay-slider" min="0" max="{n - 1}" value="0" step="1" '
            f'aria-label="frame"></div><div class="caption">{html.escape(labels[0])}</div>'
            f'<script type="application/json">{data}</script></div>')


def replay_html(replay, *, frames: list[np.ndarray] | None = None, frame_ms: int = FRAME_MS) -> str:
    """A self-contained page: the player, then per-step data (actions, Q-values, attention) as a table."""
    frames = frames if frames is not None else draw_frames(replay)
    labels = frame_captions(replay)
    runs = " vs ".join(r.label for r in replay.runs)
    alt = f"replay of seed {replay.seed} ({runs})"
    player = player_html([png_base64(f) for f in frames], labels, alt=alt, frame_ms=frame_ms)
    tables = "".join(_steps_table(run) for run in replay.runs)
    divergence = ("" if len(replay.runs) < 2 else
                  f"<p>Actions diverge at step <strong>{replay.divergence}</strong>.</p>" if replay.divergence is not None
                  else "<p>The two runs take the same actions throughout.</p>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>hypodrive replay: seed {replay.seed}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328}"
            "table{border-collapse:collapse;font-size:.85em;margin:8px 0 20px}"
            "th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:right}th{background:#f0f3f6}"
            f"{PLAYER_CSS}</style></head><body><h1>Replay of seed {replay.seed}: {html.escape(runs)}</h1>"
            f"{divergence}{player}{tables}<script>{PLAYER_JS}</script></body></html>")


def _steps_table(run) -> str:
    names = list(run.action_names)
    head = ("<tr><th>step</th><th>action</th>" + "".join(f"<th>Q {html.escape(n)}</th>" for n in names)
            + "".join(f"<th>P {html.escape(n)}</th>" for n in names)
            + "".join(f"<th>head {h}: most on</th>" for h in range(run.n_heads)) + "</tr>")
    rows = []
    for step in run.steps:
        most = []
        for per_vehicle in step.attention_by_vehicle():
            vid, w = max(per_vehicle.items(), key=lambda kv: kv[1])
            most.append(f"{'ego' if vid == 0 else f'v{vid}'} {w:.2f}")
        rows.append(f"<tr><td>{step.t}</td><td>{html.escape(step.action_name)}</td>"
                    + "".join(f"<td>{float(v):+.3f}</td>" for v in step.q)
                    + "".join(f"<td>{float(v):.2f}</td>" for v in step.probs)
                    + "".join(f"<td>{html.escape(m)}</td>" for m in most) + "</tr>")
    outcome = "crashed" if run.crashed else ("arrived" if run.arrived else "neither crashed nor arrived")
    return (f"<h2>{html.escape(run.label)}: {run.length} steps, {outcome}</h2>"
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")


# ---------------------------------------------------------------------------------------------- in the report

MAX_EMBEDDED_REPLAY_BYTES = 1_500_000  # one replay larger than this is written beside index.html and linked
MAX_EMBEDDED_TOTAL_BYTES = 4_000_000  # all embedded replays of a page together; later ones are linked


class ReplayEmbedder:
    """Puts ``replay`` figures into the report: inline players while they fit the size caps, otherwise a
    standalone player page written beside ``index.html`` (``files``: relative path -> HTML) and, inline, the
    replay's first and last frames with a link to it. Keeps ``index.html`` small enough to open and mail."""

    def __init__(self, *, max_replay_bytes: int | None = None, max_total_bytes: int | None = None,
                 folder: str = "replays") -> None:
        self.max_replay_bytes = MAX_EMBEDDED_REPLAY_BYTES if max_replay_bytes is None else max_replay_bytes
        self.max_total_bytes = MAX_EMBEDDED_TOTAL_BYTES if max_total_bytes is None else max_total_bytes
        self.folder = folder
        self.embedded_bytes = 0
        self.files: dict[str, str] = {}
        self.count = 0

    @property
    def used(self) -> bool:
        return self.count > 0

    def figure_html(self, fig: dict) -> str:
        self.count += 1
        frames, labels = fig["frames_png_base64"], fig.get("frame_labels") or [
            f"frame {i}" for i in range(len(fig["frames_png_base64"]))]
        runs = " vs ".join(fig.get("runs") or [])
        alt = fig.get("title") or f"replay of seed {fig['seed']}" + (f" ({runs})" if runs else "")
        size = sum(len(f) for f in frames)
        caption = _figcaption(fig, len(frames))
        if size <= self.max_replay_bytes and self.embedded_bytes + size <= self.max_total_bytes:
            self.embedded_bytes += size
            player = player_html(frames, labels, alt=alt, element_id=f"replay-{self.count}")
            return f'<figure class="fig-replay">{player}{caption}</figure>'
        name = f"{self.folder}/replay-{self.count}-seed{fig['seed']}.html"
        self.files[name] = _standalone_page(fig, frames, labels, alt)
        thumbs = "".join(f'<img src="data:image/png;base64,{frames[i]}" alt="{html.escape(alt + " - " + labels[i])}" '
                         'style="max-width:49%">' for i in sorted({0, len(frames) - 1}))
        link = (f'<p><a href="{html.escape(name)}">open the interactive replay ({len(frames)} frames, '
                f'{size / 1e6:.1f} MB, written beside this page)</a> &mdash; too large to embed here</p>')
        return f'<figure class="fig-replay">{thumbs}{link}{caption}</figure>'


def _figcaption(fig: dict, n_frames: int) -> str:
    parts = []
    if fig.get("title"):
        parts.append(f"<strong>{html.escape(fig['title'])}</strong>")
    if fig.get("caption"):
        parts.append(html.escape(fig["caption"]))
    detail = f"seed {fig['seed']}, {n_frames} frames"
    if fig.get("divergence") is not None:
        detail += f"; the runs' actions diverge at step {fig['divergence']}"
    parts.append(html.escape(f"({detail})"))
    return f"<figcaption>{' '.join(parts)}</figcaption>"


def _standalone_page(fig: dict, frames: Sequence[str], labels: Sequence[str], alt: str) -> str:
    title = html.escape(fig.get("title") or f"replay of seed {fig['seed']}")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>body{{font-family:system-ui,sans-serif;margin:24px}}{PLAYER_CSS}</style>"
            f"</head><body><h1>{title}</h1>{player_html(frames, labels, alt=alt)}{_figcaption(fig, len(frames))}"
            f'<p><a href="../index.html">back to the report</a></p><script>{PLAYER_JS}</script></body></html>')
