"""Moved to ``interp.probes.circuits``; this alias keeps ``interp.circuits`` imports working for one more version."""
import sys
import warnings

from interp.probes import circuits as _moved

warnings.warn("interp.circuits moved to interp.probes.circuits; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
