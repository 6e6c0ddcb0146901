"""Hostile templates cannot hurt the server: every bomb ends with a typed error.

1. Each bomb of ``tests/render_bombs.py`` through ``create_version`` + ``get().render`` in a
   child process under a 1 GiB address-space limit (wall time printed per case).
2. The same bombs, stored as versions saved before the checks existed, through the HTTP
   render endpoint and the admin preview while another client polls ``/api/v1/health``.
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from registry import Registry, RenderLimitExceeded, users
from registry.api_keys import create_api_key
from registry.writing import Writer
from tests.api_support import LiveServer, bearer, build_app
from tests.render_bombs import BOMBS, Bomb, run_case, save_bomb

#: generous: only a hang trips it (the real times are printed, and are about a second at most)
HANG = 30.0


@pytest.fixture(scope="module")
def children() -> Any:
    """A forkserver that has imported the registry once: each bomb gets a fresh child fast."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["registry", "tests.render_bombs"])
    return ctx


@pytest.mark.parametrize("bomb", BOMBS, ids=[b.id for b in BOMBS])
def test_bomb_ends_with_a_typed_error_within_1_gib(
    bomb: Bomb,
    children: Any,
    sqlite_template: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "bomb.db"
    shutil.copy(sqlite_template, db)
    receive, send = children.Pipe(duplex=False)
    child = children.Process(target=run_case, args=(bomb, f"sqlite:///{db}", send))
    child.start()
    send.close()
    try:
        assert receive.poll(HANG), f"{bomb.id}: no answer within {HANG} s"
        stage, kind, message, wall = receive.recv()
    finally:
        child.join(HANG)
        if child.is_alive():
            child.kill()
    with capsys.disabled():
        print(f"\n  bomb {bomb.id:<24} {stage:<7} {kind:<20} {wall:6.3f} s")
    assert child.exitcode == 0, f"{bomb.id}: the child died ({child.exitcode})"
    assert stage in ("save", "render"), f"{bomb.id}: {stage} {kind}: {message}"
    assert kind in {t.__name__ for t in bomb.expect}, f"{bomb.id}: {kind}: {message}"
    if kind == "RenderLimitExceeded":
        assert "REGISTRY_RENDER_" in message  # names the limit and how to raise it


def test_bombs_over_a_limit_without_values_are_refused_at_save(sqlite_reg: Registry) -> None:
    """A bomb that needs no values never becomes a version: the save's dry render stops it,
    and the error names what it rendered with."""
    for bomb in BOMBS:
        if bomb.values or bomb.includes or bomb.expect != (RenderLimitExceeded,):
            continue
        with pytest.raises(RenderLimitExceeded, match="not saved: rendering it with the contract"):
            save_bomb(sqlite_reg, bomb)
    assert sqlite_reg.prompts() == []


# -- over HTTP, while the server keeps answering ------------------------------------------------


class HealthPoller(threading.Thread):
    """Polls ``/api/v1/health`` until stopped; remembers every answer (or failure)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: list[int] = []
        self.failures: list[str] = []
        self.slowest = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self._stop_event.is_set():
            start = time.perf_counter()
            try:
                status = session.get(f"{self.url}/api/v1/health", timeout=HANG).status_code
                self.answers.append(status)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            self.slowest = max(self.slowest, time.perf_counter() - start)
            self._stop_event.wait(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(HANG)


@pytest.fixture
def legacy_bombs(sqlite_reg: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Every bomb stored as ``bomb-<id>``, as if saved before saves were dry-rendered."""
    with monkeypatch.context() as patch:
        patch.setattr(Writer, "check_render", lambda *args, **kwargs: None)
        for bomb in BOMBS:
            for name, source in bomb.includes.items():
                sqlite_reg.create_version(
                    name,
                    messages=[{"role": "user", "content": source}],
                    settings={"model": "claude-sonnet-4-6", "max_tokens": 100},
                    labels=["production"],
                )
            sqlite_reg.create_version(
                f"bomb-{bomb.id}",
                messages=[{"role": "user", "content": bomb.template}],
                settings={"model": "claude-sonnet-4-6", "max_tokens": 100},
                variables=bomb.variables,
                labels=["production"],
            )
    return sqlite_reg


@pytest.fixture
def server(legacy_bombs: Registry) -> Iterator[LiveServer]:
    with LiveServer(build_app(legacy_bombs)) as live:
        yield live


def test_http_render_and_admin_preview_answer_4xx_while_health_is_served(
    server: LiveServer, legacy_bombs: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = legacy_bombs
    key = create_api_key(reg, "bombs", "read")[0]
    users.create_user(reg, "ed", "a long enough password", role="editor")
    admin = requests.Session()
    login = admin.post(
        f"{server.url}/admin/login/",
        data={"name": "ed", "password": "a long enough password"},
        allow_redirects=False,
        timeout=HANG,
    )
    assert login.status_code == 302
    api = requests.Session()
    poller = HealthPoller(server.url)
    poller.start()
    try:
        for bomb in BOMBS:
            name = f"bomb-{bomb.id}"
            start = time.perf_counter()
            answer = api.post(
                f"{server.url}/api/v1/prompts/{name}/render",
                json={"variables": bomb.values},
                headers=bearer(key),
                timeout=HANG,
            )
            api_seconds = time.perf_counter() - start
            assert 400 <= answer.status_code < 500, (bomb.id, answer.status_code, answer.text)
            error = answer.json()["error"]
            assert error["type"] in {t.type for t in bomb.expect}, (bomb.id, error)
            start = time.perf_counter()
            page = admin.post(
                f"{server.url}/admin/prompts/{name}/-/v/1",
                data={"variables": requests.compat.json.dumps(bomb.values)},
                timeout=HANG,
            )
            admin_seconds = time.perf_counter() - start
            assert page.status_code == 422, (bomb.id, page.status_code)
            assert 'id="preview-error"' in page.text
            with capsys.disabled():
                print(
                    f"\n  http {bomb.id:<24} api {answer.status_code} {api_seconds:6.3f} s"
                    f"   admin {page.status_code} {admin_seconds:6.3f} s"
                )
    finally:
        poller.stop()
    assert not poller.failures, poller.failures[:3]
    assert poller.answers and set(poller.answers) == {200}
    with capsys.disabled():
        print(f"\n  health: {len(poller.answers)} polls, slowest {poller.slowest:.3f} s")
