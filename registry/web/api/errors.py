"""API errors: JSON ``{"error": {"type", "message"}}`` with a fitting status, never a trace."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from flask import Response, request
from werkzeug.exceptions import HTTPException

from ...db import database_error
from ...errors import AuthenticationError, RegistryError

log = logging.getLogger("registry.api")

#: ``WWW-Authenticate`` challenge sent with every 401
AUTH_REALM = 'Bearer realm="prompt-registry"'


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (UTF-8, not ASCII-escaped)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, headers=headers, mimetype="application/json")


def error_body(exc: RegistryError) -> dict[str, Any]:
    """The ``error`` object for a registry error: type, message and its public details
    (``field``, ``variable``, ``run_id``, ``raw_text``, ``partial_text``...)."""
    body = exc.to_dict()
    if isinstance(body.get("retry_after"), int | float):
        body["retry_after"] = float(body["retry_after"])
    return body


def registry_error_response(exc: RegistryError) -> Response:
    """Turn a ``RegistryError`` into its JSON answer (status from ``exc.status``)."""
    status = exc.status if 400 <= exc.status <= 599 else 500
    if status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.path, status, exc.message)
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if isinstance(exc, AuthenticationError):
        invalid = "required" not in exc.message
        headers["WWW-Authenticate"] = AUTH_REALM + (', error="invalid_token"' if invalid else "")
    return json_response({"error": error_body(exc)}, status, headers)


def _http_type(exc: HTTPException) -> str:
    name = exc.name or "error"
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def http_error_response(exc: HTTPException) -> Response:
    """Turn a werkzeug ``HTTPException`` (404, 405, 413...) into the JSON error shape."""
    status = exc.code or 500
    message = exc.description or exc.name or "error"
    headers: dict[str, str] = {}
    if status == 405:
        valid = getattr(exc, "valid_methods", None)
        if valid:
            headers["Allow"] = ", ".join(sorted(valid))
    if status == 413:
        limit = request.max_content_length
        message = (
            f"the request body is larger than the limit of {limit} bytes"
            if limit
            else "the request body is too large"
        )
    return json_response({"error": {"type": _http_type(exc), "message": message}}, status, headers)


def unexpected_error_response(exc: Exception) -> Response:
    """Log an unexpected exception with an incident id; the client gets the id, not the trace."""
    incident = uuid.uuid4().hex[:12]
    log.error("unexpected error %s on %s %s", incident, request.method, request.path, exc_info=exc)
    return json_response(
        {
            "error": {
                "type": "internal_error",
                "message": f"internal error (incident {incident}, details in the server log)",
            }
        },
        500,
    )


def handle_error(exc: Exception) -> Response:
    """The blueprint's error handler for everything."""
    if isinstance(exc, RegistryError):
        return registry_error_response(exc)
    if isinstance(exc, HTTPException):
        return http_error_response(exc)
    translated = database_error(exc, "the registry database")
    if isinstance(translated, RegistryError):  # a driver error that escaped the engine
        return registry_error_response(translated)
    return unexpected_error_response(exc)


__all__ = [
    "AUTH_REALM",
    "error_body",
    "handle_error",
    "http_error_response",
    "json_response",
    "registry_error_response",
    "unexpected_error_response",
]
