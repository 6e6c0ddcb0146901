"""API keys for the HTTP API: created once, stored hashed, scoped, revocable.

A key looks like ``prk_AbCd1234_<43 random characters>``. Only its sha256 is stored, with the
public start (``prk_AbCd1234``) so people can recognise a key in lists. Scopes are ordered:
``read`` (fetch and render) < ``run`` (also run prompts and send feedback) < ``write`` (also
create versions and move unprotected labels).

>>> token, info = create_api_key(reg, "checkout-app", "run", created_by="ana")  # doctest: +SKIP
>>> authenticate_api_key(reg, token).scope                                        # doctest: +SKIP
'run'
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .errors import (
    AuthenticationError,
    ConflictError,
    DatabaseUnavailable,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from .models import utcnow
from .models.api_keys import ApiKeyRow

if TYPE_CHECKING:
    from .service import RegistryService

#: scopes from least to most powerful; each includes the ones before it
SCOPES = ("read", "run", "write")
#: every key starts with this, so a leaked key is easy to recognise (and to scan for)
TOKEN_PREFIX = "prk_"
#: ``last_used_at`` is written at most this often per key (seconds), not on every request
LAST_USED_RESOLUTION = 60.0
#: how long a successful authentication is trusted in this process (seconds); a revocation made
#: in another process takes effect within this delay, one made in this process at once
AUTH_CACHE_TTL = 1.0
_AUTH_CACHE_SIZE = 1024
_MAX_TOKEN_LENGTH = 200
KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known about a key (never the key itself)."""

    id: int
    name: str
    prefix: str
    scope: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str

    @property
    def active(self) -> bool:
        """False once the key is revoked."""
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """True when this key's scope includes ``scope``."""
        return SCOPES.index(self.scope) >= SCOPES.index(check_scope(scope))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (for ``apikeys list --json`` and the admin)."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scope": self.scope,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by,
            "active": self.active,
        }


def check_scope(scope: object) -> str:
    """Return ``scope`` if it is one of :data:`SCOPES`, else raise ``ValidationError``."""
    if not isinstance(scope, str) or scope not in SCOPES:
        raise ValidationError(
            f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}", field="scope"
        )
    return scope


def hash_token(token: str) -> str:
    """The stored form of a key: sha256 hex of the whole token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> tuple[str, str]:
    public = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    return token, f"{TOKEN_PREFIX}{public}"


def _info(row: ApiKeyRow | sa.Row[Any]) -> ApiKeyInfo:
    """The key's description from its ORM row or a plain result row of its table."""
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope=row.scope,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


class _KeyCache:
    """Per-registry memory of recent authentications and last-used writes."""

    def __init__(self, reg: RegistryService) -> None:
        self.lock = threading.Lock()
        #: token hash -> (trusted until, info)
        self.auth: dict[str, tuple[float, ApiKeyInfo]] = {}
        #: key id -> when this process last wrote ``last_used_at``
        self.touched: dict[int, float] = {}

    def forget(self) -> None:
        with self.lock:
            self.auth.clear()

    def close(self) -> None:
        self.forget()


def _cache(reg: RegistryService) -> _KeyCache:
    return reg.component(_KeyCache)


def create_api_key(
    reg: RegistryService, name: str, scope: str, *, created_by: str = ""
) -> tuple[str, ApiKeyInfo]:
    """Create a key; returns ``(plaintext, info)``. The plaintext cannot be shown again.

    ``name`` says who uses the key (``checkout-app``); names are unique, revoked keys included.
    """
    if not isinstance(name, str) or not KEY_NAME.match(name):
        raise ValidationError(
            f"invalid key name {name!r}: start with a letter, then letters, digits, '.', '_' "
            "or '-' (at most 100 characters)",
            field="name",
        )
    check_scope(scope)
    if not isinstance(created_by, str) or len(created_by) > 200:
        raise ValidationError(
            "created_by must be a string of at most 200 characters", field="created_by"
        )
    token, prefix = _new_token()
    with reg.db.transaction() as s:
        clash = s.scalars(sa.select(ApiKeyRow).where(ApiKeyRow.name == name)).one_or_none()
        if clash is not None:
            state = "a revoked key" if clash.revoked_at else "an active key"
            raise ConflictError(
                f"{state} named {name!r} already exists (names stay unique, revoked keys "
                "included): pick another name, e.g. "
                f"'{name}-2'"
            )
        row = ApiKeyRow(
            name=name,
            prefix=prefix,
            key_hash=hash_token(token),
            scope=scope,
            created_by=created_by,
            created_at=utcnow(),
            revoked_by="",
        )
        s.add(row)
        s.flush()
        info = _info(row)
    return token, info


