"""``/admin/audit/``: every label move of every prompt, newest first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import request

from ... import config
from ...models import LabelEventRow, PromptRow
from .. import get_registry
from .base import expose
from .pagination import Page, offset_of, page_number
from .security import ProtectedView

PER_PAGE = 50


class AuditView(ProtectedView):
    """The label audit across prompts, filtered by label or actor."""

    required_role = "viewer"

    @expose("/")
    def index(self) -> Any:
        """A page of label moves (primary-key order, so the newest page is cheap)."""
        label = request.args.get("label", "").strip()[:64]
        actor = request.args.get("actor", "").strip()[:200]
        where: list[Any] = []
        if label:
            where.append(LabelEventRow.label == label)
        if actor:
            where.append(LabelEventRow.actor == actor)
        number = page_number()
        reg = get_registry()
        with reg.db.snapshot() as s:
            total = (
                s.scalar(sa.select(sa.func.count()).select_from(LabelEventRow).where(*where)) or 0
            )
            rows = s.execute(
                sa.select(LabelEventRow, PromptRow.name)
                .join(PromptRow, PromptRow.id == LabelEventRow.prompt_id)
                .where(*where)
                .order_by(LabelEventRow.id.desc())
                .limit(PER_PAGE)
                .offset(offset_of(number, PER_PAGE))
            ).all()
            items = [
                (
                    e.id,
                    name,
                    e.label,
                    e.from_version,
                    e.to_version,
                    e.actor,
                    e.kind,
                    e.reason,
                    e.created_at,
                )
                for e, name in rows
            ]
        return self.render(
            "admin_ui/audit.html",
            page=Page(items, number, PER_PAGE, int(total)),
            label=label,
            actor=actor,
            protected=config.protected_labels(),
        )
