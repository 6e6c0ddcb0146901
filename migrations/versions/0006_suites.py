"""suites: test cases, suite runs, case results (regression)

Revision ID: 0006_suites
Revises: 0005_experiments
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006_suites"
down_revision: str | None = "0005_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the capability that owns these tables."""


def downgrade() -> None:
    """Filled in by the capability that owns these tables."""
