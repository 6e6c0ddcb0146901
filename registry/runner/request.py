"""Building the Messages API request from a rendered version.

The request is ``Rendered.to_request()`` (system, messages, settings; ``temperature``/``top_p``/
``top_k`` in ``extra_body``) plus ``output_config.format`` carrying the version's output schema
when the model supports native structured output.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import anthropic

try:
    from anthropic._constants import MODEL_NONSTREAMING_TOKENS as _MODEL_NONSTREAMING_TOKENS
except ImportError:  # pragma: no cover - moved in a future SDK
    _MODEL_NONSTREAMING_TOKENS = {}

from ..prices import supports_structured_output
from ..rendering import Rendered
from ..versions import PromptVersion, canonical_json

logger = logging.getLogger(__name__)

#: above this ``max_tokens`` the SDK refuses a non-streaming call (expected time > 10 min):
#: the runner streams such requests internally
NONSTREAMING_MAX_TOKENS = 21_333

#: request keys that are not logged as "parameters" (they are the prompt itself)
_CONTENT_KEYS = ("system", "messages")

_native: dict[str, dict[str, Any] | None] = {}
_native_lock = threading.Lock()


def native_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The output schema in the strict form the API accepts, or None when it cannot be.

    Uses the SDK's ``transform_schema`` (``additionalProperties: false`` on objects, unsupported
    keywords moved into descriptions). The answer is still validated against the original.
    """
    key = canonical_json(schema)
    if key in _native:
        return _native[key]
    try:
        strict: dict[str, Any] | None = anthropic.transform_schema(_split_type_lists(schema))
    except Exception as exc:  # the SDK asserts on shapes it does not know
        logger.warning("output schema cannot be sent as native structured output: %s", exc)
        strict = None
    with _native_lock:
        if len(_native) > 1024:
            _native.clear()
        _native[key] = strict
    return strict


#: keywords that belong to one JSON type (moved into that type's branch by ``_split_type_lists``)
_TYPE_KEYWORDS = {
    "object": ("properties", "required", "additionalProperties", "minProperties", "maxProperties"),
    "array": ("items", "prefixItems", "minItems", "maxItems", "uniqueItems"),
    "string": ("format", "pattern", "minLength", "maxLength"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
}


def _split_type_lists(schema: Any) -> Any:
    """``{"type": ["string", "null"]}`` as ``{"anyOf": [{"type": "string"}, {"type": "null"}]}``.

    The SDK's ``transform_schema`` only knows a single ``type``; this is the same schema in the
    form it understands. Type-specific keywords go into their branch.
    """
    if isinstance(schema, list):
        return [_split_type_lists(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k in ("properties", "$defs", "definitions") and isinstance(v, dict):
            out[k] = {name: _split_type_lists(sub) for name, sub in v.items()}
        elif k in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
            out[k] = _split_type_lists(v)
        else:
            out[k] = v
    types = out.get("type")
    if isinstance(types, list):
        if len(types) == 1:
            out["type"] = types[0]
        elif "anyOf" not in out:
            del out["type"]
            branches = []
            for t in types:
                branch: dict[str, Any] = {"type": t}
                for kw in _TYPE_KEYWORDS.get(str(t), ()):
                    if kw in out:
                        branch[kw] = out[kw]
                branches.append(branch)
            for branch in branches:
                for kw in branch:
                    out.pop(kw, None)
            out["anyOf"] = branches
    return out


def build_request(version: PromptVersion, rendered: Rendered) -> dict[str, Any]:
    """Keyword arguments for ``client.messages.create`` (without ``stream`` and ``timeout``)."""
    request = rendered.to_request()
    schema = version.output_schema
    if schema is not None and supports_structured_output(str(request["model"])):
        config = dict(request.get("output_config") or {})
        if config.get("format") is None:
            strict = native_schema(schema)
            if strict is not None:
                config["format"] = {"type": "json_schema", "schema": strict}
                request["output_config"] = config
    return request


def request_params(request: dict[str, Any]) -> dict[str, Any]:
    """What the run log stores as the request's parameters (everything but the prompt)."""
    return {k: v for k, v in request.items() if k not in _CONTENT_KEYS}


def request_hash(request: dict[str, Any]) -> str:
    """sha256 of the exact request: the response-cache key and the run's ``input_hash``."""
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


def estimate_input_tokens(request: dict[str, Any]) -> int:
    """A rough input token count (characters / 4) for client-side token rate limits."""
    chars = len(str(request.get("system") or ""))
    for message in request.get("messages", ()):
        chars += len(str(message.get("content", "")))
    return max(1, chars // 4)


def must_stream(request: dict[str, Any]) -> bool:
    """True when the SDK would refuse the request without streaming (large ``max_tokens``)."""
    max_tokens = int(request.get("max_tokens", 0))
    limit = _MODEL_NONSTREAMING_TOKENS.get(str(request.get("model")))
    return max_tokens > NONSTREAMING_MAX_TOKENS or (limit is not None and max_tokens > limit)


__all__ = [
    "NONSTREAMING_MAX_TOKENS",
    "build_request",
    "estimate_input_tokens",
    "must_stream",
    "native_schema",
    "request_hash",
    "request_params",
]
