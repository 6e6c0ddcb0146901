"""``/admin/runs/``: the run log, read-only, filtered and paginated on indexed columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import request

from ...models.runs import FeedbackRow, RunRow
from .. import get_registry
from .base import expose
from .pagination import Page, offset_of, page_number
from .security import ProtectedView

PER_PAGE = 50
#: columns the list shows (the big text and JSON columns are only read on the detail page)
LIST_COLUMNS = (
    RunRow.id,
    RunRow.created_at,
    RunRow.prompt,
    RunRow.version,
    RunRow.label,
    RunRow.model,
    RunRow.status,
    RunRow.error_type,
    RunRow.input_tokens,
    RunRow.output_tokens,
    RunRow.cost_usd,
    RunRow.latency_ms,
    RunRow.source,
    RunRow.cached,
    RunRow.experiment,
    RunRow.variant,
)


@dataclass(frozen=True)
class RunFilters:
    """What the filter form asked for; ``errors`` for values that could not be read."""

    prompt: str = ""
    version: int | None = None
    label: str = ""
    status: str = ""
    source: str = ""
    since: date | None = None
    until: date | None = None
    errors: tuple[str, ...] = ()

    def clauses(self) -> list[Any]:
        """SQL conditions (``prompt`` first so the (prompt, created_at) index is used)."""
        out: list[Any] = []
        if self.prompt:
            out.append(RunRow.prompt == self.prompt)
        if self.version is not None:
            out.append(RunRow.version == self.version)
        if self.label:
            out.append(RunRow.label == self.label)
        if self.status:
            out.append(RunRow.status == self.status)
        if self.source:
            out.append(RunRow.source == self.source)
        if self.since:
            out.append(RunRow.created_at >= datetime.combine(self.since, time.min, UTC))
        if self.until:
            out.append(
                RunRow.created_at < datetime.combine(self.until + timedelta(days=1), time.min, UTC)
            )
        return out

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return bool(
            self.prompt
            or self.version is not None
            or self.label
            or self.status
            or self.source
            or self.since
            or self.until
        )


def _date(raw: str, what: str, errors: list[str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"{what} must be a date like 2025-03-01")
        return None


def filters_from_request() -> RunFilters:
    """Read the filters from the query string."""
    args = request.args
    errors: list[str] = []
    version = None
    if args.get("version"):
        try:
            version = int(args["version"])
        except ValueError:
            errors.append("version must be a number")
    status = args.get("status", "")
    if status not in ("", "ok", "error"):
        errors.append("status is ok or error")
        status = ""
    return RunFilters(
        prompt=args.get("prompt", "").strip()[:200],
        version=version,
        label=args.get("label", "").strip()[:64],
        status=status,
        source=args.get("source", "").strip()[:20],
        since=_date(args.get("since", ""), "from", errors),
        until=_date(args.get("until", ""), "to", errors),
        errors=tuple(errors),
    )


def list_runs(filters: RunFilters, *, page: int = 1, per_page: int = PER_PAGE) -> Page[Any]:
    """A page of runs, newest first."""
    reg = get_registry()
    where = filters.clauses()
    with reg.db.snapshot() as s:
        total = s.scalar(sa.select(sa.func.count()).select_from(RunRow).where(*where)) or 0
        rows = s.execute(
            sa.select(*LIST_COLUMNS)
            .where(*where)
            .order_by(RunRow.created_at.desc(), RunRow.id.desc())
            .limit(per_page)
            .offset(offset_of(page, per_page))
        ).all()
    return Page(rows, page, per_page, int(total))


class RunsView(ProtectedView):
    """Every call of a prompt: filter, page through, open one."""

    required_role = "viewer"

    @expose("/")
    def index(self) -> Any:
        """The run log with filters (prompt, version, label, status, source, dates)."""
        filters = filters_from_request()
        page = list_runs(filters, page=page_number())
        return self.render("admin_ui/runs.html", page=page, f=filters)

    @expose("/<run_id>")
    def detail(self, run_id: str) -> Any:
        """One run: request parameters, variables (sensitive ones redacted), answer, feedback."""
        reg = get_registry()
        with reg.db.snapshot() as s:
            row = s.get(RunRow, run_id[:32])
            feedback = (
                s.scalars(
                    sa.select(FeedbackRow)
                    .where(FeedbackRow.run_id == row.id)
                    .order_by(FeedbackRow.id)
                ).all()
                if row is not None
                else []
            )
        if row is None:
            self.not_found(f"run {run_id!r} does not exist")
        return self.render("admin_ui/run.html", run=row, feedback=feedback)
