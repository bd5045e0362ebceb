"""Moved to ``interp.probes.qk_ov``; this alias keeps ``interp.qk_ov`` imports working for one more version."""
import sys
import warnings

from interp.probes import qk_ov as _moved

warnings.warn("interp.qk_ov moved to interp.probes.qk_ov; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
