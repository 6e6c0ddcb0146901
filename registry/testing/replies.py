"""What the fake Anthropic server answers: :class:`Reply` and the API's error vocabulary.

A :class:`Reply` describes one answer (a message, an HTTP error, a stream cut short or ending
in an error event, a body that is not JSON), with delays for latency and timeout tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "ERROR_TYPE_BY_STATUS",
    "STATUS_BY_ERROR_TYPE",
    "Reply",
    "ReplyKind",
    "Responder",
    "coerce_reply",
    "estimate_tokens",
    "last_user_text",
    "request_text",
    "split_text",
]

ReplyKind: TypeAlias = Literal[
    "text", "error", "malformed", "cut_stream", "stream_error", "expired", "canceled"
]
"""What a :class:`Reply` makes the server do (``expired`` and ``canceled``: batch items only)."""

ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""The ``error.type`` the real API uses for each HTTP status."""

STATUS_BY_ERROR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status the real API uses for each ``error.type``."""

_DEFAULT_ERROR_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of requests has exceeded your rate limit.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}

_DEFAULT_MALFORMED_BODY = b'{"id": "msg_fake", "type": "message", "content": [<<not json>>'


def estimate_tokens(text: str) -> int:
    """Return a rough token count for ``text``: ``ceil(len(text) / 4)``, at least 1."""
    return max(1, (len(text) + 3) // 4)


def content_text(content: Any) -> str:
    """Return the text of a message ``content`` (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping):
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") == "tool_result":
                parts.append(content_text(block.get("content")))
            elif block.get("type") == "tool_use":
                parts.append(json.dumps(block.get("input", {})))
    return "\n".join(part for part in parts if part)


def request_text(body: Mapping[str, Any]) -> str:
    """Return the text of the system prompt and all messages of a request body."""
    parts = [content_text(body.get("system"))]
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                parts.append(content_text(message.get("content")))
    return "\n".join(part for part in parts if part)


