"""Tables of the api_keys capability (filled in by its issue)."""

from __future__ import annotations
