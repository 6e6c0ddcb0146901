"""The run spool: run rows the database could not take, kept on local disk until it can.

When a run row cannot be written (the database is down, restarting, unreachable), the runner
appends it to this process's spool file and ``fsync``s it before the call returns, so a result
a caller received always has its row, in the database or on disk. Rows are replayed into the
database, in one transaction per batch and idempotently (``ON CONFLICT (id) DO NOTHING``), so a
row reaches the ``runs`` table exactly once however often a replay is retried:

- by the process itself, from a background thread, as soon as the database answers again;
- by ``prompt-registry worker`` (also run inside ``serve``) for the spools of processes that
  died: each process holds an exclusive ``flock`` on its file while it lives, so a file whose
  lock can be taken belongs to nobody.

Layout: ``REGISTRY_SPOOL_DIR`` (default: next to the SQLite file, ``registry.db.spool/``; for
other databases the user cache directory, ``~/.cache/prompt-registry/spool``), one folder per
database (``<sha256 of the URL>``, with ``database.txt`` naming it, password hidden), one
``<host>-<pid>-<random>.jsonl`` file per process, one JSON line per row. A row the database
refuses for good (not an outage) is moved to ``rejected.jsonl`` in the same folder and logged,
so one bad row never blocks the others.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa

from .db import Database, database_error
from .errors import DatabaseUnavailable
from .models.runs import RunRow

log = logging.getLogger("registry.spool")

_R = cast(sa.Table, RunRow.__table__)
#: rows inserted per transaction when a spool is replayed
REPLAY_BATCH = 500
SUFFIX = ".jsonl"
REJECTED = "rejected.jsonl"


def spool_dir(db: Database) -> Path:
    """The folder of ``db``'s spool files on this machine (not created here)."""
    url = db.url
    memory = db.is_sqlite and url.database in (None, "", ":memory:")
    configured = os.environ.get("REGISTRY_SPOOL_DIR", "").strip()
    if configured:
        base = Path(configured).expanduser()
    elif db.is_sqlite and not memory:
        path = Path(str(url.database)).resolve()
        return path.with_name(path.name + ".spool")
    else:
        cache = os.environ.get("XDG_CACHE_HOME", "").strip()
        base = (Path(cache) if cache else Path.home() / ".cache") / "prompt-registry" / "spool"
    ident = url.render_as_string(hide_password=True)
    if memory:  # a memory database lives and dies with its process
        ident += f"#{socket.gethostname()}-{os.getpid()}"
    return base / hashlib.sha256(ident.encode()).hexdigest()[:16]


def _encode(row: dict[str, Any]) -> bytes:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return {"$datetime": value.isoformat()}
        raise TypeError(f"{type(value).__name__} is not JSON")

    return (json.dumps(row, default=default, ensure_ascii=True) + "\n").encode("ascii")


def _decode(line: bytes) -> dict[str, Any] | None:
    """A spooled row, or None for a line cut short by a crash (its call never returned)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or "id" not in row:
        return None
    created = row.get("created_at")
    if isinstance(created, dict) and "$datetime" in created:
        row["created_at"] = datetime.fromisoformat(created["$datetime"])
    return row


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a spool file (a torn last line is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for line in data.splitlines():
        if line.strip():
            row = _decode(line)
            if row is None:
                log.warning("skipping an unreadable line of %s (cut short by a crash?)", path)
            else:
                rows.append(row)
    return rows


def spool_files(folder: Path) -> list[Path]:
    """The spool files of a folder, oldest first."""
    try:
        found = [p for p in folder.iterdir() if p.suffix == SUFFIX and p.name != REJECTED]
    except FileNotFoundError:
        return []
    return sorted(found, key=_mtime)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # replayed and removed meanwhile
        return 0.0


def spooled_rows(db: Database, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Rows waiting in every spool file of ``db`` on this machine (live and dead processes)."""
    for path in spool_files(spool_dir(db)):
        for row in read_rows(path):
            if since is None or row["created_at"] >= since:
                yield row


def spooled_cost(db: Database, since: datetime) -> float:
    """USD of spooled runs created at or after ``since`` (not yet in the database)."""
    return sum(float(row.get("cost_usd") or 0.0) for row in spooled_rows(db, since))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def idempotent_insert(db: Database) -> Any:
    """``INSERT INTO runs`` that skips a row whose id is already there (None: not supported)."""
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_R).on_conflict_do_nothing(index_elements=["id"])
    if db.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(_R).on_conflict_do_nothing(index_elements=["id"])
    return None


