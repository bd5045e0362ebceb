"""Moved to ``interp.model.config``; this alias keeps ``interp.config`` imports working for one more version."""
import sys
import warnings

from interp.model import config as _moved

warnings.warn("interp.config moved to interp.model.config; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
