"""batches: Message Batches (with their items); suite runs get batch_id and model

Revision ID: 0007_batches
Revises: 0006_suites
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.models.base

revision: str = "0007_batches"
down_revision: str | None = "0006_suites"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create batches; add suite_runs.batch_id and suite_runs.model."""
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("api_id", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("prompt", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("reserved_usd", sa.Double(), nullable=False),
        sa.Column("spent_usd", sa.Double(), nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("options", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("items", sa.LargeBinary(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", registry.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", registry.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", registry.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", registry.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("api_id", name=op.f("uq_batches_api_id")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_batches_status_created_at"), ["status", "created_at"], unique=False
        )
    with op.batch_alter_table("suite_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(length=128), nullable=True))


def downgrade() -> None:
    """Drop batches and the suite_runs columns."""
    with op.batch_alter_table("suite_runs", schema=None) as batch_op:
        batch_op.drop_column("model")
        batch_op.drop_column("batch_id")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_status_created_at"))
    op.drop_table("batches")
