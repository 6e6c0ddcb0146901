"""A fake Anthropic Messages API server, for an app's tests and for benchmarks.

The server is a real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``) bound to a local port and
served from a background daemon thread, so the real ``anthropic`` SDK can be pointed at it::

    from registry.testing import FakeAnthropic, Reply

    with FakeAnthropic() as server:
        server.enqueue(Reply.error(429, headers={"retry-after": "0"}), Reply.text("hello"))
        client = anthropic.Anthropic(api_key="test-key", base_url=server.url, max_retries=2)
        message = client.messages.create(model="claude-x", max_tokens=64, messages=[...])
        assert message.content[0].text == "hello"
        assert len(server.requests) == 2

Endpoints:

* ``POST /v1/messages`` answers a JSON ``Message``, or a Server-Sent Events stream (chunked
  transfer encoding) when the request body has ``"stream": true``.
* ``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}``.
* ``/v1/messages/batches``: Message Batches (create, retrieve, list, cancel, delete, results
  as JSONL), see :mod:`registry.testing.batches`.
* Anything else answers 404 with Anthropic's error body.

Requests with ``cache_control`` marks are accounted by a prompt cache (cache writes and reads
in ``usage``), see :mod:`registry.testing.prompt_cache`.

Each ``/v1/messages`` request (retries included) takes the next reply from a FIFO queue filled
by :meth:`FakeAnthropic.enqueue`. When the queue is empty the reply comes from
``server.responder(request_json)`` (if set and it does not return ``None``), else
``server.default`` (if set), else an echo: ``"echo: <text of the last user message>"``.
With ``server.rate_limit`` set, every answer carries the API's ``anthropic-ratelimit-*``
headers, and an enforced limit answers 429 with ``retry-after`` once spent.

From a shell (scripted replies from a YAML file, see :mod:`registry.testing.script`)::

    prompt-registry fake-anthropic --port 8765 [--script replies.yaml] [--latency 0.05]

Only the standard library is used.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from . import batches
from .batches import BATCHES_PATH, BatchStore, FakeBatch, ResultOrder, errored_result
from .messages import input_usage, message_id, message_payload, output_tokens, stop_sequence
from .prompt_cache import CacheRequestError, CacheUsage, PromptCache
from .rate_limit import RateCounter, RateLimit
from .replies import (
    Reply,
    Responder,
    coerce_reply,
    estimate_tokens,
    last_user_text,
    request_text,
    split_text,
)

__all__ = [
    "BATCHES_PATH",
    "COUNT_TOKENS_PATH",
    "MESSAGES_PATH",
    "FakeAnthropic",
    "RecordedRequest",
]

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"

_REQUIRED_MESSAGES_PARAMS = ("model", "max_tokens", "messages")
_REQUIRED_COUNT_TOKENS_PARAMS = ("model", "messages")

logger = logging.getLogger(__name__)


def _request_api_key(headers: Mapping[str, str]) -> str | None:
    """Return the API key of a request: ``x-api-key``, else an ``Authorization: Bearer`` token.

    (SDK 2.x sends ``api_key`` as ``Authorization: Bearer <key>``.)
    """
    if "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _dumps(payload: Any) -> str:
    """Serialize ``payload`` compactly, as the real API does."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by the fake server."""

    method: str
    path: str
    """The path without the query string, e.g. ``/v1/messages``."""
    query: str
    headers: dict[str, str]
    """Request headers, keys lower-cased."""
    body: dict[str, Any] | None
    """The parsed JSON body, or ``None`` if it is absent or not a JSON object."""
    raw_body: bytes
    request_id: str
    """The ``request-id`` header sent back, e.g. ``req_fake_3``."""
    received_at: float
    """``time.monotonic()`` when the request was fully read."""

    @property
    def json(self) -> dict[str, Any]:
        """The parsed JSON body (``{}`` when there is none)."""
        return self.body if self.body is not None else {}

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed answer."""
        return bool(self.json.get("stream"))


class _HTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that tracks its connections and handler threads for ``stop()``."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256  # listen() backlog; the default of 5 drops bursts of connects

    def __init__(self, address: tuple[str, int], fake: FakeAnthropic) -> None:
        self.fake = fake
        self._tracking_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup (``socket.getfqdn``)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Handle the connection in a tracked daemon thread."""
        thread = threading.Thread(
            target=self._run_connection,
            args=(request, client_address),
            name=f"fake-anthropic-conn-{client_address[1]}",
            daemon=True,
        )
        with self._tracking_lock:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def _run_connection(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then forget it."""
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._tracking_lock:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore dropped connections; print other errors when verbose."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or not self.fake.verbose:
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut down every open connection, which unblocks their handler threads."""
        with self._tracking_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join_handlers(self, timeout: float) -> list[threading.Thread]:
        """Join the handler threads for up to ``timeout`` seconds; return those still alive."""
        deadline = time.monotonic() + timeout
        with self._tracking_lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in threads if thread.is_alive()]


