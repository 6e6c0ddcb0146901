"""Small display helpers shared by admin templates (registered as Jinja filters)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Flask


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago``, ``2 h ago``, ``5 days ago``, or the date for older times."""
    if when is None:
        return "never"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 14 * 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days > 1 else ''} ago"
    return when.strftime("%Y-%m-%d")


def utc(when: datetime | None) -> str:
    """``2025-03-01 14:02:11 UTC``."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    """Indented JSON for display (``""`` for None)."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def page_url(number: int) -> str:
    """This page's URL with ``?page=number`` (other query arguments kept)."""
    from flask import request, url_for

    args: dict[str, Any] = request.args.to_dict()
    args["page"] = number
    return url_for(request.endpoint or "admin.index", **(request.view_args or {}), **args)


def register_filters(app: Flask) -> None:
    """Add the filters and globals admin templates use."""
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["utc"] = utc
    app.jinja_env.filters["pretty_json"] = pretty_json
    app.jinja_env.globals["page_url"] = page_url
    app.jinja_env.globals["url_exists"] = lambda endpoint: endpoint in app.view_functions
