"""fixtures.render: highway-env's own renderer, headless, gives a real picture; annotations change it."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures.builder import SceneBuilder
from fixtures.canonical import CANONICAL
from fixtures.render import render_frame, render_png, render_scene

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scene():
    builder = SceneBuilder(json.loads((ROOT / "checkpoints/reference/env_config.json").read_text()))
    yield builder.build(CANONICAL["crossing_left_near"])
    builder.close()


def test_picture_is_not_black_and_shows_the_ego_in_green(scene, tmp_path):
    path = render_png(scene, tmp_path / "scene.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (600, 600, 3)
    assert image.mean() > 20 and image.std() > 5  # headless frames without offscreen_rendering are all black
    r, g, b = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
    green = (g > 150) & (r < 120) & (b < 120)
    assert green.sum() > 20
    assert np.mean(np.nonzero(green)[0]) > 300  # the ego is in the lower half: it approaches from the bottom


def test_annotations_colour_and_label_vehicles_without_touching_the_scene(scene):
    plain = render_frame(scene)
    annotated = render_frame(scene, annotations={"left": 0.9, "ego": "ego"})
    assert plain.shape == annotated.shape and not np.array_equal(plain, annotated)
    assert not hasattr(scene.vehicle("left"), "color") or scene.vehicle("left").color is None
    png = render_scene(scene, labels={"left": "0.42"})
    assert Image.open(io.BytesIO(png)).size == (600, 600)
    with pytest.raises(KeyError, match="nobody"):
        render_frame(scene, annotations={"nobody": 1.0})
