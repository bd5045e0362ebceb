"""Moved to ``interp.simulation.env``; this alias keeps ``interp.env`` imports working for one more version."""
import sys
import warnings

from interp.simulation import env as _moved

warnings.warn("interp.env moved to interp.simulation.env; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
