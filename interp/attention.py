"""Moved to ``interp.probes.attention``; this alias keeps ``interp.attention`` imports working for one more version."""
import sys
import warnings

from interp.probes import attention as _moved

warnings.warn("interp.attention moved to interp.probes.attention; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
