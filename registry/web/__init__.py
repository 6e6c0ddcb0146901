"""The web app: the editors' admin (``/admin``) and the JSON API (``/api/v1``) in one Flask app.

``create_app(config)`` is the only way to build it (no module-level app), so tests can build
as many as they like.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, redirect, render_template, request

from .. import config as registry_config
from ..errors import DatabaseUnavailable
from ..registry import Registry
from ..worker import Worker


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app.

    ``config`` keys (all optional): ``REGISTRY_DATABASE_URL`` (default from the environment),
    ``REGISTRY`` (an existing :class:`~registry.Registry` to serve), ``SECRET_KEY``,
    ``TESTING``, ``WTF_CSRF_ENABLED``, ``REGISTRY_WORKER`` (True: run the periodic jobs of
    :mod:`registry.worker` in a background thread until the registry closes; ``serve`` sets it).
    """
    app = Flask(__name__)
    app.config.update(
        REGISTRY_DATABASE_URL=registry_config.database_url(),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.update(config)
    reg = app.config.get("REGISTRY")
    if reg is None:
        reg = Registry(app.config["REGISTRY_DATABASE_URL"])
        app.config["REGISTRY"] = reg
    app.extensions["registry"] = reg

    from .admin import init_app as init_admin
    from .api import init_app as init_api

    init_api(app)
    init_admin(app)

    @app.get("/")
    def index() -> Any:
        return redirect("/admin/")

    app.register_error_handler(DatabaseUnavailable, maintenance_page)
    if app.config.get("REGISTRY_WORKER"):
        app.extensions["registry_worker"] = Worker(reg)
        app.extensions["registry_worker"].start()
    return app


def maintenance_page(exc: DatabaseUnavailable) -> Response:
    """The admin's answer while the database is unavailable: a 503 page with ``Retry-After``.

    It needs nothing from the database (no login, no menu), and says whether waiting helps.
    """
    body = render_template("admin_ui/maintenance.html", error=exc, path=request.path)
    retry = str(max(1, round(exc.retry_after or 5)))
    return Response(body, status=503, headers={"Retry-After": retry}, mimetype="text/html")


def get_registry(app: Flask | None = None) -> Registry:
    """The registry the current (or given) app serves."""
    from flask import current_app

    target = app or current_app
    reg: Registry = target.extensions["registry"]
    return reg
