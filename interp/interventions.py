"""Moved to ``interp.probes.interventions``; this alias keeps ``interp.interventions`` imports working for one more version."""
import sys
import warnings

from interp.probes import interventions as _moved

warnings.warn("interp.interventions moved to interp.probes.interventions; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
