"""Moved to the package ``specs.fuzzing`` (space, properties, planted, search, campaigns, regressions,
evidence); this alias keeps ``from specs.support import fuzzing`` working for one more version."""
import sys
import warnings

from specs import fuzzing as _moved

warnings.warn("specs.support.fuzzing moved to specs.fuzzing; import it from there (the old name goes in the next "
              "version)", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
