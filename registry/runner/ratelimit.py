"""Client-side rate limits per model: requests per minute, concurrent requests, input tokens.

Callers wait in arrival order (first come, first served) until their request fits, up to a
deadline; then they get :class:`~registry.errors.RateLimited`. Thread-safe: one
:class:`RateLimiter` serves every thread of a process.

Configure in code (``runner.limiter.configure("claude-sonnet-4-6", ModelLimits(concurrency=5))``)
or with ``REGISTRY_RATE_LIMITS``, e.g.
``"claude-sonnet-4-6: rpm=50, concurrency=5, itpm=40000; *: concurrency=16"``
(``*`` applies to every model without its own entry).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, fields

from ..errors import RateLimited, ValidationError

#: a bucket holds this many seconds' worth of its per-minute rate (the burst allowed)
BURST_SECONDS = 10.0


@dataclass(frozen=True)
class ModelLimits:
    """Limits for one model; ``None`` means unlimited.

    ``rpm``: requests started per minute; ``concurrency``: requests in flight at once;
    ``itpm``: input tokens per minute (estimated from the request's length, or counted with
    ``messages.count_tokens`` when ``count_tokens`` is true); ``max_wait``: most seconds a
    caller queues, whatever its own timeout.
    """

    rpm: float | None = None
    concurrency: int | None = None
    itpm: float | None = None
    max_wait: float | None = None
    count_tokens: bool = False

    def __post_init__(self) -> None:
        for name in ("rpm", "itpm", "max_wait"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValidationError(f"rate limit {name} must be positive, got {value}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValidationError(
                f"rate limit concurrency must be at least 1, got {self.concurrency}"
            )


_ALIASES = {
    "rpm": "rpm",
    "requests_per_minute": "rpm",
    "concurrency": "concurrency",
    "concurrent": "concurrency",
    "itpm": "itpm",
    "input_tokens_per_minute": "itpm",
    "max_wait": "max_wait",
    "count_tokens": "count_tokens",
}


def parse_limits(spec: str) -> dict[str, ModelLimits]:
    """Parse ``"model: rpm=50, concurrency=5; *: concurrency=16"`` into limits per model."""
    out: dict[str, ModelLimits] = {}
    for part in spec.split(";"):
        if not part.strip():
            continue
        model, sep, body = part.partition(":")
        model = model.strip()
        if not sep or not model:
            raise ValidationError(
                f"rate limit entry {part.strip()!r} is not 'model: key=value, ...'",
                field="REGISTRY_RATE_LIMITS",
            )
        values: dict[str, float | int | bool] = {}
        for item in body.split(","):
            if not item.strip():
                continue
            key, eq, raw = item.partition("=")
            name = _ALIASES.get(key.strip().lower())
            if not eq or name is None:
                known = ", ".join(f.name for f in fields(ModelLimits))
                raise ValidationError(
                    f"rate limit setting {item.strip()!r} for {model}: "
                    f"use key=value with keys {known}",
                    field="REGISTRY_RATE_LIMITS",
                )
            try:
                if name == "count_tokens":
                    values[name] = raw.strip().lower() in ("1", "true", "yes")
                elif name == "concurrency":
                    values[name] = int(raw)
                else:
                    values[name] = float(raw)
            except ValueError:
                raise ValidationError(
                    f"rate limit {name} for {model} must be a number, got {raw.strip()!r}",
                    field="REGISTRY_RATE_LIMITS",
                ) from None
        out[model] = ModelLimits(**values)  # type: ignore[arg-type]
    return out


class _Bucket:
    """A token bucket refilled continuously at ``per_minute / 60`` per second."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, per_minute: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (an amount above capacity needs a full bucket)."""
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate


class Permit:
    """A granted request slot; ``release()`` (or leaving the ``with`` block) gives it back."""

    __slots__ = ("_gate", "_released")

    def __init__(self, gate: _Gate | None) -> None:
        self._gate = gate
        self._released = False

    def release(self) -> None:
        """Give the concurrency slot back (idempotent)."""
        if not self._released:
            self._released = True
            if self._gate is not None:
                self._gate.release()

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_FREE = Permit(None)


