"""Moved to ``interp.simulation.rollout``; this alias keeps ``interp.rollout`` imports working for one more version."""
import sys
import warnings

from interp.simulation import rollout as _moved

warnings.warn("interp.rollout moved to interp.simulation.rollout; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
