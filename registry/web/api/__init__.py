"""JSON API under ``/api/v1``: fetch, render and run prompts with an API key.

Endpoints are declared in :mod:`.views` with the models of :mod:`.schemas`; the same table
builds the routes and ``/api/v1/openapi.json`` (:mod:`.openapi`). Every error, including an
unknown URL or a wrong method, is ``{"error": {"type", "message"}}`` with a fitting status.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from . import views as _views  # noqa: F401  (declares the operations)
from .errors import handle_error, http_error_response
from .routing import OPERATIONS, dispatch

#: where the API is mounted
URL_PREFIX = "/api/v1"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods() -> set[str]:
    """Methods the request's URL answers to, as the most specific resource it names.

    ``/prompts/a/render`` is also a prompt named ``a/render`` for GET: the resource with the
    most literal characters in its rule (``.../render``) is the one described.
    """
    adapter = current_app.url_map.bind_to_environ(request.environ)
    weights: dict[str, int] = {}
    for method in _METHODS:
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:
            continue
        weights[method] = len(re.sub(r"<[^>]+>", "", rule.rule))
    best = max(weights.values(), default=0)
    return {method for method, weight in weights.items() if weight == best}


def _routing_failure() -> Response | None:
    """Answer a URL under the prefix that no operation matches (runs before any view).

    ``OPTIONS`` lists the methods of the URL (204); another method of a known URL is 405
    with ``Allow``; an unknown URL is 404; all in the API's JSON error shape.
    """
    failure = request.routing_exception
    if failure is None or isinstance(failure, RequestRedirect):
        return None
    if request.path != URL_PREFIX and not request.path.startswith(URL_PREFIX + "/"):
        return None
    allowed = _allowed_methods() - {request.method}
    if request.method == "OPTIONS" and allowed:
        return Response(status=204, headers={"Allow": ", ".join(sorted(allowed | {"OPTIONS"}))})
    if allowed:
        return http_error_response(
            MethodNotAllowed(
                valid_methods=sorted(allowed),
                description=f"{request.method} is not allowed here; "
                f"use {', '.join(sorted(allowed))}",
            )
        )
    return http_error_response(
        NotFound(f"no API endpoint at {request.path}: see {URL_PREFIX}/openapi.json")
    )


def create_blueprint() -> Blueprint:
    """The ``api_v1`` blueprint with every operation and the JSON error handler."""
    bp = Blueprint("api_v1", __name__, url_prefix=URL_PREFIX)
    # no automatic OPTIONS: :func:`_routing_failure` lists exactly the methods of a URL
    for op in OPERATIONS:
        bp.add_url_rule(
            op.rule,
            endpoint=op.operation_id,
            view_func=dispatch(op),
            methods=[op.method],
            provide_automatic_options=False,
        )
    bp.register_error_handler(Exception, handle_error)
    return bp


def init_app(app: Flask) -> None:
    """Mount the API blueprint on ``app`` and answer unrouted API URLs in JSON."""
    app.register_blueprint(create_blueprint())
    app.before_request(_routing_failure)


__all__ = ["URL_PREFIX", "create_blueprint", "init_app"]
