"""A private PostgreSQL cluster for outage tests: its own data directory, port and socket.

Tests stop and start it under load (never the shared server on 5432). ``initdb`` and
``pg_ctl`` run as the ``postgres`` user when the tests run as root. The cluster is tuned for
speed (no fsync) and a modest connection count (CI machines allow 100 on the main server).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """``initdb`` + ``pg_ctl`` on a free port; ``stop()``/``start()`` simulate an outage."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("pg_ctl/initdb not found")
        self.bindir = bindir
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="registry-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self._user: str | None = "postgres" if os.geteuid() == 0 else None
        if self._user:
            shutil.chown(self.base, self._user, self._user)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.running = False

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            user=self._user,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.base,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}{log[-2000:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=80 "
            "-c shared_buffers=16MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are cut; ``immediate``: as after a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create (or re-create) ``name``; returns its URL."""
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until a connection succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def destroy(self) -> None:
        """Stop the server if running and delete its files."""
        if self.running:
            try:
                self.stop("immediate")
            except Exception:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


__all__ = ["PrivateCluster"]
