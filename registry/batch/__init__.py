"""Message Batches: many requests in one asynchronous batch, at half the price.

The API's batches (``client.messages.batches``) take up to 100,000 requests, each with a
``custom_id``, and return the results within 24 hours in no particular order. The registry
uses them for regression suites (``prompt-registry test NAME --batch``, see
:mod:`registry.suites.batched`) and for bulk jobs over a JSONL file of variables::

    from registry import Registry
    from registry.batch import run_bulk

    reg = Registry()
    report = run_bulk(reg, "summarize", "texts.jsonl", "summaries.jsonl", label="production")
    report.describe()   # 1000 items: 998 ok, 2 failed, $0.41 (batch msgbatch_...) -> ...

Every item becomes one run row (dated when the batch was submitted, priced at batch prices),
including the items that ``errored``, ``expired`` or were ``canceled`` (typed errors). A batch
is stored before it is sent and followed from the database, so a process that dies after
submitting loses nothing: :func:`resume_bulk` (or running the same job again) and
:func:`registry.suites.batched.resume_suite_batch` finish it without submitting it again.
"""

from __future__ import annotations

from .bulk import BulkReport, read_input, resume_bulk, run_bulk, run_bulk_sync, submit_bulk
from .items import Item, plan_item
from .jobs import Batches, batches_of
from .results import ItemResult
from .store import StoredBatch

__all__ = [
    "Batches",
    "BulkReport",
    "Item",
    "ItemResult",
    "StoredBatch",
    "batches_of",
    "plan_item",
    "read_input",
    "resume_bulk",
    "run_bulk",
    "run_bulk_sync",
    "submit_bulk",
]
