"""Where batches are kept: one ``batches`` row per Message Batch, its items included.

A batch is written before it is submitted (status ``submitting``) with every item, so a
process that dies at any point leaves enough behind to resume: the API's id is stored as soon
as the API answers, the counts as they are polled, and each item's run row has a fixed id.
The items are one compressed JSON document in the row (what each becomes once its result
is in, not the request itself): one write for 10,000 items.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..db import Database
from ..errors import NotFound
from ..models.runs import RunRow
from ..runner.budget import OPEN_BATCH_STATUSES
from ..tables import batches, utcnow
from .items import Item

runs = RunRow.__table__

#: statuses of a stored batch: not yet accepted by the API, processing, every result logged,
#: or given up (the API refused it, or it could not be read)
SUBMITTING, IN_PROGRESS, CANCELING, ENDED, DONE, FAILED = (
    "submitting",
    "in_progress",
    "canceling",
    "ended",
    "done",
    "failed",
)
#: statuses of a batch whose results are still to be collected (the budget counts its
#: reservation until then)
OPEN = OPEN_BATCH_STATUSES
#: the request counts the API reports, in display order
COUNT_KEYS = ("processing", "succeeded", "errored", "canceled", "expired")


@dataclass(frozen=True)
class StoredBatch:
    """A batch as stored (``id`` is ours, ``api_id`` the API's ``msgbatch_...``)."""

    id: str
    api_id: str | None
    kind: str
    status: str
    prompt: str | None
    version: int | None
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    reserved_usd: float = 0.0
    spent_usd: float = 0.0
    input_hash: str | None = None
    output_path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    actor: str = ""
    error: str | None = None
    created_at: datetime | None = None
    submitted_at: datetime | None = None
    ended_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def name(self) -> str:
        """The id to show and to resume with: the API's, else ours."""
        return self.api_id or self.id

    @property
    def open(self) -> bool:
        """True while results are still to be collected."""
        return self.status in OPEN

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        out: dict[str, Any] = {
            "id": self.id,
            "batch_id": self.api_id,
            "kind": self.kind,
            "status": self.status,
            "prompt": self.prompt,
            "version": self.version,
            "total": self.total,
            "counts": self.counts,
            "reserved_usd": self.reserved_usd,
            "spent_usd": self.spent_usd,
            "output_path": self.output_path,
            "actor": self.actor,
            "error": self.error,
        }
        for key in ("created_at", "submitted_at", "ended_at", "finished_at"):
            value = getattr(self, key)
            out[key] = value.isoformat() if value is not None else None
        return out


#: every column but the items (read on their own, when results are mapped)
_COLUMNS = [c for c in batches.c if c.name != "items"]


def _stored(row: Any) -> StoredBatch:
    return StoredBatch(
        id=row.id,
        api_id=row.api_id,
        kind=row.kind,
        status=row.status,
        prompt=row.prompt,
        version=row.version,
        total=row.total,
        counts=dict(row.counts or {}),
        reserved_usd=float(row.reserved_usd or 0.0),
        spent_usd=float(row.spent_usd or 0.0),
        input_hash=row.input_hash,
        output_path=row.output_path,
        options=dict(row.options or {}),
        actor=row.actor,
        error=row.error,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        ended_at=row.ended_at,
        finished_at=row.finished_at,
    )


def encode_items(items: Sequence[Item]) -> bytes:
    """The items of a batch as stored: compressed JSON, the shared run templates once."""
    templates: list[dict[str, Any]] = []
    index: dict[int, int] = {}
    rows = []
    for item in items:
        t = index.get(id(item.template))
        if t is None:
            t = index[id(item.template)] = len(templates)
            templates.append(item.template)
        rows.append(
            [
                item.custom_id,
                t,
                item.variables,
                item.input_hash,
                item.reserve_usd,
                item.data,
                item.suite_run_id,
            ]
        )
    text = json.dumps(
        {"templates": templates, "items": rows},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return zlib.compress(text.encode(), 1)


def decode_items(blob: bytes) -> list[Item]:
    """The items stored by :func:`encode_items`, in submission order."""
    doc = json.loads(zlib.decompress(blob))
    templates = doc["templates"]
    return [
        Item(
            custom_id=row[0],
            template=templates[row[1]],
            variables=row[2],
            input_hash=row[3],
            reserve_usd=float(row[4] or 0.0),
            data=row[5],
            suite_run_id=row[6],
        )
        for row in doc["items"]
    ]


def create(
    db: Database,
    kind: str,
    items: Sequence[Item],
    *,
    prompt: str | None = None,
    version: int | None = None,
    input_hash: str | None = None,
    output_path: str | None = None,
    options: dict[str, Any] | None = None,
    actor: str = "",
) -> StoredBatch:
    """Store a new batch (status ``submitting``) with its items."""
    batch_id = uuid.uuid4().hex
    with db.writing() as conn:
        conn.execute(
            sa.insert(batches).values(
                id=batch_id,
                kind=kind,
                status=SUBMITTING,
                prompt=prompt,
                version=version,
                total=len(items),
                counts={"processing": len(items)},
                reserved_usd=sum(i.reserve_usd for i in items),
                spent_usd=0.0,
                input_hash=input_hash,
                output_path=output_path,
                options=options or {},
                items=encode_items(items),
                actor=actor,
                created_at=utcnow(),
            )
        )
    return get(db, batch_id)


def get(db: Database, batch_id: str) -> StoredBatch:
    """A stored batch by our id or the API's; ``NotFound`` when there is none."""
    query = sa.select(*_COLUMNS).where(
        sa.or_(batches.c.id == batch_id, batches.c.api_id == batch_id)
    )
    with db.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(
            f"there is no stored batch {batch_id!r}: `prompt-registry batch --list` shows them",
            batch_id=batch_id,
        )
    return _stored(row)


def items_of(db: Database, batch_id: str) -> list[Item]:
    """The items of a stored batch, in submission order (without their request bodies)."""
    query = sa.select(batches.c["items"]).where(batches.c.id == batch_id)
    with db.engine.connect() as conn:
        blob = conn.execute(query).scalar()
    if blob is None:
        raise NotFound(f"batch {batch_id} has no items stored", batch_id=batch_id)
    return decode_items(bytes(blob))


def update(db: Database, batch_id: str, **values: Any) -> StoredBatch:
    """Change columns of a stored batch; returns it as now stored."""
    with db.writing() as conn:
        conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(**values))
    return get(db, batch_id)


def find_open(
    db: Database,
    kind: str,
    *,
    input_hash: str | None = None,
    output_path: str | None = None,
    prompt: str | None = None,
    version: int | None = None,
) -> StoredBatch | None:
    """The newest open batch of ``kind`` matching the given columns (to resume it)."""
    query = sa.select(*_COLUMNS).where(batches.c.kind == kind, batches.c.status.in_(OPEN))
    for column, value in (
        (batches.c.input_hash, input_hash),
        (batches.c.output_path, output_path),
        (batches.c.prompt, prompt),
        (batches.c.version, version),
    ):
        if value is not None:
            query = query.where(column == value)
    with db.engine.connect() as conn:
        row = conn.execute(query.order_by(batches.c.created_at.desc()).limit(1)).first()
    return None if row is None else _stored(row)


def listing(db: Database, *, limit: int = 50) -> list[StoredBatch]:
    """Stored batches, newest first."""
    query = sa.select(*_COLUMNS).order_by(batches.c.created_at.desc()).limit(limit)
    with db.engine.connect() as conn:
        return [_stored(row) for row in conn.execute(query)]


def logged_run_ids(db: Database, ids: Iterable[str]) -> set[str]:
    """Which of the run ids ``ids`` already have a run row (looked up 500 at a time)."""
    wanted = list(ids)
    found: set[str] = set()
    with db.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(conn.execute(sa.select(runs.c.id).where(runs.c.id.in_(chunk))).scalars())
    return found


__all__ = [
    "COUNT_KEYS",
    "DONE",
    "FAILED",
    "IN_PROGRESS",
    "OPEN",
    "SUBMITTING",
    "StoredBatch",
    "create",
    "decode_items",
    "encode_items",
    "find_open",
    "get",
    "items_of",
    "listing",
    "logged_run_ids",
    "update",
]
