"""Moved to ``interp.model.batch``; this alias keeps ``interp.batch`` imports working for one more version."""
import sys
import warnings

from interp.model import batch as _moved

warnings.warn("interp.batch moved to interp.model.batch; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
