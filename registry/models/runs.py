"""Tables of the runner: the run log, feedback on runs, and the response cache."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

#: nullable JSON columns store Python None as SQL NULL (not the JSON text 'null')
_JSON = sa.JSON(none_as_null=True)


class RunRow(Base):
    """One call of a prompt against the Messages API, successful or not (one row per call).

    Variables marked ``sensitive`` in the version's contract are stored redacted; the API key
    is never stored. ``label`` is the label asked for (``production`` when neither a label nor
    a version was given). ``source`` says who ran it: ``app``, ``http``, ``cli``,
    ``playground``, ``test`` (regression suite) or ``rubric`` (grader).
    """

    __tablename__ = "runs"
    __table_args__ = (
        sa.Index(None, "prompt", "created_at"),
        sa.Index(None, "prompt", "version"),
        sa.Index(None, "experiment", "variant"),
        sa.Index(None, "model", "created_at"),
        sa.CheckConstraint("status IN ('ok', 'error')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    prompt: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int | None]
    label: Mapped[str | None] = mapped_column(sa.String(64))
    experiment: Mapped[str | None] = mapped_column(sa.String(200))
    variant: Mapped[str | None] = mapped_column(sa.String(200))
    unit_id: Mapped[str | None] = mapped_column(sa.String(200))
    model: Mapped[str | None] = mapped_column(sa.String(128))
    params: Mapped[dict[str, Any] | None] = mapped_column(_JSON)
    variables: Mapped[dict[str, Any] | None] = mapped_column(_JSON)
    input_hash: Mapped[str | None] = mapped_column(sa.String(64))
    output_text: Mapped[str | None] = mapped_column(sa.Text)
    parsed: Mapped[Any | None] = mapped_column(_JSON)
    stop_reason: Mapped[str | None] = mapped_column(sa.String(32))
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    cache_creation_input_tokens: Mapped[int] = mapped_column(default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float | None]
    latency_ms: Mapped[float] = mapped_column(default=0.0)
    ttft_ms: Mapped[float | None]
    attempts: Mapped[int] = mapped_column(default=0)
    cached: Mapped[bool] = mapped_column(default=False)
    stream: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(10))
    error_type: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    request_id: Mapped[str | None] = mapped_column(sa.String(128))
    source: Mapped[str] = mapped_column(sa.String(20), default="app")
    suite_run_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", _JSON)


class FeedbackRow(Base):
    """A score attached to a run (thumbs up = 1.0, a 1-5 rating, a grader's score...)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(64), index=True)
    value: Mapped[float]
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ResponseCacheRow(Base):
    """A cached answer to an exact request (key: sha256 of the request), valid until expiry."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


__all__ = ["FeedbackRow", "ResponseCacheRow", "RunRow"]
