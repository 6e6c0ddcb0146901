"""The admin's own pages, registered in menu order."""

from __future__ import annotations

from flask import Flask

from .compat import Admin


def register_core_views(admin: Admin, app: Flask) -> None:
    """Add the prompts, runs, audit and users pages."""
    from .audit import AuditView
    from .labels import LabelsView
    from .playground import PlaygroundView
    from .prompts import PromptsView
    from .users import UsersView

    admin.add_view(PromptsView(name="Prompts", endpoint="prompts", url="prompts"))
    admin.add_view(LabelsView(name="Labels", endpoint="labels", url="labels"))
    admin.add_view(PlaygroundView(name="Playground", endpoint="playground", url="playground"))
    try:
        from .runs import RunsView
    except ImportError:  # the runner's tables are not in this build
        pass
    else:
        admin.add_view(RunsView(name="Runs", endpoint="runs", url="runs"))
    admin.add_view(AuditView(name="Label moves", endpoint="audit", url="audit"))
    admin.add_view(UsersView(name="Users", endpoint="admin_users", url="users"))
