"""Shared fixtures of the machinery tests: the planted model (``tests/planted.py``, answers set by hand) and
random observations for it (a module picks them with ``PLANTED_OBS = (count, seed)``), its cautious variant, and
a scene builder on the reference env config."""
from __future__ import annotations

import json

import pytest

from tests import planted

DEFAULT_OBS = (200, 21)


@pytest.fixture(scope="module")
def model():
    """A fresh planted model per module (probes must not edit it; a module that did could not leak)."""
    return planted.planted_model()


@pytest.fixture(scope="module")
def obs(request):
    """Random observations for the planted model: ``PLANTED_OBS = (count, seed)`` in the test module."""
    count, seed = getattr(request.module, "PLANTED_OBS", DEFAULT_OBS)
    return planted.random_observations(count, seed=seed)


@pytest.fixture(scope="module")
def builder():
    """A scene builder on the reference env config (the planted agent's too), one per module."""
    from fixtures.builder import SceneBuilder

    b = SceneBuilder(json.loads(planted.ENV_CONFIG_PATH.read_text()))
    yield b
    b.close()


@pytest.fixture(scope="module")
def cautious():
    """``planted.cautious_agent()``: satisfies the crossing-first property everywhere (tests/test_fuzzing.py)."""
    return planted.cautious_agent()
