"""Label moves from the admin: move with a reason, roll back, and the history of every move.

Editors move unprotected labels; protected labels (``REGISTRY_PROTECTED_LABELS``, default
``production``) need a publisher, and the regression-suite gate may still refuse the move (its
message is shown). Admins may override the gate with a reason. Every form carries the version
the label was at when the page was drawn (``expected_version``): a move that lost a race to
another editor is refused with the conflict explained, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from ... import config
from ...errors import ConflictError, RegistryError
from .. import get_registry
from .base import expose
from .pagination import page_number
from .prompt_queries import label_events, label_states, prompt_info
from .security import ProtectedView, actor_name, forbidden, has_role, safe_next_url


def required_role_for(label: str) -> str:
    """``publisher`` for protected labels, else ``editor``."""
    return "publisher" if label in config.protected_labels() else "editor"


class LabelsView(ProtectedView):
    """Routes under ``/admin/labels/<prompt>/-/...``."""

    required_role = "viewer"

    def is_visible(self) -> bool:
        """Reached from prompt pages, not the menu."""
        return False

    @expose("/")
    def index(self) -> Any:
        """No page of its own: the prompts list."""
        return redirect(url_for("prompts.index"))

    @expose("/<path:name>/-/history")
    def history(self, name: str) -> Any:
        """Every move of the prompt's labels (or of ``?label=``), newest first, with roll back."""
        reg = get_registry()
        info = prompt_info(reg, name)
        if info is None:
            self.not_found(f"prompt {name!r} does not exist")
        label = request.args.get("label", "")
        return self.render(
            "admin_ui/history.html",
            info=info,
            label=label,
            labels=label_states(reg, name),
            events=label_events(reg, name, label=label, page=page_number()),
            protected=config.protected_labels(),
        )

    def _back(self, name: str, version: int | None = None) -> Any:
        default = (
            url_for("prompts.version", name=name, version=version)
            if version
            else url_for("prompts.prompt", name=name)
        )
        return redirect(safe_next_url(request.form.get("next"), default), code=303)

    @expose("/<path:name>/-/move", methods=["POST"])
    def move(self, name: str) -> Any:
        """Point a label at a version (compare-and-set on ``expected_version``)."""
        label = (request.form.get("label") or "").strip()
        reason = (request.form.get("reason") or "").strip()
        override = request.form.get("override") == "1"
        try:
            version = int(request.form.get("version", ""))
            raw_expected = request.form.get("expected_version", "")
            expected = int(raw_expected) if raw_expected != "" else None
        except ValueError:
            flash(
                "The form was incomplete: version numbers are missing. Reload the page.", "danger"
            )
            return self._back(name)
        needed = required_role_for(label)
        if not has_role(needed):
            return forbidden(needed, self)
        if override and not has_role("admin"):
            return forbidden("admin", self)
        if override and not reason:
            flash("An override needs a reason: say why the gate may be bypassed.", "danger")
            return self._back(name, version)
        try:
            get_registry().set_label(
                name,
                label,
                version,
                actor=actor_name(),
                expected_version=expected,
                reason=reason,
                override=override,
            )
        except ConflictError as exc:
            flash(f"Not moved: {exc.message}", "danger")
            return self._back(name, version)
        except RegistryError as exc:
            flash(f"Not moved: {exc.message}", "danger")
            return self._back(name, version)
        flash(f"{label} of {name} now points at version {version}.", "success")
        return self._back(name, version)

    @expose("/<path:name>/-/rollback", methods=["POST"])
    def rollback(self, name: str) -> Any:
        """Move a label back to where it pointed before its last move."""
        label = (request.form.get("label") or "").strip()
        needed = required_role_for(label)
        if not has_role(needed):
            return forbidden(needed, self)
        reason = (request.form.get("reason") or "").strip()
        try:
            back_to = get_registry().rollback_label(name, label, actor=actor_name(), reason=reason)
        except RegistryError as exc:
            flash(f"Not rolled back: {exc.message}", "danger")
            return self._back(name)
        flash(
            f"Rolled back: {label} of {name} points at version {back_to.version} again.", "success"
        )
        return self._back(name)

    @expose("/<path:name>/-/delete", methods=["POST"])
    def delete(self, name: str) -> Any:
        """Remove a label from the prompt (audited)."""
        label = (request.form.get("label") or "").strip()
        needed = required_role_for(label)
        if not has_role(needed):
            return forbidden(needed, self)
        try:
            get_registry().delete_label(
                name, label, actor=actor_name(), reason=(request.form.get("reason") or "").strip()
            )
        except RegistryError as exc:
            flash(f"Not removed: {exc.message}", "danger")
            return self._back(name)
        flash(f"Label {label} removed from {name}.", "success")
        return self._back(name)
