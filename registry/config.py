"""Configuration read from the environment, in one place."""

from __future__ import annotations

import os

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