class _Gate:
    """The queue and counters of one model."""

    def __init__(self, model: str, limits: ModelLimits) -> None:
        now = time.monotonic()
        self.model = model
        self.limits = limits
        self.cond = threading.Condition()
        self.queue: deque[object] = deque()
        self.in_flight = 0
        self.requests = _Bucket(limits.rpm, now) if limits.rpm else None
        self.tokens = _Bucket(limits.itpm, now) if limits.itpm else None
        self.paused_until = 0.0

    def reconfigure(self, limits: ModelLimits) -> None:
        """Apply new limits in place: requests in flight keep counting against the new bound."""
        with self.cond:
            now = time.monotonic()
            self.limits = limits
            self.requests = _Bucket(limits.rpm, now) if limits.rpm else None
            self.tokens = _Bucket(limits.itpm, now) if limits.itpm else None
            self.cond.notify_all()

    def _wait_needed(self, tokens: int, now: float) -> float:
        """0 when a request may start now, else seconds to wait (inf: until a release)."""
        wait = max(0.0, self.paused_until - now)
        if self.limits.concurrency is not None and self.in_flight >= self.limits.concurrency:
            return float("inf")
        if self.requests is not None:
            self.requests.refill(now)
            wait = max(wait, self.requests.wait_for(1))
        if self.tokens is not None:
            self.tokens.refill(now)
            wait = max(wait, self.tokens.wait_for(tokens))
        return wait

    def acquire(self, tokens: int, deadline: float) -> Permit:
        if self.limits.max_wait is not None:
            deadline = min(deadline, time.monotonic() + self.limits.max_wait)
        ticket = object()
        with self.cond:
            self.queue.append(ticket)
            try:
                while True:
                    now = time.monotonic()
                    wait = (
                        self._wait_needed(tokens, now) if self.queue[0] is ticket else float("inf")
                    )
                    if wait <= 0:
                        self.queue.popleft()
                        self.in_flight += 1
                        if self.requests is not None:
                            self.requests.level -= 1
                        if self.tokens is not None:
                            self.tokens.level -= tokens
                        self.cond.notify_all()
                        return Permit(self)
                    remaining = deadline - now
                    if remaining <= 0:
                        raise RateLimited(self._refusal(deadline), retry_after=None)
                    self.cond.wait(min(wait, remaining))
            except BaseException:
                if ticket in self.queue:
                    self.queue.remove(ticket)
                    self.cond.notify_all()
                raise

    def _refusal(self, deadline: float) -> str:
        parts = []
        if self.limits.concurrency is not None:
            parts.append(f"{self.limits.concurrency} concurrent")
        if self.limits.rpm is not None:
            parts.append(f"{self.limits.rpm:g} requests/min")
        if self.limits.itpm is not None:
            parts.append(f"{self.limits.itpm:g} input tokens/min")
        return (
            f"no request slot for model {self.model} before the deadline "
            f"({len(self.queue)} callers queued; limits: {', '.join(parts) or 'API pause'}); "
            "retry later, raise the call's timeout, or raise the limit (REGISTRY_RATE_LIMITS)"
        )

    def release(self) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def pause(self, until: float) -> None:
        with self.cond:
            if until > self.paused_until:
                self.paused_until = until
                self.cond.notify_all()


class RateLimiter:
    """Per-model gates; models without limits pass straight through."""

    def __init__(self, limits: dict[str, ModelLimits] | None = None) -> None:
        self._limits: dict[str, ModelLimits] = dict(limits or {})
        self._gates: dict[str, _Gate] = {}
        self._lock = threading.Lock()

    def configure(self, model: str, limits: ModelLimits | None) -> None:
        """Set (or with None remove) the limits of ``model`` (``*``: every other model).

        Gates in use are updated in place, so requests already in flight still count.
        """
        with self._lock:
            if limits is None:
                self._limits.pop(model, None)
            else:
                self._limits[model] = limits
            for name, gate in list(self._gates.items()):
                new = self.limits_for(name)
                if new is None:
                    del self._gates[name]  # unlimited now: its permits release to a lone gate
                elif new is not gate.limits:
                    gate.reconfigure(new)

    def limits_for(self, model: str) -> ModelLimits | None:
        """The limits that apply to ``model``."""
        return self._limits.get(model) or self._limits.get("*")

    def _gate(self, model: str) -> _Gate | None:
        gate = self._gates.get(model)
        if gate is None:
            limits = self.limits_for(model)
            if limits is None:
                return None
            with self._lock:
                gate = self._gates.get(model)
                if gate is None:
                    gate = _Gate(model, limits)
                    self._gates[model] = gate
        return gate

    def acquire(self, model: str, *, deadline: float, tokens: int = 0) -> Permit:
        """Wait in order for a slot for ``model`` until ``deadline`` (``time.monotonic()``).

        Raises :class:`~registry.errors.RateLimited` when the deadline passes first.
        """
        gate = self._gate(model)
        if gate is None:
            return _FREE
        return gate.acquire(tokens, deadline)

    def pause(self, model: str, seconds: float) -> None:
        """Hold new requests for ``model`` for ``seconds`` (the API said retry-after).

        A model without limits gets a gate from now on, so its callers wait too.
        """
        if seconds <= 0:
            return
        gate = self._gate(model)
        if gate is None:
            with self._lock:
                gate = self._gates.get(model)
                if gate is None:
                    gate = _Gate(model, ModelLimits())
                    self._gates[model] = gate
        gate.pause(time.monotonic() + seconds)

    def paused_for(self, model: str) -> float:
        """Seconds new requests for ``model`` still wait because of a retry-after (0 if none)."""
        gate = self._gates.get(model)
        return max(0.0, gate.paused_until - time.monotonic()) if gate is not None else 0.0

    def in_flight(self, model: str) -> int:
        """Requests for ``model`` holding a slot now."""
        gate = self._gates.get(model)
        return gate.in_flight if gate is not None else 0


__all__ = ["ModelLimits", "Permit", "RateLimiter", "parse_limits"]
