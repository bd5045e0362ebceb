"""Moved to ``interp.probes.feature_optimisation``; this alias keeps ``interp.feature_optimisation`` imports working for one more version."""
import sys
import warnings

from interp.probes import feature_optimisation as _moved

warnings.warn("interp.feature_optimisation moved to interp.probes.feature_optimisation; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
