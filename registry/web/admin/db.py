"""A SQLAlchemy session for Flask-Admin ``ModelView`` pages, scoped to the app context.

Flask-Admin 2.2 queries the object it is given directly, unless it is a Flask-SQLAlchemy
extension, and warns (deprecated) when that object has no ``.session`` attribute. Without
Flask-SQLAlchemy the working, warning-free thing to pass is a ``scoped_session`` that is also
its own ``.session``: that is what :func:`admin_db` returns::

    from registry.web.admin.compat import sqla_model_view
    from registry.web.admin.db import admin_db

    admin.add_view(MyModelView(MyRow, admin_db(app), name="Things"))

The session reads through the registry's engine and is removed at the end of each request.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from .. import get_registry

_KEY = "registry_admin_db"


class AdminSession(scoped_session[Session]):
    """A ``scoped_session`` Flask-Admin accepts without a deprecation warning."""

    @property
    def session(self) -> AdminSession:
        """Itself (Flask-Admin looks for ``.session``)."""
        return self


def admin_db(app: Flask) -> AdminSession:
    """The app's ``AdminSession`` (created on first use, removed after each request)."""
    found: Any = app.extensions.get(_KEY)
    if isinstance(found, AdminSession):
        return found
    session = AdminSession(sessionmaker(get_registry(app).db.engine, expire_on_commit=False))
    app.extensions[_KEY] = session

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        session.remove()

    return session
