"""The Flask secret key: from config, the environment, or a generated file shared by workers.

Never hard-coded. Order: ``SECRET_KEY`` in the app config, ``REGISTRY_SECRET_KEY`` in the
environment, else a random key generated once and kept (mode 0600) next to the SQLite database
(``registry.db.secret-key``) or, for other databases, in the app's instance folder. Every
worker process of one machine reads the same file; several machines need
``REGISTRY_SECRET_KEY`` set to the same value.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from flask import Flask

from .. import get_registry


def secret_key_path(app: Flask) -> Path:
    """Where the generated key lives for this app's database."""
    db = get_registry(app).db
    database = db.url.database if db.is_sqlite else None
    if database and database != ":memory:" and not database.startswith("file:"):
        return Path(database).resolve().with_name(Path(database).name + ".secret-key")
    return Path(app.instance_path) / "secret-key"


def load_or_create_key(path: Path) -> str:
    """Read the key at ``path``, creating it atomically (0600) when it does not exist."""
    for _ in range(50):
        try:
            key = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            key = ""
        if key:
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_urlsafe(48).encode("ascii"))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and refuses to overwrite: the first worker wins
        except FileExistsError:
            time.sleep(0.01)
        finally:
            tmp.unlink(missing_ok=True)
    raise RuntimeError(f"could not read or create the secret key file {path}")


def ensure_secret_key(app: Flask) -> None:
    """Set ``app.secret_key`` unless the config already has one."""
    if app.config.get("SECRET_KEY"):
        return
    from_env = os.environ.get("REGISTRY_SECRET_KEY")
    if from_env:
        app.config["SECRET_KEY"] = from_env
        return
    app.config["SECRET_KEY"] = load_or_create_key(secret_key_path(app))
