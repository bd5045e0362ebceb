"""Moved to ``interp.probes.logit_lens``; this alias keeps ``interp.logit_lens`` imports working for one more version."""
import sys
import warnings

from interp.probes import logit_lens as _moved

warnings.warn("interp.logit_lens moved to interp.probes.logit_lens; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
