"""A filmstrip of one recorded episode: replay its seed and actions in a rendering env (episodes are
deterministic given the seed and the actions) and keep every frame as a small PNG for the report."""
from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np


def _png(frame: np.ndarray, width: int = 240) -> str:
    from PIL import Image

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    image = image.resize((width, int(image.height * width / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def episode_filmstrip(env_config: Mapping, seed: int, actions: Sequence[int], action_names: Sequence[str]) -> dict:
    """Figure spec (kind ``filmstrip``) of the episode ``seed`` replayed with ``actions``."""
    from interp.env import make_env

    env = make_env(env_config, render_mode="rgb_array")
    try:
        env.reset(seed=seed)
        frames, labels = [_png(env.render())], ["start"]
        for t, action in enumerate(actions):
            _, _, terminated, truncated, info = env.step(int(action))
            frames.append(_png(env.render()))
            labels.append(f"t={t + 1} {action_names[int(action)]}" + (" CRASH" if info.get("crashed") else ""))
            if terminated or truncated:
                break
    finally:
        env.close()
    return {"frames_png_base64": frames, "frame_labels": labels, "seed": int(seed)}
