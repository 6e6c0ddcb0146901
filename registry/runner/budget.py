"""The daily budget: ``REGISTRY_DAILY_BUDGET_USD`` refuses runs once today's spend reaches it.

"Today" is the UTC day. Spend is the sum of ``cost_usd`` of today's runs, logged or waiting in
a local spool (see :mod:`registry.spool`), plus what Message Batches submitted today still
reserve (their worst case, until their results are logged: see :mod:`registry.batch.jobs`).
It is read from the database at most every :data:`REFRESH_SECONDS` (so other processes'
spend is seen within seconds) and this process's runs are added as they finish. When the
database cannot be read, a budget is never guessed: runs fail with
:class:`~registry.errors.DatabaseUnavailable`.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from ..db import Database
from ..errors import BudgetExceeded, ConfigurationError, DatabaseUnavailable
from ..tables import batches
from .runlog import spent_since

#: how often the day's spend is re-read from the database
REFRESH_SECONDS = 5.0


def daily_limit() -> float | None:
    """``REGISTRY_DAILY_BUDGET_USD`` as a number, or None when unset."""
    raw = os.environ.get("REGISTRY_DAILY_BUDGET_USD", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"REGISTRY_DAILY_BUDGET_USD must be a number of dollars, got {raw!r}"
        ) from None
    if value < 0:
        raise ConfigurationError("REGISTRY_DAILY_BUDGET_USD must not be negative")
    return value


#: statuses of a batch whose results are not all logged yet (it still holds its reservation)
OPEN_BATCH_STATUSES = ("submitting", "in_progress", "canceling", "ended")


def batch_reservations(db: Database, since: datetime) -> float:
    """USD still reserved by Message Batches submitted since ``since`` whose results are not
    all logged yet."""
    query = sa.select(sa.func.coalesce(sa.func.sum(batches.c.reserved_usd), 0.0)).where(
        batches.c.status.in_(OPEN_BATCH_STATUSES), batches.c.created_at >= since
    )
    with db.engine.connect() as conn:
        return float(conn.execute(query).scalar() or 0.0)


def _midnight_utc() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class DailyBudget:
    """Today's spend, kept fresh, checked before every run when a budget is set."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._day: datetime | None = None
        self._spent = 0.0
        self._read_at = 0.0

    def spent_today(self, *, refresh: bool = False) -> float:
        """USD spent today (UTC), open batches' reservations included, from the database at
        most :data:`REFRESH_SECONDS` old (``refresh``: read now)."""
        day = _midnight_utc()
        now = time.monotonic()
        with self._lock:
            if not refresh and self._day == day and now - self._read_at < REFRESH_SECONDS:
                return self._spent
        try:
            spent = spent_since(self.db, day) + batch_reservations(self.db, day)
        except DatabaseUnavailable as exc:
            raise DatabaseUnavailable(
                "REGISTRY_DAILY_BUDGET_USD is set but today's spend cannot be read, so no run "
                f"is sent: {exc.message}",
                database=exc.database,
                retryable=exc.retryable,
            ) from exc
        with self._lock:
            self._day, self._spent, self._read_at = day, spent, now
        return spent

    def add(self, cost: float | None) -> None:
        """Count the cost of a run this process just logged."""
        if not cost:
            return
        with self._lock:
            if self._day == _midnight_utc():
                self._spent += cost

    def check(self, *, refresh: bool = False) -> None:
        """Raise :class:`BudgetExceeded` when today's spend reached the budget.

        ``refresh`` reads the spend now (the runner asks while the database is known to be
        down, so an outage is never hidden by a cached figure).
        """
        limit = daily_limit()
        if limit is None:
            return
        spent = self.spent_today(refresh=refresh)
        if spent >= limit:
            raise BudgetExceeded(
                f"today's spend ${spent:.4f} reached the daily budget of ${limit:.2f} "
                "(REGISTRY_DAILY_BUDGET_USD): runs resume at 00:00 UTC, or raise the budget"
            )


__all__ = ["OPEN_BATCH_STATUSES", "DailyBudget", "batch_reservations", "daily_limit"]
