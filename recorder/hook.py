"""Recording from inside a Python operator that uses the official ``kubernetes`` client.

    from replay_tui import recorder

    with recorder.recording("rec.db", session="my-operator") as rec:
        ...
        with rec.reconcile(obj):          # an exact reconcile span
            api.patch_namespaced_...(...)

While the context is active, every call made through any ``ApiClient`` (the
REST layer, ``RESTClientObject.request``, is wrapped) is captured with the
same format and pipeline as the recording proxy: bounded queue, writer
thread, redaction of Secret values, counters in the session attributes.
Watch streams (``kubernetes.watch.Watch``) are recorded event by event as the
caller consumes them.  Reconcile spans come only from ``rec.reconcile``:
the hook knows where they are, so nothing is inferred.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec

from replay_tui.engine.schema import RecordingError
from replay_tui.engine.writer import RecordingWriter
from replay_tui.recorder.capture import Capture, Converter
from replay_tui.recorder.logs import Log
from replay_tui.recorder.paths import parse_path, parse_query
from replay_tui.recorder.queue import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAXSIZE, CaptureQueue, Counters, check_rate
from replay_tui.recorder.redact import Redactor

_span: contextvars.ContextVar[int | None] = contextvars.ContextVar("replay_tui_reconcile", default=None)
_lock = threading.Lock()
_active: ClientRecording | None = None
_original: Any = None
_signature: inspect.Signature | None = None


def _encode_body(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    try:
        return msgspec.json.encode(body)
    except (TypeError, msgspec.EncodeError):
        import json

        return json.dumps(body, default=str).encode()


def _header(headers: Any, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return ""


class _TeeResponse:
    """Wraps a streaming urllib3 response: the caller reads it as usual, the recorder sees each chunk."""

    def __init__(self, raw: Any, queue: CaptureQueue, sid: int):
        self._raw, self._queue, self._sid = raw, queue, sid
        self._closed = False

    def _chunk(self, data: Any) -> None:
        if data:
            self._queue.watch_chunk(self._sid, time.time_ns(),
                                    data if isinstance(data, bytes) else str(data).encode())

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.watch_close(self._sid, time.time_ns())

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            for chunk in self._raw.stream(*args, **kwargs):
                self._chunk(chunk)
                yield chunk
        finally:
            self._end()

    def read(self, *args: Any, **kwargs: Any) -> Any:
        data = self._raw.read(*args, **kwargs)
        self._chunk(data)
        if not data:
            self._end()
        return data

    def read_chunked(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            for chunk in self._raw.read_chunked(*args, **kwargs):
                self._chunk(chunk)
                yield chunk
        finally:
            self._end()

    def __iter__(self) -> Iterator[Any]:
        return self.stream()

    def close(self) -> None:
        self._raw.close()
        self._end()

    def release_conn(self) -> None:
        self._raw.release_conn()
        self._end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _recorded_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
    rec = _active
    if rec is None:
        return _original(self, method, url, *args, **kwargs)
    return rec._request(self, method, url, args, kwargs)


class ClientRecording:
    """An active in-process recording; see :func:`recording`."""

    def __init__(self, db: str, session: str, *, redact: bool = True, queue_size: int = DEFAULT_MAXSIZE,
                 sample: float = 1.0, attributes: dict[str, Any] | None = None,
                 grace: float = DEFAULT_CLOSE_TIMEOUT):
        check_rate(sample)  # before the file is created
        self.db = db
        self.grace = grace
        self._writer = RecordingWriter(db, pause_collector=False)  # the operator's process: its gc is its own
        try:
            self.session = self._writer.session(session, "client", attributes={
                "recorder": "client-hook", "redacted": redact, "reconciles": "marked",
                **({"sample_rate": sample} if sample < 1 else {}), **(attributes or {})})
        except BaseException:
            self._writer.close()
            raise
        self.log = Log()
        self.queue = CaptureQueue(self.session, Converter(Redactor() if redact else None),
                                  maxsize=queue_size, sample=sample, log=self.log)
        self.counters: Counters | None = None
        self.failure = ""  # why the recording is incomplete, after close ("" when it is whole)

    # --- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> ClientRecording:
        global _active, _original, _signature
        from kubernetes.client import rest

        with _lock:
            if _active is not None:
                self._writer.close()
                raise RecordingError("a client recording is already active in this process")
            if _original is None:
                _original = rest.RESTClientObject.request
                _signature = inspect.signature(_original)
                rest.RESTClientObject.request = _recorded_request  # type: ignore[method-assign]
            self.queue.start()
            _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> Counters:
        """Stop recording, write what is queued (within ``grace`` seconds), close the session; returns
        the counters.  A recording that failed (a full disk) never fails the operator: ``failure`` says
        why, and one line on stderr with the counts."""
        global _active
        with _lock:
            if _active is self:
                _active = None
        if self.counters is None:
            error: RecordingError | None = None
            try:
                self.queue.close(timeout=self.grace)
            except RecordingError as exc:
                error = exc
            finally:
                if not self.queue.writing:
                    self._writer.close()
            self.counters = c = self.queue.counters
            self.failure = self.queue.gave_up or (str(error) if error is not None else "")
            if self.failure:
                closed = "the session is closed with these counts" if error is None and self.queue.finished \
                    else "the session could not be closed"
                self.log.error(f"recording {self.db} failed: {self.failure}; {c.recorded:,} operations recorded, "
                               f"{c.dropped:,} dropped, {c.lost:,} lost to errors; {closed}")
        return self.counters

    # --- spans and marks ----------------------------------------------------------------

    @contextmanager
    def reconcile(self, obj: Any = None, reconciler: str = "", *, kind: str = "", namespace: str = "",
                  name: str = "") -> Iterator[int]:
        """Mark a reconcile of ``obj`` (a dict, a client model, or kind/namespace/name given directly).

        Calls made in this context (same thread or task) belong to the span;
        an exception escaping it is stored as the span's error.
        """
        k, ns, n = _identity(obj)
        kind, namespace, name = kind or k, namespace or ns, name or n
        token = self.queue.begin_span(reconciler or kind.lower(), kind, namespace, name)
        reset = _span.set(token)
        error = ""
        try:
            yield token
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _span.reset(reset)
            self.queue.end_span(token, error)

    def mark(self, name: str, note: str = "") -> None:
        """A named bookmark at the latest recorded operation."""
        self.queue.mark(name, note)

    # --- the wrapped call -----------------------------------------------------------------

    def _request(self, client: Any, method: str, url: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        assert _signature is not None
        try:
            bound = _signature.bind(client, method, url, *args, **kwargs).arguments
        except TypeError:
            return _original(client, method, url, *args, **kwargs)
        headers = bound.get("headers") or {}
        parts = urlsplit(url)
        query = parts.query
        if bound.get("query_params"):  # kubernetes < 33 passes the query separately
            query = "&".join(p for p in (query, urlencode(bound["query_params"])) if p)
        body = _encode_body(bound.get("body"))
        req_type = _header(headers, "Content-Type")
        token = _span.get()
        api = parse_path(parts.path)
        q = parse_query(query)
        streaming = q.get("watch", "").lower() in ("true", "1") or api.legacy_watch
        ts_ns, t0 = time.time_ns(), time.perf_counter_ns()
        try:
            resp = _original(client, method, url, *args, **kwargs)
        except Exception as exc:
            status = int(getattr(exc, "status", 0) or 0)
            failed = getattr(exc, "body", None)  # kubernetes < 33 raised here on any error status
            failed = failed.encode() if isinstance(failed, str) else failed
            self.queue.request(Capture(
                method.upper(), parts.path, query, status, ts_ns, time.perf_counter_ns() - t0, body,
                req_type, failed if isinstance(failed, bytes) and status else None, "application/json",
                error="" if status else f"{type(exc).__name__}: {exc}"[:500], reconcile=token),
                sampled=not streaming)
            raise
        status = int(getattr(resp, "status", 0) or 0)
        following = q.get("follow", "").lower() in ("true", "1")
        raw = getattr(resp, "response", None)  # kubernetes >= 33: a RESTResponse around urllib3's
        preload = bound.get("_preload_content", True)
        if streaming and status == 200:
            sid = self.queue.watch_open(Capture(method.upper(), parts.path, query, status, ts_ns,
                                                time.perf_counter_ns() - t0, body, req_type, reconcile=token))
            if raw is not None:
                resp.response = _TeeResponse(raw, self.queue, sid)
                return resp
            if not preload:
                return _TeeResponse(resp, self.queue, sid)
            self.queue.watch_chunk(sid, time.time_ns(), getattr(resp, "data", b"") or b"")
            self.queue.watch_close(sid, time.time_ns())
            return resp
        data: bytes | None = None
        if not following:
            if raw is not None and hasattr(resp, "read"):
                data = resp.read()  # what the client does next anyway; cached on the response
            elif preload:
                data = getattr(resp, "data", None)
        headers_out = getattr(resp, "headers", None) or (resp.getheaders() if hasattr(resp, "getheaders") else {})
        self.queue.request(Capture(method.upper(), parts.path, query, status, ts_ns,
                                   time.perf_counter_ns() - t0, body, req_type,
                                   data if isinstance(data, bytes) else None,
                                   _header(headers_out, "Content-Type"), reconcile=token), sampled=not streaming)
        return resp


def _identity(obj: Any) -> tuple[str, str, str]:
    if obj is None:
        return "", "", ""
    if isinstance(obj, (tuple, list)) and len(obj) == 3:
        return str(obj[0]), str(obj[1] or ""), str(obj[2])
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        return str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")
    meta = getattr(obj, "metadata", None)
    return (str(getattr(obj, "kind", "") or ""), str(getattr(meta, "namespace", "") or ""),
            str(getattr(meta, "name", "") or ""))


def recording(db: str, session: str = "client", *, redact: bool = True, queue_size: int = DEFAULT_MAXSIZE,
              sample: float = 1.0, attributes: dict[str, Any] | None = None,
              grace: float = DEFAULT_CLOSE_TIMEOUT) -> ClientRecording:
    """Record every call of the official ``kubernetes`` client into ``db`` while the context is active.

    ``sample`` < 1 records only that fraction of non-watch calls (see ``replay-tui record --sample``).
    ``grace``: seconds the end of the context may spend writing what is left (e.g. retrying a full
    disk) before giving it up, counted."""
    return ClientRecording(db, session, redact=redact, queue_size=queue_size, sample=sample,
                           attributes=attributes, grace=grace)
