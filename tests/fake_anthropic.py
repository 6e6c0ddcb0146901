"""Moved to :mod:`registry.testing` (the testing kit). Kept only so that test branches written
before the move still import; new code imports ``from registry.testing import ...``."""

from registry.testing import *  # noqa: F403
from registry.testing import __all__  # noqa: F401
