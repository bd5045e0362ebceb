"""Scenario fuzzing: properties checked on generated scenes, a hypothesis search that shrinks a failure to a minimal
scene, a wall-clock campaign around it, the uniform-random baseline, and saved regressions.

* A **scene space** (``SceneSpace``) is the ego, one *timed* vehicle whose path meets the ego's and which reaches
  the conflict point ``lead`` seconds before the ego (negative: after), and 0..``max_others`` other cars from
  ``fixtures.strategies.scenarios``. The same space gives a hypothesis strategy (guided search) and a uniform
  numpy sampler (the random baseline), so both search exactly the same scenes.
* A **property** (``CrossingFirstSlows``, ``CrossingHeadAttendsNearest``, ``NoAvoidableCollision``) checks one
  built scene and returns an ``Outcome``: whether the scene is in the property's domain, whether the property
  holds, a score (higher = closer to failing, fed to ``hypothesis.target``), and the vehicles involved.
* ``search`` runs hypothesis on a property (stops at the first failure, shrinks it within a time cap);
  ``campaign`` loops searches for a wall-clock budget, recording each shrunk failure and then excluding its scene
  class so the next rounds look for new ones; ``random_campaign`` is the unguided baseline.
* **Distinct** failures are distinct scene classes: the ego's turn and distance band to the intersection entry,
  and for each vehicle the property names as involved, its approach side, turn and distance band
  (``DISTANCE_BANDS``; distance to its conflict point with the ego, or the gap along the ego's lane).
* Failures worth keeping are saved as scenario JSON under ``specs/regressions/`` (``python -m fixtures build``
  rebuilds them) and replayed by ``specs/test_fuzz.py`` on every run.

* **Rare failures** (``rare``): time to the first failure on planted weaknesses confined to ≤ 1 % of the space
  (``planted.spurious_go``, ``planted.blind_spot``), random vs hypothesis' ``target()`` vs a score-guided
  evolutionary search (``rare.evolution_first_failure``) that knows nothing of the planted region.

The package, by role: ``space`` (scene space, outcomes, scene classes), ``properties``, ``planted`` (planted
weaknesses, frequent and rare), ``search``, ``campaigns``, ``rare`` (time-to-first-failure searches),
``regressions`` and ``evidence``; the public names are importable from here (``from specs import fuzzing as fz``;
``rare`` as a module: ``from specs.fuzzing import rare``)."""
from __future__ import annotations

from specs.fuzzing.space import (
    CONFLICT_KINDS,
    DATABASE_ROOT,
    DISTANCE_BANDS,
    NOT_APPLICABLE,
    Outcome,
    REGRESSIONS,
    ROOT,
    SLOWER,
    SceneSpace,
    distance_band,
    scene_class,
    vehicle_class,
)
from specs.fuzzing.properties import (
    ConstantPolicy,
    CrossingFirstSlows,
    CrossingHeadAttendsNearest,
    NoAvoidableCollision,
    PROPERTY_NAMES,
    Property,
    Subject,
    make_property,
    min_gap,
)
from specs.fuzzing.planted import (
    arm_box,
    ignoring_approach,
)
from specs.fuzzing.search import (
    Evaluator,
    OutOfTime,
    Failure,
    PropertyFailure,
    SearchResult,
    example_database,
    profile_selected,
    profile_settings,
    project_constants_left_out,
    search,
    search_settings,
)
from specs.fuzzing.campaigns import (
    Campaign,
    campaign,
    random_campaign,
)
from specs.fuzzing.regressions import (
    Regression,
    load_regression,
    replay,
    save_regression,
    saved_regressions,
)
from specs.fuzzing.evidence import (
    record_search,
    scene_figure,
)

__all__ = [
    "Evaluator",
    "OutOfTime",
    "CONFLICT_KINDS",
    "DATABASE_ROOT",
    "DISTANCE_BANDS",
    "NOT_APPLICABLE",
    "Outcome",
    "REGRESSIONS",
    "ROOT",
    "SLOWER",
    "SceneSpace",
    "distance_band",
    "scene_class",
    "vehicle_class",
    "ConstantPolicy",
    "CrossingFirstSlows",
    "CrossingHeadAttendsNearest",
    "NoAvoidableCollision",
    "PROPERTY_NAMES",
    "Property",
    "Subject",
    "make_property",
    "min_gap",
    "arm_box",
    "ignoring_approach",
    "Failure",
    "PropertyFailure",
    "SearchResult",
    "example_database",
    "profile_selected",
    "profile_settings",
    "project_constants_left_out",
    "search",
    "search_settings",
    "Campaign",
    "campaign",
    "random_campaign",
    "Regression",
    "load_regression",
    "replay",
    "save_regression",
    "saved_regressions",
    "record_search",
    "scene_figure",
]
