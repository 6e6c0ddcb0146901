"""The Message Batches API through the ``anthropic`` SDK: create, retrieve, results, cancel.

Reads are retried with the runner's policy (backoff, capped ``retry-after``). A create is
retried only when the API answered that it did not take the batch (429, 5xx, overloaded):
after a timeout or a broken connection the batch may exist, and sending it again would pay
for it twice, so the error says so instead.

The create body is sent as bytes encoded once per item (the SDK would copy and re-encode a
10,000-item body), and results are read as raw JSON lines (building the SDK's models for each
line costs more than mapping it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anthropic
import httpx2

from ..errors import BatchError
from ..runner.api import SdkClient
from ..runner.retry import Failure, RetryPolicy, classify

logger = logging.getLogger(__name__)

T = TypeVar("T")
BATCHES = "/v1/messages/batches"
#: seconds one API call may take (a create sends up to 256 MB)
CALL_TIMEOUT = 600.0


def create_body(encoded: Sequence[bytes]) -> bytes:
    """The body of ``POST /v1/messages/batches`` from encoded items (``Item.encoded()``)."""
    return b'{"requests":[' + b",".join(encoded) + b"]}"


class BatchApi:
    """Message Batches calls with retries; the SDK client comes from ``sdk``."""

    def __init__(self, sdk: SdkClient | None = None, retry: RetryPolicy | None = None) -> None:
        self.sdk = sdk or SdkClient()
        self.retry = retry or RetryPolicy.from_env()

    def close(self) -> None:
        """Release the HTTP client."""
        self.sdk.close()

    def _call(self, what: str, call: Callable[[anthropic.Anthropic], T], *, create: bool) -> T:
        client = self.sdk.get()
        retries = 0
        while True:
            try:
                return call(client)
            except Exception as exc:
                failure = classify(exc)
                ambiguous = failure.kind in ("timeout", "connection_error", "bad_response")
                give_up = (
                    not self.retry.retryable(failure)
                    or retries >= self.retry.max_retries
                    or (create and ambiguous)
                )
                delay = None if give_up else self.retry.delay(retries + 1, failure.retry_after)
                if delay is None:
                    raise BatchError(_message(what, failure, create=create and ambiguous)) from exc
                logger.warning("%s failed (%s); retrying in %.1f s", what, failure.kind, delay)
                time.sleep(delay)
                retries += 1

    def create(self, body: bytes) -> dict[str, Any]:
        """Submit a batch (``body`` from :func:`create_body`); the ``MessageBatch`` as a dict."""

        def call(client: anthropic.Anthropic) -> dict[str, Any]:
            response = client.post(
                BATCHES,
                content=body,
                cast_to=httpx2.Response,
                options={"headers": {"Content-Type": "application/json"}, "timeout": CALL_TIMEOUT},
            )
            data: dict[str, Any] = response.json()
            if not isinstance(data, dict) or not data.get("id"):
                raise ValueError(f"the API answered something that is not a batch: {data!r:.200}")
            return data

        return self._call("submitting the batch", call, create=True)

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """The batch's ``processing_status``, ``request_counts``... as a dict."""
        return self._call(
            f"reading batch {batch_id}",
            lambda c: c.messages.batches.retrieve(batch_id).model_dump(mode="json"),
            create=False,
        )

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Ask the API to cancel the batch; returns it (``canceling``)."""
        return self._call(
            f"canceling batch {batch_id}",
            lambda c: c.messages.batches.cancel(batch_id).model_dump(mode="json"),
            create=False,
        )

    def results(self, batch_id: str) -> list[dict[str, Any]]:
        """Every result line of an ended batch (``custom_id`` and ``result``), as read.

        The whole file is read before it is returned, so a connection that breaks midway is
        retried from the start rather than leaving half the results behind.
        """

        def call(client: anthropic.Anthropic) -> list[dict[str, Any]]:
            decoder = client.messages.batches.results(batch_id, timeout=CALL_TIMEOUT)
            try:
                return [json.loads(line) for line in decoder.http_response.iter_lines() if line]
            finally:
                decoder.close()

        return self._call(f"reading the results of batch {batch_id}", call, create=False)


def _message(what: str, failure: Failure, *, create: bool) -> str:
    detail = f"{failure.kind}" + (f" ({failure.status})" if failure.status else "")
    text = f"{what} failed: {detail}: {failure.message}"
    if create:
        text += (
            "; the API may have created the batch anyway: check `prompt-registry batch --list` "
            "and the Anthropic console before submitting again"
        )
    return text


__all__ = ["BatchApi", "create_body"]
