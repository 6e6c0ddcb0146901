"""The run log: one row per call in ``runs``, feedback on runs, and the cost report.

A run's row is written before its result is returned. When the database cannot take it, the
row goes to this process's local spool (:mod:`registry.spool`, fsync'd) and is replayed
exactly once when the database is back; if neither works the call fails with
:class:`~registry.errors.DatabaseUnavailable`. Text the database cannot store (NUL, lone
surrogates) is stored escaped the same way on every engine (:func:`registry.text.to_storable`)
and read back as it was (:func:`load_run`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..db import Database, database_error
from ..errors import DatabaseUnavailable, NotFound, ValidationError
from ..models.base import utcnow
from ..models.runs import FeedbackRow, RunRow
from ..prices import Usage
from ..run_result import RunResult
from ..spool import Spool, insert_rows, spooled_rows
from ..text import from_storable, has_lone_surrogate, to_storable

log = logging.getLogger("registry.runner.runlog")

_R = RunRow.__table__
_F = FeedbackRow.__table__
_INSERT_FEEDBACK = sa.insert(FeedbackRow)

#: a feedback name: letters, digits, ``_ - . :`` (e.g. ``thumbs_up``, ``rubric:tone``)
FEEDBACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_COMMENT = 10_000
MAX_ERROR_MESSAGE = 4_000


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data (anything else becomes its ``str``)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


@dataclass
class RunRecord:
    """A run being made: filled in step by step, written once as a row."""

    id: str
    created_at: datetime
    started: float
    prompt: str
    label: str | None = None
    unit_id: str | None = None
    source: str = "app"
    stream: bool = False
    version: int | None = None
    experiment: str | None = None
    variant: str | None = None
    model: str | None = None
    params: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    input_hash: str | None = None
    output_text: str | None = None
    parsed: Any = None
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    attempts: int = 0
    cached: bool = False
    status: str = "ok"
    error_type: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    suite_run_id: str | None = None
    meta: dict[str, Any] | None = None
    written: bool = False
    #: the row went to the local spool (the database was unavailable)
    spooled: bool = False

    def to_row(self) -> dict[str, Any]:
        """Column values of the ``runs`` row, storable on every engine.

        Text is escaped where the database could not hold it (see
        :func:`registry.text.to_storable`) and cut to its column's length.
        """
        u = self.usage
        message = self.error_message
        if message is not None and len(message) > MAX_ERROR_MESSAGE:
            message = message[:MAX_ERROR_MESSAGE] + "…"
        row = {
            "id": self.id,
            "created_at": self.created_at,
            "prompt": self.prompt[:200],
            "version": self.version,
            "label": self.label,
            "experiment": self.experiment,
            "variant": self.variant,
            "unit_id": self.unit_id,
            "model": self.model,
            "params": self.params,
            "variables": self.variables,
            "input_hash": self.input_hash,
            "output_text": self.output_text,
            "parsed": self.parsed,
            "stop_reason": self.stop_reason,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "attempts": self.attempts,
            "cached": self.cached,
            "stream": self.stream,
            "status": self.status,
            "error_type": self.error_type,
            "error_message": message,
            "request_id": self.request_id,
            "source": self.source,
            "suite_run_id": self.suite_run_id,
            "metadata": self.meta,
        }
        for name in _TEXT_COLUMNS:
            value = row[name]
            if value is not None:
                value = to_storable(value)
                limit = _LENGTHS.get(name)
                row[name] = value[:limit] if limit is not None else value
        return row

    def to_result(self) -> RunResult:
        """The ``RunResult`` the caller gets."""
        u = self.usage
        return RunResult(
            run_id=self.id,
            name=self.prompt,
            version=self.version,
            label=self.label,
            experiment=self.experiment,
            variant=self.variant,
            model=self.model,
            text=self.output_text or "",
            parsed=self.parsed,
            stop_reason=self.stop_reason,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_creation_input_tokens=u.cache_creation_input_tokens,
            cache_read_input_tokens=u.cache_read_input_tokens,
            cost_usd=self.cost_usd,
            latency_ms=self.latency_ms,
            ttft_ms=self.ttft_ms,
            attempts=self.attempts,
            cached=self.cached,
            request_id=self.request_id,
            status=self.status,
            error_type=self.error_type,
            error_message=self.error_message,
            unit_id=self.unit_id,
            source=self.source,
            stream=self.stream,
            suite_run_id=self.suite_run_id,
            metadata=self.meta,
            created_at=self.created_at,
        )


_JSON_COLUMNS = frozenset(c.name for c in _R.columns if isinstance(c.type, sa.JSON))
#: text and JSON columns: escaped by ``to_row``, unescaped by ``load_run``
_TEXT_COLUMNS = tuple(
    c.name for c in _R.columns if isinstance(c.type, sa.String | sa.JSON) and c.name != "id"
)
#: the length of every bounded text column (PostgreSQL refuses longer values)
_LENGTHS = {
    c.name: c.type.length
    for c in _R.columns
    if isinstance(c.type, sa.String) and c.type.length and c.name != "id"
}
_COLUMNS = tuple(c.name for c in _R.columns)
_COLUMN_LIST = ", ".join(_COLUMNS)
#: the run inserts of the fast paths: plain DB-API, no statement compilation per call
_SQLITE_INSERT = f"INSERT INTO runs ({_COLUMN_LIST}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
_PG_INSERT = f"INSERT INTO runs ({_COLUMN_LIST}) VALUES ({', '.join('%s' for _ in _COLUMNS)})"
#: the retry after a broken connection: the first insert may have committed (its answer lost)
_PG_RETRY = _PG_INSERT + " ON CONFLICT (id) DO NOTHING"
#: seconds between a process's tries to replay its own spool (doubling up to the maximum)
REPLAY_INTERVAL = 0.5
REPLAY_MAX_INTERVAL = 5.0


def _sqlite_values(row: dict[str, Any]) -> list[Any]:
    """Column values as SQLAlchemy binds them on SQLite (same storage formats)."""
    out: list[Any] = []
    for name in _COLUMNS:
        value = row[name]
        if value is None:
            pass
        elif name in _JSON_COLUMNS:
            value = json.dumps(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        elif isinstance(value, bool):
            value = int(value)
        out.append(value)
    return out


def _pg_values(row: dict[str, Any]) -> list[Any]:
    """Column values for psycopg (JSON columns wrapped; datetimes stay timezone-aware)."""
    from psycopg.types.json import Json

    return [
        Json(row[name]) if name in _JSON_COLUMNS and row[name] is not None else row[name]
        for name in _COLUMNS
    ]


class RunLog:
    """Writes run rows: one INSERT per call, committed (or spooled) before the call returns.

    The run log is on every call's path, so on SQLite (a file) and on PostgreSQL with psycopg
    the rows go through one dedicated autocommit DB-API connection, serialised by a lock: no
    pool checkout, no ping, no statement compilation per call (a third of the cost or less).
    SQLite has a single writer anyway; on PostgreSQL one connection writes thousands of rows a
    second. A broken PostgreSQL connection is replaced and the row written again (once).
    Other databases use SQLAlchemy with the registry's pool.

    A row the database does not take goes to :attr:`spool`; a background thread replays it
    as soon as the database answers again (see :mod:`registry.spool`).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        memory = db.url.database in (None, "", ":memory:")
        if db.is_sqlite and not memory:
            self._mode: str | None = "sqlite"
        elif db.dialect == "postgresql" and db.engine.dialect.driver == "psycopg":
            self._mode = "postgresql"
        else:
            self._mode = None
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = 0
        #: rows the database could not take, on local disk until they are replayed
        self.spool = Spool(db)
        self._replay_lock = threading.Lock()
        self._replayer: threading.Thread | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()

    def write(self, record: RunRecord) -> None:
        """Write the run row of ``record``: into the database, else into the local spool.

        Raises :class:`DatabaseUnavailable` when neither could take it (the caller must not
        return a result whose row exists nowhere).
        """
        row = record.to_row()
        try:
            self._insert(row)
        except Exception as exc:
            self._spool(record, row, exc)
        else:
            if self.spool.pending:
                self._wake.set()  # the database answers again: replay what waits
        record.written = True

    def _insert(self, row: dict[str, Any]) -> None:
        if self._mode == "sqlite":
            values = _sqlite_values(row)
            with self._lock:
                self._execute(_SQLITE_INSERT, values)
        elif self._mode == "postgresql":
            import psycopg

            values = _pg_values(row)
            with self._lock:
                try:
                    self._execute(_PG_INSERT, values)
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    self._execute(_PG_RETRY, values)  # on a fresh connection
        else:
            insert_rows(self.db, [row])

    def _spool(self, record: RunRecord, row: dict[str, Any], exc: Exception) -> None:
        error = database_error(exc, self.db.url) or exc
        first = not self.spool.pending
        try:
            self.spool.append(row)
        except Exception as spool_exc:
            raise DatabaseUnavailable(
                f"the row of run {record.id} could not be written to the database ({error}) "
                f"nor to the local spool {self.spool.folder} ({spool_exc}): the result is not "
                "returned; fix the database or REGISTRY_SPOOL_DIR and retry",
                database=self.db.url.render_as_string(hide_password=True),
                retryable=True,
            ) from exc
        record.spooled = True
        if first:
            log.warning(
                "run rows go to the local spool %s until the database takes them again: %s",
                self.spool.path,
                error,
            )
        self._start_replayer()

    # -- replaying this process's spool --------------------------------------------------------

    def _start_replayer(self) -> None:
        with self._replay_lock:
            if self._replayer is None and not self._closing.is_set():
                self._replayer = threading.Thread(
                    target=self._replay_loop, name="registry-run-spool", daemon=True
                )
                self._replayer.start()

    def _replay_loop(self) -> None:
        delay = REPLAY_INTERVAL
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            if self._closing.is_set():
                break
            try:
                done = self.spool.replay()
            except DatabaseUnavailable:
                delay = min(delay * 2, REPLAY_MAX_INTERVAL)
                continue
            except Exception:
                log.exception("replaying the run spool failed; trying again")
                delay = REPLAY_MAX_INTERVAL
                continue
            if done:
                log.warning("the database is back: %d spooled run row(s) replayed", done)
            delay = REPLAY_INTERVAL
            with self._replay_lock:
                if not self.spool.pending:
                    self._replayer = None
                    return
        with self._replay_lock:
            self._replayer = None

    def flush(self) -> int:
        """Replay this process's spool now; returns the rows written (0 when none waited).

        Raises :class:`DatabaseUnavailable` while the database is still down.
        """
        return self.spool.replay() if self.spool.pending else 0

    # -- the dedicated connection --------------------------------------------------------------

    def _execute(self, sql: str, values: list[Any]) -> None:
        conn = self._connection()
        try:
            conn.execute(sql, values)
        except BaseException:
            self._drop()
            raise

    def _connection(self) -> Any:
        if self._conn is not None and self._pid != os.getpid():
            self._conn = None  # inherited across fork: never use (or close) the parent's
        if self._conn is None:
            # a pooled connection carries the registry's settings (SQLite pragmas...)
            fairy = self.db.engine.raw_connection()
            fairy.detach()
            conn: Any = fairy.dbapi_connection
            if self._mode == "postgresql":
                conn.rollback()  # the pool's ping may have opened a transaction
                conn.autocommit = True
            self._conn = conn
            self._pid = os.getpid()
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except Exception:
                pass

    def close(self) -> None:
        """Stop replaying, try a last replay, close the dedicated connection and the spool.

        Rows still spooled stay on disk: ``prompt-registry worker`` replays them.
        """
        self._closing.set()
        self._wake.set()
        replayer = self._replayer
        if replayer is not None and replayer is not threading.current_thread():
            replayer.join(10)
        if self.spool.pending:
            try:
                self.flush()
            except Exception as exc:
                log.warning(
                    "%d run row(s) stay spooled in %s for `prompt-registry worker`: %s",
                    self.spool.pending,
                    self.spool.path,
                    exc,
                )
        self.spool.close()
        with self._lock:
            self._drop()
        self._closing = threading.Event()
        self._wake = threading.Event()


