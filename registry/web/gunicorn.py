"""Production serving: the same app under gunicorn (``prompt-registry serve --workers 4``).

Each worker process builds its own app (and so its own ``Registry``, connection pool and
label-move listener) after the fork; nothing is shared between workers but the database.
Workers are threaded (``gthread``) so a streamed run or a slow model call holds a thread, not
a whole process, and is not killed by the worker timeout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn.app.base import BaseApplication

#: threads per worker (``REGISTRY_GUNICORN_THREADS``)
DEFAULT_THREADS = 8


def _default_threads() -> int:
    try:
        return max(1, int(os.environ.get("REGISTRY_GUNICORN_THREADS", DEFAULT_THREADS)))
    except ValueError:
        return DEFAULT_THREADS


class RegistryApplication(BaseApplication):  # type: ignore[misc]
    """A gunicorn application that builds the registry app in each worker."""

    def __init__(
        self, factory: Callable[[], Any], options: Mapping[str, Any] | None = None
    ) -> None:
        self._factory = factory
        self._options = dict(options or {})
        super().__init__()

    def load_config(self) -> None:
        """Apply the options gunicorn knows (unknown ones are an error, not silently dropped)."""
        for key, value in self._options.items():
            if key not in self.cfg.settings:
                raise ValueError(f"unknown gunicorn setting {key!r}")
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        """Build the WSGI app (called in each worker after the fork)."""
        return self._factory()


def _known_settings() -> frozenset[str]:
    from gunicorn.config import KNOWN_SETTINGS

    return frozenset(s.name for s in KNOWN_SETTINGS)


def gunicorn_options(
    *, host: str, port: int, workers: int, threads: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The gunicorn settings ``serve`` uses."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": max(1, workers),
        "worker_class": "gthread",
        "threads": threads or _default_threads(),
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "prompt-registry",
    }
    if "control_socket_disable" in _known_settings():
        # one shared control socket path would clash between servers on the same machine
        options["control_socket_disable"] = True
    options.update(extra)
    return options


def run_gunicorn(
    config: Mapping[str, Any] | None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    *,
    threads: int | None = None,
    **extra: Any,
) -> None:
    """Serve ``create_app(config)`` with gunicorn until interrupted.

    ``extra`` are further gunicorn settings (``accesslog="-"``, ``timeout=300``...).
    """
    app_config = dict(config or {})

    def factory() -> Any:
        from . import create_app

        return create_app(app_config)

    options = gunicorn_options(host=host, port=port, workers=workers, threads=threads, **extra)
    RegistryApplication(factory, options).run()


__all__ = ["RegistryApplication", "gunicorn_options", "run_gunicorn"]
