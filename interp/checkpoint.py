"""Moved to ``interp.model.checkpoint``; this alias keeps ``interp.checkpoint`` imports working for one more version."""
import sys
import warnings

from interp.model import checkpoint as _moved

warnings.warn("interp.checkpoint moved to interp.model.checkpoint; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
