"""HTTP API benchmarks: ratios against baselines measured in the same run.

    .venv/bin/python bench/bench_api.py [--quick] [--seconds S]

1. ``POST /api/v1/prompts/<name>/render`` requests per second under gunicorn (2 workers, the
   ``serve --workers`` settings)  vs  a bare Flask endpoint returning a constant JSON in the
   same server setup (same body, same worker class)                               (target >= 0.5)
2. ``RegistryClient`` warm ``get`` + ``render``  vs  the local ``Registry`` warm path
   (same prompt, same variables; the client's background revalidation keeps running)
                                                                                   (target <= 1.3)

The load comes from separate client processes (threads over keep-alive ``http.client``
connections), run one server at a time, alternating, best of the rounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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


def bare_app() -> Any:
    """The baseline: a Flask app whose one endpoint answers a constant JSON."""
    from flask import Flask, Response

    app = Flask("bare")
    payload = json.dumps({"name": PROMPT, "version": 1, "messages": [{"role": "user"}]})

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


def start_server(kind: str, database: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--database", database, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
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


def bench_render_rps(database: str, token: str, seconds: float, rounds: int) -> float:
    servers = {kind: start_server(kind, database) for kind in ("registry", "bare")}
    best = {"registry": 0.0, "bare": 0.0}
    errors = 0
    try:
        for _, port in servers.values():  # warm up both
            measure(port, token, 1.0)
        for _ in range(rounds):
            for kind, (_, port) in servers.items():
                rps, bad = measure(port, token, seconds)
                errors += bad
                best[kind] = max(best[kind], rps)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    ratio = best["registry"] / best["bare"]
    print(
        f"1. render under gunicorn, 2 workers: {best['registry']:.0f} req/s; bare Flask "
        f"constant JSON: {best['bare']:.0f} req/s; errors {errors}"
    )
    print(f"   ratio {ratio:.2f} (target >= 0.5) {'OK' if ratio >= 0.5 else 'MISSED'}")
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
    print(f"ratios: render_rps={r1:.2f} (>= 0.5), client_warm={r2:.2f} (<= 1.3)")


if __name__ == "__main__":
    main()
