"""Message Batches in the fake Anthropic server: create, retrieve, list, cancel, delete, results.

``POST /v1/messages/batches`` takes ``{"requests": [{"custom_id", "params"}, ...]}``; each
item takes its scripted reply at creation (the ``batch_items`` queue, in submission order; else
the server's responder, default or echo when it is processed; :meth:`Reply.expired` and
:meth:`Reply.canceled` script those outcomes, an error reply an ``errored`` one), and is
answered as processing reaches it (a create returns at once, as the API's does). The batch
then reports ``in_progress`` for ``polls``
retrieves, its ``request_counts`` moving from ``processing`` to the outcomes as it goes, and
``ended`` from the next one on, with a ``results_url``. A cancel makes the next retrieve end
it, the items not processed yet ``canceled``. Results are JSONL lines in ``order``:
``shuffled`` (the default, seeded by the batch id: never the submission order for more than a
few items, as the API promises no order), ``submitted`` or ``reversed``.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .prompt_cache import CacheRequestError
from .replies import Reply

#: the collection path; a batch is ``BATCHES_PATH/<id>``
BATCHES_PATH = "/v1/messages/batches"
#: the API's limits on one batch
MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
REQUIRED_PARAMS = ("model", "max_tokens", "messages")

ResultOrder = Literal["shuffled", "submitted", "reversed"]
RESULT_ORDERS: tuple[ResultOrder, ...] = ("shuffled", "submitted", "reversed")
OUTCOMES = ("succeeded", "errored", "canceled", "expired")

#: takes one item's scripted reply at creation (None: decide when it is processed)
ItemClaim = Callable[[], Reply | None]
#: computes one item's ``result`` object from its params and scripted reply (may raise
#: CacheRequestError)
ItemAnswer = Callable[[dict[str, Any], Reply | None], dict[str, Any]]


class BatchRequestError(ValueError):
    """A batch request the API would refuse: answered 400 ``invalid_request_error``."""


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def errored_result(error_type: str, message: str) -> dict[str, Any]:
    """An ``errored`` item result with the API's error body."""
    return {
        "type": "errored",
        "error": {"type": "error", "error": {"type": error_type, "message": message}},
    }