def insert_rows(db: Database, rows: list[dict[str, Any]]) -> None:
    """Insert run rows in one transaction; rows whose id is already there are skipped."""
    stmt = idempotent_insert(db)
    with db.engine.begin() as conn:
        if stmt is None:
            ids = [r["id"] for r in rows]
            have = set(conn.execute(sa.select(_R.c.id).where(_R.c.id.in_(ids))).scalars())
            rows = [r for r in rows if r["id"] not in have]
            stmt = sa.insert(_R)
        if rows:
            conn.execute(stmt, rows)


def _batches(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), REPLAY_BATCH):
        yield rows[start : start + REPLAY_BATCH]


def replay_rows(db: Database, rows: list[dict[str, Any]], folder: Path) -> int:
    """Write ``rows`` into ``db`` (idempotent); returns how many were processed.

    Raises :class:`DatabaseUnavailable` when the database is still down (nothing is lost:
    the caller keeps the file). A batch refused for another reason is retried row by row and
    the rows refused for good go to ``rejected.jsonl``.
    """
    for batch in _batches(rows):
        try:
            insert_rows(db, batch)
        except DatabaseUnavailable:
            raise
        except Exception:
            for row in batch:
                try:
                    insert_rows(db, [row])
                except DatabaseUnavailable:
                    raise
                except Exception as exc:
                    _reject(folder, row, exc)
    return len(rows)


def _reject(folder: Path, row: dict[str, Any], exc: Exception) -> None:
    error = database_error(exc, "") or exc
    log.error(
        "the database refused spooled run %s for good (%s): kept in %s",
        row.get("id"),
        error,
        folder / REJECTED,
    )
    fd = os.open(folder / REJECTED, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, _encode(row))
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """This process's spool file for one database: append (fsync'd), replay, close.

    Thread-safe. The file is created on the first row and locked (``flock``) for the life of
    the process, so ``prompt-registry worker`` leaves it alone; after a fork the child starts
    a file of its own.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.folder = spool_dir(db)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._pid = 0
        self._count = 0

    @property
    def pending(self) -> int:
        """Rows this process spooled that are not replayed yet."""
        return self._count if self._pid == os.getpid() else 0

    @property
    def path(self) -> Path | None:
        """This process's spool file (None when nothing is spooled)."""
        return self._path if self._pid == os.getpid() else None

    def append(self, row: dict[str, Any]) -> None:
        """Add a row and ``fsync`` it: once this returns, the row survives a crash."""
        line = _encode(row)
        with self._lock:
            fd = self._open()
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
            self._count += 1

    def _open(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        # a fork inherited the parent's descriptor (and its lock): never write to it
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / "database.txt"
        if not marker.exists():
            marker.write_text(self.db.url.render_as_string(hide_password=True) + "\n")
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.folder)
        self._fd, self._path, self._pid, self._count = fd, path, os.getpid(), 0
        return fd

    def replay(self) -> int:
        """Write this process's spooled rows into the database; returns how many.

        On success the file is removed (the next spooled row starts a new one). Raises
        :class:`DatabaseUnavailable` while the database is still down.
        """
        with self._lock:
            path = self.path
            if path is None or self._fd is None:
                return 0
            rows = read_rows(path)
            done = replay_rows(self.db, rows, self.folder) if rows else 0
            path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd, self._path, self._count = None, None, 0
            return done

    def close(self) -> None:
        """Release the file (and its lock): what is left in it is the worker's to replay."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd, self._path, self._count = None, None, 0


def replay_orphans(db: Database) -> int:
    """Replay the spool files of ``db`` whose process is gone (``prompt-registry worker``).

    A file is a dead process's when its ``flock`` can be taken; a live process (this one
    included) holds its own. Returns how many rows were replayed. Raises
    :class:`DatabaseUnavailable` while the database is down.
    """
    total = 0
    host = socket.gethostname() + "-"
    for path in spool_files(spool_dir(db)):
        if not path.name.startswith(host):
            continue  # another machine's (a shared folder): its own worker replays it
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    continue  # its process is alive
                raise
            if not path.exists():
                continue  # replayed and removed while we waited for the lock
            rows = read_rows(path)
            if rows:
                total += replay_rows(db, rows, path.parent)
                log.info(
                    "replayed %d run row(s) spooled by a process that died (%s)",
                    len(rows),
                    path.name,
                )
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return total


__all__ = [
    "REPLAY_BATCH",
    "Spool",
    "idempotent_insert",
    "insert_rows",
    "read_rows",
    "replay_orphans",
    "replay_rows",
    "spool_dir",
    "spool_files",
    "spooled_cost",
    "spooled_rows",
]
