"""Fuzz results as spec evidence: a figure of the shrunk scene, effects for the search."""
from __future__ import annotations

import base64

from fixtures.builder import SceneBuilder

from specs.fuzzing.search import Failure, SearchResult


def scene_figure(builder: SceneBuilder, failure: Failure, title: str) -> dict:
    """A "scene" figure of the failing scene, the involved vehicles labelled with what the property measured."""
    from fixtures.render import render_scene

    scene = builder.build(failure.scenario, allow_unobserved=True)
    labels = {name: text for name, text in failure.outcome.labels.items() if name in scene.vehicle_index}
    png = render_scene(scene, labels=labels, scaling=3.0)
    return {"png_base64": base64.b64encode(png).decode("ascii"), "title": title,
            "caption": f"{failure.outcome.summary} [class: {failure.scene_class}]",
            "scenario": failure.scenario.to_dict()}


def record_search(evidence, result: SearchResult, builder: SceneBuilder, label: str = "agent") -> None:
    """Effects (scenes tried, the closest to failing), and for a failure its rendered scene and scenario JSON."""
    evidence.effect(f"{label}: scenes in the domain", result.applicable, None, result.evaluations,
                    note=f"{result.evaluations} scenes built in {result.seconds:.1f} s")
    evidence.effect(f"{label}: highest score", result.best_score, None, result.applicable,
                    rule="score > 0 (or a crash braking avoids) is a failure", note=result.best_summary)
    if result.failure is None:
        return
    try:
        evidence.figure("scene", **scene_figure(builder, result.failure, f"{label}: shrunk failing scene"))
    except Exception as err:  # noqa: BLE001 - a missing picture must not decide a spec
        evidence.note(f"scene figure unavailable: {err}")
    failure = result.failure
    evidence.note(f"{label}: shrunk failing scenario ({failure.scene_class}):\n{failure.scenario.to_json()}")
