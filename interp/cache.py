"""Moved to ``interp.simulation.cache``; this alias keeps ``interp.cache`` imports working for one more version."""
import sys
import warnings

from interp.simulation import cache as _moved

warnings.warn("interp.cache moved to interp.simulation.cache; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
