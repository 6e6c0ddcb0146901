"""Prompt caching as the fake Anthropic server accounts for it: breakpoints, TTLs, usage.

A request marks cache breakpoints with ``cache_control: {"type": "ephemeral", "ttl": "5m"|"1h"}``
on tools, on system content blocks and on message content blocks (or once at the top level of
the request: automatic caching, a breakpoint after the last block). The prefix up to each
breakpoint is the cache key. Like the API, :class:`PromptCache`:

* reads the longest cached prefix (``cache_read_input_tokens``) and refreshes its lifetime;
* writes the prefixes of the later breakpoints that reach the minimum cacheable length
  (``cache_creation_input_tokens``, split by TTL in ``cache_creation``);
* charges the rest as ``input_tokens``;
* refuses more than 4 breakpoints and a 1-hour breakpoint after a 5-minute one (400).

Token counts are the fake's usual estimate (4 characters a token) of the cumulative text.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .replies import content_text, estimate_tokens, request_text

#: the API's limit of cache breakpoints per request
MAX_BREAKPOINTS = 4
#: seconds an entry lives after its last use, by TTL
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
#: the default minimum cacheable prefix (tokens); shorter prefixes are never cached
DEFAULT_MIN_TOKENS = 1024


class CacheRequestError(ValueError):
    """A request whose cache marks the API would refuse (answered 400)."""


@dataclass(frozen=True)
class CacheUsage:
    """Input token counts of one request with prompt caching accounted for."""

    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_1h_tokens: int = 0

    def to_usage(self, output_tokens: int) -> dict[str, Any]:
        """The ``usage`` object of a message."""
        one_hour = self.cache_creation_1h_tokens
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_creation_input_tokens - one_hour,
                "ephemeral_1h_input_tokens": one_hour,
            },
            "output_tokens": output_tokens,
        }


@dataclass(frozen=True)
class Breakpoint:
    """A cache breakpoint: the prefix it closes (its key and token count) and its TTL."""

    key: str
    tokens: int
    ttl: str


def _ttl(mark: Any, where: str) -> str:
    if not isinstance(mark, Mapping) or mark.get("type") != "ephemeral":
        raise CacheRequestError(f"{where}.cache_control: type must be 'ephemeral'")
    ttl = mark.get("ttl") or "5m"
    if ttl not in TTL_SECONDS:
        raise CacheRequestError(f"{where}.cache_control.ttl: must be '5m' or '1h'")
    return str(ttl)


def _tokens(chars: int) -> int:
    return max(1, (chars + 3) // 4)


def breakpoints(body: Mapping[str, Any]) -> tuple[list[Breakpoint], int]:
    """The cache breakpoints of a request body in prefix order (tools, system, messages), and
    the estimated input tokens of the whole request counted the same way."""
    digest = hashlib.sha256(str(body.get("model", "")).encode())
    chars = 0
    found: list[Breakpoint] = []

    def add(text: str, mark: Any, where: str) -> None:
        nonlocal chars
        digest.update(text.encode("utf-8", "surrogatepass"))
        chars += len(text)
        if mark is not None:
            ttl = _ttl(mark, where)
            found.append(Breakpoint(digest.copy().hexdigest(), _tokens(chars), ttl))

    tools = body.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            if isinstance(tool, Mapping):
                plain = {k: v for k, v in tool.items() if k != "cache_control"}
                add(json.dumps(plain, sort_keys=True), tool.get("cache_control"), f"tools.{i}")
    system = body.get("system")
    if isinstance(system, str):
        add(system, None, "system")
    elif isinstance(system, list):
        for i, block in enumerate(system):
            if isinstance(block, Mapping):
                add(content_text([block]), block.get("cache_control"), f"system.{i}")
    messages = body.get("messages")
    if isinstance(messages, list):
        for m, message in enumerate(messages):
            if not isinstance(message, Mapping):
                continue
            digest.update(str(message.get("role")).encode())
            content = message.get("content")
            if isinstance(content, list):
                for b, block in enumerate(content):
                    if isinstance(block, Mapping):
                        where = f"messages.{m}.content.{b}"
                        add(content_text([block]), block.get("cache_control"), where)
            else:
                add(content_text(content), None, f"messages.{m}")
    automatic = body.get("cache_control")
    if automatic is not None:
        add("", automatic, "cache_control")
    if len(found) > MAX_BREAKPOINTS:
        raise CacheRequestError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(found)}."
        )
    seen_5m = False
    for point in found:
        if point.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise CacheRequestError(
                "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block"
            )
    return found, _tokens(chars)


class PromptCache:
    """The fake's prompt cache: prefixes by key with their expiry, shared by every request.

    ``min_tokens`` is the minimum cacheable prefix (tokens, default 1024); ``clock`` returns
    seconds (``time.monotonic`` unless a test moves time itself).
    """

    def __init__(
        self, *, min_tokens: int = DEFAULT_MIN_TOKENS, clock: Callable[[], float] | None = None
    ) -> None:
        self.min_tokens = min_tokens
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._entries: dict[str, float] = {}

    def clear(self) -> None:
        """Forget every cached prefix."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def account(self, body: Mapping[str, Any]) -> CacheUsage:
        """Read and write the cache for ``body``; the input token counts it is charged.

        Raises :class:`CacheRequestError` for marks the API refuses.
        """
        points, total = breakpoints(body)
        if not points:
            return CacheUsage(input_tokens=estimate_tokens(request_text(body)))
        now = self.clock()
        with self._lock:
            read = 0
            hit = -1
            for i in range(len(points) - 1, -1, -1):
                expires = self._entries.get(points[i].key)
                if expires is not None and expires > now:
                    hit, read = i, points[i].tokens
                    self._entries[points[i].key] = now + TTL_SECONDS[points[i].ttl]
                    break
            written = one_hour = 0
            covered = read
            for point in points[hit + 1 :]:
                if point.tokens < self.min_tokens or point.tokens <= covered:
                    continue
                segment = point.tokens - covered
                written += segment
                if point.ttl == "1h":
                    one_hour += segment
                covered = point.tokens
                self._entries[point.key] = now + TTL_SECONDS[point.ttl]
        return CacheUsage(
            input_tokens=max(0, total - read - written),
            cache_creation_input_tokens=written,
            cache_read_input_tokens=read,
            cache_creation_1h_tokens=one_hour,
        )


__all__ = [
    "DEFAULT_MIN_TOKENS",
    "MAX_BREAKPOINTS",
    "Breakpoint",
    "CacheRequestError",
    "CacheUsage",
    "PromptCache",
    "breakpoints",
]