@dataclass
class FakeBatch:
    """One batch held by the fake server (read its fields in tests; the server moves it on)."""

    id: str
    custom_ids: list[str]
    params: list[dict[str, Any]]
    replies: list[Reply | None]
    answer: ItemAnswer = field(repr=False)
    polls: int
    order: ResultOrder = "shuffled"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    retrieved: int = 0
    processed_at_cancel: int | None = None
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    archived_at: datetime | None = None
    results: list[dict[str, Any] | None] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.results:
            self.results = [None] * len(self.custom_ids)

    def outcome(self, index: int) -> dict[str, Any]:
        """The ``result`` object of item ``index`` (answered now if it was not yet)."""
        found = self.results[index]
        if found is None:
            try:
                found = self.answer(self.params[index], self.replies[index])
            except CacheRequestError as exc:
                found = errored_result("invalid_request_error", str(exc))
            self.results[index] = found
        return found

    def _answer(self, upto: int) -> list[dict[str, Any]]:
        """The results of the first ``upto`` items, answering those not answered yet."""
        return [self.outcome(i) for i in range(upto)]

    @property
    def expires_at(self) -> datetime:
        """24 hours after creation, as the API sets it."""
        return self.created_at + timedelta(hours=24)

    @property
    def ended(self) -> bool:
        """True once processing ended (results available)."""
        return self.ended_at is not None

    @property
    def processing_status(self) -> str:
        """``in_progress``, ``canceling`` or ``ended``."""
        if self.ended:
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"

    def processed(self) -> int:
        """How many items (in submission order) have an outcome so far."""
        total = len(self.custom_ids)
        if self.ended:
            return total
        if self.processed_at_cancel is not None:
            return self.processed_at_cancel
        return total * self.retrieved // (self.polls + 1)

    def advance(self) -> None:
        """One retrieve: move processing on, and end the batch when its time has come."""
        if self.ended:
            return
        self.retrieved += 1
        if self.cancel_initiated_at is not None or self.retrieved > self.polls:
            self.end()

    def end(self) -> None:
        """End processing now; after a cancel, unprocessed items become ``canceled``."""
        if self.ended:
            return
        if self.processed_at_cancel is not None:
            self._answer(self.processed_at_cancel)
            for i in range(self.processed_at_cancel, len(self.results)):
                self.results[i] = {"type": "canceled"}
        else:
            self._answer(len(self.results))
        self.ended_at = datetime.now(UTC)

    def cancel(self) -> None:
        """Begin a cancel (idempotent); items processed so far keep their outcome."""
        if self.ended or self.cancel_initiated_at is not None:
            return
        self.processed_at_cancel = self.processed()
        self.cancel_initiated_at = datetime.now(UTC)

    def request_counts(self) -> dict[str, int]:
        """``processing`` and the outcome counts, as the API reports them."""
        counts = dict.fromkeys(OUTCOMES, 0)
        done = self.processed()
        for result in self._answer(done):
            counts[result["type"]] += 1
        counts["processing"] = len(self.custom_ids) - done
        return {key: counts[key] for key in ("processing", *OUTCOMES)}

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The ``MessageBatch`` object."""
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.processing_status,
            "request_counts": self.request_counts(),
            "created_at": _time(self.created_at),
            "expires_at": _time(self.expires_at),
            "ended_at": _time(self.ended_at),
            "cancel_initiated_at": _time(self.cancel_initiated_at),
            "archived_at": _time(self.archived_at),
            "results_url": f"{base_url}{BATCHES_PATH}/{self.id}/results" if self.ended else None,
        }

    def result_order(self) -> list[int]:
        """Positions in the order the results file lists them."""
        positions = list(range(len(self.custom_ids)))
        if self.order == "reversed":
            positions.reverse()
        elif self.order == "shuffled":
            random.Random(self.id).shuffle(positions)
        return positions

    def result_lines(self) -> bytes:
        """The results file: one JSON object a line (``custom_id`` and ``result``)."""
        lines = [
            json.dumps(
                {"custom_id": self.custom_ids[i], "result": self.outcome(i)},
                separators=(",", ":"),
                ensure_ascii=False,
            )
            for i in self.result_order()
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")


def parse_create(body: Mapping[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Validate a create body; returns the custom ids and params (BatchRequestError if bad)."""
    if body is None:
        raise BatchRequestError("Request body is required")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise BatchRequestError("requests: must be a non-empty list")
    if len(requests) > MAX_REQUESTS:
        raise BatchRequestError(f"requests: at most {MAX_REQUESTS} requests are allowed")
    ids: list[str] = []
    params: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(requests):
        if not isinstance(item, Mapping):
            raise BatchRequestError(f"requests.{i}: must be an object")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise BatchRequestError(
                f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if custom_id in seen:
            raise BatchRequestError(f"requests.{i}.custom_id: duplicate custom_id {custom_id!r}")
        seen.add(custom_id)
        p = item.get("params")
        if not isinstance(p, Mapping):
            raise BatchRequestError(f"requests.{i}.params: Field required")
        for name in REQUIRED_PARAMS:
            if name not in p:
                raise BatchRequestError(f"requests.{i}.params.{name}: Field required")
        if p.get("stream"):
            raise BatchRequestError(f"requests.{i}.params.stream: streaming is not allowed")
        ids.append(custom_id)
        params.append(dict(p))
    return ids, params


class BatchStore:
    """The batches of one fake server, by id (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, FakeBatch] = {}

    def create(
        self,
        body: Mapping[str, Any] | None,
        claim: ItemClaim,
        answer: ItemAnswer,
        *,
        polls: int,
        order: ResultOrder,
    ) -> FakeBatch:
        """A new batch from a create body: each item claims its scripted reply now and is
        answered by ``answer(params, reply)`` when processing reaches it."""
        ids, params = parse_create(body)
        batch = FakeBatch(
            id=f"msgbatch_fake_{uuid.uuid4().hex[:24]}",
            custom_ids=ids,
            params=params,
            replies=[claim() for _ in params],
            answer=answer,
            polls=max(0, polls),
            order=order,
        )
        with self._lock:
            self._batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> FakeBatch | None:
        """The batch ``batch_id`` (None if unknown or deleted)."""
        with self._lock:
            return self._batches.get(batch_id)

    def all(self) -> list[FakeBatch]:
        """Every batch, oldest first."""
        with self._lock:
            return list(self._batches.values())

    def delete(self, batch_id: str) -> bool:
        """Forget an ended batch; False if it is unknown."""
        with self._lock:
            return self._batches.pop(batch_id, None) is not None

    def clear(self) -> None:
        """Forget every batch."""
        with self._lock:
            self._batches.clear()

    def lock(self) -> threading.Lock:
        """The lock to hold while moving a batch on."""
        return self._lock

    def page(self, limit: int, after_id: str | None) -> dict[str, Any]:
        """A page of ``GET /v1/messages/batches`` (newest first) without the batch objects."""
        with self._lock:
            ordered = list(reversed(self._batches.values()))
        if after_id is not None:
            ids = [b.id for b in ordered]
            ordered = ordered[ids.index(after_id) + 1 :] if after_id in ids else []
        chosen = ordered[:limit]
        return {
            "batches": chosen,
            "has_more": len(ordered) > limit,
            "first_id": chosen[0].id if chosen else None,
            "last_id": chosen[-1].id if chosen else None,
        }


@dataclass(frozen=True)
class Answer:
    """What the server sends back for one batches request."""

    status: int
    payload: Any = None
    raw: bytes | None = None
    error_type: str | None = None
    message: str = ""

    @classmethod
    def error(cls, status: int, error_type: str, message: str) -> Answer:
        """An API error answer."""
        return cls(status=status, error_type=error_type, message=message)


def _query_value(query: str, name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(query).get(name)
    return values[-1] if values else None


def handle(
    store: BatchStore,
    method: str,
    path: str,
    query: str,
    body: Mapping[str, Any] | None,
    *,
    base_url: str,
    claim: ItemClaim,
    answer: ItemAnswer,
    polls: int,
    order: ResultOrder,
) -> Answer:
    """Answer one request under ``/v1/messages/batches``."""
    rest = path[len(BATCHES_PATH) :].strip("/")
    parts = rest.split("/") if rest else []
    if not parts:
        if method == "POST":
            try:
                created = store.create(body, claim, answer, polls=polls, order=order)
            except BatchRequestError as exc:
                return Answer.error(400, "invalid_request_error", str(exc))
            with store.lock():
                return Answer(200, created.to_json(base_url))
        if method == "GET":
            try:
                limit = int(_query_value(query, "limit") or 20)
            except ValueError:
                return Answer.error(400, "invalid_request_error", "limit: must be an integer")
            page = store.page(max(1, min(limit, 1000)), _query_value(query, "after_id"))
            with store.lock():
                data = [b.to_json(base_url) for b in page.pop("batches")]
            return Answer(200, {"data": data, **page})
        return Answer.error(405, "invalid_request_error", f"{method} is not allowed here")
    batch = store.get(parts[0])
    if batch is None or len(parts) > 2:
        return Answer.error(404, "not_found_error", f"Not Found: {method} {path}")
    action = parts[1] if len(parts) == 2 else ""
    with store.lock():
        if method == "GET" and action == "":
            batch.advance()
            return Answer(200, batch.to_json(base_url))
        if method == "POST" and action == "cancel":
            batch.cancel()
            return Answer(200, batch.to_json(base_url))
        if method == "GET" and action == "results":
            if not batch.ended:
                return Answer.error(
                    400,
                    "invalid_request_error",
                    f"Message Batch {batch.id} is still {batch.processing_status}: results are "
                    "available once it has ended",
                )
            return Answer(200, raw=batch.result_lines())
        if method == "DELETE" and action == "" and not batch.ended:
            return Answer.error(
                400,
                "invalid_request_error",
                f"Message Batch {batch.id} cannot be deleted while it is still processing; "
                "cancel it first",
            )
    if method == "DELETE" and action == "":
        store.delete(batch.id)
        return Answer(200, {"id": batch.id, "type": "message_batch_deleted"})
    return Answer.error(404, "not_found_error", f"Not Found: {method} {path}")


__all__ = [
    "BATCHES_PATH",
    "MAX_REQUESTS",
    "RESULT_ORDERS",
    "Answer",
    "BatchRequestError",
    "BatchStore",
    "FakeBatch",
    "ItemAnswer",
    "ItemClaim",
    "ResultOrder",
    "errored_result",
    "handle",
    "parse_create",
]
