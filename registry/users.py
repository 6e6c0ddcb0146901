"""Accounts of the web admin: users, roles, password checks and login sessions.

Roles are ordered: ``viewer`` (read only) < ``editor`` (create versions, move unprotected
labels) < ``publisher`` (also protected labels such as ``production``) < ``admin`` (also users
and API keys). Passwords are stored as werkzeug hashes; a login is a random token whose sha256
is kept in ``user_sessions`` so that logging out (or disabling a user, or changing a password)
ends the session on the server, not only in the browser.

>>> create_user(reg, "ana", "a long password", role="editor")   # doctest: +SKIP
>>> authenticate(reg, "ana", "a long password").role            # doctest: +SKIP
'editor'
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .errors import ConflictError, NotFound, ValidationError
from .models import utcnow
from .models.users import UserRow, UserSessionRow

if TYPE_CHECKING:
    from .service import RegistryService

#: roles from least to most powerful
ROLES = ("viewer", "editor", "publisher", "admin")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
#: werkzeug hashing method (tests may lower the cost)
PASSWORD_METHOD = "scrypt"
#: how long a login lasts
SESSION_LIFETIME = timedelta(hours=12)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
_DUMMY_HASH: str | None = None


@dataclass(frozen=True)
class User:
    """An account as the web admin sees it (never carries the password hash)."""

    id: int
    name: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None

    def can(self, role: str) -> bool:
        """True when this user's role is ``role`` or above."""
        return self.active and role_at_least(self.role, role)


def check_role(role: str) -> str:
    """Validate a role name."""
    if role not in ROLES:
        raise ValidationError(
            f"unknown role {role!r}: choose one of {', '.join(ROLES)}", field="role"
        )
    return role


def role_at_least(role: str, required: str) -> bool:
    """True when ``role`` ranks at or above ``required`` (unknown roles rank below everything)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(check_role(required))


def check_user_name(name: str) -> str:
    """Validate a user name: letters, digits and ``_ . @ -``, at most 100 characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"invalid user name {name!r}: use letters, digits and _ . @ - (at most 100 characters)",
            field="name",
        )
    return name


def check_password(password: str) -> str:
    """Refuse passwords too short or too long to be sensible."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"the password must have at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    return password


def _hash(password: str) -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password, method=PASSWORD_METHOD)


def _to_user(row: UserRow | sa.Row[Any]) -> User:
    """The account from its ORM row or a plain result row holding the user's columns."""
    return User(
        id=row.id,
        name=row.name,
        role=row.role,
        active=row.active,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def create_user(reg: RegistryService, name: str, password: str, *, role: str = "viewer") -> User:
    """Create an account; ``ConflictError`` when the name is taken."""
    check_user_name(name)
    check_role(role)
    password_hash = _hash(check_password(password))
    with reg.db.transaction() as s:
        if s.scalars(sa.select(UserRow.id).where(UserRow.name == name)).first() is not None:
            raise ConflictError(f"user {name!r} already exists: pick another name or set its role")
        row = UserRow(
            name=name, password_hash=password_hash, role=role, active=True, created_at=utcnow()
        )
        s.add(row)
        s.flush()
        return _to_user(row)


def get_user(reg: RegistryService, name: str) -> User:
    """One account by name; ``NotFound`` when there is none."""
    with reg.db.snapshot() as s:
        row = s.scalars(sa.select(UserRow).where(UserRow.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"user {name!r} does not exist (see `prompt-registry users list`)")
        return _to_user(row)


def list_users(reg: RegistryService) -> list[User]:
    """Every account, sorted by name."""
    with reg.db.snapshot() as s:
        return [_to_user(r) for r in s.scalars(sa.select(UserRow).order_by(UserRow.name))]


def count_users(reg: RegistryService) -> int:
    """How many accounts exist (0 means the first admin has not been created yet)."""
    with reg.db.snapshot() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(UserRow)) or 0)


