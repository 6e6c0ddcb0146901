"""users: admin accounts and roles (web admin)

Revision ID: 0003_users
Revises: 0002_runs
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003_users"
down_revision: str | None = "0002_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the capability that owns these tables."""


def downgrade() -> None:
    """Filled in by the capability that owns these tables."""
