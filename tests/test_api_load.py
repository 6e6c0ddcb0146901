"""Load: 32 concurrent connections render for 30 s against ``manage.py serve --workers 2``.

Zero errors and zero 5xx are required. ``REGISTRY_LOAD_SECONDS`` shortens the run locally.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from registry import Registry
from registry.api_keys import create_api_key
from tests.api_support import SEED_DIR, bearer

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("REGISTRY_LOAD_SECONDS", "30"))
CONNECTIONS = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with status {proc.returncode}")
        try:
            if requests.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become healthy")


@pytest.mark.slow
def test_render_under_load_has_no_errors(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'load.db'}"
    reg = Registry(database)
    reg.seed(SEED_DIR)
    token, _ = create_api_key(reg, "load", "read")
    reg.close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "--database",
            database,
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    body = {"variables": {"text": "The meeting moved to Friday. Budget approved.", "bullets": 2}}
    try:
        _wait_healthy(url, server)
        deadline = time.monotonic() + SECONDS

        def worker() -> None:
            session = requests.Session()
            session.headers.update(bearer(token))
            seen: Counter[int] = Counter()
            while time.monotonic() < deadline:
                try:
                    resp = session.post(
                        f"{url}/api/v1/prompts/summarize/render", json=body, timeout=30
                    )
                    seen[resp.status_code] += 1
                    if resp.status_code == 200 and "Budget approved" not in resp.text:
                        with lock:
                            failures.append("a 200 answer without the rendered text")
                except requests.RequestException as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
            session.close()
            with lock:
                statuses.update(seen)

        threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 60)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    total = sum(statuses.values())
    assert failures == [], failures[:5]
    assert set(statuses) == {200}, statuses
    assert total >= CONNECTIONS, total
    print(
        f"\n{total} renders in {SECONDS:.0f} s over {CONNECTIONS} connections: "
        f"{total / SECONDS:.0f}/s, statuses {dict(statuses)}"
    )
