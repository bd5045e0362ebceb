"""Moved to ``interp.probes.attributions``; this alias keeps ``interp.attributions`` imports working for one more version."""
import sys
import warnings

from interp.probes import attributions as _moved

warnings.warn("interp.attributions moved to interp.probes.attributions; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
