"""Database outages: typed errors everywhere, stale reads, 503 + Retry-After, a maintenance page.

A private PostgreSQL cluster (``private_pg``) is stopped and started by the tests; SQLite
outages are a database file that cannot be opened.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from registry import DatabaseUnavailable, Registry, RegistryError, users
from registry.models.runs import RunRow
from registry.reading import OUTAGE_RETRY_SECONDS

from .api_support import LiveServer, bearer, build_app, make_keys
from .conftest import simple_version
from .pg_cluster import PrivateCluster

pytestmark = pytest.mark.postgres


def _wait_fresh(reg: Registry, name: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = reg.get(name)
        if not v.stale:
            return v
        assert time.monotonic() < deadline, "the registry did not recover by itself"
        time.sleep(0.1)


def test_reads_serve_what_was_last_seen_marked_stale_and_recover_by_themselves(
    private_pg: PrivateCluster, outage_url: str
) -> None:
    reg = Registry(outage_url, cache_ttl=0)
    try:
        reg.create_version("greet", **simple_version(labels=["production", "staging"]))
        assert reg.get("greet").stale is False
        assert reg.get("greet", label="staging").version == 1
        private_pg.stop()

        served = reg.get("greet")
        assert served.version == 1 and served.stale is True
        assert served.render(question="hi").messages[0]["content"] == "hi"
        assert reg.get("greet", version=1).version == 1  # versions are immutable: cached
        with pytest.raises(DatabaseUnavailable) as never_read:
            reg.get("greet", label="canary")
        error = never_read.value
        assert isinstance(error, RegistryError) and error.retryable is True
        assert f"127.0.0.1:{private_pg.port}/registry" in error.message
        assert error.status == 503 and error.retry_after
        for call in (
            lambda: reg.versions("greet"),
            lambda: reg.prompts(),
            lambda: reg.create_version("greet", **simple_version(system="v2")),
            lambda: reg.set_label("greet", "staging", 1),
        ):
            with pytest.raises(DatabaseUnavailable):
                call()

        private_pg.start()
        time.sleep(OUTAGE_RETRY_SECONDS)
        assert _wait_fresh(reg, "greet").version == 1
        assert reg.create_version("greet", **simple_version(system="v2")).version == 2
    finally:
        reg.close()


def test_an_unreachable_sqlite_file_is_database_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the database file should be
    with pytest.raises(DatabaseUnavailable) as caught:
        Registry(f"sqlite:///{tmp_path / 'dir.db'}")
    assert caught.value.retryable is False
    assert "retrying will not help" in caught.value.message


def test_http_api_answers_503_with_retry_after_and_keeps_serving_fetched_prompts(
    private_pg: PrivateCluster, outage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")
    reg = Registry(outage_url, cache_ttl=0)
    try:
        reg.create_version("greet", **simple_version(labels=["production"]))
        keys = make_keys(reg)
        users.create_user(reg, "ana", "a long password", role="admin")
        client = build_app(reg).test_client()
        anonymous = build_app(reg).test_client()
        login = {"name": "ana", "password": "a long password"}
        assert client.post("/admin/login/", data=login).status_code == 302
        assert client.get("/api/v1/prompts/greet", headers=bearer(keys["read"])).status_code == 200
        private_pg.stop()

        fetched = client.get("/api/v1/prompts/greet", headers=bearer(keys["read"]))
        assert fetched.status_code == 200 and fetched.get_json()["version"] == 1
        assert fetched.headers["X-Registry-Stale"] == "1"
        listing = client.get("/api/v1/prompts", headers=bearer(keys["read"]))
        assert listing.status_code == 503
        assert int(listing.headers["Retry-After"]) >= 1
        body = listing.get_json()["error"]
        assert body["type"] == "database_unavailable" and body["retryable"] is True
        created = client.post(
            "/api/v1/prompts/greet/versions",
            json={**simple_version(system="v2")},
            headers=bearer(keys["write"]),
        )
        assert created.status_code == 503 and "Retry-After" in created.headers
        unknown_key = client.get("/api/v1/prompts/greet", headers=bearer("prk_" + "x" * 40))
        assert unknown_key.status_code == 503

        for page in (client.get("/admin/"), anonymous.get("/admin/login/")):
            assert page.status_code == 503 and "Retry-After" in page.headers
            assert b"database is unavailable" in page.data and b"reloads by itself" in page.data

        private_pg.start()
        time.sleep(OUTAGE_RETRY_SECONDS)
        deadline = time.monotonic() + 30
        while client.get("/api/v1/prompts", headers=bearer(keys["read"])).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.get("/admin/").status_code == 200
    finally:
        reg.close()


def test_a_restart_under_load_leaves_exactly_one_row_per_run_id_and_no_500(
    private_pg: PrivateCluster, outage_url: str, fake_anthropic: Any
) -> None:
    """16 threads of ``run`` and 8 HTTP clients while PostgreSQL stops and starts again."""
    fake_anthropic.latency = 0.005
    python_reg = Registry(outage_url, cache_ttl=0)
    server_reg = Registry(outage_url, cache_ttl=0)
    python_reg.create_version("echo", **simple_version(labels=["production"]))
    key = make_keys(server_reg)["run"]
    outcomes: list[tuple[str, str | None, str]] = []  # (caller, run_id, outcome)
    stop = threading.Event()
    lock = threading.Lock()

    def record(caller: str, run_id: str | None, outcome: str) -> None:
        with lock:
            outcomes.append((caller, run_id, outcome))

    def python_caller(i: int) -> None:
        while not stop.is_set():
            try:
                result = python_reg.run("echo", {"question": f"py {i}"})
                record("python", result.run_id, "ok")
            except RegistryError as exc:
                record("python", getattr(exc, "run_id", None), exc.type)
            except Exception as exc:  # an untyped error is a failure of the test
                record("python", None, f"UNTYPED {type(exc).__name__}: {exc}")

    def http_caller(url: str, i: int) -> None:
        with requests.Session() as http:
            while not stop.is_set():
                resp = http.post(
                    f"{url}/api/v1/prompts/echo/run",
                    json={"variables": {"question": f"http {i}"}},
                    headers=bearer(key),
                    timeout=60,
                )
                body = resp.json()
                if resp.status_code == 200:
                    record("http", body["run_id"], "ok")
                else:
                    error = body["error"]
                    record("http", error.get("run_id"), f"{resp.status_code} {error['type']}")

    python_reg.run("echo", {"question": "warm up"})  # the runner and the SDK are loaded
    with LiveServer(build_app(server_reg)) as server:
        warm = requests.post(
            f"{server.url}/api/v1/prompts/echo/run",
            json={"variables": {"question": "warm up"}},
            headers=bearer(key),
            timeout=60,
        )
        assert warm.status_code == 200
        threads = [threading.Thread(target=python_caller, args=(i,)) for i in range(16)]
        threads += [threading.Thread(target=http_caller, args=(server.url, i)) for i in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            before_outage = len(outcomes)
            private_pg.stop("fast")
            time.sleep(2.0)
            private_pg.start()
            during_outage = len(outcomes) - before_outage
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
    try:
        assert during_outage > 0, "no call finished while the database was down"
        kinds = {outcome for _, _, outcome in outcomes}
        assert not [k for k in kinds if k.startswith(("UNTYPED", "500"))], kinds
        received = {run_id for _, run_id, _ in outcomes if run_id}
        assert {caller for caller, _, _ in outcomes} == {"python", "http"}

        def logged() -> set[str]:
            with python_reg.db.engine.connect() as conn:
                return set(conn.execute(sa.select(RunRow.id)).scalars())

        deadline = time.monotonic() + 60
        while not received <= logged():  # spools are replayed by each process's thread
            assert time.monotonic() < deadline, f"{len(received - logged())} run ids have no row"
            time.sleep(0.2)
        with python_reg.db.engine.connect() as conn:
            duplicated = conn.execute(
                sa.select(RunRow.id).group_by(RunRow.id).having(sa.func.count() > 1)
            ).all()
        assert duplicated == []
    finally:
        python_reg.close()
        server_reg.close()
