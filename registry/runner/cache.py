"""The response cache: answers to exact requests, kept for a TTL.

Opt-in (per call with ``cache=True``, or per prompt/version with ``REGISTRY_CACHE_PROMPTS``),
meant for deterministic prompts. The key is the sha256 of the exact request. Stored in the
database (table ``response_cache``) by default, or in Redis when ``REGISTRY_REDIS_URL`` is set,
so every app process shares it. A cache that fails is logged and skipped: it never fails a run.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..db import Database
from ..models.base import utcnow
from ..models.runs import ResponseCacheRow

logger = logging.getLogger(__name__)

#: Redis key prefix of cached answers
REDIS_PREFIX = "prompt-registry:response:"
#: expired database rows are purged once every this many writes
PURGE_EVERY = 200


class ResponseCache(Protocol):
    """Where cached answers live."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer for ``key``, or None (missing or expired)."""

    def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds."""

    def clear(self) -> None:
        """Forget every cached answer."""

    def close(self) -> None:
        """Release connections."""


_T = ResponseCacheRow.__table__


class DatabaseCache:
    """Cached answers in the ``response_cache`` table (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._writes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer, or None when missing or expired."""
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(_T.c.value, _T.c.expires_at).where(_T.c.key == key)
            ).first()
        if row is None or row.expires_at <= utcnow():
            return None
        value: dict[str, Any] = row.value
        return value

    def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Insert or replace the answer for ``key``."""
        now = utcnow()
        values = {
            "key": key,
            "value": value,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(_T).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_T.c.key],
            set_={
                "value": stmt.excluded.value,
                "created_at": now,
                "expires_at": values["expires_at"],
            },
        )
        with self._lock:
            self._writes += 1
            purge = self._writes % PURGE_EVERY == 0
        with self.db.engine.begin() as conn:
            conn.execute(stmt)
            if purge:
                conn.execute(sa.delete(ResponseCacheRow).where(_T.c.expires_at <= now))

    def clear(self) -> None:
        """Delete every cached answer."""
        with self.db.engine.begin() as conn:
            conn.execute(sa.delete(ResponseCacheRow))

    def close(self) -> None:
        """Nothing to release (the registry owns the engine)."""


class RedisCache:
    """Cached answers in Redis (``SET key value EX ttl``), shared by every process."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer, or None (Redis expires keys itself)."""
        raw = self.client.get(REDIS_PREFIX + key)
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Store the answer with a TTL (at least one millisecond)."""
        self.client.set(
            REDIS_PREFIX + key, json.dumps(value, ensure_ascii=False), px=max(1, int(ttl * 1000))
        )

    def clear(self) -> None:
        """Delete every cached answer of the registry (other keys are left alone)."""
        for name in self.client.scan_iter(match=REDIS_PREFIX + "*", count=500):
            self.client.delete(name)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


__all__ = ["REDIS_PREFIX", "DatabaseCache", "RedisCache", "ResponseCache"]
