"""Moved to ``interp.training.zoo``; this alias keeps ``interp.zoo`` imports working for one more version."""
import sys
import warnings

from interp.training import zoo as _moved

warnings.warn("interp.zoo moved to interp.training.zoo; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
