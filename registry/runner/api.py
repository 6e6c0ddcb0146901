"""One attempt against the Messages API through the ``anthropic`` SDK: a call or a stream."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from ..errors import ConfigurationError
from ..prices import Usage


@dataclass(frozen=True)
class Answer:
    """What one successful attempt returned."""

    text: str
    stop_reason: str | None
    model: str | None
    request_id: str | None
    usage: Usage


def _usage(u: Any, base: Usage | None = None) -> Usage:
    """Token counts of an SDK usage object; fields it leaves empty come from ``base``."""
    base = base or Usage()
    creation = getattr(u, "cache_creation", None)
    one_hour = getattr(creation, "ephemeral_1h_input_tokens", None) if creation else None

    def pick(name: str, default: int) -> int:
        value = getattr(u, name, None)
        return int(value) if value is not None else default

    return Usage(
        input_tokens=pick("input_tokens", base.input_tokens),
        output_tokens=pick("output_tokens", base.output_tokens),
        cache_creation_input_tokens=pick(
            "cache_creation_input_tokens", base.cache_creation_input_tokens
        ),
        cache_read_input_tokens=pick("cache_read_input_tokens", base.cache_read_input_tokens),
        cache_creation_1h_tokens=int(one_hour) if one_hour else base.cache_creation_1h_tokens,
    )


def create(client: anthropic.Anthropic, request: dict[str, Any], timeout: float) -> Answer:
    """A non-streaming ``messages.create``; the answer's text blocks joined.

    The SDK's raw-response mode is used (errors are raised exactly as with ``create``) and
    only the fields the run needs are read from the JSON: building the SDK's pydantic
    ``Message`` costs more CPU than the rest of a run together. A body that is not a JSON
    message raises ``ValueError``.
    """
    response = client.messages.with_raw_response.create(**request, timeout=timeout)
    data = json.loads(response.http_response.content)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ValueError(f"the API answered something that is not a message: {str(data)[:200]}")
    text = "".join(
        str(block.get("text") or "")
        for block in data["content"]
        if isinstance(block, dict) and block.get("type") == "text"
    )
    raw_usage = data.get("usage") or {}
    creation = raw_usage.get("cache_creation") or {}
    return Answer(
        text=text,
        stop_reason=data.get("stop_reason"),
        model=data.get("model"),
        request_id=response.request_id,
        usage=Usage(
            input_tokens=int(raw_usage.get("input_tokens") or 0),
            output_tokens=int(raw_usage.get("output_tokens") or 0),
            cache_creation_input_tokens=int(raw_usage.get("cache_creation_input_tokens") or 0),
            cache_read_input_tokens=int(raw_usage.get("cache_read_input_tokens") or 0),
            cache_creation_1h_tokens=int(creation.get("ephemeral_1h_input_tokens") or 0),
        ),
    )


@dataclass
class StreamState:
    """What a stream delivered so far (kept when it breaks)."""

    on_first_text: Callable[[], None] | None = None
    parts: list[str] = field(default_factory=list)
    request_id: str | None = None

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self.parts)


def stream(
    client: anthropic.Anthropic, request: dict[str, Any], timeout: float, state: StreamState
) -> Generator[str, None, Answer]:
    """A streaming ``messages.create``: yields text deltas, returns the complete answer.

    A stream that ends without ``message_stop`` raises ``httpx2.RemoteProtocolError``; an
    ``error`` event raises the SDK's ``APIStatusError``. The HTTP response is always closed.
    """
    events = client.messages.create(**request, stream=True, timeout=timeout)
    try:
        state.request_id = events.response.headers.get("request-id")
        model: str | None = None
        stop_reason: str | None = None
        usage = Usage()
        complete = False
        for event in events:
            kind = event.type
            if kind == "content_block_delta":
                delta = event.delta
                if delta.type == "text_delta" and delta.text:
                    if not state.parts and state.on_first_text is not None:
                        state.on_first_text()
                    state.parts.append(delta.text)
                    yield delta.text
            elif kind == "message_start":
                model = event.message.model
                usage = _usage(event.message.usage)
            elif kind == "message_delta":
                stop_reason = event.delta.stop_reason
                usage = _usage(event.usage, usage)
            elif kind == "message_stop":
                complete = True
        if not complete:
            raise httpx2.RemoteProtocolError("the stream ended before message_stop")
    finally:
        events.close()
    return Answer(
        text=state.text,
        stop_reason=stop_reason,
        model=model,
        request_id=state.request_id,
        usage=usage,
    )


def count_tokens(client: anthropic.Anthropic, request: dict[str, Any], timeout: float) -> int:
    """Input tokens of ``request`` by ``messages.count_tokens``."""
    keys = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")
    params = {k: request[k] for k in keys if k in request}
    return int(client.messages.count_tokens(**params, timeout=timeout).input_tokens)


class SdkClient:
    """An ``anthropic.Anthropic`` client: built on first use from ``ANTHROPIC_API_KEY`` (and
    ``ANTHROPIC_BASE_URL``), rebuilt when either changes."""

    def __init__(self) -> None:
        self._client: anthropic.Anthropic | None = None
        self._ident: tuple[str, str | None] | None = None
        self._lock = threading.Lock()

    def get(self) -> anthropic.Anthropic:
        """The client (``ConfigurationError`` when no API key is set: nothing is sent)."""
        key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
        if not key:
            raise ConfigurationError(
                "ANTHROPIC_API_KEY is not set: export your Anthropic API key before running "
                "prompts (no request was sent)"
            )
        base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
        ident = (hashlib.sha256(key.encode()).hexdigest(), base_url)
        with self._lock:
            if self._client is None or self._ident != ident:
                self._client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0)
                self._ident = ident
            return self._client

    def close(self) -> None:
        """Close the HTTP connections (a later ``get`` builds a new client)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def perf_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` value)."""
    return (time.perf_counter() - start) * 1000.0


__all__ = ["Answer", "SdkClient", "StreamState", "count_tokens", "create", "perf_ms", "stream"]
