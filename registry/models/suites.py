"""Regression suites: test cases per prompt, suite runs and their per-case results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SuiteCaseRow(Base):
    """One test case of a prompt: variables to render with and assertions on the answer."""

    __tablename__ = "test_cases"
    __table_args__ = (sa.UniqueConstraint("prompt_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)
    variables: Mapped[dict[str, Any]]
    assertions: Mapped[list[Any]]
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SuiteRunRow(Base):
    """One execution of a prompt's suite against one version, with its outcome and counts.

    ``status`` is ``running`` while cases execute (or their batch runs), then ``passed`` (every
    case passed),
    ``failed`` (a case failed or its run errored) or ``error`` (the suite itself could not finish).
    ``cases_hash`` fingerprints the cases it ran, so the gate can tell when they changed since.
    """

    __tablename__ = "suite_runs"
    __table_args__ = (sa.Index(None, "prompt_id", "version", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id", ondelete="CASCADE"))
    version: Mapped[int]
    label: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    total: Mapped[int] = mapped_column(default=0)
    passed: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    errored: Mapped[int] = mapped_column(default=0)
    concurrency: Mapped[int] = mapped_column(default=1)
    cases_hash: Mapped[str] = mapped_column(sa.String(64), default="")
    cost_usd: Mapped[float | None]
    actor: Mapped[str] = mapped_column(sa.String(200), default="")
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    #: the Message Batch the cases went in (ours or the API's id; None: run synchronously)
    batch_id: Mapped[str | None] = mapped_column(sa.String(100))
    #: another model than the version's (a model-matrix run: never counts for the gate)
    model: Mapped[str | None] = mapped_column(sa.String(128))


class CaseResultRow(Base):
    """The outcome of one test case in one suite run: the answer and each assertion's verdict."""

    __tablename__ = "case_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    suite_run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("suite_runs.id", ondelete="CASCADE"), index=True
    )
    case_name: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(20))
    passed: Mapped[bool]
    variables: Mapped[dict[str, Any]]
    output: Mapped[str | None] = mapped_column(sa.Text)
    assertions: Mapped[list[Any]]
    error: Mapped[str | None] = mapped_column(sa.Text)
    stop_reason: Mapped[str | None] = mapped_column(sa.String(40))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    cost_usd: Mapped[float | None]
    latency_ms: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["CaseResultRow", "SuiteCaseRow", "SuiteRunRow"]
