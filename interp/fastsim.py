"""Moved to ``interp.simulation.fastsim``; this alias keeps ``interp.fastsim`` imports working for one more version."""
import sys
import warnings

from interp.simulation import fastsim as _moved

warnings.warn("interp.fastsim moved to interp.simulation.fastsim; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
