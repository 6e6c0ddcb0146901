"""Tables of the runs capability (filled in by its issue)."""

from __future__ import annotations
