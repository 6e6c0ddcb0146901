"""Who is logged in, what their role allows, and the base class of every admin page.

How to write an admin page (other capabilities add theirs through ``register(admin, app)``,
see ``registry.web.admin.EXTENSION_MODULES``)::

    from flask import flash, redirect, request
    from flask_admin import expose

    from registry.web import get_registry
    from registry.web.admin.security import ProtectedView, current_user, require_role


    class KeysView(ProtectedView):
        required_role = "admin"          # viewer < editor < publisher < admin

        @expose("/")
        def index(self):
            return self.render("admin_ui/my_page.html", rows=[...])

        @expose("/create", methods=["POST"])   # CSRF is checked for every POST (Flask-WTF)
        @require_role("admin")                  # stricter than the view's role, if needed
        def create(self):
            ...
            flash("Key created", "success")
            return redirect(self.get_url(".index"))


    def register(admin, app):
        admin.add_view(KeysView(name="API keys", endpoint="api_keys", url="api-keys"))

Templates extend ``admin_ui/base.html`` (which extends Flask-Admin's ``admin/master.html``) and
put their content in ``{% block body %}``. Forms must carry the CSRF token: import the macros
with ``{% import "admin_ui/forms.html" as forms %}`` and write ``{{ forms.csrf_field() }}`` inside
a hand-written ``<form method="post">``, or ``{{ forms.render_form(form, action=url) }}`` for a
Flask-WTF ``FlaskForm`` (see ``csrf_field`` below for Python code). JavaScript sends the token in
the ``X-CSRFToken`` header: it is in ``<meta name="csrf-token">`` on every admin page.
``current_user`` and ``has_role`` are available in every template.
Errors: catch ``registry.RegistryError`` and ``flash(exc.message, "danger")``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup, escape

from ...users import ROLES, User, role_at_least, session_user
from .. import get_registry
from .base import BaseView

#: key of the login token in the signed Flask session cookie
SESSION_TOKEN_KEY = "registry_login"
#: the endpoint of the login page
LOGIN_ENDPOINT = "admin_login.index"

F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()


def current_user() -> User | None:
    """The logged-in user of this request (``.name``, ``.role``, ``.can(role)``), or None."""
    cached = g.get("_registry_user", _MISSING)
    if cached is not _MISSING:
        return cast("User | None", cached)
    token = session.get(SESSION_TOKEN_KEY)
    user = session_user(get_registry(), token) if token else None
    g._registry_user = user
    return user


def actor_name() -> str:
    """The name recorded in audits for changes made in this request."""
    user = current_user()
    return user.name if user else ""


def has_role(role: str) -> bool:
    """True when someone is logged in with ``role`` or a more powerful one."""
    user = current_user()
    return user is not None and user.can(role)


def safe_next_url(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def login_redirect() -> Any:
    """Send the browser to the login page, coming back here afterwards (for a GET)."""
    nxt = None
    if request.method == "GET":
        here = request.full_path.rstrip("?")
        nxt = safe_next_url(here, "") or None
    return redirect(url_for(LOGIN_ENDPOINT, next=nxt))


def forbidden(required: str, view: BaseView | None = None) -> Any:
    """The 403 page: says which role the action needs and which the user has."""
    user = current_user()
    context = {
        "required_role": required,
        "user_role": user.role if user else None,
        "roles": ROLES,
    }
    if view is not None and view.admin is not None:
        body = view.render("admin_ui/forbidden.html", **context)
    else:
        body = render_template("admin_ui/forbidden_plain.html", **context)
    return current_app.response_class(body, status=403)


def require_role(role: str) -> Callable[[F], F]:
    """Decorate a view method: not logged in -> login page; role too low -> 403 page."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return login_redirect()
            if not user.can(role):
                view = args[0] if args and isinstance(args[0], BaseView) else None
                return forbidden(role, view)
            return func(*args, **kwargs)

        # Flask-Admin reads ``_urls`` set by @expose from the function it wraps
        if hasattr(func, "_urls"):
            wrapper._urls = func._urls  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


class AccessMixin:
    """``is_accessible``/``inaccessible_callback`` for any Flask-Admin view by ``required_role``."""

    #: the least role that may open this view
    required_role: str = "viewer"

    def is_accessible(self) -> bool:
        """Logged in with at least ``required_role``."""
        return has_role(self.required_role)

    def is_visible(self) -> bool:
        """Only show menu entries the user can open."""
        return has_role(self.required_role)

    def _handle_view(self, view_name: str, **kwargs: Any) -> Any:
        # Flask-Admin's own version takes the view name as ``name``, which clashes with a URL
        # variable called ``name`` (``/<path:name>/``); this one accepts any URL variables.
        if not self.is_accessible():
            return self.inaccessible_callback(view_name)
        return None

    def inaccessible_callback(self, view_name: Any, **kwargs: Any) -> Any:
        """Login page when anonymous, else the 403 page."""
        if current_user() is None:
            return login_redirect()
        return forbidden(self.required_role, cast(BaseView, self))


class ProtectedView(AccessMixin, BaseView):
    """A Flask-Admin page only users with ``required_role`` (or above) may open."""

    def not_found(self, message: str) -> NoReturn:
        """Stop the request with the admin's 404 page saying ``message``."""
        abort(make_response(self.render("admin_ui/not_found.html", message=message), 404))


def csrf_field() -> Markup:
    """The hidden CSRF input to put inside a hand-written ``<form method="post">``."""
    from flask_wtf.csrf import generate_csrf

    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">')


def check_role_name(role: str) -> bool:
    """True for a known role name."""
    return role in ROLES


def role_allows(user: User | None, role: str) -> bool:
    """True when ``user`` (possibly None) has ``role`` or above."""
    return user is not None and user.active and role_at_least(user.role, role)


__all__ = [
    "LOGIN_ENDPOINT",
    "SESSION_TOKEN_KEY",
    "AccessMixin",
    "ProtectedView",
    "actor_name",
    "csrf_field",
    "current_user",
    "forbidden",
    "has_role",
    "login_redirect",
    "require_role",
    "role_allows",
    "safe_next_url",
]
