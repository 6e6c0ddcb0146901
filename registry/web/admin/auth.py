"""Login and logout pages, and a brake on password guessing."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from flask import flash, g, make_response, redirect, request, session, url_for

from ...users import authenticate, count_users, end_session, start_session
from .. import get_registry
from .base import BaseView, expose
from .security import SESSION_TOKEN_KEY, current_user, safe_next_url

#: failed logins allowed per (address, name) in ``FAILURE_WINDOW`` seconds
MAX_FAILURES = 10
FAILURE_WINDOW = 600.0


class LoginThrottle:
    """Counts recent failed logins per (client address, user name) in this process."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        while found and found[0] < now - self.window:
            found.popleft()
        return found

    def blocked(self, address: str, name: str) -> bool:
        """True when this client has failed too often for this name recently."""
        with self._lock:
            return len(self._recent((address, name), time.monotonic())) >= self.limit

    def failed(self, address: str, name: str) -> None:
        """Record a failed attempt."""
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._recent((address, name), time.monotonic()).append(time.monotonic())

    def succeeded(self, address: str, name: str) -> None:
        """Forget the failures of a client that logged in."""
        with self._lock:
            self._failures.pop((address, name), None)


class LoginView(BaseView):
    """``/admin/login/``: the only admin page open to anonymous visitors."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.throttle = LoginThrottle()

    def is_visible(self) -> bool:
        """Not in the menu."""
        return False

    @expose("/", methods=["GET", "POST"])
    def index(self) -> Any:
        """Show the form; on POST check the password and open a session."""
        reg = get_registry()
        home = url_for("admin.index")
        nxt = safe_next_url(request.values.get("next"), home)
        if request.method == "GET" and current_user() is not None:
            return redirect(nxt)
        name = ""
        error = None
        status = 200
        if request.method == "POST":
            name = (request.form.get("name") or "").strip()
            password = request.form.get("password") or ""
            address = request.remote_addr or "?"
            if self.throttle.blocked(address, name):
                error = "Too many failed attempts for this account: wait ten minutes and try again."
                status = 429
            else:
                user = authenticate(reg, name, password) if name and password else None
                if user is None:
                    self.throttle.failed(address, name)
                    error = "Wrong user name or password (or the account is disabled)."
                    status = 401
                else:
                    self.throttle.succeeded(address, name)
                    old = session.get(SESSION_TOKEN_KEY)
                    if old:
                        end_session(reg, old)
                    session.clear()  # a fresh session (and CSRF token) on every login
                    session[SESSION_TOKEN_KEY] = start_session(reg, user)
                    g.pop("_registry_user", None)
                    flash(f"Welcome, {user.name} ({user.role}).", "success")
                    return redirect(nxt)
        body = self.render(
            "admin_ui/login.html",
            name=name,
            error=error,
            next_url=request.values.get("next") or "",
            no_users=count_users(reg) == 0,
        )
        return make_response(body, status)


class LogoutView(BaseView):
    """``/admin/logout/`` (POST): ends the session on the server and in the browser."""

    def is_visible(self) -> bool:
        """Not in the menu (the navbar has a logout button)."""
        return False

    @expose("/", methods=["GET", "POST"])
    def index(self) -> Any:
        """GET shows a confirmation button (logging out changes state, so it needs a POST)."""
        if request.method == "GET":
            if current_user() is None:
                return redirect(url_for("admin_login.index"))
            return self.render("admin_ui/logout.html")
        token = session.get(SESSION_TOKEN_KEY)
        if token:
            end_session(get_registry(), token)
        session.clear()
        g.pop("_registry_user", None)
        flash("You are logged out.", "info")
        return redirect(url_for("admin_login.index"))
