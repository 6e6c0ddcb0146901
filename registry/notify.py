"""Label moves seen by every process at once on PostgreSQL (``LISTEN`` / ``NOTIFY``).

Every ``Registry`` on PostgreSQL sends a notification on the ``registry_labels`` channel from
inside each label-move transaction (a label guard), so it is delivered exactly when the move
commits, and after other cache invalidations (a new version changes ``latest``; a label
deleted). Each registry that caches labels (``cache_ttl > 0``) runs one listener thread on its
own connection and drops the moved entries as notifications arrive: a move made by any
process is seen by all of them within milliseconds instead of after the cache TTL.

If the listening connection drops, the thread reconnects with backoff and forgets every cached
label (notifications sent meanwhile are lost).
"""

from __future__ import annotations

import json
import logging
import selectors
import socket
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .labels import LabelMove

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .service import RegistryService

log = logging.getLogger("registry.notify")

#: the PostgreSQL channel label moves are announced on
CHANNEL = "registry_labels"
#: longest wait between two checks that the registry still exists (seconds)
_IDLE_CHECK = 5.0
_MAX_BACKOFF = 10.0
_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")


def _payload(origin: str, prompt: str, label: str | None) -> str:
    return json.dumps({"o": origin, "p": prompt, "l": label}, separators=(",", ":"))


class LabelNotifier:
    """Sends and receives label-move notifications for one ``Registry`` on PostgreSQL."""

    def __init__(self, reg: RegistryService) -> None:
        self._reg: weakref.ReferenceType[RegistryService] = weakref.ref(reg)
        self._url = reg.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        #: identifies this instance in payloads (its own notifications are ignored)
        self.origin = uuid.uuid4().hex[:12]
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._start_lock = threading.Lock()
        #: set while the listener is connected and listening
        self.listening = threading.Event()
        #: notifications from other instances acted upon (for tests and monitoring)
        self.received = 0

    # -- sending ------------------------------------------------------------------------------

    def guard(self, session: Session, move: LabelMove) -> None:
        """A label guard that never refuses: it queues a NOTIFY, delivered on commit."""
        session.execute(
            _NOTIFY, {"channel": CHANNEL, "payload": _payload(self.origin, move.prompt, move.label)}
        )

    def on_invalidate(self, name: str, label: str | None) -> None:
        """After a local invalidation (new version, deleted label...), tell the others."""
        if not name or threading.current_thread() is self._thread:
            return  # a global clear stays local; an invalidation we received is not re-sent
        reg = self._reg()
        if reg is None:
            return
        try:
            with reg.db.engine.connect() as conn:
                conn.execute(
                    _NOTIFY, {"channel": CHANNEL, "payload": _payload(self.origin, name, label)}
                )
                conn.commit()
        except Exception as exc:  # the change itself is committed: never fail the caller
            log.warning("could not announce the change of %s: %s", name, exc)

    # -- receiving ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the listener thread (once); it connects in the background."""
        with self._start_lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name=f"registry-notify-{self.origin}", daemon=True
            )
            self._thread.start()

    def wait_listening(self, timeout: float = 5.0) -> bool:
        """Block until the listener is connected (True) or ``timeout`` passes (False)."""
        return self.listening.wait(timeout)

    def close(self) -> None:
        """Stop the listener thread and close its connection."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        for sock in (self._wake_r, self._wake_w):
            try:
                sock.close()
            except OSError:
                pass

    def _run(self) -> None:
        backoff = 0.2
        first = True
        while not self._stop.is_set() and self._reg() is not None:
            try:
                self._listen(forget_all=not first)
                backoff = 0.2
            except Exception as exc:
                self.listening.clear()
                if self._stop.is_set():
                    break
                log.warning("label listener: %s; reconnecting in %.1fs", exc, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, _MAX_BACKOFF)
            first = False
        self.listening.clear()

    def _listen(self, *, forget_all: bool) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            if forget_all:
                self._invalidate(None, None)  # what was announced while we were away is lost
            self.listening.set()
            with selectors.DefaultSelector() as sel:
                sel.register(conn.fileno(), selectors.EVENT_READ, "pg")
                sel.register(self._wake_r, selectors.EVENT_READ, "wake")
                while not self._stop.is_set():
                    if self._reg() is None:
                        return
                    for key, _ in sel.select(timeout=_IDLE_CHECK):
                        if key.data == "wake":
                            return
                    for notify in conn.notifies(timeout=0):
                        self._handle(notify.payload)

    def _handle(self, payload: str) -> None:
        try:
            data: Any = json.loads(payload)
            origin, name, label = data["o"], data["p"], data["l"]
        except (ValueError, KeyError, TypeError):
            log.warning("label listener: ignoring malformed payload %r", payload[:200])
            return
        if origin == self.origin or not isinstance(name, str):
            return
        self.received += 1
        self._invalidate(name, label if isinstance(label, str) else None)

    def _invalidate(self, name: str | None, label: str | None) -> None:
        reg = self._reg()
        if reg is not None:
            reg.invalidate(name, label)


def install_notifier(reg: RegistryService) -> LabelNotifier:
    """Wire a registry on PostgreSQL: announce its changes; listen when it caches labels."""
    notifier = reg.component(LabelNotifier)
    if notifier.guard not in reg.hooks.label_guards:
        reg.hooks.label_guards.append(notifier.guard)
        reg.hooks.label_listeners.append(notifier.on_invalidate)
    if reg.cache_ttl > 0:
        notifier.start()
    return notifier


__all__ = ["CHANNEL", "LabelNotifier", "install_notifier"]