def authenticate(reg: RegistryService, name: str, password: str) -> User | None:
    """The user when the name and password match an active account, else None.

    Takes about as long whether or not the user exists, so timing does not reveal names.
    """
    from werkzeug.security import check_password_hash

    global _DUMMY_HASH
    with reg.db.snapshot() as s:
        row = (
            s.scalars(sa.select(UserRow).where(UserRow.name == name)).one_or_none()
            if isinstance(name, str)
            else None
        )
        stored = row.password_hash if row is not None else None
    if stored is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = _hash(secrets.token_hex(16))
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not isinstance(password, str) or not check_password_hash(stored, password):
        return None
    assert row is not None
    if not row.active:
        return None
    now = utcnow()
    with reg.db.transaction() as s:
        s.execute(sa.update(UserRow).where(UserRow.id == row.id).values(last_login_at=now))
    return dataclasses.replace(_to_user(row), last_login_at=now)


def _update(reg: RegistryService, name: str, *, end_sessions: bool, **values: object) -> User:
    with reg.db.transaction() as s:
        row = s.scalars(
            sa.select(UserRow).where(UserRow.name == name).with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFound(f"user {name!r} does not exist (see `prompt-registry users list`)")
        for key, value in values.items():
            setattr(row, key, value)
        if end_sessions:
            s.execute(sa.delete(UserSessionRow).where(UserSessionRow.user_id == row.id))
        s.flush()
        return _to_user(row)


def set_password(reg: RegistryService, name: str, password: str) -> User:
    """Change a password; every open session of the user ends."""
    return _update(reg, name, end_sessions=True, password_hash=_hash(check_password(password)))


def set_role(reg: RegistryService, name: str, role: str) -> User:
    """Give a user another role (takes effect on their next request)."""
    return _update(reg, name, end_sessions=False, role=check_role(role))


def disable_user(reg: RegistryService, name: str) -> User:
    """Disable an account: it can no longer log in and its sessions end."""
    return _update(reg, name, end_sessions=True, active=False)


def enable_user(reg: RegistryService, name: str) -> User:
    """Re-enable a disabled account."""
    return _update(reg, name, end_sessions=False, active=True)


# -- login sessions ---------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(reg: RegistryService, user: User, *, lifetime: timedelta | None = None) -> str:
    """Open a login session for ``user``; returns the secret token the browser keeps."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with reg.db.transaction() as s:
        s.execute(sa.delete(UserSessionRow).where(UserSessionRow.expires_at < now))
        s.add(
            UserSessionRow(
                token_hash=_token_hash(token),
                user_id=user.id,
                created_at=now,
                expires_at=now + (lifetime or SESSION_LIFETIME),
            )
        )
    return token


def session_user(reg: RegistryService, token: str) -> User | None:
    """The active user a session token belongs to, or None (unknown, expired, disabled)."""
    if not isinstance(token, str) or not token:
        return None
    with reg.db.engine.connect() as conn:
        found = conn.execute(
            sa.select(UserRow.__table__, UserSessionRow.expires_at)
            .join(UserSessionRow, UserSessionRow.user_id == UserRow.id)
            .where(UserSessionRow.token_hash == _token_hash(token))
        ).first()
    if found is None or not found.active or found.expires_at <= utcnow():
        return None
    return _to_user(found)


def end_session(reg: RegistryService, token: str) -> None:
    """Log out: forget the session token on the server."""
    if not token:
        return
    with reg.db.transaction() as s:
        s.execute(sa.delete(UserSessionRow).where(UserSessionRow.token_hash == _token_hash(token)))


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "User",
    "authenticate",
    "check_password",
    "check_role",
    "check_user_name",
    "count_users",
    "create_user",
    "disable_user",
    "enable_user",
    "end_session",
    "get_user",
    "list_users",
    "role_at_least",
    "session_user",
    "set_password",
    "set_role",
    "start_session",
]
