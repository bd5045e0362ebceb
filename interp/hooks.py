"""Moved to ``interp.model.hooks``; this alias keeps ``interp.hooks`` imports working for one more version."""
import sys
import warnings

from interp.model import hooks as _moved

warnings.warn("interp.hooks moved to interp.model.hooks; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
