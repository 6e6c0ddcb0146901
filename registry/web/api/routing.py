"""Operations of the API: one table drives the Flask routes, the checks and the OpenAPI document.

Each endpoint is declared once with :func:`operation` (method, path, scope, query and body
models, responses). :func:`dispatch` wraps it: authenticate and check the scope, parse the
query and the JSON body into their models (errors name the field), then call the view.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
from flask import Response, current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from ...api_keys import ApiKeyInfo, authenticate_api_key, require_scope
from ...errors import AuthenticationError, ValidationError
from ...text import has_lone_surrogate
from .. import get_registry

#: default cap of a request body, in bytes (``API_MAX_BODY_BYTES`` in the app config)
MAX_BODY_BYTES = 1024 * 1024

View = Callable[..., Response]


@dataclass(frozen=True)
class Operation:
    """One endpoint: what it takes, what it answers, who may call it."""

    method: str
    path: str
    view: View
    summary: str
    description: str
    scope: str | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    responses: Mapping[int, tuple[str, type[BaseModel] | None]]
    errors: tuple[int, ...]
    tags: tuple[str, ...]
    params: Mapping[str, str] = field(default_factory=dict)
    streams: bool = False
    etag: bool = False

    @property
    def operation_id(self) -> str:
        """The view's name (``get_prompt``...)."""
        return self.view.__name__

    @property
    def rule(self) -> str:
        """The Flask rule: ``{name}`` takes slashes (folders), other parameters do not."""
        return re.sub(
            r"\{(\w+)\}",
            lambda m: f"<path:{m.group(1)}>" if m.group(1) == "name" else f"<{m.group(1)}>",
            self.path,
        )


#: every operation, in the order they are declared (the document lists them in this order)
OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    summary: str,
    scope: str | None,
    responses: Mapping[int, tuple[str, type[BaseModel] | None]],
    errors: tuple[int, ...] = (),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    tags: tuple[str, ...] = (),
    params: Mapping[str, str] | None = None,
    streams: bool = False,
    etag: bool = False,
) -> Callable[[View], View]:
    """Declare an endpoint; the view's docstring becomes its description."""

    def register(view: View) -> View:
        doc = (view.__doc__ or "").strip()
        OPERATIONS.append(
            Operation(
                method=method,
                path=path,
                view=view,
                summary=summary,
                description=doc,
                scope=scope,
                query=query,
                body=body,
                responses=responses,
                errors=errors,
                tags=tags,
                params=params or {},
                streams=streams,
                etag=etag,
            )
        )
        return view

    return register


def bearer_token() -> str | None:
    """The key of ``Authorization: Bearer <key>``; refuses other schemes with a clear message."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError("invalid Authorization header: use 'Authorization: Bearer <key>'")
    return token.strip() or None


def authenticate(scope: str) -> ApiKeyInfo:
    """The caller's key, checked for ``scope`` (401 without a valid key, 403 without the scope)."""
    key = authenticate_api_key(get_registry(), bearer_token())
    require_scope(key, scope)
    return key


def _validation_error(exc: pydantic.ValidationError, prefix: str = "") -> ValidationError:
    """One ``ValidationError`` naming the first field at fault and listing every problem."""
    errors = exc.errors()
    loc = errors[0]["loc"] if errors else ()
    where = ".".join(str(p) for p in loc) or None
    parts = []
    for err in errors:
        at = ".".join(str(p) for p in err["loc"]) or "body"
        problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{at}: {problem}")
    return ValidationError(prefix + "; ".join(parts), field=where)


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string as ``model`` (422 naming the parameter on a bad value)."""
    try:
        return model.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        raise _validation_error(exc, "query parameter ") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body() -> dict[str, Any]:
    """The body as a JSON object: 413 past the cap, 415 for other media, 400 if not JSON."""
    limit = int(current_app.config.get("API_MAX_BODY_BYTES") or MAX_BODY_BYTES)
    request.max_content_length = limit
    mimetype = request.mimetype
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body is {mimetype}; send JSON with 'Content-Type: application/json'"
        )
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is not valid JSON: it nests too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(data).__name__}")
    if _SURROGATE_ESCAPE.search(raw) and has_lone_surrogate(data):
        raise BadRequest(
            "the body is not valid JSON: a lone UTF-16 surrogate escape (such as \\ud800) is "
            "not a character; send the character itself or a complete surrogate pair"
        )
    return data


#: a ``\uD800``-``\uDFFF`` escape in raw JSON (the cheap test before walking the object)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_body(model: type[BaseModel]) -> tuple[BaseModel, dict[str, Any]]:
    """The JSON body as ``model`` and as the raw object (422 naming the field)."""
    data = read_json_body()
    try:
        return model.model_validate(data, strict=True), data
    except pydantic.ValidationError as exc:
        raise _validation_error(exc) from None


def dispatch(op: Operation) -> View:
    """The Flask view for ``op``: auth, query and body parsing, then the declared view."""

    def view(**path_values: Any) -> Response:
        kwargs: dict[str, Any] = dict(path_values)
        if op.scope is not None:
            kwargs["caller"] = authenticate(op.scope)
        if op.query is not None:
            kwargs["query"] = parse_query(op.query)
        elif request.args:
            name = next(iter(request.args))
            raise ValidationError(
                f"unknown query parameter {name!r}: this endpoint takes none", field=name
            )
        if op.body is not None:
            kwargs["body"], kwargs["raw"] = parse_body(op.body)
        return op.view(**kwargs)

    view.__name__ = op.operation_id
    view.__doc__ = op.description
    return view


__all__ = [
    "MAX_BODY_BYTES",
    "OPERATIONS",
    "Operation",
    "authenticate",
    "bearer_token",
    "dispatch",
    "operation",
    "parse_body",
    "parse_query",
    "read_json_body",
]
