"""Core tables: prompts, their immutable versions, movable labels and the label audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow


class PromptRow(Base):
    """A named prompt. ``latest_version`` is bumped under a row lock to number versions."""

    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    latest_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)

    versions: Mapped[list[VersionRow]] = relationship(
        back_populates="prompt", order_by="VersionRow.version", lazy="raise_on_sql"
    )


class VersionRow(Base):
    """One immutable version of a prompt: content never changes after insert."""

    __tablename__ = "versions"
    __table_args__ = (
        sa.UniqueConstraint("prompt_id", "version"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id", ondelete="CASCADE"))
    version: Mapped[int]
    system: Mapped[str | None] = mapped_column(sa.Text)
    messages: Mapped[list[Any]]
    settings: Mapped[dict[str, Any]]
    variables: Mapped[dict[str, Any]]
    output_schema: Mapped[dict[str, Any] | None]
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    author: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    prompt: Mapped[PromptRow] = relationship(back_populates="versions", lazy="raise_on_sql")


class LabelRow(Base):
    """A movable pointer from a label name (``production``) to one version of a prompt."""

    __tablename__ = "labels"
    __table_args__ = (sa.UniqueConstraint("prompt_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("versions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200), default="")


class LabelEventRow(Base):
    """Audit of one label move: who, when, from which version to which, and why."""

    __tablename__ = "label_events"
    __table_args__ = (sa.Index(None, "prompt_id", "label", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(sa.String(64))
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    actor: Mapped[str] = mapped_column(sa.String(200), default="")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(20), default="move")
    release_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
