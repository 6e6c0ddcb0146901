"""The OpenAPI 3.1 document of ``/api/v1``, generated from the operation table and its models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ... import __version__
from ...names import MAX_PROMPT_NAME
from .routing import OPERATIONS, Operation
from .schemas import LABEL_PATTERN, PROMPT_NAME_PATTERN, ErrorOut

REF = "#/components/schemas/{model}"

ERROR_DESCRIPTIONS = {
    400: "The body is not JSON, or not a JSON object.",
    401: "No API key, an unknown key or a revoked key.",
    403: "The key's scope does not allow this, or the label is protected.",
    404: "No such prompt, version, label, run or experiment.",
    409: "Conflict: the label moved meanwhile (compare-and-set) or the name is taken.",
    413: "The body is larger than the limit.",
    415: "The body is not sent as application/json.",
    422: "A field, parameter or template variable is invalid (`error.field` names it).",
    429: "Rate limited (model provider or client-side limit) or over the daily budget.",
    502: "The model provider failed after retries (the run is logged).",
    503: "Not configured (e.g. no model API key) or the database is unavailable.",
    504: "The run did not finish within its timeout (the run is logged).",
}

PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": PROMPT_NAME_PATTERN, "maxLength": MAX_PROMPT_NAME},
    "label": {"type": "string", "pattern": LABEL_PATTERN},
}

ETAG_HEADER = {
    "ETag": {
        "description": "Changes whenever anything in the answer changes.",
        "schema": {"type": "string"},
    }
}


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorOut, "serialization"): None}
    for op in OPERATIONS:
        if op.body is not None:
            seen[(op.body, "validation")] = None
        for _, model in op.responses.values():
            if model is not None:
                seen[(model, "serialization")] = None
    return list(seen)


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name, description in op.params.items():
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1}),
            }
        )
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", "")
            prop.pop("title", None)
            prop.pop("default", None)
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": description,
                    "schema": _nullable_to_plain(prop),
                }
            )
    if op.etag:
        params.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "An ETag from an earlier answer: 304 while it is current.",
                "schema": {"type": "string"},
            }
        )
    return params


def _nullable_to_plain(prop: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` of an optional query parameter is just X in a URL."""
    options = prop.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        plain = dict(next(o for o in options if o != {"type": "null"}))
        return plain | {k: v for k, v in prop.items() if k != "anyOf"}
    return prop


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": list(op.tags),
        "parameters": _parameters(op, refs),
        "responses": {},
    }
    if op.scope is None:
        doc["security"] = []
    else:
        doc["description"] += f"\n\nNeeds an API key with scope `{op.scope}` or above."
    if op.body is not None:
        doc["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    responses: dict[str, Any] = {}
    for status, (description, model) in sorted(op.responses.items()):
        entry: dict[str, Any] = {"description": description}
        if status != 304:
            schema = refs[(model, "serialization")] if model is not None else {"type": "object"}
            content: dict[str, Any] = {"application/json": {"schema": schema}}
            if op.streams and status == 200:
                content["text/event-stream"] = {
                    "schema": {
                        "type": "string",
                        "description": "event: delta (data {text}), then event: done (data: "
                        "run summary) or event: error (data: error object).",
                    }
                }
            entry["content"] = content
        if op.etag:
            entry["headers"] = ETAG_HEADER
        responses[str(status)] = entry
    for status in sorted(op.errors):
        entry = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": refs[(ErrorOut, "serialization")]}},
        }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {
                    "description": "The Bearer challenge.",
                    "schema": {"type": "string"},
                }
            }
        responses[str(status)] = entry
    doc["responses"] = responses
    return doc


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process; the API does not change at run time)."""
    refs, defs = models_json_schema(_models(), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Prompt registry API",
            "version": __version__,
            "description": "Fetch, render and run versioned prompt templates. Authenticate "
            "with `Authorization: Bearer <api key>`; errors are "
            '`{"error": {"type", "message"}}`.',
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `prompt-registry apikeys create`.",
                }
            },
        },
    }


__all__ = ["openapi_document"]
