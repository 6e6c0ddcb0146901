"""Rate limits of the fake Anthropic server: the API's ``anthropic-ratelimit-*`` headers on every
answer and, when enforced, a 429 with ``retry-after`` once a limit is spent.

Limits are counted in fixed windows (``window`` seconds from the first request after a reset):
requests, input tokens (estimated from the request) and output tokens (of the answers sent).
A refused request consumes nothing and leaves the scripted replies untouched.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

HEADER = "anthropic-ratelimit-{}-{}"


@dataclass(frozen=True)
class RateLimit:
    """Per-window limits; ``None`` leaves a family out (no headers, never refused)."""

    requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    window: float = 60.0
    """Seconds a window lasts."""
    enforce: bool = False
    """Refuse with 429 once a limit is spent (otherwise only report it in headers)."""


@dataclass(frozen=True)
class Admission:
    """The verdict on one request: the headers to send, and whether it is refused."""

    headers: dict[str, str]
    refused: bool = False
    retry_after: int = 0
    reason: str = ""


class RateCounter:
    """Thread-safe accounting of one :class:`RateLimit` (``clock`` is ``time.time``)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._start: float | None = None
        self._used = {"requests": 0, "input-tokens": 0, "output-tokens": 0}

    def _limits(self) -> dict[str, int | None]:
        return {
            "requests": self.limit.requests,
            "input-tokens": self.limit.input_tokens,
            "output-tokens": self.limit.output_tokens,
        }

    def _roll(self, now: float) -> float:
        if self._start is None or now >= self._start + self.limit.window:
            self._start = now
            self._used = dict.fromkeys(self._used, 0)
        return self._start + self.limit.window

    def _headers(self, reset_at: float) -> dict[str, str]:
        reset = datetime.fromtimestamp(reset_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers: dict[str, str] = {}
        for family, limit in self._limits().items():
            if limit is None:
                continue
            headers[HEADER.format(family, "limit")] = str(limit)
            headers[HEADER.format(family, "remaining")] = str(max(0, limit - self._used[family]))
            headers[HEADER.format(family, "reset")] = reset
        return headers

    def admit(self, input_tokens: int) -> Admission:
        """Count a request of ``input_tokens`` (or refuse it, when enforced and spent)."""
        with self._lock:
            now = self._clock()
            reset_at = self._roll(now)
            limits = self._limits()
            spent = [
                family
                for family, need in (("requests", 1), ("input-tokens", input_tokens))
                if limits[family] is not None and self._used[family] + need > (limits[family] or 0)
            ]
            output_limit = limits["output-tokens"]
            if output_limit is not None and self._used["output-tokens"] >= output_limit:
                spent.append("output-tokens")
            if self.limit.enforce and spent:
                wait = max(1, math.ceil(reset_at - now))
                headers = self._headers(reset_at) | {"retry-after": str(wait)}
                reason = f"This request would exceed the rate limit of {spent[0]} per window."
                return Admission(headers, refused=True, retry_after=wait, reason=reason)
            self._used["requests"] += 1
            self._used["input-tokens"] += input_tokens
            return Admission(self._headers(reset_at))

    def settle(self, output_tokens: int) -> dict[str, str]:
        """Count the output tokens of an answer; the headers to send with it."""
        with self._lock:
            reset_at = self._roll(self._clock())
            self._used["output-tokens"] += output_tokens
            return self._headers(reset_at)


__all__ = ["Admission", "RateCounter", "RateLimit"]
