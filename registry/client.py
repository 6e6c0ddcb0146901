"""``RegistryClient``: the registry over HTTP, with the ``get``/``render``/``run`` of ``Registry``.

For apps that cannot reach the database. Prompts are fetched from ``/api/v1`` and rendered
locally in the same sandbox (the server sends the source of included prompts with each
version, so rendering needs no further request)::

    from registry.client import RegistryClient

    client = RegistryClient("http://registry:5000", "prk_...", fallback_path="prompts.json")
    text = client.get("support-answer").render(question="Where is my invoice?")

Caching:

- Every entry in use is revalidated in the background every ``revalidate`` seconds (default
  0.5) with ``If-None-Match``; the server answers ``304`` while nothing changed. A label moved
  anywhere is therefore seen within about a second.
- ``ttl`` (default 60 s) is how long an entry is served without the server confirming it. Within
  it, ``get`` never waits for the network (stale-while-revalidate, one background thread).
  Past it, ``get`` asks the server itself; if the server fails or cannot be reached, the stale
  entry is still served (``ttl=0``: no caching, every ``get`` asks the server, and the last good
  copy is used only when the server fails).
- ``fallback_path``: an export file (``prompt-registry export prompts.json``) loaded at start and
  used when the server cannot be reached for a prompt not cached yet; it keeps the model
  settings, variable contracts and labels of every version.
- Cache keys are typed tuples, so label ``"3"`` and version ``3``, or prompt ``greet`` and
  ``greeting``, never share an entry.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import requests
import requests.adapters

from .errors import (
    PUBLIC_DETAILS,
    AuthenticationError,
    ConflictError,
    NotFound,
    PermissionDenied,
    RegistryError,
    RunError,
    RunTimeout,
    ServiceUnavailable,
    StreamInterrupted,
    ValidationError,
)
from .names import DEFAULT_LABEL, LATEST
from .prompts import Prompt
from .rendering import CompiledPrompt, IncludeRef, Rendered, make_environment
from .run_result import RunResult
from .versions import PromptVersion, validate_content

log = logging.getLogger("registry.client")

API_PREFIX = "/api/v1"
#: seconds between background revalidations of an entry in use
DEFAULT_REVALIDATE = 0.5
#: entries used within this many seconds are kept fresh in the background
HOT_SECONDS = 30.0
#: after a failed attempt, ``get`` does not wait on the server again for this long (seconds)
RETRY_SECONDS = 5.0
#: connections kept open to the server (per pool: the app's threads, the background thread)
POOL_SIZE = 32
#: the run options the HTTP API takes
HTTP_RUN_OPTIONS = ("cache", "timeout", "metadata")

#: ``("label", name, label)``, ``("version", name, number)``, ``("unit", name, label, unit_id)``
CacheKey = tuple[Any, ...]


@dataclass(slots=True)
class _Entry:
    version: PromptVersion
    etag: str | None
    validated: float
    used: float
    pinned: bool = False  # a version fetched by number never changes
    from_snapshot: bool = False


def _error_classes() -> dict[str, type[RegistryError]]:
    found: dict[str, type[RegistryError]] = {}
    pending: list[type[RegistryError]] = [RegistryError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.type, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_STATUS: dict[int, type[RegistryError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: ConflictError,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
}


def error_from_response(status: int, body: Any, excerpt: str = "") -> RegistryError:
    """The typed ``RegistryError`` a JSON error answer stands for (same class as the server's,
    with the same details: ``field``, ``variable``, ``run_id``, ``raw_text``, ``partial_text``...).

    An answer that is not the API's (a proxy's HTML page, an empty body) is typed by its
    status: ``ServiceUnavailable`` for 5xx, with the status and the start of the body.
    """
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        seen = f": {excerpt!r}" if excerpt else ""
        untyped = ServiceUnavailable if status >= 500 else _BY_STATUS.get(status, RegistryError)
        return untyped(
            f"the registry answered HTTP {status} without an API error body{seen} "
            "(a proxy or load balancer in the way?)",
            status=status,
        )
    message = str(detail.get("message") or f"the registry answered HTTP {status}")
    cls = _error_classes().get(str(detail.get("type")))
    if cls is None:
        cls = _BY_STATUS.get(status, RunError if status in (429, 502, 504) else RegistryError)
    kwargs = {name: detail[name] for name in PUBLIC_DETAILS if detail.get(name) is not None}
    try:
        exc = cls(message, **kwargs)
    except TypeError:
        exc = cls(message)
    for name, value in kwargs.items():
        if not hasattr(exc, name):
            setattr(exc, name, value)
    return exc


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime(1970, 1, 1, tzinfo=UTC)


def _fixed_labels(names: Iterable[str]) -> Callable[[PromptVersion], list[str]]:
    """A ``labels_of`` callback answering the labels known when the version was fetched."""
    frozen = tuple(names)
    return lambda _v: list(frozen)


class _Snapshot:
    """The offline fallback: every version and label of an export document."""

    def __init__(self, path: str | Path, client: RegistryClient) -> None:
        from .transfer import read_document

        doc = read_document(path)
        self.path = str(path)
        self.versions: dict[tuple[str, int], PromptVersion] = {}
        self.labels: dict[tuple[str, str], int] = {}
        self.latest: dict[str, int] = {}
        for p in doc.prompts:
            labels_at: dict[int, list[str]] = {}
            for label, number in p.labels.items():
                self.labels[(p.name, label)] = number
                labels_at.setdefault(number, []).append(label)
            for v in p.versions:
                content = validate_content(
                    system=v.system,
                    messages=v.messages,
                    settings=v.settings,
                    variables=v.variables,
                    output_schema=v.output_schema,
                    check_price=False,  # reading an export: the server priced it on save
                )
                names = sorted(labels_at.get(v.version, []))
                self.versions[(p.name, v.version)] = PromptVersion(
                    id=0,
                    name=p.name,
                    version=v.version,
                    system=content.system,
                    messages=content.messages,
                    settings=content.settings,
                    variables=content.variables,
                    output_schema=content.output_schema,
                    content_hash=content.content_hash(),
                    message=v.message,
                    author=v.author,
                    created_at=v.created_at or datetime(1970, 1, 1, tzinfo=UTC),
                    compiler=client._compile,
                    labels_of=_fixed_labels(names),
                )
            if p.versions:
                self.latest[p.name] = max(v.version for v in p.versions)

    def resolve(self, name: str, label: str | None, version: int | None) -> PromptVersion | None:
        """The version a selector resolves to in the snapshot (None when it does not)."""
        if version is None:
            label = label or DEFAULT_LABEL
            version = self.latest.get(name) if label == LATEST else self.labels.get((name, label))
        if version is None:
            return None
        return self.versions.get((name, version))


class RemoteStream:
    """The iterator ``RegistryClient.stream`` returns: text chunks as the model writes them.

    After exhaustion ``result`` holds the run's ``RunResult``; a failure midway raises the
    typed error (a ``RunError`` carrying ``run_id``).
    """

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self._events = _sse_events(response)
        self.result: RunResult | None = None
        self._text: list[str] = []

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._text)

    def __iter__(self) -> RemoteStream:
        return self

    def __next__(self) -> str:
        if self.result is not None:
            raise StopIteration
        try:
            for event, data in self._events:
                payload = json.loads(data) if data else {}
                if event == "delta":
                    chunk = str(payload.get("text", ""))
                    self._text.append(chunk)
                    return chunk
                if event == "done":
                    self.result = _run_result(payload)
                    self.close()
                    raise StopIteration
                if event == "error":
                    self.close()
                    raise error_from_response(502, {"error": payload})
        except requests.RequestException as exc:
            self.close()
            raise self._interrupted(f"the connection broke ({type(exc).__name__})") from None
        except ValueError:
            self.close()
            raise self._interrupted("an event was not JSON (a proxy in the way?)") from None
        self.close()
        raise self._interrupted("the stream ended before the run finished")

    def _interrupted(self, why: str) -> StreamInterrupted:
        return StreamInterrupted(
            f"the run's stream from the registry broke after {len(self.text)} characters: {why}",
            partial_text=self.text,
        )

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._response.close()

    def __enter__(self) -> RemoteStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sse_events(response: requests.Response) -> Iterator[tuple[str, str]]:
    """``(event, data)`` pairs of a Server-Sent Events body."""
    event, data = "message", list[str]()
    for raw in response.iter_lines(decode_unicode=True):
        line = raw if isinstance(raw, str) else raw.decode("utf-8")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)


def _run_result(data: Mapping[str, Any]) -> RunResult:
    known = {f.name for f in dataclasses.fields(RunResult)}
    values = {k: v for k, v in data.items() if k in known}
    if values.get("created_at"):
        values["created_at"] = _parse_time(values["created_at"])
    for f in dataclasses.fields(RunResult):
        if f.name not in values and f.default is dataclasses.MISSING:
            values[f.name] = None
    return RunResult(**values)


class RegistryClient:
    """Fetch, render and run prompts through a registry server's HTTP API, with a local cache.

    ``base_url`` is the server (``http://host:5000``; ``/api/v1`` is added when missing);
    ``api_key`` a key from ``prompt-registry apikeys create``. ``ttl``, ``revalidate`` and
    ``fallback_path`` are described in the module documentation; ``timeout`` bounds each
    request in seconds (runs use the larger ``run_timeout``). Call ``close()`` (or use
    ``with``) to stop the background thread.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ttl: float = 60.0,
        revalidate: float = DEFAULT_REVALIDATE,
        fallback_path: str | Path | None = None,
        timeout: float = 5.0,
        run_timeout: float = 330.0,
        max_entries: int = 4096,
    ) -> None:
        if ttl < 0 or revalidate < 0:
            raise ValidationError("ttl and revalidate must be >= 0 seconds", field="ttl")
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith(API_PREFIX) else base + API_PREFIX
        self.ttl = float(ttl)
        self.revalidate = min(float(revalidate), self.ttl)
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.max_entries = max_entries
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": "prompt-registry-client",
        }
        self._cache: dict[CacheKey, _Entry] = {}
        self._includes: dict[str, str] = {}
        self._env = make_environment(self._resolve_include)
        # one connection pool for the app's threads, one for the background thread
        self._http = self._new_session()
        self._background_http = self._new_session()
        self._lock = threading.Lock()
        self._pending: set[CacheKey] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_until = 0.0
        #: the last error talking to the server (None after a success)
        self.last_error: Exception | None = None
        self.snapshot = _Snapshot(fallback_path, self) if fallback_path is not None else None

    def __repr__(self) -> str:
        return f"<RegistryClient {self.base_url}>"

    # -- the Registry API -----------------------------------------------------------------

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> PromptVersion:
        """Fetch a version by label (default ``production``), by number, or for an experiment unit.

        Same rules as :meth:`registry.Registry.get`; a label and a version together are an error.
        """
        if version is None and unit_id is None:
            key: CacheKey = ("label", name, label or DEFAULT_LABEL)
        else:
            key = self._key(name, label, version, unit_id)
        entry = self._cache.get(key)
        if entry is not None:
            now = time.monotonic()
            entry.used = now
            age = now - entry.validated
            if entry.pinned or age < self.revalidate:
                return entry.version
            if age < self.ttl or now < self._down_until:
                self._schedule(key)
                return entry.version
        return self._fetch_now(key, entry)

    def render(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> Rendered:
        """``get`` then ``render`` in one call (rendered locally, in the sandbox)."""
        return self.get(name, label=label, version=version, unit_id=unit_id).render(variables or {})

    def run(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> RunResult:
        """Run a prompt on the server (which calls the model and logs the run)."""
        body = self._run_body(name, variables, label, version, unit_id, options, stream=False)
        response = self._request(
            "POST", self._prompt_url(name, "run"), body, self.run_timeout, timeout_error=RunTimeout
        )
        if response.status_code != 200:
            self._raise(response)
        return _run_result(_json(response))

    def stream(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> RemoteStream:
        """Like :meth:`run` but yields text as it arrives; ``result`` holds the ``RunResult``."""
        body = self._run_body(name, variables, label, version, unit_id, options, stream=True)
        response = self._request(
            "POST",
            self._prompt_url(name, "run"),
            body,
            self.run_timeout,
            stream=True,
            timeout_error=RunTimeout,
        )
        if response.status_code != 200:
            try:
                self._raise(response)
            finally:
                response.close()
        if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
            try:
                _json(response)  # raises when it is not JSON: a proxy's page
                raise ServiceUnavailable(
                    "the registry answered a streamed run without an event stream "
                    f"({response.headers.get('Content-Type') or 'no content type'})",
                    status=response.status_code,
                )
            finally:
                response.close()
        return RemoteStream(response)

    def feedback(self, run_id: str, name: str, value: float, *, comment: str = "") -> None:
        """Attach a score (thumbs up = 1.0, a rating...) to a run."""
        url = f"{self.base_url}/runs/{quote(str(run_id), safe='')}/feedback"
        body = {"name": name, "value": value, "comment": comment}
        response = self._request("POST", url, body, self.timeout)
        if response.status_code not in (200, 201):
            self._raise(response)
        _json(response)  # the API's answer, not a proxy's page: the score was recorded

    def prompts(
        self,
        *,
        folder: str | None = None,
        tag: str | None = None,
        search: str | None = None,
        include_archived: bool = False,
    ) -> list[Prompt]:
        """Prompts with their labels and newest version number, sorted by name (not cached)."""
        params: dict[str, Any] = {
            k: v for k, v in (("folder", folder), ("tag", tag), ("search", search)) if v
        }
        if include_archived:
            params["include_archived"] = "true"
        response = self._request("GET", f"{self.base_url}/prompts", None, self.timeout, params)
        if response.status_code != 200:
            self._raise(response)
        return [
            Prompt(
                name=p["name"],
                description=p["description"],
                tags=list(p["tags"]),
                labels=dict(p["labels"]),
                latest_version=p["latest_version"],
                created_at=_parse_time(p["created_at"]),
                updated_at=_parse_time(p["updated_at"]),
                archived=p["archived"],
            )
            for p in _json(response)["prompts"]
        ]

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first, ready to render (not cached)."""
        url = f"{self.base_url}/versions"
        response = self._request("GET", url, None, self.timeout, {"prompt": name})
        if response.status_code != 200:
            self._raise(response)
        return [self._version_from(data) for data in _json(response)["versions"]]

    def invalidate(self, name: str | None = None) -> None:
        """Forget cached entries (all, or one prompt's); the next ``get`` asks the server."""
        with self._lock:
            for key in list(self._cache):
                if name is None or key[1] == name:
                    self._cache.pop(key, None)

    def close(self) -> None:
        """Stop the background thread and close the HTTP connections."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.timeout + 1)
        self._http.close()
        self._background_http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fetching -------------------------------------------------------------------------

    @staticmethod
    def _key(name: str, label: str | None, version: int | None, unit_id: str | None) -> CacheKey:
        if version is not None:
            if label is not None:
                raise ValidationError("give a label or a version, not both", field="version")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ValidationError(
                    f"version must be a positive integer, got {version!r}", field="version"
                )
            return ("version", name, version)
        if unit_id is not None:
            return ("unit", name, label or DEFAULT_LABEL, str(unit_id))
        return ("label", name, label or DEFAULT_LABEL)

    def _fetch_now(self, key: CacheKey, entry: _Entry | None) -> PromptVersion:
        """Ask the server; on failure serve the stale entry, else the snapshot, else raise.

        While the server is known to be down, the snapshot answers without a new attempt.
        """
        if entry is None and time.monotonic() < self._down_until:
            found = self._from_snapshot(key, quiet=True)
            if found is not None:
                return found
        try:
            fresh = self._fetch(key, entry)
        except ServiceUnavailable as exc:
            self._mark_down()
            if entry is not None:
                log.warning("registry unreachable (%s): serving a stale %s", exc, key[1])
                return entry.version
            found = self._from_snapshot(key)
            if found is not None:
                return found
            raise ServiceUnavailable(
                f"{exc.message}, and {key[1]!r} is neither cached nor in a fallback file "
                "(give fallback_path=... an export)",
                **exc.details,
            ) from None
        return fresh.version

    def _from_snapshot(self, key: CacheKey, *, quiet: bool = False) -> PromptVersion | None:
        if self.snapshot is None:
            return None
        kind, name = key[0], key[1]
        found = self.snapshot.resolve(
            name,
            key[2] if kind != "version" else None,
            key[2] if kind == "version" else None,
        )
        if found is not None and not quiet:
            log.warning(
                "registry unreachable: serving %s v%s from %s",
                name,
                found.version,
                self.snapshot.path,
            )
        return found

    def _fetch(self, key: CacheKey, entry: _Entry | None) -> _Entry:
        """One conditional GET; updates the cache. Raises ``ServiceUnavailable`` when the server
        cannot answer (the caller then serves what it has) or the server's typed error."""
        kind, name = key[0], key[1]
        params: dict[str, Any] = {}
        if kind == "version":
            params["version"] = key[2]
        else:
            params["label"] = key[2]
            if kind == "unit":
                params["unit_id"] = key[3]
        headers = {"If-None-Match": entry.etag} if entry is not None and entry.etag else None
        response = self._request(
            "GET", self._prompt_url(name), None, self.timeout, params, headers=headers
        )
        now = time.monotonic()
        if response.status_code == 304 and entry is not None:
            entry.validated = now
            return entry
        if response.status_code != 200:
            if response.status_code == 404:
                with self._lock:
                    self._cache.pop(key, None)
            self._raise(response)
        data = _json(response)
        fresh = _Entry(
            version=self._version_from(data),
            etag=response.headers.get("ETag"),
            validated=now,
            used=entry.used if entry is not None else now,
            pinned=kind == "version",
        )
        if entry is not None and entry.etag == fresh.etag:
            fresh.version = entry.version  # keep the compiled templates
        self._store(key, fresh)
        return fresh

    def _version_from(self, data: Mapping[str, Any]) -> PromptVersion:
        includes = data.get("includes") or {}
        if includes:
            with self._lock:
                self._includes.update(includes)
        labels = data.get("labels") or ()
        v = PromptVersion(
            id=int(data["id"]),
            name=data["name"],
            version=int(data["version"]),
            system=data["system"],
            messages=data["messages"],
            settings=data["settings"],
            variables=data["variables"],
            output_schema=data.get("output_schema"),
            content_hash=data["content_hash"],
            message=data.get("message", ""),
            author=data.get("author", ""),
            created_at=_parse_time(data.get("created_at")),
            compiler=self._compile,
            labels_of=_fixed_labels(labels),
        )
        v.experiment = data.get("experiment")
        v.variant = data.get("variant")
        return v

    def _store(self, key: CacheKey, entry: _Entry) -> None:
        with self._lock:
            if key not in self._cache and len(self._cache) >= self.max_entries:
                oldest = min(self._cache, key=lambda k: self._cache[k].used)
                self._cache.pop(oldest, None)
            self._cache[key] = entry
        if not entry.pinned and self.ttl > 0:
            self._ensure_thread()

    # -- the background thread --------------------------------------------------------------

    def _schedule(self, key: CacheKey) -> None:
        if key not in self._pending:
            with self._lock:
                self._pending.add(key)
            self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._refresh_loop, name="registry-client-refresh", daemon=True
                )
                self._thread.start()

    def _refresh_loop(self) -> None:
        """Revalidate what ``get`` asked for and every entry in use as it comes due."""
        timeout = self.revalidate
        while not self._stop.is_set():
            self._wake.wait(timeout=timeout)
            self._wake.clear()
            if self._stop.is_set():
                break
            now = time.monotonic()
            hot = min(HOT_SECONDS, self.ttl)
            with self._lock:
                due = set(self._pending)
                self._pending.clear()
                next_due = now + self.revalidate
                for key, entry in self._cache.items():
                    if entry.pinned or now - entry.used > hot:
                        continue
                    when = entry.validated + self.revalidate
                    if when <= now:
                        due.add(key)
                    else:
                        next_due = min(next_due, when)
            if now < self._down_until:
                timeout = max(0.05, self._down_until - now)
                continue
            for key in due:
                if self._stop.is_set():
                    break
                self._refresh(key)
            timeout = min(max(0.01, next_due - time.monotonic()), max(self.revalidate, 0.01))

    def _mark_down(self) -> None:
        """Do not make ``get`` wait on the server again for a little while."""
        self._down_until = time.monotonic() + min(RETRY_SECONDS, max(self.ttl, 0.5))

    def _refresh(self, key: CacheKey) -> None:
        entry = self._cache.get(key)
        if entry is None:
            return
        try:
            self._fetch(key, entry)
        except ServiceUnavailable as exc:
            self._mark_down()
            log.warning("registry unreachable, serving cached prompts: %s", exc.message)
        except NotFound:
            pass  # dropped by _fetch: the next get asks again and raises
        except RegistryError as exc:
            log.warning("revalidating %s failed: %s", key[1], exc.message)
        except Exception:
            log.exception("revalidating %s failed", key[1])

    # -- compilation (same sandbox as the server) -------------------------------------------

    def _compile(self, v: PromptVersion) -> CompiledPrompt:
        return CompiledPrompt(
            self._env,
            name=v.name,
            version=v.version,
            system=v.system,
            messages=v.messages,
            settings=v.settings,
            contract=v.variables,
        )

    def _resolve_include(self, ref: IncludeRef) -> tuple[str, Any]:
        key = str(ref)
        source = self._includes.get(key)
        if source is None and self.snapshot is not None:
            target = self.snapshot.resolve(ref.name, ref.label, ref.version)
            if target is not None:
                from .rendering import include_source

                source = include_source(target.system, target.messages)
        if source is None:
            raise NotFound(f"included prompt {key!r} is not known to this client")
        current = source
        return source, lambda: self._includes.get(key, current) == current

    # -- HTTP -----------------------------------------------------------------------------

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self._headers)
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _session(self) -> requests.Session:
        if threading.current_thread() is self._thread:
            return self._background_http
        return self._http

    def _prompt_url(self, name: str, action: str | None = None) -> str:
        url = f"{self.base_url}/prompts/{quote(name, safe='/')}"
        return f"{url}/{action}" if action else url

    def _request(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        timeout: float,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout_error: type[RegistryError] = ServiceUnavailable,
    ) -> requests.Response:
        """One HTTP request; every failure to get an answer is a typed ``RegistryError``.

        A refused or dropped connection is ``ServiceUnavailable``; no answer within ``timeout``
        is ``timeout_error`` (``RunTimeout`` for runs). A 5xx answer to a GET is
        ``ServiceUnavailable`` too (a fetch failing on the server is an outage: ``get`` serves
        what it has); other error answers are returned for :meth:`_raise`.
        """
        try:
            response = self._session().request(
                method,
                url,
                json=body,
                params=params,
                headers=headers,
                timeout=timeout,
                stream=stream,
            )
        except requests.Timeout as exc:
            self.last_error = exc
            raise timeout_error(
                f"the registry at {self.base_url} did not answer {method} {_path(url)} within "
                f"{timeout:g} s",
                cause=type(exc).__name__,
                timeout=timeout,
            ) from None
        except requests.RequestException as exc:
            self.last_error = exc
            raise ServiceUnavailable(
                f"the registry at {self.base_url} cannot be reached ({type(exc).__name__}: "
                f"{_first_line(exc)})",
                cause=type(exc).__name__,
            ) from None
        if response.status_code >= 500 and method == "GET":
            error = _error_of(response)
            self.last_error = error
            raise ServiceUnavailable(
                f"the registry at {self.base_url} cannot be reached: it answered HTTP "
                f"{response.status_code} ({error.message})",
                status=response.status_code,
                server_error=error.type,
            )
        self.last_error = None
        return response

    def _raise(self, response: requests.Response) -> NoReturn:
        raise _error_of(response)

    @staticmethod
    def _run_body(
        name: str,
        variables: Mapping[str, Any] | None,
        label: str | None,
        version: int | None,
        unit_id: str | None,
        options: Mapping[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        unknown = sorted(set(options) - set(HTTP_RUN_OPTIONS))
        if unknown:
            raise ValidationError(
                f"run option(s) {', '.join(unknown)} cannot be set over HTTP; the HTTP API "
                f"takes {', '.join(HTTP_RUN_OPTIONS)}",
                field=unknown[0],
            )
        body: dict[str, Any] = {"variables": dict(variables or {}), "stream": stream}
        for field, value in (("label", label), ("version", version), ("unit_id", unit_id)):
            if value is not None:
                body[field] = value
        body.update({k: v for k, v in options.items() if v is not None})
        return body


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].partition("/")[2]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no detail"


def _excerpt(response: requests.Response) -> str:
    try:
        text = response.text
    except Exception:  # a body cut short
        return ""
    flat = " ".join(text.split())
    return flat[:120] + ("..." if len(flat) > 120 else "")


def _error_of(response: requests.Response) -> RegistryError:
    """The typed error of an error answer (see :func:`error_from_response`)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    except requests.RequestException as exc:  # the body was cut short
        return ServiceUnavailable(
            f"the registry's HTTP {response.status_code} answer was cut short ({_first_line(exc)})",
            status=response.status_code,
        )
    excerpt = "" if isinstance(body, dict) else _excerpt(response)
    response.close()
    return error_from_response(response.status_code, body, excerpt)


def _json(response: requests.Response) -> Any:
    """The JSON body of a successful answer; an answer that is not JSON (a proxy's page, a body
    cut short) is ``ServiceUnavailable`` naming what came instead."""
    try:
        return response.json()
    except ValueError:
        raise ServiceUnavailable(
            f"the registry answered HTTP {response.status_code} with a body that is not JSON "
            f"({_excerpt(response)!r}): is a proxy in the way?",
            status=response.status_code,
        ) from None
    except requests.RequestException as exc:
        raise ServiceUnavailable(
            f"the registry's answer was cut short ({_first_line(exc)})",
            status=response.status_code,
            cause=type(exc).__name__,
        ) from None


__all__ = ["RegistryClient", "RemoteStream", "error_from_response"]
