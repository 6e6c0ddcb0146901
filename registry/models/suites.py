"""Tables of the suites capability (filled in by its issue)."""

from __future__ import annotations
