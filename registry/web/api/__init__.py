"""JSON API under ``/api/v1``: fetch, render and run prompts with an API key.

Endpoints are declared in :mod:`.views` with the models of :mod:`.schemas`; the same table
builds the routes and ``/api/v1/openapi.json`` (:mod:`.openapi`). Every error, including an
unknown URL or a wrong method, is ``{"error": {"type", "message"}}`` with a fitting status.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from . import views as _views  # noqa: F401  (declares the operations)
from .errors import handle_error
from .routing import OPERATIONS, dispatch

#: where the API is mounted
URL_PREFIX = "/api/v1"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _unmatched(rest: str = "") -> Response:
    """Any other URL under the prefix: 405 when another method would match, else 404."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in _METHODS:
        if method == request.method:
            continue
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != "api_v1.unmatched":
            allowed.add(method)
    if allowed:
        raise MethodNotAllowed(
            valid_methods=sorted(allowed),
            description=f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}",
        )
    raise NotFound(f"no API endpoint at {request.path}: see {URL_PREFIX}/openapi.json")


def create_blueprint() -> Blueprint:
    """The ``api_v1`` blueprint with every operation, the JSON error handlers and a catch-all."""
    bp = Blueprint("api_v1", __name__, url_prefix=URL_PREFIX)
    for op in OPERATIONS:
        bp.add_url_rule(
            op.rule, endpoint=op.operation_id, view_func=dispatch(op), methods=[op.method]
        )
    bp.add_url_rule("/", endpoint="unmatched", view_func=_unmatched, methods=_METHODS)
    bp.add_url_rule("/<path:rest>", endpoint="unmatched", view_func=_unmatched, methods=_METHODS)
    bp.register_error_handler(Exception, handle_error)
    return bp


def init_app(app: Flask) -> None:
    """Mount the API blueprint on ``app``."""
    app.register_blueprint(create_blueprint())


__all__ = ["URL_PREFIX", "create_blueprint", "init_app"]
