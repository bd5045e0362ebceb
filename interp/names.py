"""Moved to ``interp.model.names``; this alias keeps ``interp.names`` imports working for one more version."""
import sys
import warnings

from interp.model import names as _moved

warnings.warn("interp.names moved to interp.model.names; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
