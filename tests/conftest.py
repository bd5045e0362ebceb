"""Shared fixtures of the machinery tests: the planted model (``tests/planted.py``, answers set by hand) and
random observations for it. A module picks its observations with ``PLANTED_OBS = (count, seed)``."""
from __future__ import annotations

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
