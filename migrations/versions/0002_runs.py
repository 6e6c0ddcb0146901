"""runs: run log and feedback (runner)

Revision ID: 0002_runs
Revises: 0001_core
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002_runs"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the capability that owns these tables."""


def downgrade() -> None:
    """Filled in by the capability that owns these tables."""
