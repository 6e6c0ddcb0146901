"""``Prompt``: a prompt as listed (name, description, tags, labels, newest version).

A plain record with no database code, so the HTTP client (:mod:`registry.client`) returns the
same type as :meth:`registry.Registry.prompts` without loading SQLAlchemy; the query that
fills it lives in :mod:`registry.listing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Prompt:
    """A prompt as listed: name, description, tags, labels (label -> version) and newest version."""

    name: str
    description: str
    tags: list[str]
    labels: dict[str, int]
    latest_version: int
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    @property
    def folder(self) -> str:
        """The folder part of a ``team/name`` prompt name ('' at the top level)."""
        return self.name.rpartition("/")[0]