def insert_runs(conn: sa.Connection, records: Sequence[RunRecord]) -> None:
    """Insert the run rows of ``records`` in the caller's transaction (one statement, many rows).

    For writers of many runs at once (the results of a Message Batch), which update other
    tables in the same transaction; a single call's run goes through :meth:`RunLog.write`.
    The rows are encoded as :class:`RunLog`'s fast paths encode them (no per-row type
    processing), on SQLite and on PostgreSQL with psycopg.
    """
    if not records:
        return
    dialect = conn.dialect
    if dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT, [tuple(_sqlite_values(r.to_row())) for r in records])
    elif dialect.name == "postgresql" and dialect.driver == "psycopg":
        conn.exec_driver_sql(_PG_INSERT, [tuple(_pg_values(r.to_row())) for r in records])
    else:
        conn.execute(sa.insert(RunRow), [r.to_row() for r in records])
    for r in records:
        r.written = True


def load_run(db: Database, run_id: str) -> RunResult:
    """The logged run ``run_id`` as a ``RunResult``; ``NotFound`` when there is none."""
    with db.engine.connect() as conn:
        found = conn.execute(sa.select(_R).where(_R.c.id == str(run_id))).mappings().first()
    if found is None:
        raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
    row = {k: from_storable(v) if k in _TEXT_COLUMNS else v for k, v in found.items()}
    return RunResult(
        run_id=row["id"],
        name=row["prompt"],
        version=row["version"],
        label=row["label"],
        experiment=row["experiment"],
        variant=row["variant"],
        model=row["model"],
        text=row["output_text"] or "",
        parsed=row["parsed"],
        stop_reason=row["stop_reason"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_creation_input_tokens=row["cache_creation_input_tokens"],
        cache_read_input_tokens=row["cache_read_input_tokens"],
        cost_usd=row["cost_usd"],
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        attempts=row["attempts"],
        cached=row["cached"],
        request_id=row["request_id"],
        status=row["status"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        unit_id=row["unit_id"],
        source=row["source"],
        stream=row["stream"],
        suite_run_id=row["suite_run_id"],
        metadata=row["metadata"],
        created_at=row["created_at"],
    )


def add_feedback(db: Database, run_id: str, name: str, value: float, *, comment: str = "") -> int:
    """Attach a score to a run; returns the feedback id.

    Raises ``NotFound`` for an unknown run and ``ValidationError`` for a bad name, a value
    that is not a finite number, or a comment longer than 10,000 characters.
    """
    if not isinstance(name, str) or not FEEDBACK_NAME.match(name):
        raise ValidationError(
            f"feedback name {name!r} is not valid: use up to 64 letters, digits, _ . : - "
            "(e.g. 'thumbs_up')",
            field="name",
        )
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(
            f"feedback value must be a finite number, got {value!r}", field="value"
        )
    if not isinstance(comment, str):
        raise ValidationError("feedback comment must be a string", field="comment")
    if len(comment) > MAX_COMMENT:
        raise ValidationError(
            f"feedback comment is longer than {MAX_COMMENT} characters", field="comment"
        )
    if "\x00" in comment or has_lone_surrogate(comment):
        raise ValidationError(
            "feedback comment contains a NUL character or a lone surrogate: remove it",
            field="comment",
        )
    with db.transaction() as s:
        exists = s.execute(sa.select(_R.c.id).where(_R.c.id == str(run_id))).first()
        if exists is None:
            raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
        result = s.execute(
            _INSERT_FEEDBACK.values(
                run_id=str(run_id),
                name=name,
                value=float(value),
                comment=comment,
                created_at=utcnow(),
            )
        )
        key = result.inserted_primary_key  # type: ignore[attr-defined]
        return int(key[0]) if key else 0


def pending_rows(db: Database, since: datetime | None = None) -> list[dict[str, Any]]:
    """Run rows spooled on this machine (by live or dead processes) and not in ``db`` yet."""
    rows = {row["id"]: row for row in spooled_rows(db, since)}
    if not rows:
        return []
    with db.engine.connect() as conn:
        for start in range(0, len(rows), 500):
            ids = list(rows)[start : start + 500]
            for found in conn.execute(sa.select(_R.c.id).where(_R.c.id.in_(ids))).scalars():
                rows.pop(found, None)
    return list(rows.values())


def spent_since(db: Database, since: datetime) -> float:
    """USD of runs created at or after ``since``: logged, and spooled on this machine."""
    with db.engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(_R.c.cost_usd), 0.0)).where(
                _R.c.created_at >= since
            )
        ).scalar()
    spooled = sum(float(r.get("cost_usd") or 0.0) for r in pending_rows(db, since))
    return float(total or 0.0) + spooled


