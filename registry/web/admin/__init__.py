"""Web admin (filled in by the web-admin issue)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Mount the admin on ``app``."""
