"""Moved to ``interp.simulation.ray_backend``; this alias keeps ``interp.ray_backend`` imports working for one more version."""
import sys
import warnings

from interp.simulation import ray_backend as _moved

warnings.warn("interp.ray_backend moved to interp.simulation.ray_backend; import it from there (the old name goes in the next version)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
