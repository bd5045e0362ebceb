"""Moved to ``interp.simulation.workers``; this alias keeps ``interp.workers`` imports working for one more version."""
import sys
import warnings

from interp.simulation import workers as _moved

warnings.warn("interp.workers moved to interp.simulation.workers; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
