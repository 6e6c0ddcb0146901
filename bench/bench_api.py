"""HTTP API benchmarks: ratios against baselines measured in the same run.

    .venv/bin/python bench/bench_api.py [--quick] [--seconds S]

1. ``POST /api/v1/prompts/<name>/render`` requests per second under gunicorn (2 workers, the
   ``serve --workers`` settings)  vs  a bare Flask endpoint returning the very same response
   body in the same server setup (same worker class and threads), measured with ``wrk``
   (Debian's; ``bench/install-wrk`` installs it when missing)                     (target >= 0.75)
2. ``RegistryClient`` warm ``get`` + ``render``  vs  the local ``Registry`` warm path
   (same prompt, same variables; the client's background revalidation keeps running)
                                                                                   (target <= 1.3)

The render load comes from ``wrk`` (16 keep-alive connections, one server at a time,
alternating, best of the rounds); without wrk (and no way to install it) it falls back to
separate Python client processes, which cap both servers lower and so flatter the ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "summarize"
VARIABLES = {"text": "The meeting moved to Friday. Budget approved. Hiring paused.", "bullets": 3}
BODY = json.dumps({"variables": VARIABLES}).encode()
CLIENT_PROCESSES = 2
THREADS_PER_CLIENT = 8


# -- servers ------------------------------------------------------------------------------


#: the registry's answer to the render request, which the bare app answers too
BARE_BODY_ENV = "BENCH_BARE_BODY"


def bare_app() -> Any:
    """The baseline: a Flask app whose one endpoint answers the registry's render body."""
    from flask import Flask, Response

    app = Flask("bare")
    payload = Path(os.environ[BARE_BODY_ENV]).read_bytes()

    @app.post("/api/v1/prompts/<path:name>/render")
    def render(name: str) -> Response:
        return Response(payload, mimetype="application/json")

    return app


def serve(kind: str, database: str, port: int) -> None:
    """Run one gunicorn server (``registry`` or ``bare``) in this process until killed."""
    from registry.web.gunicorn import RegistryApplication, gunicorn_options, run_gunicorn

    if kind == "registry":
        run_gunicorn({"REGISTRY_DATABASE_URL": database}, "127.0.0.1", port, 2, loglevel="warning")
    else:
        options = gunicorn_options(host="127.0.0.1", port=port, workers=2, loglevel="warning")
        RegistryApplication(bare_app, options).run()


