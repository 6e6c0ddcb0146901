"""Core ORM classes: prompts, their immutable versions, movable labels and the label audit.

They map onto the Core tables of :mod:`registry.tables` (which the read path uses directly).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Mapped, relationship

from .. import tables
from .base import Base


class PromptRow(Base):
    """A named prompt. ``latest_version`` is bumped under a row lock to number versions."""

    __table__ = tables.prompts

    id: Mapped[int]
    name: Mapped[str]
    description: Mapped[str]
    tags: Mapped[list[Any]]
    latest_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]

    versions: Mapped[list[VersionRow]] = relationship(
        back_populates="prompt", order_by="VersionRow.version", lazy="raise_on_sql"
    )


class VersionRow(Base):
    """One immutable version of a prompt: content never changes after insert."""

    __table__ = tables.versions

    id: Mapped[int]
    prompt_id: Mapped[int]
    version: Mapped[int]
    system: Mapped[str | None]
    messages: Mapped[list[Any]]
    settings: Mapped[dict[str, Any]]
    variables: Mapped[dict[str, Any]]
    output_schema: Mapped[dict[str, Any] | None]
    content_hash: Mapped[str]
    message: Mapped[str]
    author: Mapped[str]
    created_at: Mapped[datetime]

    prompt: Mapped[PromptRow] = relationship(back_populates="versions", lazy="raise_on_sql")


class LabelRow(Base):
    """A movable pointer from a label name (``production``) to one version of a prompt."""

    __table__ = tables.labels

    id: Mapped[int]
    prompt_id: Mapped[int]
    name: Mapped[str]
    version_id: Mapped[int]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str]


class LabelEventRow(Base):
    """Audit of one label move: who, when, from which version to which, and why."""

    __table__ = tables.label_events

    id: Mapped[int]
    prompt_id: Mapped[int]
    label: Mapped[str]
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    actor: Mapped[str]
    reason: Mapped[str]
    kind: Mapped[str]
    release_id: Mapped[str | None]
    created_at: Mapped[datetime]
