"""The admin home page: what changed lately, at a glance."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...models import LabelEventRow, PromptRow, VersionRow
from .. import get_registry
from .base import AdminIndexView, expose
from .security import AccessMixin

RECENT = 10


class HomeView(AccessMixin, AdminIndexView):
    """``/admin/``: counts, the latest versions and the latest label moves."""

    @expose("/")
    def index(self) -> Any:
        """Dashboard (a few indexed queries, each bounded by ``LIMIT``)."""
        reg = get_registry()
        with reg.db.snapshot() as s:
            prompt_count = s.scalar(
                sa.select(sa.func.count())
                .select_from(PromptRow)
                .where(PromptRow.archived_at.is_(None))
            )
            versions = s.execute(
                sa.select(
                    PromptRow.name,
                    VersionRow.version,
                    VersionRow.author,
                    VersionRow.message,
                    VersionRow.created_at,
                )
                .join(PromptRow, PromptRow.id == VersionRow.prompt_id)
                .order_by(VersionRow.id.desc())
                .limit(RECENT)
            ).all()
            moves = s.execute(
                sa.select(
                    PromptRow.name,
                    LabelEventRow.label,
                    LabelEventRow.from_version,
                    LabelEventRow.to_version,
                    LabelEventRow.actor,
                    LabelEventRow.kind,
                    LabelEventRow.reason,
                    LabelEventRow.created_at,
                )
                .join(PromptRow, PromptRow.id == LabelEventRow.prompt_id)
                .order_by(LabelEventRow.id.desc())
                .limit(RECENT)
            ).all()
        return self.render(
            "admin_ui/home.html", prompt_count=prompt_count or 0, versions=versions, moves=moves
        )
