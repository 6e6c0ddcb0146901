"""The admin's pages, registered in menu order: the one list of what the admin shows."""

from __future__ import annotations

from flask import Flask

from . import api_keys, experiments, suites
from .audit import AuditView
from .base import Admin
from .labels import LabelsView
from .playground import PlaygroundView
from .prompts import PromptsView
from .runs import RunsView
from .users import UsersView


def register_views(admin: Admin, app: Flask) -> None:
    """Add every page: prompts, labels, playground, runs, label moves, users, then the pages of
    the capabilities (API keys, experiments, suites). A new page is added here."""
    admin.add_view(PromptsView(name="Prompts", endpoint="prompts", url="prompts"))
    admin.add_view(LabelsView(name="Labels", endpoint="labels", url="labels"))
    admin.add_view(PlaygroundView(name="Playground", endpoint="playground", url="playground"))
    admin.add_view(RunsView(name="Runs", endpoint="runs", url="runs"))
    admin.add_view(AuditView(name="Label moves", endpoint="audit", url="audit"))
    admin.add_view(UsersView(name="Users", endpoint="admin_users", url="users"))
    api_keys.register(admin, app)
    experiments.register(admin, app)
    suites.register(admin, app)


__all__ = ["register_views"]
