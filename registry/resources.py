"""Files that ship inside the package: the Alembic migrations and the example prompt files.

In the repository they live at the top level (``migrations/``, ``templates_seed/``); the build
maps them into the package as ``registry.migrations`` and ``registry.templates_seed`` (see
``setup.py``), so an installed wheel and an editable checkout find them the same way, from any
working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import ConfigurationError

MIGRATIONS_PACKAGE = "registry.migrations"
SEED_PACKAGE = "registry.templates_seed"


def _directory(package: str, what: str) -> Path:
    try:
        found = files(package)
    except ModuleNotFoundError:
        raise ConfigurationError(
            f"the {what} are missing from this installation ({package} not found): "
            "reinstall the package (`pip install prompt-registry`, or `pip install -e .` in a "
            "checkout)"
        ) from None
    if not isinstance(found, Path) or not found.is_dir():
        raise ConfigurationError(
            f"the {what} at {found} are not a folder on disk: install the package unzipped"
        )
    return found


def migrations_dir() -> Path:
    """The Alembic script directory (``env.py``, ``versions/``) of this installation."""
    return _directory(MIGRATIONS_PACKAGE, "database migrations")


def seed_dir() -> Path:
    """The example prompt files loaded by ``init`` and by ``seed`` without a folder."""
    return _directory(SEED_PACKAGE, "example prompt files")
