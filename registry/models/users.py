"""Tables of the users capability (filled in by its issue)."""

from __future__ import annotations