# -- the cost report -----------------------------------------------------------------------

COST_GROUPS = ("prompt", "version", "model", "day", "source")


@dataclass(frozen=True)
class CostLine:
    """Spend, tokens and run counts of one group of runs."""

    key: str
    runs: int
    errors: int
    cached: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    #: runs of models without a price (not in ``cost_usd``)
    unpriced: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "key": self.key,
            "runs": self.runs,
            "errors": self.errors,
            "cached": self.cached,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "unpriced": self.unpriced,
        }


def _day(db: Database) -> sa.ColumnElement[Any]:
    if db.dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", _R.c.created_at), "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", _R.c.created_at)


def _spooled_key(row: dict[str, Any], by: str) -> str:
    """The group of a spooled row, spelt as the SQL grouping spells it."""
    if by == "version":
        version = row.get("version")
        prompt = row.get("prompt")
        return f"{prompt} v{version}" if version is not None else f"{prompt} (unresolved)"
    if by == "day":
        created: datetime = row["created_at"]
        return created.astimezone(UTC).strftime("%Y-%m-%d")
    value = row.get(by)
    return str(value) if value is not None else "(none)"


def cost_report(
    db: Database,
    *,
    by: str = "prompt",
    since: datetime | None = None,
    source: str | None = None,
) -> list[CostLine]:
    """Spend per prompt, version, model, day or source, most expensive first (days in order)."""
    if by not in COST_GROUPS:
        raise ValidationError(f"group by one of {', '.join(COST_GROUPS)}, not {by!r}", field="by")
    keys: list[sa.ColumnElement[Any]]
    if by == "prompt":
        keys = [_R.c.prompt]
    elif by == "version":
        keys = [_R.c.prompt, _R.c.version]
    elif by == "model":
        keys = [_R.c.model]
    elif by == "source":
        keys = [_R.c.source]
    else:
        keys = [_day(db).label("day")]
    query = sa.select(
        *keys,
        sa.func.count().label("runs"),
        sa.func.sum(sa.case((_R.c.status == "error", 1), else_=0)).label("errors"),
        sa.func.sum(sa.case((_R.c.cached, 1), else_=0)).label("cached"),
        sa.func.coalesce(sa.func.sum(_R.c.input_tokens), 0).label("input_tokens"),
        sa.func.coalesce(sa.func.sum(_R.c.output_tokens), 0).label("output_tokens"),
        sa.func.coalesce(sa.func.sum(_R.c.cost_usd), 0.0).label("cost_usd"),
        sa.func.sum(
            sa.case(
                (sa.and_(_R.c.cost_usd.is_(None), _R.c.status == "ok", sa.not_(_R.c.cached)), 1),
                else_=0,
            )
        ).label("unpriced"),
    ).group_by(*keys)
    if since is not None:
        query = query.where(_R.c.created_at >= since)
    if source is not None:
        query = query.where(_R.c.source == source)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    totals: dict[str, list[Any]] = {}
    for row in rows:
        if by == "version":
            key = f"{row[0]} v{row[1]}" if row[1] is not None else f"{row[0]} (unresolved)"
        else:
            key = str(row[0]) if row[0] is not None else "(none)"
        totals[key] = [
            int(row.runs),
            int(row.errors or 0),
            int(row.cached or 0),
            int(row.input_tokens or 0),
            int(row.output_tokens or 0),
            float(row.cost_usd or 0.0),
            int(row.unpriced or 0),
        ]
    for spooled in pending_rows(db, since):  # runs the database has not taken yet
        if source is not None and spooled.get("source") != source:
            continue
        key = _spooled_key(spooled, by)
        line = totals.setdefault(key, [0, 0, 0, 0, 0, 0.0, 0])
        cost = spooled.get("cost_usd")
        ok = spooled.get("status") == "ok"
        for i, value in enumerate(
            (
                1,
                int(spooled.get("status") == "error"),
                int(bool(spooled.get("cached"))),
                int(spooled.get("input_tokens") or 0),
                int(spooled.get("output_tokens") or 0),
                float(cost or 0.0),
                int(cost is None and ok and not spooled.get("cached")),
            )
        ):
            line[i] += value
    lines = [CostLine(key, *values) for key, values in totals.items()]
    if by == "day":
        lines.sort(key=lambda line: line.key)
    else:
        lines.sort(key=lambda line: (-line.cost_usd, line.key))
    return lines


__all__ = [
    "COST_GROUPS",
    "CostLine",
    "RunLog",
    "RunRecord",
    "add_feedback",
    "cost_report",
    "insert_runs",
    "json_safe",
    "load_run",
    "pending_rows",
    "spent_since",
]
