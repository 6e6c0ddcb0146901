"""JSON API under /api/v1 (filled in by the HTTP-API issue)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Mount the API blueprint on ``app``."""
