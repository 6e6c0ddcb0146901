"""ORM models, one module per concept. Importing this package registers every table."""

from __future__ import annotations

from .base import Base, utcnow
from .prompts import LabelEventRow, LabelRow, PromptRow, VersionRow

# every capability's tables, so Alembic and create_all see the whole schema
from . import api_keys, experiments, runs, suites, users  # noqa: F401  isort: skip

__all__ = ["Base", "LabelEventRow", "LabelRow", "PromptRow", "VersionRow", "utcnow"]
