"""Moved to ``interp.simulation.row_identity``; this alias keeps ``interp.row_identity`` imports working for one more version."""
import sys
import warnings

from interp.simulation import row_identity as _moved

warnings.warn("interp.row_identity moved to interp.simulation.row_identity; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
