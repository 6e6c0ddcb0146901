"""The web admin for editors (Flask-Admin 2.x, Bootstrap 4) mounted at ``/admin``.

``init_app(app)`` sets up the secret key, the session cookie, CSRF protection (the JSON API
blueprint ``api_v1`` is exempt: it authenticates with bearer keys), the login pages and the
admin views (:mod:`registry.web.admin.views` lists them in menu order; a capability's page
module defines ``register(admin, app)``, called from there). How to write a page: see
:mod:`registry.web.admin.security`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

#: blueprints that authenticate with bearer keys and so need no CSRF token
CSRF_EXEMPT_BLUEPRINTS = frozenset({"api_v1"})


#: URL prefixes whose requests never have a session (bearer keys, no cookies)
SESSIONLESS_PREFIXES = ("/api/",)


class _SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie ``Secure`` whenever the request came over https.

    Requests to the JSON API get the null session without any cookie work (signing
    serializer, cookie parsing): they authenticate with bearer keys, and it is their hot path.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return None  # Flask then uses make_null_session: no cookie read or written
        return super().open_session(app, request)


def _configure_sessions(app: Flask) -> None:
    from .secret_key import ensure_secret_key

    ensure_secret_key(app)
    if app.config.get("SESSION_COOKIE_NAME") == "session":  # Flask's default name
        app.config["SESSION_COOKIE_NAME"] = "registry_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = _SessionInterface()
    proxies = app.config.get("REGISTRY_TRUSTED_PROXIES", os.environ.get("REGISTRY_TRUSTED_PROXIES"))
    if proxies and int(proxies) > 0 and not app.extensions.get("registry_proxy_fix"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(proxies)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
        app.extensions["registry_proxy_fix"] = True


def _configure_csrf(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError, CSRFProtect

    class RegistryCSRF(CSRFProtect):  # type: ignore[misc]
        """Exempts the API blueprints (and any blueprint nested in them) by name."""

        def _is_exempt(self) -> bool:
            if any(name in CSRF_EXEMPT_BLUEPRINTS for name in request.blueprints):
                return True
            return bool(super()._is_exempt())

    # a form left open all day must still save: the token lives as long as the login
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf = RegistryCSRF()
    csrf.init_app(app)
    for name, blueprint in app.blueprints.items():
        if name.split(".")[0] in CSRF_EXEMPT_BLUEPRINTS:
            csrf.exempt(blueprint)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Any:
        from flask import render_template

        body = render_template("admin_ui/csrf_error.html", reason=exc.description)
        return app.response_class(body, status=400)


def _register_assets(app: Flask) -> None:
    """Our templates and stylesheet, whatever the app's own template folder is."""
    from flask import Blueprint

    web = Path(__file__).resolve().parent.parent
    app.register_blueprint(
        Blueprint(
            "admin_ui",
            __name__,
            template_folder=str(web / "templates"),
            static_folder=str(web / "static"),
            static_url_path="/admin-ui-static",
        )
    )


def init_app(app: Flask) -> None:
    """Mount the admin on ``app`` (builds a new ``Admin`` each time: one per app)."""
    from flask_admin import Admin
    from flask_admin.theme import Bootstrap4Theme

    from .auth import LoginView, LogoutView
    from .formatting import register_filters
    from .home import HomeView
    from .security import current_user, has_role

    _configure_sessions(app)
    _configure_csrf(app)
    _register_assets(app)
    register_filters(app)

    admin = Admin(
        app,
        name="Prompt registry",
        theme=Bootstrap4Theme(base_template="admin_ui/layout.html", fluid=True),
        index_view=HomeView(name="Home", url="/admin", endpoint="admin"),
    )
    app.extensions["registry_admin"] = admin
    admin.add_view(LoginView(name="Log in", endpoint="admin_login", url="login"))
    admin.add_view(LogoutView(name="Log out", endpoint="admin_logout", url="logout"))

    @app.after_request
    def _admin_headers(response: Response) -> Response:
        # logged-in pages: no framing (clickjacking), not kept by shared caches; not no-store,
        # which would make the back button re-post forms such as the preview
        if request.path.startswith("/admin") and "/static/" not in request.path:
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            if response.mimetype == "text/html":
                response.headers.setdefault("Cache-Control", "private, no-cache")
        return response

    @app.context_processor
    def _user_context() -> dict[str, Any]:
        return {"current_user": current_user, "has_role": has_role}

    from .views import register_views

    register_views(admin, app)
    _register_error_pages(app, admin)


def _register_error_pages(app: Flask, admin: Any) -> None:
    """An admin page that lets a ``RegistryError`` escape answers with its status and message.

    Pages catch the errors they expect; this is the net under them (a bad prompt name or
    version typed into a URL is a 4xx page naming the problem, never a 500). An app-wide
    handler: the JSON API's blueprint has its own, which Flask prefers for its requests.
    """
    from ...errors import DatabaseUnavailable, RegistryError
    from .. import maintenance_page

    def registry_error(exc: RegistryError) -> Any:
        if isinstance(exc, DatabaseUnavailable):  # the menu and the login need the database
            return maintenance_page(exc)
        status = exc.status if isinstance(exc.status, int) and 400 <= exc.status < 600 else 500
        title = "Not found" if status == 404 else "That did not work"
        if not request.path.startswith(admin.url):
            return app.response_class(
                f"{title}: {exc.message}\n", status=status, mimetype="text/plain"
            )
        body = admin.index_view.render(
            "admin_ui/error.html", title=title, message=exc.message, status=status
        )
        return app.response_class(body, status=status)

    app.register_error_handler(RegistryError, registry_error)


def get_admin(app: Flask) -> Any:
    """The ``flask_admin.Admin`` of ``app``."""
    return app.extensions["registry_admin"]
