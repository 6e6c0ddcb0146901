"""experiments: variants, assignments, exposures (A/B)

Revision ID: 0005_experiments
Revises: 0004_api_keys
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005_experiments"
down_revision: str | None = "0004_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the capability that owns these tables."""


def downgrade() -> None:
    """Filled in by the capability that owns these tables."""