def start_server(
    kind: str, database: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--database", database, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            conn.close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- load ---------------------------------------------------------------------------------


def load(port: int, token: str, seconds: float, threads: int) -> tuple[int, int]:
    """Render requests from ``threads`` keep-alive connections for ``seconds``: (ok, errors)."""
    ok = errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    path = f"/api/v1/prompts/{PROMPT}/render"

    def worker() -> None:
        nonlocal ok, errors
        good = bad = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            try:
                conn.request("POST", path, body=BODY, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    good += 1
                else:
                    bad += 1
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            ok += good
            errors += bad

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return ok, errors


def measure(port: int, token: str, seconds: float) -> tuple[float, int]:
    """Requests per second from several client processes; also the error count."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--load",
                str(port),
                "--token",
                token,
                "--seconds",
                str(seconds),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(CLIENT_PROCESSES)
    ]
    ok = errors = 0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        good, bad = (int(x) for x in out.split())
        ok += good
        errors += bad
    return ok / seconds, errors


# -- benchmarks -----------------------------------------------------------------------------


WRK_CONNECTIONS = 16
RENDER_TARGET = 0.75


def have_wrk() -> bool:
    """Whether wrk is installed (installing it with bench/install-wrk when it is not)."""
    if shutil.which("wrk"):
        return True
    done = subprocess.run(["bash", str(ROOT / "bench" / "install-wrk")], check=False)
    return done.returncode == 0 and shutil.which("wrk") is not None


def measure_wrk(port: int, token: str, seconds: float, script: Path) -> tuple[float, int]:
    """Requests per second measured by wrk; also non-2xx responses and socket errors."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{WRK_CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/api/v1/prompts/{PROMPT}/render",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout): (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write) (\d+)", out))
    return rps, errors


def wrk_script(path: Path, token: str) -> Path:
    """A wrk Lua script that posts the render request."""
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(BODY.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return path


def render_body(database: str, token: str, path: Path) -> Path:
    """Save the registry's answer to the render request (the bare app answers the same)."""
    proc, port = start_server("registry", database)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request("POST", f"/api/v1/prompts/{PROMPT}/render", body=BODY, headers=headers)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        path.write_bytes(body)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return path


def bench_render_rps(database: str, token: str, seconds: float, rounds: int) -> float:
    work = Path(database.removeprefix("sqlite:///")).parent
    body = render_body(database, token, work / "render-body.json")
    env = {BARE_BODY_ENV: str(body)}
    servers = {kind: start_server(kind, database, env) for kind in ("registry", "bare")}
    use_wrk = have_wrk()
    script = wrk_script(work / "render.lua", token)

    def run(port: int, duration: float) -> tuple[float, int]:
        if use_wrk:
            return measure_wrk(port, token, duration, script)
        return measure(port, token, duration)

    best = {"registry": 0.0, "bare": 0.0}
    errors = 0
    try:
        for _, port in servers.values():  # warm up both
            run(port, 1.0)
        for _ in range(rounds):
            for kind, (_, port) in servers.items():
                rps, bad = run(port, seconds)
                errors += bad
                best[kind] = max(best[kind], rps)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    ratio = best["registry"] / best["bare"]
    generator = f"wrk, {WRK_CONNECTIONS} connections" if use_wrk else "Python clients (no wrk)"
    print(
        f"1. render under gunicorn, 2 workers ({generator}): {best['registry']:.0f} req/s; "
        f"bare Flask, same body: {best['bare']:.0f} req/s; errors {errors}"
    )
    verdict = "OK" if ratio >= RENDER_TARGET else "MISSED"
    print(f"   ratio {ratio:.2f} (target >= {RENDER_TARGET}) {verdict}")
    return ratio


def bench_client_warm(database: str, token: str, rounds: int, n: int) -> float:
    from registry import Registry
    from registry.client import RegistryClient

    proc, port = start_server("registry", database)
    reg = Registry(database)
    client = RegistryClient(f"http://127.0.0.1:{port}", token)
    try:
        assert client.render(PROMPT, VARIABLES) == reg.render(PROMPT, VARIABLES)

        def local() -> None:
            reg.get(PROMPT).render(VARIABLES)

        def remote() -> None:
            client.get(PROMPT).render(VARIABLES)

        timings: dict[str, list[float]] = {"local": [], "client": []}
        for _ in range(rounds):
            for name, fn in (("local", local), ("client", remote)):
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                timings[name].append((time.perf_counter() - start) / n)
    finally:
        client.close()
        reg.close()
        proc.terminate()
        proc.wait(timeout=30)
    best = {k: min(v) for k, v in timings.items()}
    ratio = best["client"] / best["local"]
    print(
        f"2. warm get+render: RegistryClient {best['client'] * 1e6:.1f} us, local Registry "
        f"{best['local'] * 1e6:.1f} us"
    )
    print(f"   ratio {ratio:.2f} (target <= 1.3) {'OK' if ratio <= 1.3 else 'MISSED'}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Shorter runs.")
    parser.add_argument("--seconds", type=float, default=None, help="Seconds per load round.")
    parser.add_argument("--serve", choices=["registry", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.database, args.port)
        return
    if args.load:
        ok, errors = load(args.load, args.token, args.seconds, THREADS_PER_CLIENT)
        print(ok, errors)
        return
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = 2 if args.quick else 3
    os.environ.setdefault("REGISTRY_GUNICORN_THREADS", "8")
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{Path(tmp) / 'bench.db'}"
        from registry import Registry
        from registry.api_keys import create_api_key

        reg = Registry(database)
        reg.seed(ROOT / "templates_seed")
        token, _ = create_api_key(reg, "bench", "read")
        reg.close()
        r1 = bench_render_rps(database, token, seconds, rounds)
        r2 = bench_client_warm(database, token, rounds, 5_000 if args.quick else 20_000)
    print(f"ratios: render_rps={r1:.2f} (>= {RENDER_TARGET}), client_warm={r2:.2f} (<= 1.3)")


if __name__ == "__main__":
    main()
