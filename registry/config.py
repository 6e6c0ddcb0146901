"""Configuration read from the environment, in one place."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///registry.db"


def database_url() -> str:
    """``REGISTRY_DATABASE_URL``, or the embedded SQLite default ``sqlite:///registry.db``."""
    return os.environ.get("REGISTRY_DATABASE_URL") or DEFAULT_DATABASE_URL


def cache_ttl() -> float:
    """Seconds a resolved label is trusted before it is looked up again (``REGISTRY_CACHE_TTL``)."""
    raw = os.environ.get("REGISTRY_CACHE_TTL", "1.0")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def protected_labels() -> frozenset[str]:
    """Labels only publishers may move (``REGISTRY_PROTECTED_LABELS``, default ``production``)."""
    raw = os.environ.get("REGISTRY_PROTECTED_LABELS", "production")
    return frozenset(x.strip() for x in raw.split(",") if x.strip())


def load_dotenv(directory: Path | None = None) -> Path | None:
    """Read ``.env`` of ``directory`` (default: the working directory) into the environment.

    A variable already set in the environment is never overridden, so ``.env`` only fills in
    what is missing (typically ``ANTHROPIC_API_KEY`` and ``REGISTRY_DATABASE_URL`` kept out of
    git). Returns the file read, or None when there is none. The command line and ``serve``
    call this at start; a library user calls ``dotenv.load_dotenv()`` themselves.
    """
    path = (directory or Path.cwd()) / ".env"
    if not path.is_file():
        return None
    import dotenv  # only when there is a file: the command line starts faster without it

    dotenv.load_dotenv(path, override=False)
    return path
