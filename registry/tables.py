"""The core tables as SQLAlchemy Core ``Table`` objects, and the column types every table uses.

The read path (``Registry.get``) needs only these and SQLAlchemy Core, so an app that only
fetches and renders prompts never loads the ORM. The ORM classes in :mod:`registry.models` map
onto the same tables and share :data:`metadata`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

#: constraint names follow one convention so Alembic migrations are identical on every engine
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: the one ``MetaData`` of the whole schema (the ORM ``Base`` uses it too)
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow)


#: a named prompt; ``latest_version`` is bumped under a row lock to number versions
prompts = sa.Table(
    "prompts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("tags", sa.JSON, nullable=False, default=list),
    sa.Column("latest_version", sa.Integer, nullable=False, default=0),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("archived_at", UTCDateTime(), nullable=True),
)

#: immutable versions: content never changes after insert
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "prompt_id", sa.Integer, sa.ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("system", sa.Text, nullable=True),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("variables", sa.JSON, nullable=False),
    sa.Column("output_schema", sa.JSON, nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("author", sa.String(200), nullable=False, default=""),
    _created(),
    sa.UniqueConstraint("prompt_id", "version"),
    sa.CheckConstraint("version >= 1", name="version_positive"),
)

#: movable pointers from a label name to one version of a prompt
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "prompt_id", sa.Integer, sa.ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("updated_by", sa.String(200), nullable=False, default=""),
    sa.UniqueConstraint("prompt_id", "name"),
)

#: audit of label moves: who, when, from which version to which, and why
label_events = sa.Table(
    "label_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "prompt_id", sa.Integer, sa.ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False, default=""),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("kind", sa.String(20), nullable=False, default="move"),
    sa.Column("release_id", sa.String(32), nullable=True, index=True),
    _created(),
    sa.Index(None, "prompt_id", "label", "id"),
)

#: nullable JSON columns store Python None as SQL NULL (not the JSON text 'null')
_NULLABLE_JSON = sa.JSON(none_as_null=True)

#: Message Batches the registry submitted (suite runs, bulk jobs): followed and resumed from here;
#: ``reserved_usd`` is what the daily budget still counts for it until its results are logged;
#: ``items`` (compressed JSON, see ``registry.batch.store``) what each request becomes, kept
#: until the results are logged
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("api_id", sa.String(100), nullable=True, unique=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("prompt", sa.String(200), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("total", sa.Integer, nullable=False, default=0),
    sa.Column("counts", _NULLABLE_JSON, nullable=True),
    sa.Column("reserved_usd", sa.Double, nullable=False, default=0.0),
    sa.Column("spent_usd", sa.Double, nullable=False, default=0.0),
    sa.Column("input_hash", sa.String(64), nullable=True),
    sa.Column("output_path", sa.Text, nullable=True),
    sa.Column("options", _NULLABLE_JSON, nullable=True),
    sa.Column("items", sa.LargeBinary, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False, default=""),
    sa.Column("error", sa.Text, nullable=True),
    _created(),
    sa.Column("submitted_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Index(None, "status", "created_at"),
)
