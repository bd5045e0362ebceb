"""A rollout state drawn with each observed vehicle labelled by its rank under several rankings (e.g. attention,
causal importance, Shapley), so the rankings can be compared on the road rather than as lists."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from reports.replay import INK, SCENE_PX, font, png_base64

EGO_MARK = (214, 39, 40)


def rank_labels(rankings: Mapping[str, Sequence[int]]) -> dict[int, str]:
    """vehicle id -> "A1 C2 S1": its 1-based place in every ranking, by the ranking's initial."""
    labels: dict[int, list[str]] = {}
    for name, order in rankings.items():
        for place, vid in enumerate(order, start=1):
            labels.setdefault(int(vid), []).append(f"{name[0].upper()}{place}")
    return {vid: " ".join(parts) for vid, parts in labels.items()}


def visible(frame) -> set[int]:
    """Vehicle ids whose position falls inside the frame's picture (the renderer follows the ego)."""
    if frame.image is None:
        return set()
    height, width = frame.image.shape[:2]
    return {vid for vid, (px, py) in frame.pixels.items() if 0 <= px < width and 0 <= py < height}


def ranked_scene(frame, rankings: Mapping[str, Sequence[int]], *, scene_px: int = SCENE_PX) -> np.ndarray:
    """``frame`` (an ``interp.replay.ReplayFrame``) with every ranked vehicle labelled (see ``rank_labels``)."""
    if frame.image is None:
        raise ValueError("the frame has no picture: build the replay with render=True")
    base = Image.fromarray(frame.image)
    scale = scene_px / base.width
    base = base.resize((scene_px, int(round(base.height * scale))), Image.Resampling.LANCZOS).convert("RGB")
    draw = ImageDraw.Draw(base)
    if 0 in frame.pixels:
        ex, ey = (c * scale for c in frame.pixels[0])
        draw.ellipse((ex - 7, ey - 7, ex + 7, ey + 7), outline=EGO_MARK, width=2)
    shown = visible(frame)
    for vid, text in rank_labels(rankings).items():
        if vid not in shown:
            continue
        label = f"v{vid}: {text}"
        width = draw.textlength(label, font=font(11))
        x = min(max(frame.pixels[vid][0] * scale + 6, 2), base.width - width - 2)  # keep the label in the picture
        y = min(max(frame.pixels[vid][1] * scale - 16, 2), base.height - 14)
        box = draw.textbbox((x, y), label, font=font(11))
        draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(255, 255, 255))
        draw.text((x, y), label, fill=INK, font=font(11))
    return np.asarray(base)


def ranked_scene_figure(frame, rankings: Mapping[str, Sequence[int]], *, seed: int, caption: str) -> dict:
    """A ``scene`` figure of the report (``reports.schema``) for ``ranked_scene``."""
    legend = ", ".join(f"{name[0].upper()} = {name}" for name in rankings)
    outside = sorted({int(v) for order in rankings.values() for v in order} - visible(frame))
    hidden = f"; outside the picture: {', '.join(f'v{v}' for v in outside)}" if outside else ""
    return {"kind": "scene", "png_base64": png_base64(ranked_scene(frame, rankings)), "seed": int(seed),
            "caption": f"{caption} ({legend}; 1 = most important{hidden})"}
