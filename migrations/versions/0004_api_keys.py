"""api keys: hashed keys with scopes (HTTP API)

Revision ID: 0004_api_keys
Revises: 0003_users
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_api_keys"
down_revision: str | None = "0003_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the capability that owns these tables."""


def downgrade() -> None:
    """Filled in by the capability that owns these tables."""
