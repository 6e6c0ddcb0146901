"""The admin's own pages, registered in menu order."""

from __future__ import annotations

from flask import Flask

from .compat import Admin


def register_core_views(admin: Admin, app: Flask) -> None:
    """Add the prompts, runs, audit and users pages."""
    from .users import UsersView

    admin.add_view(UsersView(name="Users", endpoint="admin_users", url="users"))
