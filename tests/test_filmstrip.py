"""The filmstrip of a recorded episode: one frame per step, real pictures, the crash labelled."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

from specs.support.filmstrip import episode_filmstrip
from tests.planted import ENV_CONFIG_PATH


def test_filmstrip_replays_the_episode_frame_by_frame():
    env_config = json.loads(ENV_CONFIG_PATH.read_text())
    fig = episode_filmstrip(env_config, seed=5, actions=[2, 2, 2], action_names=["SLOWER", "IDLE", "FASTER"])
    assert fig["seed"] == 5 and len(fig["frames_png_base64"]) == len(fig["frame_labels"]) == 4
    assert fig["frame_labels"][1] == "t=1 FASTER"
    frame = np.asarray(Image.open(io.BytesIO(base64.b64decode(fig["frames_png_base64"][0]))))
    assert frame.std() > 5, "a rendered frame must not be blank (headless rendering needs offscreen_rendering)"
