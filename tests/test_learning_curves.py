"""Rolling rates of the learning-curve figure (known answers) and the figure itself from real history files."""
from __future__ import annotations

import json

import numpy as np

from reports.zoo.learning_curves import draw, rolling


def test_rolling_mean_over_the_last_window_episodes():
    np.testing.assert_allclose(rolling([1, 0, 1, 1], 2), [1.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(rolling([0, 0, 1], 10), [0.0, 0.0, 1 / 3])


def test_the_figure_is_drawn_from_history_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text(json.dumps([{"crashed": i % 2 == 0, "arrived": i % 3 == 0} for i in range(50)]))
    out = draw({"a run": run}, tmp_path / "curves.png", window=10)
    assert out.read_bytes().startswith(b"\x89PNG")
