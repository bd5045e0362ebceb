"""Moved to ``interp.model.policy``; this alias keeps ``interp.policy`` imports working for one more version."""
import sys
import warnings

from interp.model import policy as _moved

warnings.warn("interp.policy moved to interp.model.policy; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
