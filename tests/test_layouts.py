"""``python -m interp evaluate --no-cache`` writes identical records whatever the layout: worker processes,
slots and backend, with and without a head ablation (records must not depend on the layout).

Why this cannot pass by platform luck: the engine runs each observation alone through the network
(``interp.model.policy``), so every layout performs the same batch-of-one computations; a layout that batched
rows would be caught by ``tests/test_rollout.py``'s order test, and near-ties resolve by a fixed rule."""
from __future__ import annotations

import json

import pytest

from interp.cli import main
from tests.planted import ROOT

REFERENCE = ROOT / "checkpoints" / "reference"
LAYOUTS = {"1 worker": ["--workers", "1"], "2 workers": ["--workers", "2"],
           "1 slot": ["--workers", "1", "--slots", "1"], "8 slots": ["--workers", "2", "--slots", "8"]}


def _evaluate(tmp_path, name: str, extra: list[str]) -> list[dict]:
    out = tmp_path / f"{name.replace(' ', '_')}.json"
    assert main(["evaluate", "--checkpoint", str(REFERENCE), "--episodes", "5", "--seed", "20", "--no-cache",
                 "--no-progress", "--ablate-head", "1", "--compare", "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())["episodes"]


@pytest.fixture(scope="module")
def by_layout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layouts")
    return {name: _evaluate(tmp, name, extra) for name, extra in LAYOUTS.items()}


def test_records_are_identical_with_1_or_2_workers_and_1_or_8_slots(by_layout):
    first, *others = by_layout.values()
    assert {e["condition"] for e in first} == {"agent", "ablate_heads=1"} and len(first) == 10
    assert any(e["crashed"] for e in first) or any(e["arrived"] for e in first)
    assert all("near_ties" in e for e in first)
    for name, records in by_layout.items():
        assert records == first, name


@pytest.mark.ray
def test_records_are_identical_on_the_ray_backend(by_layout, tmp_path):
    pytest.importorskip("ray")
    from interp.simulation.ray_backend import shutdown

    try:
        records = _evaluate(tmp_path, "ray", ["--backend", "ray", "--workers", "2"])
    finally:
        shutdown()
    assert records == by_layout["1 worker"]
