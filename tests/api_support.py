"""Helpers shared by the HTTP API and client tests: a live server in a thread, keys per scope."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from registry import Registry
from registry.api_keys import SCOPES, create_api_key
from registry.web import create_app

SEED_DIR = Path(__file__).resolve().parent.parent / "templates_seed"


def build_app(reg: Registry, **config: Any) -> Flask:
    """The web app serving ``reg`` in test mode."""
    return create_app(
        {
            "REGISTRY": reg,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            **config,
        }
    )


def make_keys(reg: Registry, prefix: str = "key") -> dict[str, str]:
    """One key per scope: ``{"read": "prk_...", "run": ..., "write": ...}``."""
    return {scope: create_api_key(reg, f"{prefix}-{scope}", scope)[0] for scope in SCOPES}


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Switch:
    """WSGI middleware: counts requests and, while ``status`` is set, answers it instead; while
    ``proxy`` is set, that WSGI callable answers (a proxy's HTML page, a slow answer...)."""

    app: Callable[..., Iterable[bytes]]
    status: int | None = None
    proxy: Callable[..., Iterable[bytes]] | None = None
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            self.requests.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}")
        if self.proxy is not None:
            return self.proxy(environ, start_response)
        if self.status is not None:
            body = b'{"error": {"type": "internal_error", "message": "switched off by the test"}}'
            start_response(
                f"{self.status} Failing",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)

    def count(self, needle: str = "") -> int:
        """Requests seen so far whose ``METHOD path`` contains ``needle``."""
        with self.lock:
            return sum(1 for r in self.requests if needle in r)


class LiveServer:
    """A threaded werkzeug server on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