class _Handler(BaseHTTPRequestHandler):
    """Request handler: routes, records, and renders replies."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    _request_done = True

    @property
    def fake(self) -> FakeAnthropic:
        """The :class:`FakeAnthropic` owning this handler's server."""
        server = self.server
        assert isinstance(server, _HTTPServer)
        return server.fake

    def log_message(self, format: str, *args: Any) -> None:
        """Log to stderr only when the fake is verbose."""
        if self.fake.verbose:
            sys.stderr.write(f"[fake-anthropic] {self.address_string()} {format % args}\n")

    def handle(self) -> None:
        """Serve requests on the connection; a dropped connection just ends it."""
        try:
            super().handle()
        except OSError:
            self.close_connection = True

    def do_POST(self) -> None:
        """Handle a POST request."""
        self._dispatch()

    def do_GET(self) -> None:
        """Handle a GET request (always 404)."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Handle a PUT request (always 404)."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Handle a PATCH request (always 404)."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Handle a DELETE request (always 404)."""
        self._dispatch()

    # -- request plumbing -------------------------------------------------------------------

    def _read_body(self) -> bytes:
        """Read the request body (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        """Read, record and answer one request."""
        fake = self.fake
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        path = "/" + path.strip("/")
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body: dict[str, Any] | None = None
        parse_error: str | None = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                parse_error = f"There was an error parsing the body: {exc}"
            else:
                if isinstance(parsed, dict):
                    body = parsed
                else:
                    parse_error = "Request body must be a JSON object"

        request_id = fake._begin_request(self.command, path, query, headers, body, raw)
        self._request_done = False
        try:
            if not fake._sleep(fake.latency):
                self.close_connection = True
                return
            if fake.api_key is not None and _request_api_key(headers) != fake.api_key:
                self._send_error(401, "authentication_error", "invalid x-api-key", request_id)
            elif self.command == "POST" and path in (MESSAGES_PATH, COUNT_TOKENS_PATH):
                self._handle_api(path, body, parse_error, request_id)
            elif path == BATCHES_PATH or path.startswith(BATCHES_PATH + "/"):
                self._handle_batches(path, query, headers, body, parse_error, request_id)
            else:
                message = f"Not Found: {self.command} {path}"
                self._send_error(404, "not_found_error", message, request_id)
        finally:
            self._done()

    def _done(self) -> None:
        """Count the current request as no longer in flight (once).

        Called just before the last bytes of a response are written, so that a client that has
        its complete answer always sees ``in_flight`` already decremented.
        """
        if not self._request_done:
            self._request_done = True
            self.fake._end_request()

    def _handle_api(
        self, path: str, body: dict[str, Any] | None, parse_error: str | None, request_id: str
    ) -> None:
        """Validate a ``/v1/messages`` or ``count_tokens`` request, then answer it."""
        fake = self.fake
        if body is None:
            message = parse_error or "Request body is required"
            self._send_error(400, "invalid_request_error", message, request_id)
            return
        rejected = sorted(set(body) & set(fake.reject_params or ()))
        if rejected:
            message = f"{rejected[0]}: Extra inputs are not permitted"
            self._send_error(400, "invalid_request_error", message, request_id)
            return
        required = (
            _REQUIRED_MESSAGES_PARAMS if path == MESSAGES_PATH else _REQUIRED_COUNT_TOKENS_PARAMS
        )
        missing = [name for name in required if name not in body]
        if missing:
            message = f"{missing[0]}: Field required"
            self._send_error(400, "invalid_request_error", message, request_id)
            return
        if path == MESSAGES_PATH:
            counter = fake._rate_counter
            if counter is not None:
                admission = counter.admit(estimate_tokens(request_text(body)))
                if admission.refused:
                    self._send_error(
                        429, "rate_limit_error", admission.reason, request_id, admission.headers
                    )
                    return
            reply = fake._next_reply(body)
            if counter is not None:
                spent = 0
                if reply.kind not in ("error", "malformed"):
                    spent = reply.output_tokens or estimate_tokens(reply.output)
                reply = reply.replace(headers={**counter.settle(spent), **reply.headers})
            self._answer_messages(reply, body, request_id)
        else:
            self._answer_count_tokens(fake._next_count_tokens_reply(), body, request_id)

    def _handle_batches(
        self,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None,
        parse_error: str | None,
        request_id: str,
    ) -> None:
        """Answer a Message Batches request (a scripted ``batches`` error first, if queued)."""
        fake = self.fake
        scripted = fake._next_batches_reply()
        if scripted is not None:
            if not fake._sleep(scripted.delay):
                self.close_connection = True
                return
            self._send_error(
                scripted.status,
                scripted.error_type,
                scripted.error_message,
                request_id,
                scripted.headers,
            )
            return
        if self.command == "POST" and path == BATCHES_PATH and body is None:
            message = parse_error or "Request body is required"
            self._send_error(400, "invalid_request_error", message, request_id)
            return
        host = headers.get("host") or f"{fake.host}:{fake.port}"
        answer = batches.handle(
            fake._batches,
            self.command,
            path,
            query,
            body,
            base_url=f"http://{host}",
            claim=fake._claim_batch_item,
            answer=fake._batch_item_result,
            polls=fake.batch_polls,
            order=fake.batch_result_order,
        )
        if answer.error_type is not None:
            self._send_error(answer.status, answer.error_type, answer.message, request_id)
        elif answer.raw is not None:
            self._send_bytes(answer.status, answer.raw, "application/binary", request_id, {})
        else:
            self._send_json(answer.status, answer.payload, request_id)

    # -- answers ----------------------------------------------------------------------------

    def _answer_count_tokens(
        self, reply: Reply | None, body: dict[str, Any], request_id: str
    ) -> None:
        """Answer ``count_tokens`` with the estimate, or with a scripted reply."""
        if reply is not None and not self.fake._sleep(reply.delay):
            self.close_connection = True
            return
        if reply is None or reply.kind in ("text", "cut_stream", "stream_error"):
            tokens = reply.input_tokens if reply is not None else None
            if tokens is None:
                tokens = estimate_tokens(request_text(body))
            extra = reply.headers if reply is not None else {}
            self._send_json(200, {"input_tokens": tokens}, request_id, extra)
        elif reply.kind == "error":
            self._send_error(
                reply.status, reply.error_type, reply.error_message, request_id, reply.headers
            )
        else:
            self._send_bytes(reply.status, reply.raw_body, reply.content_type, request_id, {})

    def _answer_messages(self, reply: Reply, body: dict[str, Any], request_id: str) -> None:
        """Answer ``/v1/messages`` according to ``reply`` and the request's ``stream`` flag."""
        if not self.fake._sleep(reply.delay):
            self.close_connection = True
            return
        streaming = bool(body.get("stream"))
        if reply.kind in ("expired", "canceled"):
            self._send_error(500, "api_error", reply.error_message, request_id, reply.headers)
            return
        usage = CacheUsage(input_tokens=0)
        if reply.kind in ("text", "cut_stream", "stream_error"):
            try:
                usage = input_usage(reply, body, self.fake.prompt_cache)
            except CacheRequestError as exc:
                self._send_error(400, "invalid_request_error", str(exc), request_id)
                return
        if reply.kind == "error" or (reply.kind == "stream_error" and not streaming):
            self._send_error(
                reply.status, reply.error_type, reply.error_message, request_id, reply.headers
            )
        elif reply.kind == "malformed":
            if streaming:
                self._send_malformed_stream(reply, request_id)
            else:
                self._send_bytes(
                    reply.status, reply.raw_body, reply.content_type, request_id, reply.headers
                )
        elif streaming:
            self._send_stream(reply, body, request_id, usage)
        else:
            payload = message_payload(reply, body, usage)
            if reply.kind == "cut_stream":
                self._send_truncated_json(payload, request_id)
            else:
                self._send_json(200, payload, request_id, reply.headers)

    # -- writers ----------------------------------------------------------------------------

    def _start_response(
        self,
        status: int,
        content_type: str,
        request_id: str,
        extra_headers: Mapping[str, str],
        content_length: int | None,
    ) -> None:
        """Send the status line and headers (chunked when ``content_length`` is ``None``)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if content_length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Length", str(content_length))
        self.send_header("request-id", request_id)
        for key, value in extra_headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str,
        request_id: str,
        extra_headers: Mapping[str, str],
    ) -> None:
        """Send a complete response with a Content-Length."""
        self._start_response(status, content_type, request_id, extra_headers, len(data))
        self._done()
        self.wfile.write(data)

    def _send_json(
        self,
        status: int,
        payload: Any,
        request_id: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a JSON response."""
        data = _dumps(payload).encode("utf-8")
        self._send_bytes(status, data, "application/json", request_id, extra_headers or {})

    def _send_error(
        self,
        status: int,
        error_type: str,
        message: str,
        request_id: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send Anthropic's error body with ``status``."""
        payload = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
        self._send_json(status, payload, request_id, extra_headers)

    def _send_truncated_json(self, payload: Any, request_id: str) -> None:
        """Announce ``payload`` with its full length, send half of it, then drop the connection."""
        data = _dumps(payload).encode("utf-8")
        self._start_response(200, "application/json", request_id, {}, len(data))
        self._done()
        self.wfile.write(data[: len(data) // 2])
        self._drop_connection()

    def _drop_connection(self) -> None:
        """Close the connection abruptly (a FIN in the middle of a response body)."""
        self.close_connection = True
        self._done()
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _event_chunk(event: str, data: Any) -> bytes:
        """Encode one Server-Sent Event (``event:`` and ``data:`` lines) as an HTTP chunk."""
        text = data if isinstance(data, str) else _dumps(data)
        payload = f"event: {event}\ndata: {text}\n\n".encode()
        return b"%x\r\n%s\r\n" % (len(payload), payload)

    def _write_event(self, event: str, data: Any) -> None:
        """Write one Server-Sent Event as one chunk."""
        self.wfile.write(self._event_chunk(event, data))

    def _finish_stream(self, *events: tuple[str, Any]) -> None:
        """Write the last ``events`` and the terminating empty chunk in a single write."""
        final = b"".join(self._event_chunk(event, data) for event, data in events)
        self._done()
        self.wfile.write(final + b"0\r\n\r\n")

    def _send_malformed_stream(self, reply: Reply, request_id: str) -> None:
        """Send an event stream whose first event carries invalid JSON."""
        self._start_response(
            200, "text/event-stream; charset=utf-8", request_id, reply.headers, None
        )
        self._finish_stream(("message_start", reply.raw_body.decode("utf-8", "replace")))

    def _send_stream(
        self, reply: Reply, body: Mapping[str, Any], request_id: str, usage: CacheUsage
    ) -> None:
        """Send ``reply`` as an SSE stream (complete, cut, or ending with an error event)."""
        fake = self.fake
        pieces = split_text(reply.output, reply.chunks)
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model", "claude-fake")),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage.to_usage(1),
        }
        self._start_response(
            200, "text/event-stream; charset=utf-8", request_id, reply.headers, None
        )
        self._write_event("message_start", {"type": "message_start", "message": message})
        if pieces:
            start = {"type": "text", "text": ""}
            self._write_event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": start},
            )
        self._write_event("ping", {"type": "ping"})
        for piece in pieces:
            if not fake._sleep(reply.chunk_delay):
                self._drop_connection()
                return
            delta = {"type": "text_delta", "text": piece}
            self._write_event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        if reply.kind == "cut_stream":
            self._drop_connection()
            return
        if reply.kind == "stream_error":
            error = {"type": reply.error_type, "message": reply.error_message}
            self._finish_stream(("error", {"type": "error", "error": error}))
            return
        if not fake._sleep(reply.chunk_delay):
            self._drop_connection()
            return
        if pieces:
            self._write_event("content_block_stop", {"type": "content_block_stop", "index": 0})
        delta_event = {
            "type": "message_delta",
            "delta": {
                "stop_reason": reply.stop_reason,
                "stop_sequence": stop_sequence(reply, body),
            },
            "usage": usage.to_usage(output_tokens(reply)),
        }
        self._finish_stream(
            ("message_delta", delta_event), ("message_stop", {"type": "message_stop"})
        )


class FakeAnthropic:
    """A local fake of the Anthropic Messages API, served from a background thread.

    Use it as a context manager or call :meth:`start` / :meth:`stop`. Point the SDK at
    :attr:`url`. Attributes that may be changed at any time:

    * ``latency``: seconds added before answering every request;
    * ``default``: the reply used when the queue is empty (``None``: echo the last user message);
    * ``responder``: ``callable(request_json) -> Reply | str | None`` consulted before
      ``default`` when the queue is empty;
    * ``reject_params``: parameter names answered with 400 ``invalid_request_error``
      ``"<name>: Extra inputs are not permitted"`` when present in a request body;
    * ``rate_limit``: a :class:`~registry.testing.RateLimit`: ``anthropic-ratelimit-*`` headers
      on every answer, and 429 with ``retry-after`` once spent when it is enforced;
    * ``api_key``: if set, requests whose key (``x-api-key`` header, else the
      ``Authorization: Bearer`` token that SDK 2.x sends) differs get 401;
    * ``prompt_cache``: a :class:`~registry.testing.prompt_cache.PromptCache` that accounts
      for the requests' ``cache_control`` marks (cache writes and reads in ``usage``); its
      ``min_tokens`` is the minimum cacheable prefix; ``None`` turns caching off;
    * ``batch_polls``: how many retrieves a new Message Batch answers ``in_progress`` before
      it ends (default 1); ``batch_result_order``: ``shuffled`` (default), ``submitted`` or
      ``reversed`` (see :mod:`registry.testing.batches`);
    * ``verbose``: log requests and handler errors to stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        default: Reply | str | None = None,
        responder: Responder | None = None,
        reject_params: Iterable[str] | None = None,
        api_key: str | None = None,
        rate_limit: RateLimit | None = None,
        prompt_cache: PromptCache | None = None,
        batch_polls: int = 1,
        batch_result_order: ResultOrder = "shuffled",
        verbose: bool = False,
    ) -> None:
        """Configure the server; nothing listens until :meth:`start`. ``port=0`` picks a free
        port."""
        self.host = host
        self._requested_port = port
        self.latency = latency
        self._default: Reply | None = None
        self.default = default
        self.responder: Responder | None = responder
        self.reject_params: set[str] | None = (
            set(reject_params) if reject_params is not None else None
        )
        self.api_key = api_key
        self.verbose = verbose
        self._rate_counter: RateCounter | None = None
        self.rate_limit = rate_limit
        self.prompt_cache: PromptCache | None = (
            prompt_cache if prompt_cache is not None else PromptCache()
        )
        self.batch_polls = batch_polls
        self.batch_result_order: ResultOrder = batch_result_order
        self._batches = BatchStore()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[Reply] = deque()
        self._count_tokens_queue: deque[Reply] = deque()
        self._batch_item_queue: deque[Reply] = deque()
        self._batches_queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._request_seq = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def default(self) -> Reply | None:
        """The reply used when the queue is empty and no responder answers (``None``: echo)."""
        return self._default

    @default.setter
    def default(self, reply: Reply | str | None) -> None:
        """Set the default reply; a string becomes :meth:`Reply.text`."""
        self._default = coerce_reply(reply) if reply is not None else None

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate limit reported in headers (and enforced when ``enforce``); ``None``: none."""
        return self._rate_counter.limit if self._rate_counter is not None else None

    @rate_limit.setter
    def rate_limit(self, limit: RateLimit | None) -> None:
        """Set the rate limit; its counters start from zero."""
        self._rate_counter = RateCounter(limit) if limit is not None else None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and start serving in a daemon thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError("FakeAnthropic is already started")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self._requested_port), self)
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-anthropic-server-{httpd.server_port}",
            daemon=True,
        )
        self._httpd = httpd
        self._thread = thread
        thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, drop open connections and join all server threads (idempotent).

        Pending delays are interrupted. Raises ``RuntimeError`` if a thread is still alive
        after ``timeout`` seconds.
        """
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        thread.join(timeout)
        alive = httpd.join_handlers(timeout)
        self._httpd = None
        self._thread = None
        if thread.is_alive() or alive:
            names = [t.name for t in [thread, *alive] if t.is_alive()]
            raise RuntimeError(f"FakeAnthropic threads did not stop: {names}")

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is started."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._httpd is None:
            raise RuntimeError("FakeAnthropic is not started")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """The base URL to give the SDK, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        """Show the URL (or that it is stopped)."""
        where = self.url if self.running else "stopped"
        return f"<FakeAnthropic {where}>"

    # -- scripting --------------------------------------------------------------------------

    def enqueue(self, *replies: Reply | str, endpoint: str = "messages") -> None:
        """Append replies (strings become :meth:`Reply.text`) to a FIFO queue.

        ``endpoint="messages"`` (default) feeds ``/v1/messages``, one reply per request,
        retries included; ``endpoint="count_tokens"`` feeds ``/v1/messages/count_tokens``
        (a text reply there answers its ``input_tokens`` or the estimate);
        ``endpoint="batch_items"`` answers the items of the next Message Batches, one reply per
        item in submission order (:meth:`Reply.expired`, :meth:`Reply.canceled` and errors
        give those outcomes); ``endpoint="batches"`` takes error replies that the next
        requests to the Message Batches API itself answer (create, retrieve, results...).
        """
        queues = {
            "messages": self._queue,
            "count_tokens": self._count_tokens_queue,
            "batch_items": self._batch_item_queue,
            "batches": self._batches_queue,
        }
        if endpoint not in queues:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(queues)}")
        coerced = [coerce_reply(reply) for reply in replies]
        if endpoint == "batches" and any(r.kind != "error" for r in coerced):
            raise ValueError("the batches endpoint takes error replies only (Reply.error)")
        with self._lock:
            queues[endpoint].extend(coerced)

    @property
    def queued(self) -> int:
        """How many ``/v1/messages`` replies are still queued."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Clear the queues and recorded requests, and reset ``max_in_flight``.

        Batches and the prompt cache are forgotten too. ``in_flight`` is a live gauge and is
        left alone (``max_in_flight`` restarts from it);
        ``latency``, ``default``, ``responder`` and ``reject_params`` are kept.
        """
        with self._lock:
            self._queue.clear()
            self._count_tokens_queue.clear()
            self._batch_item_queue.clear()
            self._batches_queue.clear()
            self._requests.clear()
            self._max_in_flight = self._in_flight
        self._batches.clear()
        if self.prompt_cache is not None:
            self.prompt_cache.clear()

    # -- recording --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot (a new list) of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path is ``path`` (e.g. ``/v1/messages``)."""
        return [request for request in self.requests if request.path == path]

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, if any."""
        with self._lock:
            return self._requests[-1] if self._requests else None

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were received; raise ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"got {len(self._requests)} requests, expected {count} in {timeout}s"
                    )
                self._changed.wait(remaining)
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        """How many requests are being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The peak of :attr:`in_flight` since start (or the last :meth:`reset`)."""
        with self._lock:
            return self._max_in_flight

    # -- Message Batches --------------------------------------------------------------------

    @property
    def batches(self) -> list[FakeBatch]:
        """Every Message Batch created so far (not deleted), oldest first."""
        return self._batches.all()

    def batch(self, batch_id: str) -> FakeBatch:
        """The batch ``batch_id``; ``KeyError`` if there is none."""
        found = self._batches.get(batch_id)
        if found is None:
            raise KeyError(batch_id)
        return found

    def end_batch(self, batch_id: str) -> None:
        """End a batch now (its results become available), whatever its ``polls``."""
        found = self.batch(batch_id)
        with self._batches.lock():
            found.end()

    # -- used by the handler ----------------------------------------------------------------

    def _begin_request(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        raw: bytes,
    ) -> str:
        """Record a request, count it in flight and return its request id."""
        with self._changed:
            self._request_seq += 1
            request_id = f"req_fake_{self._request_seq}"
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=query,
                    headers=headers,
                    body=body,
                    raw_body=raw,
                    request_id=request_id,
                    received_at=time.monotonic(),
                )
            )
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._changed.notify_all()
        return request_id

    def _end_request(self) -> None:
        """Count a request as no longer in flight."""
        with self._lock:
            self._in_flight -= 1

    def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopping; return ``False`` if the server is stopping."""
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _next_batches_reply(self) -> Reply | None:
        """A scripted error for the next Message Batches API request, if one is queued."""
        with self._lock:
            return self._batches_queue.popleft() if self._batches_queue else None

    def _claim_batch_item(self) -> Reply | None:
        """The scripted reply of a batch item being created (None: none is queued)."""
        with self._lock:
            return self._batch_item_queue.popleft() if self._batch_item_queue else None

    def _batch_item_result(self, params: dict[str, Any], reply: Reply | None) -> dict[str, Any]:
        """The ``result`` of one batch item: its scripted reply, else the responder, the
        default or an echo."""
        if reply is None:
            reply = self._next_reply(params, deque())
        if reply.kind == "text":
            usage = input_usage(reply, params, self.prompt_cache)
            return {"type": "succeeded", "message": message_payload(reply, params, usage)}
        if reply.kind in ("expired", "canceled"):
            return {"type": reply.kind}
        if reply.kind in ("error", "stream_error"):
            return errored_result(reply.error_type, reply.error_message)
        return errored_result("api_error", f"the fake cannot answer a {reply.kind} in a batch")

    def _next_reply(self, body: dict[str, Any], queue: deque[Reply] | None = None) -> Reply:
        """Return the reply for a ``/v1/messages`` request (or, with ``queue``, a batch item):
        the queue, the responder, the default, else an echo."""
        with self._lock:
            queue = self._queue if queue is None else queue
            if queue:
                return queue.popleft()
        responder = self.responder
        if responder is not None:
            try:
                reply = responder(body)
            except Exception as exc:
                logger.exception("fake Anthropic responder raised")
                return Reply.error(500, "api_error", f"fake responder raised {exc!r}")
            if reply is not None:
                return coerce_reply(reply)
        default = self._default
        if default is not None:
            return default
        return Reply.text(f"echo: {last_user_text(body)}")

    def _next_count_tokens_reply(self) -> Reply | None:
        """Return the next scripted ``count_tokens`` reply, or ``None`` for the estimate."""
        with self._lock:
            return self._count_tokens_queue.popleft() if self._count_tokens_queue else None
