"""Module fixtures shared by the replay tests: the bundled reference agent and a serial, uncached rollout engine
(every episode simulated here, now). Import them into a test module by name."""
from __future__ import annotations

import pytest

from interp.simulation.agent import PROJECT_ROOT, load_agent
from interp.simulation.rollout import RolloutEngine


@pytest.fixture(scope="module")
def agent():
    return load_agent(PROJECT_ROOT / "checkpoints" / "reference")


@pytest.fixture(scope="module")
def engine():
    with RolloutEngine(workers=0, slots=1, cache=None) as engine:
        yield engine
