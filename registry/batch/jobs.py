"""Submit a Message Batch, follow it until it ends, and log its results as runs.

:class:`Batches` (one per registry, ``batches_of(reg)``) does the three steps; each leaves the
stored batch (:mod:`registry.batch.store`) in a state another process can pick up, so a batch
whose process died is finished by :meth:`Batches.follow` and :meth:`Batches.collect` from its
id, without submitting anything again.

The daily budget: a batch reserves its worst case at batch prices (every byte of a request an
input token, ``max_tokens`` output tokens) when it is submitted, on that day; as its results
are logged (runs dated at submission) the reservation shrinks by each item's worst case, so
the day's spend is never counted twice nor left uncounted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import BatchError, BudgetExceeded, ValidationError
from ..prices import price_table
from ..runner.budget import daily_limit
from ..runner.runlog import insert_runs
from ..tables import batches, utcnow
from . import store
from .api import BatchApi, create_body
from .items import MAX_ITEMS, Item, run_id_for
from .results import ItemResult, map_result
from .store import StoredBatch

if TYPE_CHECKING:
    from ..service import RegistryService

logger = logging.getLogger(__name__)

#: called with the stored batch after each poll (status and counts by state)
BatchProgress = Callable[[StoredBatch], None]
#: polls before the interval stops growing: 5 s, 10 s, 20 s, 30 s, then every 60 s
POLL_SCHEDULE = (5.0, 10.0, 20.0, 30.0, 60.0)
#: consecutive failed polls (each already retried) before following gives up (resumable)
MAX_POLL_FAILURES = 10
#: results logged per transaction
CHUNK = 1000


def poll_delays() -> list[float] | float:
    """``REGISTRY_BATCH_POLL_SECONDS`` (a fixed interval) or :data:`POLL_SCHEDULE`."""
    raw = os.environ.get("REGISTRY_BATCH_POLL_SECONDS", "").strip()
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            logger.warning("REGISTRY_BATCH_POLL_SECONDS=%r is not a number; ignored", raw)
    return list(POLL_SCHEDULE)


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class Batches:
    """Message Batches of one registry: submit, follow, collect, cancel."""

    def __init__(self, reg: RegistryService) -> None:
        self.reg = reg
        self.api = BatchApi()
        self._closed = threading.Event()

    def close(self) -> None:
        """Release the HTTP client; a poll wait in progress ends at once."""
        self._closed.set()
        self.api.close()
        self._closed = threading.Event()

    # -- submit -----------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        items: Sequence[Item],
        *,
        prompt: str | None = None,
        version: int | None = None,
        input_hash: str | None = None,
        output_path: str | None = None,
        options: dict[str, Any] | None = None,
        actor: str = "",
        on_stored: Callable[[StoredBatch], None] | None = None,
    ) -> StoredBatch:
        """Store ``items`` as a batch, reserve its worst case, and submit it to the API.

        ``on_stored`` sees the batch once stored, before the API is called (a suite run
        records it). Raises ``BudgetExceeded`` (nothing stored or sent) when the reservation
        does not fit today's budget, and ``BatchError`` when the API does not take the batch
        (the stored batch is then ``failed`` and its reservation released).
        """
        if not items:
            raise ValidationError("a batch needs at least one request", field="items")
        if len(items) > MAX_ITEMS:
            raise ValidationError(
                f"a batch holds at most {MAX_ITEMS} requests, got {len(items)}: split the input",
                field="items",
            )
        self.check_budget(sum(i.reserve_usd for i in items))
        stored = store.create(
            self.reg.db,
            kind,
            items,
            prompt=prompt,
            version=version,
            input_hash=input_hash,
            output_path=output_path,
            options=options,
            actor=actor,
        )
        if on_stored is not None:
            on_stored(stored)
        try:
            data = self.api.create(create_body([i.encoded() for i in items]))
        except BatchError as exc:
            store.update(
                self.reg.db,
                stored.id,
                status=store.FAILED,
                error=exc.message,
                reserved_usd=0.0,
                finished_at=utcnow(),
            )
            raise
        return self.record_state(stored, data, submitted=True)

    def check_budget(self, reserve: float) -> None:
        """``BudgetExceeded`` when ``reserve`` more USD would pass today's budget."""
        limit = daily_limit()
        if limit is None:
            return
        # lazy for cold start: the runner loads the anthropic SDK (the budget lives there)
        from ..runner import runner_of

        spent = runner_of(self.reg).budget.spent_today(refresh=True)
        if spent + reserve > limit:
            raise BudgetExceeded(
                f"this batch may cost up to ${reserve:.4f} at batch prices and today's spend is "
                f"${spent:.4f} of the ${limit:.2f} daily budget (REGISTRY_DAILY_BUDGET_USD): "
                "submit fewer items, lower max_tokens, or raise the budget; nothing was sent"
            )

    # -- follow -----------------------------------------------------------------------------

    def record_state(
        self, stored: StoredBatch, data: Mapping[str, Any], *, submitted: bool = False
    ) -> StoredBatch:
        """Store what the API said about the batch (``submitted``: the create's answer)."""
        status = str(data.get("processing_status") or "in_progress")
        values: dict[str, Any] = {
            "counts": {k: int(v) for k, v in (data.get("request_counts") or {}).items()},
            "status": status if status in (store.IN_PROGRESS, store.CANCELING) else store.ENDED,
        }
        if submitted:
            values["api_id"] = str(data["id"])
            values["submitted_at"] = _when(data.get("created_at")) or utcnow()
        if status == "ended":
            values["ended_at"] = _when(data.get("ended_at")) or utcnow()
        return store.update(self.reg.db, stored.id, **values)

    def follow(
        self,
        batch: StoredBatch,
        *,
        progress: BatchProgress | None = None,
        timeout: float | None = None,
    ) -> StoredBatch:
        """Poll the batch until it has ended (``progress`` after each poll); returns it.

        ``timeout`` seconds (default: no limit) bounds the wait: the batch keeps running and
        can be followed again later. Raises ``BatchError`` when the API cannot be read
        :data:`MAX_POLL_FAILURES` times in a row.
        """
        if batch.api_id is None:
            raise BatchError(
                f"batch {batch.id} was never accepted by the API ({batch.status}"
                + (f": {batch.error}" if batch.error else "")
                + "): submit it again",
            )
        if not batch.open or batch.status == store.ENDED:
            return batch
        delays = poll_delays()
        deadline = None if timeout is None else time.monotonic() + timeout
        polls = failures = 0
        while True:
            try:
                data = self.api.retrieve(batch.api_id)
            except BatchError as exc:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise BatchError(
                        f"{exc.message} ({failures} polls in a row); the batch keeps running: "
                        f"resume it with `prompt-registry batch --resume {batch.api_id}`",
                        batch_id=batch.api_id,
                    ) from exc
                logger.warning("polling batch %s failed: %s", batch.api_id, exc.message)
            else:
                failures = 0
                batch = self.record_state(batch, data)
                if progress is not None:
                    progress(batch)
                if batch.status == store.ENDED:
                    return batch
            delay = delays if isinstance(delays, float) else delays[min(polls, len(delays) - 1)]
            polls += 1
            if deadline is not None and time.monotonic() + delay > deadline:
                raise BatchError(
                    f"batch {batch.api_id} has not ended yet ({batch.status}); it keeps running: "
                    f"resume it with `prompt-registry batch --resume {batch.api_id}`",
                    batch_id=batch.api_id,
                )
            if self._closed.wait(delay):
                raise BatchError("the registry was closed while following a batch")

    # -- collect ----------------------------------------------------------------------------

    def collect(
        self,
        batch: StoredBatch,
        *,
        schemas: Mapping[tuple[str, int], Mapping[str, Any] | None] | None = None,
    ) -> list[ItemResult]:
        """Read the results of an ended batch, log each item's run (once), settle the budget.

        Items are returned in submission order with their outcome; items already logged by an
        earlier attempt are mapped again but not written twice. ``schemas`` gives the output
        schema of each ``(prompt, version)`` that has one.
        """
        if batch.api_id is None:
            raise BatchError(f"batch {batch.id} was never submitted", batch_id=None)
        lines = {str(line.get("custom_id")): line for line in self.api.results(batch.api_id)}
        items = store.items_of(self.reg.db, batch.id)
        logged = store.logged_run_ids(
            self.reg.db, (run_id_for(batch.id, i.custom_id) for i in items)
        )
        schemas = schemas or {}
        table = price_table()
        prices = {m: table.get(m) for m in {str(i.template["model"]) for i in items}}
        out: list[ItemResult] = []
        for start in range(0, len(items), CHUNK):
            chunk = [
                map_result(
                    item,
                    lines.get(item.custom_id),
                    batch,
                    schemas.get((str(item.template["prompt"]), int(item.template["version"]))),
                    prices[str(item.template["model"])],
                )
                for item in items[start : start + CHUNK]
            ]
            fresh = [r for r in chunk if r.run_id not in logged]
            if fresh:
                self.log(batch, fresh)
            out.extend(chunk)
        return out

    def log(self, batch: StoredBatch, results: Sequence[ItemResult]) -> None:
        """Write the runs of ``results`` and shrink the batch's reservation, in one transaction."""
        released = sum(r.item.reserve_usd for r in results)
        spent = sum(r.cost_usd or 0.0 for r in results)
        with self.reg.db.writing() as conn:
            insert_runs(conn, [r.record for r in results])
            conn.execute(
                sa.update(batches)
                .where(batches.c.id == batch.id)
                .values(
                    reserved_usd=sa.func.max(batches.c.reserved_usd - released, 0.0)
                    if self.reg.db.is_sqlite
                    else sa.func.greatest(batches.c.reserved_usd - released, 0.0),
                    spent_usd=batches.c.spent_usd + spent,
                )
            )
        hooks = self.reg.hooks
        if hooks.run_listeners:
            for r in results:
                hooks.run_logged(r.record.to_result())

    def finish(self, batch: StoredBatch, *, error: str | None = None) -> StoredBatch:
        """Mark a batch whose results are all logged ``done`` (its reservation released)."""
        return store.update(
            self.reg.db,
            batch.id,
            status=store.FAILED if error else store.DONE,
            error=error,
            reserved_usd=0.0,
            finished_at=utcnow(),
        )

    def cancel(self, batch_id: str) -> StoredBatch:
        """Ask the API to cancel a batch (its unprocessed items end ``canceled``)."""
        batch = store.get(self.reg.db, batch_id)
        if batch.api_id is None or not batch.open:
            raise ValidationError(f"batch {batch.name} is {batch.status}: nothing to cancel")
        return self.record_state(batch, self.api.cancel(batch.api_id))

    def get(self, batch_id: str) -> StoredBatch:
        """A stored batch by our id or the API's."""
        return store.get(self.reg.db, batch_id)


def batches_of(reg: RegistryService) -> Batches:
    """The :class:`Batches` of ``reg`` (built on first use, closed with the registry)."""
    return reg.component(Batches)


__all__ = ["CHUNK", "BatchProgress", "Batches", "batches_of", "poll_delays"]
