"""API keys of the HTTP API: only a hash of each key is stored, with its scope and last use."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class ApiKeyRow(Base):
    """One API key. The plaintext is shown once at creation; ``key_hash`` is its sha256.

    ``prefix`` is the public start of the key (``prk_AbCd1234``), kept to recognise a key in
    lists and logs. Names are unique, revoked keys included, so an audit line naming a key
    always means one key.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(32))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str] = mapped_column(sa.String(200), default="")


__all__ = ["ApiKeyRow"]
