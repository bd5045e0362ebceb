"""Moved to ``interp.simulation.agent``; this alias keeps ``interp.agent`` imports working for one more version."""
import sys
import warnings

from interp.simulation import agent as _moved

warnings.warn("interp.agent moved to interp.simulation.agent; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