def last_user_text(body: Mapping[str, Any]) -> str:
    """Return the text of the last ``user`` message of a request body ("" if there is none)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return content_text(message.get("content"))
    return ""


def split_text(text: str, chunks: int) -> list[str]:
    """Split ``text`` into at most ``chunks`` non-empty, contiguous, roughly equal pieces."""
    if not text:
        return []
    count = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


@dataclass(frozen=True)
class Reply:
    """A scripted answer of the fake server; build it with the class-method constructors.

    ``kind`` selects the behaviour; the other fields are used by the kinds they concern.
    ``delay`` is slept before answering (on top of ``FakeAnthropic.latency``); ``chunk_delay``
    is slept between SSE events of a stream.
    """

    kind: ReplyKind = "text"
    output: str = ""
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_ttl: str = "5m"
    status: int = 200
    error_type: str = "api_error"
    error_message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunks: int = 4

    @classmethod
    def text(
        cls,
        text: str,
        *,
        stop_reason: str = "end_turn",
        stop_sequence: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        cache_ttl: str = "5m",
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        chunks: int = 4,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A successful assistant message whose single text block is ``text``.

        ``input_tokens`` defaults to the estimate of the request's system prompt and messages,
        ``output_tokens`` to the estimate of ``text``. With ``stop_reason="stop_sequence"`` and
        no ``stop_sequence``, the first of the request's ``stop_sequences`` is reported. When
        streamed, ``text`` is sent as ``chunks`` text deltas.

        Prompt caching: ``cache_creation_input_tokens`` and ``cache_read_input_tokens`` report
        those counts as given (``cache_ttl`` says which cache the written tokens went to, "5m"
        or "1h"); without them, and without ``input_tokens``, the server's prompt cache
        accounts for the request's ``cache_control`` marks (:mod:`registry.testing.prompt_cache`).
        """
        if cache_ttl not in ("5m", "1h"):
            raise ValueError("cache_ttl must be '5m' or '1h'")
        return cls(
            kind="text",
            output=text,
            stop_reason=stop_reason,
            stop_sequence=stop_sequence,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            cache_read_input_tokens=cache_read_input_tokens,
            cache_ttl=cache_ttl,
            delay=delay,
            chunk_delay=chunk_delay,
            chunks=chunks,
            headers=dict(headers or {}),
        )

    @classmethod
    def error(
        cls,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        delay: float = 0.0,
    ) -> Reply:
        """An HTTP error answer with Anthropic's error body.

        The body is ``{"type": "error", "error": {"type": error_type, "message": message},
        "request_id": ...}``. ``error_type`` defaults from ``status`` (e.g. 429 ->
        ``rate_limit_error``, 529 -> ``overloaded_error``); ``headers`` are extra response
        headers such as ``{"retry-after": "1"}`` or ``{"x-should-retry": "false"}``.
        """
        resolved_type = error_type or ERROR_TYPE_BY_STATUS.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return cls(
            kind="error",
            status=status,
            error_type=resolved_type,
            error_message=message or _DEFAULT_ERROR_MESSAGES.get(resolved_type, "Error"),
            headers=dict(headers or {}),
            delay=delay,
        )

    @classmethod
    def slow(cls, seconds: float, text: str = "slow reply", **kwargs: Any) -> Reply:
        """A text reply sent only after sleeping ``seconds`` (for client-timeout tests).

        Extra keyword arguments go to :meth:`text`.
        """
        return cls.text(text, delay=seconds, **kwargs)

    @classmethod
    def cut_stream(
        cls,
        text_before_cut: str = "partial ",
        *,
        chunks: int = 2,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> Reply:
        """A stream that breaks: ``message_start`` and deltas of ``text_before_cut``, then the
        connection is closed abruptly (no ``message_stop``, no final empty chunk).

        For a non-streaming request, the headers announce the full JSON body but only half of
        it is sent before the connection is closed.
        """
        return cls(
            kind="cut_stream",
            output=text_before_cut,
            chunks=chunks,
            delay=delay,
            chunk_delay=chunk_delay,
        )

    @classmethod
    def stream_error_event(
        cls,
        text_before: str = "partial ",
        error_type: str = "overloaded_error",
        message: str | None = None,
        *,
        chunks: int = 2,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> Reply:
        """A stream that sends deltas of ``text_before`` and then an ``event: error`` with
        ``{"type": "error", "error": {"type": error_type, "message": message}}``, after which
        the stream ends (cleanly, at the HTTP level).

        For a non-streaming request it is answered as the matching HTTP error (e.g. 529).
        """
        return cls(
            kind="stream_error",
            output=text_before,
            status=STATUS_BY_ERROR_TYPE.get(error_type, 500),
            error_type=error_type,
            error_message=message or _DEFAULT_ERROR_MESSAGES.get(error_type, "Error"),
            chunks=chunks,
            delay=delay,
            chunk_delay=chunk_delay,
        )

    @classmethod
    def malformed(
        cls,
        body: bytes = _DEFAULT_MALFORMED_BODY,
        *,
        status: int = 200,
        content_type: str = "application/json",
        delay: float = 0.0,
    ) -> Reply:
        """A ``status`` answer whose body is ``body`` (by default truncated, invalid JSON).

        For a streaming request a ``text/event-stream`` is sent whose ``message_start`` event
        carries ``body`` as its (invalid) data, after which the stream ends.
        """
        return cls(
            kind="malformed", status=status, raw_body=body, content_type=content_type, delay=delay
        )

    @classmethod
    def expired(cls) -> Reply:
        """A Message Batches item that expired before it was processed (``expired`` result).

        Only meaningful in a batch: a ``/v1/messages`` request answers it as a 500.
        """
        return cls(kind="expired", status=500, error_message="expired is a batch item outcome")

    @classmethod
    def canceled(cls) -> Reply:
        """A Message Batches item canceled before it was processed (``canceled`` result).

        Only meaningful in a batch: a ``/v1/messages`` request answers it as a 500.
        """
        return cls(kind="canceled", status=500, error_message="canceled is a batch item outcome")

    @property
    def scripted_usage(self) -> bool:
        """True when the reply fixes its input or cache token counts (no cache accounting)."""
        return (
            self.input_tokens is not None
            or self.cache_creation_input_tokens is not None
            or self.cache_read_input_tokens is not None
        )

    def replace(self, **changes: Any) -> Reply:
        """Return a copy with ``changes`` applied, e.g. ``reply.replace(delay=0.2)``."""
        return dataclasses.replace(self, **changes)


Responder: TypeAlias = Callable[[dict[str, Any]], "Reply | str | None"]
"""Computes the reply to a request from its JSON body; ``None`` falls back to the default."""


def coerce_reply(reply: Reply | str) -> Reply:
    """Turn a plain string into :meth:`Reply.text`."""
    return Reply.text(reply) if isinstance(reply, str) else reply
