"""Moved to ``interp.training.train``; this alias keeps ``interp.train`` imports working for one more version."""
import sys
import warnings

from interp.training import train as _moved

warnings.warn("interp.train moved to interp.training.train; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
