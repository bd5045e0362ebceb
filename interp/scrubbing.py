"""Moved to ``interp.probes.scrubbing``; this alias keeps ``interp.scrubbing`` imports working for one more version."""
import sys
import warnings

from interp.probes import scrubbing as _moved

warnings.warn("interp.scrubbing moved to interp.probes.scrubbing; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