def list_api_keys(reg: RegistryService, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """Every key, oldest first (revoked ones too unless ``include_revoked=False``)."""
    query = sa.select(ApiKeyRow).order_by(ApiKeyRow.id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    with reg.db.snapshot() as s:
        return [_info(r) for r in s.scalars(query)]


def get_api_key(reg: RegistryService, key_id_or_name: int | str) -> ApiKeyInfo:
    """One key by id (a number) or by name."""
    with reg.db.snapshot() as s:
        return _info(_find(s, key_id_or_name))


def _find(s: Session, key_id_or_name: int | str) -> ApiKeyRow:
    if isinstance(key_id_or_name, int) or str(key_id_or_name).isdigit():
        row = s.get(ApiKeyRow, int(key_id_or_name))
    else:
        row = s.scalars(sa.select(ApiKeyRow).where(ApiKeyRow.name == key_id_or_name)).one_or_none()
    if row is None:
        raise NotFound(
            f"no API key {key_id_or_name!r}: `prompt-registry apikeys list` shows ids and names"
        )
    return row


def revoke_api_key(
    reg: RegistryService, key_id_or_name: int | str, *, actor: str = ""
) -> ApiKeyInfo:
    """Revoke a key by id or name; it stops working at once in this process.

    Other processes stop accepting it within :data:`AUTH_CACHE_TTL` seconds. Revoking a key
    that is already revoked changes nothing and returns it.
    """
    with reg.db.transaction() as s:
        row = _find(s, key_id_or_name)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.revoked_by = actor[:200]
            s.flush()
        info = _info(row)
    _cache(reg).forget()
    return info


def authenticate_api_key(reg: RegistryService, token: str | None) -> ApiKeyInfo:
    """The active key ``token`` stands for; raises ``AuthenticationError`` otherwise.

    Records the last use, at most once per :data:`LAST_USED_RESOLUTION` seconds per key.
    """
    if not token:
        raise AuthenticationError(
            "an API key is required: send 'Authorization: Bearer <key>' "
            "(create one with `prompt-registry apikeys create NAME --scope read`)"
        )
    if len(token) > _MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
        raise AuthenticationError(
            "invalid API key: it is not a registry key (they start with 'prk_')"
        )
    digest = hash_token(token)
    cache = _cache(reg)
    now = time.monotonic()
    hit = cache.auth.get(digest)
    if hit is not None and hit[0] > now:
        info = hit[1]
    else:
        try:
            with reg.db.engine.connect() as conn:
                row = conn.execute(
                    sa.select(ApiKeyRow.__table__).where(ApiKeyRow.key_hash == digest)
                ).first()
        except DatabaseUnavailable:
            if hit is None:
                raise
            # the database is down: a key this process verified keeps working, as the
            # versions it last read keep being served (see registry.reading)
            return hit[1]
        if row is None:
            raise AuthenticationError("invalid API key: no such key (was it copied whole?)")
        info = _info(row)
        if info.active:
            with cache.lock:
                if len(cache.auth) >= _AUTH_CACHE_SIZE:
                    cache.auth.clear()
                cache.auth[digest] = (now + AUTH_CACHE_TTL, info)
    if not info.active:
        raise AuthenticationError(f"API key {info.prefix}... ({info.name}) has been revoked")
    _touch(reg, cache, info, now)
    return info


def _touch(reg: RegistryService, cache: _KeyCache, info: ApiKeyInfo, now: float) -> None:
    last = cache.touched.get(info.id)
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    cache.touched[info.id] = now
    stamp = utcnow()
    threshold = stamp - timedelta(seconds=LAST_USED_RESOLUTION)
    try:
        with reg.db.transaction() as s:
            # the condition keeps many processes from all writing in the same minute
            s.execute(
                sa.update(ApiKeyRow)
                .where(
                    ApiKeyRow.id == info.id,
                    sa.or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at < threshold),
                )
                .values(last_used_at=stamp)
            )
    except Exception:  # a busy database must not fail the request the key authenticated
        cache.touched.pop(info.id, None)


def require_scope(info: ApiKeyInfo, scope: str) -> None:
    """Raise ``PermissionDenied`` unless the key's scope includes ``scope``."""
    if not info.allows(scope):
        raise PermissionDenied(
            f"API key {info.name!r} has scope {info.scope!r}; this needs scope {scope!r} "
            f"(create a key with `prompt-registry apikeys create NAME --scope {scope}`)"
        )


__all__ = [
    "SCOPES",
    "ApiKeyInfo",
    "authenticate_api_key",
    "check_scope",
    "create_api_key",
    "get_api_key",
    "hash_token",
    "list_api_keys",
    "require_scope",
    "revoke_api_key",
]
