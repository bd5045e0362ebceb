"""The entry point of hypodrive's pytest plugin, which lives in ``specs/plugin.py``."""
from __future__ import annotations

import warnings

pytest_plugins = ["specs.plugin"]


def record_seeds(config, name: str, seeds) -> None:
    """Deprecated (kept for one version): record seeds through the spec's evidence, ``evidence.seeds(name, seeds)``."""
    from specs.plugin import record_seeds as _record

    warnings.warn("conftest.record_seeds is deprecated; use evidence.seeds(name, seeds) in the spec",
                  DeprecationWarning, stacklevel=2)
    _record(config, name, seeds)
