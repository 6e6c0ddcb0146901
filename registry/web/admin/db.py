"""A SQLAlchemy session for Flask-Admin ``ModelView`` pages, scoped to the app context.

Flask-Admin 2.x wants an object with a ``.session`` attribute (passing a bare session is
deprecated)::

    from registry.web.admin.db import admin_db
    admin.add_view(MyModelView(MyRow, admin_db(app), name="Things"))

The session reads through the registry's engine and is removed at the end of each request.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import scoped_session, sessionmaker

from .. import get_registry

_KEY = "registry_admin_db"


class AdminDB:
    """Holder of the scoped session Flask-Admin's SQLAlchemy views use."""

    def __init__(self, session: scoped_session) -> None:  # type: ignore[type-arg]
        self.session = session


def admin_db(app: Flask) -> AdminDB:
    """The app's ``AdminDB`` (created on first use; the session is removed after each request)."""
    found = app.extensions.get(_KEY)
    if isinstance(found, AdminDB):
        return found
    reg = get_registry(app)
    session = scoped_session(sessionmaker(reg.db.engine, expire_on_commit=False))
    holder = AdminDB(session)
    app.extensions[_KEY] = holder

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        session.remove()

    return holder
