"""What is retried, how often and after how long; and what each SDK failure means.

The SDK's own retries are off (``max_retries=0``): the runner retries itself so that every
attempt is counted, the ``retry-after`` the API sends is honoured but capped, and no call
outlives its deadline.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import anthropic
import httpx2

#: HTTP statuses retried by default: timeout, conflict, rate limit, server errors, overloaded
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
#: ``error`` event types in a stream that are worth a new attempt (before any text arrived)
RETRY_STREAM_ERRORS = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and jitter, honouring a capped ``retry-after``.

    ``max_retries`` is the number of attempts after the first. The n-th retry waits a random
    time between half and all of ``min(max_delay, base_delay * 2**(n-1))``, or what the
    API's ``retry-after``/``retry-after-ms`` header asks (plus up to 10% jitter). When the API
    asks for longer than ``max_retry_after`` seconds the call fails at once rather than hang
    (a web request must not wait 100 s). Environment: ``REGISTRY_MAX_RETRIES``,
    ``REGISTRY_MAX_RETRY_AFTER``.
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 10.0
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES)
    retry_timeouts: bool = True
    retry_connection_errors: bool = True
    retry_malformed: bool = True

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The default policy, changed by ``REGISTRY_MAX_RETRIES``/``REGISTRY_MAX_RETRY_AFTER``."""
        policy = cls()
        retries = _env_number("REGISTRY_MAX_RETRIES")
        if retries is not None:
            policy = replace(policy, max_retries=max(0, int(retries)))
        cap = _env_number("REGISTRY_MAX_RETRY_AFTER")
        if cap is not None:
            policy = replace(policy, max_retry_after=max(0.0, cap))
        return policy

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based) when the API gave no retry-after."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry - 1)))
        return float(ceiling / 2 + random.random() * ceiling / 2)

    def delay(self, retry: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry ``retry``, or None when retry-after exceeds the cap."""
        if retry_after is None:
            return self.backoff(retry)
        if retry_after > self.max_retry_after:
            return None
        wait = max(0.0, retry_after)
        return wait + random.random() * wait * 0.1

    def retryable(self, failure: Failure) -> bool:
        """Whether this policy retries ``failure``."""
        if failure.should_retry is not None:
            return failure.should_retry
        if failure.kind == "timeout":
            return self.retry_timeouts
        if failure.kind == "connection_error":
            return self.retry_connection_errors
        if failure.kind == "bad_response":
            return self.retry_malformed
        if failure.status is not None and failure.status != 200:
            return failure.status in self.retry_statuses
        return failure.kind in RETRY_STREAM_ERRORS


def _env_number(name: str) -> float | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified.

    ``kind`` is what the run log stores as ``error_type``: the API's error type
    (``rate_limit_error``, ``overloaded_error``, ``api_error``, ``invalid_request_error``...)
    or ``timeout``, ``connection_error``, ``bad_response``, ``parameter_refused``.
    """

    kind: str
    message: str
    status: int | None = None
    request_id: str | None = None
    retry_after: float | None = None
    #: the API's ``x-should-retry`` header, when it sent one
    should_retry: bool | None = None
    #: the setting the API refused (kind ``parameter_refused``)
    parameter: str | None = None


_STATUS_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def classify(exc: BaseException, *, settings: Iterable[str] = ()) -> Failure:
    """Turn an exception raised by the SDK (or while reading a stream) into a :class:`Failure`.

    ``settings`` are the version's setting keys: a 400 that names one of them becomes
    ``parameter_refused`` so the editor learns which setting to remove.
    """
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return Failure("timeout", "the request timed out")
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        detail = str(exc.__cause__ or exc) if isinstance(exc, anthropic.APIError) else str(exc)
        return Failure("connection_error", f"the connection failed or broke: {detail}")
    if isinstance(exc, anthropic.APIStatusError):
        return _classify_status(exc, settings)
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        return Failure("bad_response", f"the API answer could not be read: {exc}")
    return Failure("internal_error", f"{type(exc).__name__}: {exc}")


def _classify_status(exc: anthropic.APIStatusError, settings: Iterable[str]) -> Failure:
    status = exc.status_code
    api_message = exc.api_message or _body_message(exc.body) or str(exc)
    kind = exc.type or _STATUS_KINDS.get(status) or "api_error"
    headers = exc.response.headers if status != 200 else {}
    should_retry: bool | None = None
    flag = headers.get("x-should-retry") if headers else None
    if flag in ("true", "false"):
        should_retry = flag == "true"
    failure = Failure(
        str(kind),
        api_message,
        status=status,
        request_id=exc.request_id,
        retry_after=_retry_after(headers) if headers else None,
        should_retry=should_retry,
    )
    if status == 400:
        parameter = refused_parameter(api_message, settings)
        if parameter is not None:
            return replace(failure, kind="parameter_refused", parameter=parameter)
    return failure


def _body_message(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    if isinstance(body, str):
        try:
            return _body_message(json.loads(body))
        except ValueError:
            return body[:500]
    return None


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds; an HTTP date is ignored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except (TypeError, ValueError):
            continue
    return None


#: sampling settings come first: they are the ones newer models refuse
_FIRST = ("temperature", "top_p", "top_k")


def refused_parameter(message: str, settings: Iterable[str]) -> str | None:
    """The setting a 400 message names (``"temperature: Extra inputs are not permitted"``).

    Sampling settings are recognised anywhere in the message; other settings only where the
    message is about them (``"thinking.budget_tokens: ..."``, ``"'top_k' is not supported"``).
    """
    for key in _FIRST:
        if re.search(rf"(?<![A-Za-z0-9_]){key}(?![A-Za-z0-9_])", message):
            return key
    for key in settings:
        k = re.escape(key)
        if re.match(rf"\s*{k}[:.]", message) or re.search(rf"['`\"]{k}['`\".]", message):
            return key
    return None


__all__ = ["RETRY_STATUSES", "Failure", "RetryPolicy", "classify", "refused_parameter"]
