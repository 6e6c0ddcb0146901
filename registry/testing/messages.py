"""The ``Message`` objects the fake Anthropic server answers: ids, usage, payloads.

Shared by ``/v1/messages`` (JSON and streamed) and the Message Batches results, so an answer
has the same shape and the same token accounting wherever it comes from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .prompt_cache import CacheUsage, PromptCache, breakpoints
from .replies import Reply, estimate_tokens, request_text


def message_id() -> str:
    """A fresh message id such as ``msg_fake_0123456789abcdef01234567``."""
    return f"msg_fake_{uuid.uuid4().hex[:24]}"


def stop_sequence(reply: Reply, body: Mapping[str, Any]) -> str | None:
    """The stop sequence to report for ``reply`` (the request's first one when not scripted)."""
    if reply.stop_sequence is not None or reply.stop_reason != "stop_sequence":
        return reply.stop_sequence
    sequences = body.get("stop_sequences")
    if isinstance(sequences, list) and sequences and isinstance(sequences[0], str):
        return sequences[0]
    return None


def output_tokens(reply: Reply) -> int:
    """The output tokens of ``reply`` (scripted, else the estimate of its text)."""
    return reply.output_tokens if reply.output_tokens is not None else estimate_tokens(reply.output)


def input_usage(reply: Reply, body: Mapping[str, Any], cache: PromptCache | None) -> CacheUsage:
    """The input token counts of answering ``body`` with ``reply``.

    Scripted counts win; otherwise ``cache`` (when given) accounts for the request's
    ``cache_control`` marks. Raises :class:`~registry.testing.prompt_cache.CacheRequestError`
    for marks the API refuses (more than 4, a 1-hour mark after a 5-minute one).
    """
    if reply.scripted_usage:
        if cache is not None:
            breakpoints(body)  # refuse what the API refuses, even with scripted counts
        written = reply.cache_creation_input_tokens or 0
        return CacheUsage(
            input_tokens=(
                reply.input_tokens
                if reply.input_tokens is not None
                else estimate_tokens(request_text(body))
            ),
            cache_creation_input_tokens=written,
            cache_read_input_tokens=reply.cache_read_input_tokens or 0,
            cache_creation_1h_tokens=written if reply.cache_ttl == "1h" else 0,
        )
    if cache is None:
        return CacheUsage(input_tokens=estimate_tokens(request_text(body)))
    return cache.account(body)


def message_payload(reply: Reply, body: Mapping[str, Any], usage: CacheUsage) -> dict[str, Any]:
    """The JSON ``Message`` of a complete (non-streamed) answer."""
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model", "claude-fake")),
        "content": [{"type": "text", "text": reply.output}] if reply.output else [],
        "stop_reason": reply.stop_reason,
        "stop_sequence": stop_sequence(reply, body),
        "usage": usage.to_usage(output_tokens(reply)),
    }


__all__ = ["input_usage", "message_id", "message_payload", "output_tokens", "stop_sequence"]
