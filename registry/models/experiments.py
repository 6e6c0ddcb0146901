"""Tables of the experiments capability (filled in by its issue)."""

from __future__ import annotations
