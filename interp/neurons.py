"""Moved to ``interp.probes.neurons``; this alias keeps ``interp.neurons`` imports working for one more version."""
import sys
import warnings

from interp.probes import neurons as _moved

warnings.warn("interp.neurons moved to interp.probes.neurons; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
