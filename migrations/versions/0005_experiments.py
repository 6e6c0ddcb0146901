"""experiments: variants, assignments, exposures (A/B)

Revision ID: 0005_experiments
Revises: 0004_api_keys
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.models.base

revision: str = "0005_experiments"
down_revision: str | None = "0004_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the experiments, experiment_variants and experiment_assignments tables."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("running_prompt_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("seed", sa.String(length=200), nullable=False),
        sa.Column("sticky", sa.Boolean(), nullable=False),
        sa.Column("guardrails", sa.JSON(), nullable=False),
        sa.Column("min_runs", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", registry.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", registry.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", registry.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("stopped_at", registry.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_by", sa.String(length=200), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("promoted_variant", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(status = 'running') = (running_prompt_id IS NOT NULL)",
            name=op.f("ck_experiments_running_prompt_set"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'stopped')", name=op.f("ck_experiments_status_known")
        ),
        sa.CheckConstraint(
            "coverage > 0 AND coverage <= 1", name=op.f("ck_experiments_coverage_range")
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_experiments_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["running_prompt_id"],
            ["prompts.id"],
            name=op.f("fk_experiments_running_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("key", name=op.f("uq_experiments_key")),
        sa.UniqueConstraint("running_prompt_id", name=op.f("uq_experiments_running_prompt_id")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiments_prompt_id"), ["prompt_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiments_status"), ["status"], unique=False)

    op.create_table(
        "experiment_assignments",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("exposures", sa.Integer(), nullable=False),
        sa.Column("first_seen", registry.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", registry.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_assignments_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "unit_id", name=op.f("pk_experiment_assignments")),
    )
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_assignments_experiment_id_variant"),
            ["experiment_id", "variant"],
            unique=False,
        )

    op.create_table(
        "experiment_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_experiment_variants_weight_positive")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_variants_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_experiment_variants_version_id_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_variants")),
        sa.UniqueConstraint(
            "experiment_id", "key", name=op.f("uq_experiment_variants_experiment_id_key")
        ),
        sa.UniqueConstraint(
            "experiment_id", "position", name=op.f("uq_experiment_variants_experiment_id_position")
        ),
    )
    with op.batch_alter_table("experiment_variants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_variants_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    """Drop the experiment tables."""
    with op.batch_alter_table("experiment_variants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_variants_version_id"))

    op.drop_table("experiment_variants")
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_assignments_experiment_id_variant"))

    op.drop_table("experiment_assignments")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiments_status"))
        batch_op.drop_index(batch_op.f("ix_experiments_prompt_id"))

    op.drop_table("experiments")
