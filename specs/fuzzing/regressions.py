"""Saved failures: scenario JSON under ``specs/regressions/``, replayed by ``specs/test_fuzz.py`` on every run."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from fixtures.builder import SceneBuilder
from interp.atomic import write_file
from fixtures.scenario import Scenario, ScenarioError
from specs.fuzzing.space import Outcome, REGRESSIONS
from specs.fuzzing.properties import Property, Subject
from specs.fuzzing.search import Failure


_REGRESSION_NAME = re.compile(r"^(?P<property>[a-z_]+)__(?P<digest>[0-9a-f]{10})\.json$")
_CHECKPOINT = re.compile(r"on checkpoint (?P<identity>[0-9a-f]+)")


def save_regression(failure: Failure, identity: str | None, directory: Path = REGRESSIONS) -> Path:
    """Write the failing scenario as scenario JSON (``python -m fixtures build`` reads it) named
    ``<property>__<scenario hash>.json``; the description names the checkpoint that failed it."""
    scenario = dataclasses.replace(
        failure.scenario, name=f"{failure.property}__{failure.scenario.content_hash()[:10]}",
        description=f"fuzz failure of {failure.property} on checkpoint {identity or 'unknown'}; class "
                    f"[{failure.scene_class}]; {failure.outcome.summary}")
    path = directory / f"{scenario.name}.json"
    return write_file(path, scenario.to_json() + "\n", what="the failing scenario",
                      remedy="choose another folder for the regression files")


@dataclasses.dataclass(frozen=True)
class Regression:
    path: Path
    property: str
    scenario: Scenario
    identity: str | None  # the checkpoint that failed it when it was saved


def load_regression(path: Path) -> Regression:
    match = _REGRESSION_NAME.match(path.name)
    if match is None:
        raise ScenarioError(f"{path.name}: a saved regression is named <property>__<10 hex digits>.json")
    scenario = Scenario.from_json(path.read_text())
    checkpoint = _CHECKPOINT.search(scenario.description)
    return Regression(path, match["property"], scenario, checkpoint["identity"] if checkpoint else None)


def saved_regressions(directory: Path = REGRESSIONS) -> list[Path]:
    return sorted(directory.glob("*.json"))


def replay(prop: Property, subject: Subject, builder: SceneBuilder, scenario: Scenario) -> Outcome:
    """Check one saved scenario again (not applicable any more means the scene left the property's domain)."""
    return prop.check(subject, builder.build(scenario, allow_unobserved=True))
