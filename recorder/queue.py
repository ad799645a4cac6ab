"""The bounded capture queue and the writer thread behind it.

Capturing must never stall the operator: ``put`` never blocks.  When the
queue is full (too many items or too many bytes waiting, e.g. because the
disk is slow), the capture is dropped and counted.  The writer thread takes
items in order, converts them to operations (see ``recorder.capture``),
infers reconcile spans, appends them to the session and commits at least
every ``flush_interval`` seconds, so a reader following the recording, or a
crash, loses at most that much.

Counters (``recorded``, ``dropped``, ``errors`` by category: ``disk``,
``encode``, ``locked``) count operations: each captured operation ends up
recorded, dropped or lost to an error.  They are stored in the session's
attributes when it is closed.

Sampling (``sample`` < 1) keeps that fraction of non-watch requests, chosen at
random, and counts the others in ``sampled_out``; watch streams and their
events are always kept (object state is rebuilt from them).  Readers scale
request counts by the ``sample_rate`` attribute the recorder stores.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from typing import Any

import msgspec

from replay_tui.engine.format import WATCH, Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.writer import SessionWriter
from replay_tui.recorder.capture import Capture, Converter, WatchContext, split_lines
from replay_tui.recorder.logs import Log
from replay_tui.recorder.spans import DEFAULT_QUIET_S, SpanInferrer

DEFAULT_MAXSIZE = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_FLUSH_INTERVAL = 0.1
TAKE = 512  # items taken by the writer at once

_raw_json = msgspec.json.Decoder(msgspec.Raw).decode

# Queue item tags (tuples are cheaper to build than objects on the hot path).
_REQ, _WOPEN, _WCHUNK, _WCLOSE, _BEGIN, _END, _MARK = range(7)


class Counters(msgspec.Struct):
    """What happened to the captured operations."""

    recorded: int = 0
    dropped: int = 0
    sampled_out: int = 0
    errors: dict[str, int] = msgspec.field(default_factory=lambda: {"disk": 0, "encode": 0, "locked": 0})
    spans: int = 0
    last_error: str = ""

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recorded": self.recorded, "dropped": self.dropped,
                               "errors": dict(self.errors)}
        if self.sampled_out:
            out["sampled_out"] = self.sampled_out
        if self.last_error:
            out["last_error"] = self.last_error
        return out


class _Stream(msgspec.Struct):
    ctx: WatchContext
    buffer: bytearray
    skipping: bool = False  # inside a line whose start was dropped: skip to the next newline


def check_rate(rate: float) -> float:
    """A sample rate: a fraction from 0 to 1."""
    if not 0.0 <= rate <= 1.0:  # (NaN fails too)
        raise RecordingError(f"sample rate {rate:g}: expected a fraction from 0 to 1")
    return rate


def error_category(exc: BaseException) -> str:
    text = str(exc).lower()
    return "locked" if "locked" in text or "busy" in text else "disk"


class CaptureQueue:
    """Bounded, non-blocking hand-over from capture to a dedicated writer thread."""

    def __init__(self, writer: SessionWriter, converter: Converter, *, infer_spans: bool = False,
                 maxsize: int = DEFAULT_MAXSIZE, max_bytes: int = DEFAULT_MAX_BYTES,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL, quiet_s: float | None = None,
                 sample: float = 1.0, seed: int | None = None, log: Log | None = None):
        check_rate(sample)
        self.writer = writer
        self.sample = sample
        self._rng = random.Random(seed)
        self.log = log or Log()
        self.converter = converter
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self.counters = Counters()
        self.inferrer = SpanInferrer(writer, DEFAULT_QUIET_S if quiet_s is None else quiet_s) \
            if infer_spans else None
        self._items: deque[tuple[Any, ...]] = deque()
        self._bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._drop_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._lossy: dict[int, bool] = {}  # watch stream -> did its last dropped chunk end a line
        self._streams: dict[int, _Stream] = {}
        self._tokens: dict[int, int] = {}  # client span token -> reconcile id
        self._unflushed = 0
        self._closed = False
        self.close_error: RecordingError | None = None
        self._attributes: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="replay-tui-writer", daemon=True)

    # --- producer side (any thread; never blocks) ---------------------------------------

    def start(self) -> CaptureQueue:
        self._thread.start()
        return self

    @property
    def depth(self) -> int:
        return len(self._items)

    def _put(self, item: tuple[Any, ...], size: int = 0, force: bool = False) -> bool:
        with self._cond:
            if self._closed:
                return False
            if not force and (len(self._items) >= self.maxsize or self._bytes + size > self.max_bytes):
                return False
            self._items.append(item)
            self._bytes += size
            if len(self._items) == 1:
                self._cond.notify()
            return True

    def _dropped(self, n: int = 1) -> None:
        with self._drop_lock:
            self.counters.dropped += n

    def request(self, cap: Capture, sampled: bool = True) -> bool:
        """A complete request/response exchange; False (and counted) when dropped.

        ``sampled``: subject to the sample rate (False for a failed watch request)."""
        if sampled and self.sample < 1.0 and self._rng.random() >= self.sample:
            with self._drop_lock:
                self.counters.sampled_out += 1
            return True
        size = len(cap.request or b"") + len(cap.response or b"")
        if self._put((_REQ, cap), size):
            return True
        self._dropped()
        return False

    def watch_open(self, cap: Capture) -> int:
        """A watch request whose response headers arrived; returns the stream id for its chunks."""
        sid = next(self._ids)
        self._put((_WOPEN, sid, cap), force=True)  # tiny, and its events need it
        return sid

    def watch_chunk(self, sid: int, ts_ns: int, chunk: bytes) -> bool:
        """Bytes of a watch stream as they arrived (any split: lines are found by the writer)."""
        resync = self._lossy.get(sid)
        if self._put((_WCHUNK, sid, ts_ns, chunk, resync), len(chunk)):
            if resync is not None:
                del self._lossy[sid]
            return True
        self._dropped(max(chunk.count(b"\n"), 0))
        self._lossy[sid] = chunk.endswith(b"\n")
        return False

    def watch_close(self, sid: int, ts_ns: int) -> None:
        lossy = self._lossy.pop(sid, None) is not None  # its last chunks were dropped
        self._put((_WCLOSE, sid, ts_ns, lossy), force=True)

    def begin_span(self, reconciler: str, kind: str = "", namespace: str = "", name: str = "") -> int:
        """Open an explicit reconcile span (client hook); returns a token for ``Capture.reconcile``."""
        token = next(self._ids)
        self._put((_BEGIN, token, reconciler, kind, namespace, name, time.time_ns()), force=True)
        return token

    def end_span(self, token: int, error: str = "") -> None:
        self._put((_END, token, error, time.time_ns()), force=True)

    def mark(self, name: str, note: str = "") -> None:
        self._put((_MARK, name, note), force=True)

    # --- shutting down ----------------------------------------------------------------------

    def close(self, timeout: float | None = None, **attributes: Any) -> Counters:
        """Write everything queued, close the session with the counters; returns them."""
        self._attributes = attributes
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif not self._closed and self._thread.ident is None:
            self._finish()  # never started: close the session here
        if self.close_error is not None:
            raise self.close_error
        return self.counters

    # --- the writer thread ------------------------------------------------------------------

    def _take(self) -> list[tuple[Any, ...]]:
        with self._cond:
            if not self._items and not self._stopping:
                self._cond.wait(self.flush_interval)
            n = min(len(self._items), TAKE)
            items = [self._items.popleft() for _ in range(n)]
            for item in items:
                if item[0] == _REQ:
                    cap = item[1]
                    self._bytes -= len(cap.request or b"") + len(cap.response or b"")
                elif item[0] == _WCHUNK:
                    self._bytes -= len(item[3])
            return items

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._finish()

    def _loop(self) -> None:
        last_flush = time.monotonic()
        while True:
            items = self._take()
            for item in items:
                try:
                    self._process(item)
                except RecordingError as exc:
                    self._fail(exc)
                except Exception as exc:
                    self.counters.errors["encode"] += 1
                    self.counters.last_error = f"{type(exc).__name__}: {exc}"
            now = time.monotonic()
            if self._unflushed and (not items or now - last_flush >= self.flush_interval):
                self._flush()
                last_flush = now
            with self._cond:
                if self._stopping and not self._items:
                    self._closed = True  # from now on a put is refused (and counted as dropped)
                    break

    def _finish(self) -> None:
        for sid in list(self._streams):
            self._close_stream(sid, time.time_ns(), lossy=sid in self._lossy)
        if self.inferrer is not None:
            self.inferrer.finish()
            self.counters.spans = self.inferrer.spans
        self._flush()
        # close() writes whatever is still pending (a retried batch) or fails as a whole.
        self.counters.recorded += self._unflushed
        self._unflushed = 0
        with self._cond:
            self._closed = True
        redactor = self.converter.redactor
        redacted = {"redacted_values": redactor.count} if redactor is not None else {}
        try:
            self.writer.close(**self.counters.attributes(), **redacted, **self._attributes)
        except RecordingError as exc:
            self.close_error = exc

    def _process(self, item: tuple[Any, ...]) -> None:
        tag = item[0]
        if tag == _REQ:
            cap: Capture = item[1]
            op = self.converter.operation(cap)
            self._call(op, cap.reconcile)
        elif tag == _WCHUNK:
            _, sid, ts_ns, chunk, resync = item
            stream = self._streams.get(sid)
            if stream is None:
                self._dropped(chunk.count(b"\n"))
                return
            if resync is not None:  # chunks were dropped before this one
                stream.buffer.clear()
                stream.skipping = resync is False  # the lost part ended mid-line
            if stream.skipping:
                cut = chunk.find(b"\n")
                if cut < 0:
                    return
                chunk = chunk[cut + 1:]
                stream.skipping = False
                self._dropped()  # the line that straddled the lost chunk
            for line in split_lines(stream.buffer, chunk):
                self._event(stream.ctx, line, ts_ns)
        elif tag == _WOPEN:
            _, sid, cap = item
            op = self.converter.operation(cap)
            self._streams[sid] = _Stream(self.converter.watch_context(cap), bytearray())
            self._call(op, cap.reconcile)
        elif tag == _WCLOSE:
            self._close_stream(item[1], item[2], lossy=item[3])
        elif tag == _BEGIN:
            _, token, reconciler, kind, namespace, name, ts_ns = item
            self._tokens[token] = self.writer.begin_reconcile(
                reconciler, kind=kind, namespace=namespace, name=name, ts_ns=ts_ns)
            self.counters.spans += 1
        elif tag == _END:
            _, token, error, ts_ns = item
            rid = self._tokens.pop(token, None)
            if rid is not None:
                self.writer.end_reconcile(rid, error=error, ts_ns=ts_ns)
        elif tag == _MARK:
            self.writer.mark(item[1], note=item[2])

    def _close_stream(self, sid: int, ts_ns: int, lossy: bool = False) -> None:
        stream = self._streams.pop(sid, None)
        if stream is None or lossy or stream.skipping or not stream.buffer.strip():
            return
        rest = bytes(stream.buffer)
        try:
            _raw_json(rest)
        except msgspec.DecodeError:
            return  # the stream was cut mid-event: that event never arrived whole
        self._event(stream.ctx, rest, ts_ns)  # a last event without its newline

    def _call(self, op: Operation, token: int | None) -> None:
        if token is not None:
            op.reconcile = self._tokens.get(token)
        elif self.inferrer is not None and op.verb != WATCH:
            self.inferrer.before_call(op)
        self._append(op)

    def _event(self, ctx: WatchContext, line: bytes, ts_ns: int) -> None:
        op = self.converter.event(ctx, line, ts_ns)
        if self.inferrer is not None:
            self.inferrer.before_event(op)
        seq = self._append(op)
        if self.inferrer is not None and seq:
            self.inferrer.after_event(op, seq)

    def _append(self, op: Operation) -> int:
        try:
            seq = self.writer.append(op)
        except RecordingError as exc:  # flushing a full batch failed (the writer keeps it to retry)
            self._unflushed += 1
            self._fail(exc)
            return self.writer.seq  # the op is buffered with that seq
        self._unflushed += 1
        return seq

    def _flush(self) -> None:
        try:
            self.writer.flush()
        except RecordingError as exc:
            self._fail(exc)
            return
        self.counters.recorded += self._unflushed
        self._unflushed = 0

    def _fail(self, exc: RecordingError) -> None:
        """A write attempt failed: count it.  The writer keeps the batch and retries it on
        its next flush, so the ops stay pending (counted as recorded once committed)."""
        category = error_category(exc)
        self.counters.errors[category] += 1
        if str(exc) != self.counters.last_error:
            self.log.error(f"recording error ({category}): {exc}", category=category)
        self.counters.last_error = str(exc)

    def snapshot(self) -> dict[str, Any]:
        """Counters for the metrics endpoint (read from another thread: approximate)."""
        c = self.counters
        return {"recorded": c.recorded, "dropped": c.dropped, "sampled_out": c.sampled_out,
                "errors": dict(c.errors),
                "queue_depth": len(self._items), "queue_bytes": self._bytes, "spans": c.spans}
