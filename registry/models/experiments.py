"""Tables of A/B experiments: experiments, their variants, and per-unit assignments/exposures.

At most one experiment runs on a prompt: ``running_prompt_id`` holds the prompt id only while
the experiment runs (NULL otherwise) and carries a plain unique constraint, which both SQLite
and PostgreSQL enforce while allowing any number of NULLs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

#: lifecycle of an experiment: created as a draft, started once, stopped once (final)
EXPERIMENT_STATUSES = ("draft", "running", "stopped")


class ExperimentRow(Base):
    """An A/B experiment on one prompt: variants are versions served instead of a base label."""

    __tablename__ = "experiments"
    __table_args__ = (
        sa.CheckConstraint("status IN ('draft', 'running', 'stopped')", name="status_known"),
        sa.CheckConstraint("coverage > 0 AND coverage <= 1", name="coverage_range"),
        sa.CheckConstraint(
            "(status = 'running') = (running_prompt_id IS NOT NULL)", name="running_prompt_set"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    prompt_id: Mapped[int] = mapped_column(
        sa.ForeignKey("prompts.id", ondelete="CASCADE"), index=True
    )
    #: the prompt id while running, else NULL: the unique constraint allows one running per prompt
    running_prompt_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("prompts.id", ondelete="CASCADE"), unique=True
    )
    #: the label the experiment replaces for units in coverage (``production`` by default)
    label: Mapped[str] = mapped_column(sa.String(64), default="production")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    #: what a unit is (``user_id``, ``session_id``...): documentation for the people reading it
    unit: Mapped[str] = mapped_column(sa.String(64), default="user_id")
    coverage: Mapped[float] = mapped_column(sa.Float, default=1.0)
    seed: Mapped[str] = mapped_column(sa.String(200))
    sticky: Mapped[bool] = mapped_column(default=False)
    #: ``[{"metric": "error_rate", "threshold": 0.0}, ...]``
    guardrails: Mapped[list[Any]] = mapped_column(default=list)
    #: runs each variant needs before guardrails may stop the experiment
    min_runs: Mapped[int] = mapped_column(default=100)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    started_by: Mapped[str] = mapped_column(sa.String(200), default="")
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
    stopped_by: Mapped[str] = mapped_column(sa.String(200), default="")
    stop_reason: Mapped[str] = mapped_column(sa.Text, default="")
    #: the variant whose version the base label was moved to by ``promote``
    promoted_variant: Mapped[str | None] = mapped_column(sa.String(64), default=None)


class VariantRow(Base):
    """One arm of an experiment: a version of the prompt and its share of the traffic."""

    __tablename__ = "experiment_variants"
    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "key"),
        sa.UniqueConstraint("experiment_id", "position"),
        sa.CheckConstraint("weight >= 0", name="weight_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(64))
    #: order of the variants; position 0 is the control
    position: Mapped[int]
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("versions.id"), index=True)
    version: Mapped[int]
    weight: Mapped[float] = mapped_column(sa.Float)


class AssignmentRow(Base):
    """A unit seen by an experiment: its variant, first and last exposure, and exposure count.

    For sticky experiments the first row written for a unit is its assignment for good;
    otherwise the variant column follows the unit's current assignment.
    """

    __tablename__ = "experiment_assignments"
    __table_args__ = (sa.Index(None, "experiment_id", "variant"),)

    experiment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    variant: Mapped[str] = mapped_column(sa.String(64))
    exposures: Mapped[int] = mapped_column(default=0)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["EXPERIMENT_STATUSES", "AssignmentRow", "ExperimentRow", "VariantRow"]
