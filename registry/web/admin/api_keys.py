"""``/admin/api-keys/``: create, list and revoke API keys of the HTTP API (admins only)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from ...api_keys import SCOPES, create_api_key, list_api_keys, revoke_api_key
from ...errors import RegistryError
from .. import get_registry
from .base import expose
from .security import ProtectedView, actor_name


class ApiKeysView(ProtectedView):
    """Every key with its scope and last use; a new key is shown once, right after creation."""

    required_role = "admin"

    def _page(self, **extra: Any) -> Any:
        keys = list_api_keys(get_registry())
        return self.render("admin_ui/api_keys.html", keys=keys, scopes=SCOPES, **extra)

    @expose("/")
    def index(self) -> Any:
        """The list of keys and the creation form."""
        return self._page()

    @expose("/create", methods=["POST"])
    def create(self) -> Any:
        """Create a key and show it once (answered directly: the key never enters a cookie)."""
        name = (request.form.get("name") or "").strip()
        scope = request.form.get("scope") or ""
        try:
            token, info = create_api_key(get_registry(), name, scope, created_by=actor_name())
        except RegistryError as exc:
            flash(exc.message, "danger")
            return redirect(url_for(".index"))
        response = self._page(new_key=token, new_info=info)
        return response, 200, {"Cache-Control": "no-store"}

    @expose("/<int:key_id>/revoke", methods=["POST"])
    def revoke(self, key_id: int) -> Any:
        """Revoke a key: requests with it are refused from now on."""
        try:
            info = revoke_api_key(get_registry(), key_id, actor=actor_name())
        except RegistryError as exc:
            flash(exc.message, "danger")
        else:
            flash(f"Key {info.name} ({info.prefix}…) revoked.", "success")
        return redirect(url_for(".index"))


def register(admin: Any, app: Any) -> None:
    """Add the API keys page to the admin."""
    admin.add_view(ApiKeysView(name="API keys", endpoint="api_keys", url="api-keys"))


__all__ = ["ApiKeysView", "register"]
