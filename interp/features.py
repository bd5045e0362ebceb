"""Moved to ``interp.model.features``; this alias keeps ``interp.features`` imports working for one more version."""
import sys
import warnings

from interp.model import features as _moved

warnings.warn("interp.features moved to interp.model.features; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
