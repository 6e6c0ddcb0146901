"""``/admin/users/``: accounts and roles (admins only)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from ...errors import RegistryError
from ...users import (
    ROLES,
    create_user,
    disable_user,
    enable_user,
    list_users,
    set_password,
    set_role,
)
from .. import get_registry
from .base import expose
from .security import ProtectedView, current_user


class UsersView(ProtectedView):
    """List, create, change the role of, disable and re-enable accounts."""

    required_role = "admin"

    @expose("/")
    def index(self) -> Any:
        """Every account with its role and last login."""
        return self.render("admin_ui/users.html", users=list_users(get_registry()), roles=ROLES)

    def _back(self) -> Any:
        return redirect(url_for(".index"))

    @expose("/create", methods=["POST"])
    def create(self) -> Any:
        """Create an account from the form on the list page."""
        name = (request.form.get("name") or "").strip()
        password = request.form.get("password") or ""
        if password != (request.form.get("password2") or ""):
            flash("The two passwords differ: nothing was created.", "danger")
            return self._back()
        try:
            user = create_user(
                get_registry(), name, password, role=request.form.get("role", "viewer")
            )
        except RegistryError as exc:
            flash(exc.message, "danger")
        else:
            flash(f"User {user.name} created with role {user.role}.", "success")
        return self._back()

    @expose("/<name>/role", methods=["POST"])
    def role(self, name: str) -> Any:
        """Change a user's role (an admin cannot demote themselves and lock the door)."""
        role = request.form.get("role", "")
        me = current_user()
        if me is not None and me.name == name and role != "admin":
            flash("You cannot remove your own admin role: ask another admin.", "warning")
            return self._back()
        try:
            user = set_role(get_registry(), name, role)
        except RegistryError as exc:
            flash(exc.message, "danger")
        else:
            flash(f"{user.name} is now {user.role}.", "success")
        return self._back()

    @expose("/<name>/active", methods=["POST"])
    def active(self, name: str) -> Any:
        """Disable (ends their sessions) or re-enable an account."""
        enable = request.form.get("active") == "1"
        me = current_user()
        if me is not None and me.name == name and not enable:
            flash("You cannot disable your own account.", "warning")
            return self._back()
        try:
            user = (enable_user if enable else disable_user)(get_registry(), name)
        except RegistryError as exc:
            flash(exc.message, "danger")
        else:
            flash(f"{user.name} is {'enabled' if user.active else 'disabled'}.", "success")
        return self._back()

    @expose("/<name>/password", methods=["POST"])
    def password(self, name: str) -> Any:
        """Set a new password (the user's open sessions end)."""
        password = request.form.get("password") or ""
        if password != (request.form.get("password2") or ""):
            flash("The two passwords differ: the password was not changed.", "danger")
            return self._back()
        try:
            set_password(get_registry(), name, password)
        except RegistryError as exc:
            flash(exc.message, "danger")
        else:
            flash(f"Password of {name} changed; their sessions were ended.", "success")
        return self._back()
