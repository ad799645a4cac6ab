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
recorded, dropped (it never reached the writer: the queue was full, or the
recorder stopped before the writer took it) or lost to an error (the writer
had it: it could not be encoded, or writing it failed for good).  They are
stored in the session's attributes when it is closed.

When a write fails (a full disk, an I/O error, a lock held too long) the
writer keeps the failed batch and retries it with a growing delay (0.1 s,
doubling up to 2 s), taking nothing new meanwhile: the queue fills and new
captures are dropped and counted, so memory stays bounded (``maxsize`` items,
``max_bytes`` bytes, one batch in the writer) and the thread sleeps instead
of spinning.  A retry that succeeds writes the batch whole: a passing lock
loses nothing.  ``close(timeout)`` writes what it can within ``timeout``
seconds; then the batch still failing is given up (lost to errors), what is
still queued is dropped, and the session is closed with the counts if the
file takes that last small write.  ``abort()`` (a second Ctrl-C) stops at once.

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
RETRY_FIRST_S = 0.1  # after a failed write, the first retry; doubling up to:
RETRY_MAX_S = 2.0
DEFAULT_CLOSE_TIMEOUT = 10.0  # seconds close() spends writing what is left (``record --grace``)
STOPPED = "stopped before everything was written"  # ``gave_up`` after abort()
STOP_WAIT_S = 2.0  # how long close() waits for a writer stuck in a write after its deadline or an abort

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
    write_failures: int = 0  # write attempts that failed (each retried or given up)

    @property
    def lost(self) -> int:
        """Operations lost to errors, all categories."""
        return sum(self.errors.values())

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recorded": self.recorded, "dropped": self.dropped,
                               "errors": dict(self.errors)}
        if self.sampled_out:
            out["sampled_out"] = self.sampled_out
        if self.write_failures:
            out["write_failures"] = self.write_failures
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


def _size(item: tuple[Any, ...]) -> int:
    """Bytes an item holds, for the queue's byte bound."""
    tag = item[0]
    if tag == _REQ:
        return len(item[1].request or b"") + len(item[1].response or b"")
    if tag == _WCHUNK:
        return len(item[3])
    if tag == _WOPEN:
        return len(item[2].request or b"")
    return 0


def _ops_in(item: tuple[Any, ...]) -> int:
    """Operations an item would have become (a watch chunk: the events it completes)."""
    tag = item[0]
    if tag in (_REQ, _WOPEN):
        return 1
    if tag == _WCHUNK:
        return item[3].count(b"\n")
    return 0


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
        # Failing writes: when to retry the batch the writer holds (None: writing works), the delay
        # after that, and the category of the failure.
        self._retry_at: float | None = None
        self._backoff = RETRY_FIRST_S
        self._failing = ""
        self._failed_since = 0.0
        self._dropped_before = 0
        self._deadline: float | None = None  # set by close(timeout)
        self._aborted = False
        self.gave_up = ""  # why the last operations could not be written ("" when all were)
        self.finished = False  # the writer thread is done (the session closed, or closing failed)
        self._attributes: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="replay-tui-writer", daemon=True)

    # --- producer side (any thread; never blocks) ---------------------------------------

    def start(self) -> CaptureQueue:
        self._thread.start()
        return self

    @property
    def depth(self) -> int:
        return len(self._items)

    @property
    def closing(self) -> bool:
        """``close`` was called."""
        return self._stopping

    @property
    def writing(self) -> bool:
        """The writer thread is still running (after ``close``: stuck inside a write)."""
        return self._thread.is_alive()

    def _put(self, item: tuple[Any, ...], size: int = 0, force: bool = False) -> bool:
        """Queue an item unless the queue is full.  ``force``: an item that opens a watch or a span
        goes in up to twice ``maxsize`` (its events need it); the item that closes one always does."""
        with self._cond:
            if self._closed:
                return False
            depth = len(self._items)
            if not force and (depth >= self.maxsize or self._bytes + size > self.max_bytes):
                return False
            if force and item[0] in (_WOPEN, _BEGIN, _MARK) and depth >= 2 * self.maxsize:
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
        if not self._put((_WOPEN, sid, cap), len(cap.request or b""), force=True):
            self._dropped()  # (its chunks are dropped and counted by the writer: it has no such stream)
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

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT, **attributes: Any) -> Counters:
        """Write everything queued, close the session with the counters; returns them.

        ``timeout``: seconds to write what is queued (and retry a failing write); then what is
        left is given up and counted (see ``gave_up``).  Returns by ``timeout`` plus a few
        seconds even if the writer is stuck inside a write (``finished`` stays False then).
        Raises ``close_error`` when the session could not be closed."""
        self._attributes = attributes
        with self._cond:
            self._stopping = True
            if timeout is not None:
                self._deadline = time.monotonic() + timeout
            if self._retry_at is not None:
                self._retry_at = time.monotonic()  # the operator is done: try the held batch again now
            self._cond.notify()
        if self._thread.is_alive():
            self._join()
        elif not self._closed and self._thread.ident is None:
            self._finish()  # never started: close the session here
        if self.close_error is not None:
            raise self.close_error
        return self.counters

    def abort(self) -> None:
        """Stop writing at once (a second Ctrl-C or SIGTERM): what is not written yet is given up
        and counted, and the session closed if that can be done at once.  Safe in a signal handler:
        it takes no lock."""
        self._aborted = True
        interrupt = getattr(getattr(self.writer, "conn", None), "interrupt", None)
        if interrupt is not None:
            interrupt()  # a write under way (or waiting for a lock) returns now

    def _join(self) -> None:
        """Wait for the writer thread: until it is done, or a few seconds past the deadline or an abort
        (a write that never returns, e.g. a hung network disk, must not hang the recorder)."""
        late_since: float | None = None
        interrupted = False
        while self._thread.is_alive():
            self._thread.join(0.05)
            now = time.monotonic()
            if late_since is None and (self._aborted or (self._deadline is not None and now > self._deadline)):
                late_since = now
            if late_since is not None and not interrupted and now - late_since > STOP_WAIT_S / 2:
                self.abort()
                interrupted = True
            if late_since is not None and now - late_since > STOP_WAIT_S:
                self.gave_up = self.gave_up or "the writer did not stop: a write never returned"
                return

    # --- the writer thread ------------------------------------------------------------------

    def _take(self) -> list[tuple[Any, ...]]:
        with self._cond:
            if not self._items and not self._stopping:
                self._cond.wait(self.flush_interval)
            n = min(len(self._items), TAKE)
            items = [self._items.popleft() for _ in range(n)]
            for item in items:
                self._bytes -= _size(item)
            return items

    def _give_back(self, items: list[tuple[Any, ...]]) -> None:
        """Put taken items back at the head of the queue (a write failed: they wait for the retry)."""
        if not items:
            return
        with self._cond:
            self._items.extendleft(reversed(items))
            self._bytes += sum(_size(item) for item in items)

    def _out_of_time(self) -> bool:
        return self._aborted or (self._deadline is not None and time.monotonic() >= self._deadline)

    def _wait_for_retry(self) -> bool:
        """Sleep until the held batch is due for another try; False when time is up (deadline, abort)."""
        with self._cond:
            while True:
                if self._out_of_time():
                    return False
                now = time.monotonic()
                assert self._retry_at is not None
                if now >= self._retry_at:
                    return True
                self._cond.wait(min(self._retry_at - now, 0.1))

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._finish()

    def _loop(self) -> None:
        last_flush = time.monotonic()
        while True:
            if self._retry_at is not None:  # the writer holds a batch that failed: nothing new until it is in
                if not self._wait_for_retry():
                    return
                self._flush()
                last_flush = time.monotonic()
                continue
            if self._out_of_time():
                return
            items = self._take()
            for i, item in enumerate(items):
                try:
                    self._process(item)
                except RecordingError as exc:
                    self._fail(exc)
                except Exception as exc:
                    self.counters.errors["encode"] += 1
                    self.counters.last_error = f"{type(exc).__name__}: {exc}"
                if self._retry_at is not None or self._aborted:
                    self._give_back(items[i + 1:])
                    break
            now = time.monotonic()
            if self._retry_at is None and self._unflushed and (not items or now - last_flush >= self.flush_interval):
                self._flush()
                last_flush = now
            with self._cond:
                drained = self._stopping and not self._items
            if drained and self._retry_at is None:
                self._flush()  # the last ops, spans and marks (a failure goes back to retrying)
                if self._retry_at is None:
                    with self._cond:
                        if not self._items:
                            self._closed = True  # from now on a put is refused (and counted as dropped)
                            return

    def _finish(self) -> None:
        with self._cond:
            self._closed = True
            left = list(self._items)
            self._items.clear()
            self._bytes = 0
        complete = not left and self._retry_at is None
        dropped_before = self.counters.dropped
        if complete:
            for sid in list(self._streams):
                self._close_stream(sid, time.time_ns(), lossy=sid in self._lossy)
        else:  # out of time, or aborted: what the writer never took is dropped
            self._dropped(sum(_ops_in(item) for item in left))
        if self.inferrer is not None:
            self.inferrer.finish()
            self.counters.spans = self.inferrer.spans
        if self._retry_at is None and not self._aborted:
            self._flush()
        if self._retry_at is not None or (self._aborted and self._unflushed):
            self._give_up()
        if (left or self._aborted) and not self.gave_up and self.counters.dropped > dropped_before:
            self.gave_up = STOPPED if self._aborted else \
                "the time to finish ran out before everything was written"
        self.counters.recorded += self._unflushed  # close() writes what is still buffered, or fails as a whole
        self._unflushed = 0
        self._close_session()
        self.finished = True

    def _give_up(self) -> None:
        """Stop retrying: the ops the writer holds are lost to the failure's category."""
        lost = self.writer.discard_pending()
        self._unflushed = 0
        category = self._failing or "disk"
        if self._failing:
            self.counters.errors[category] += lost
            self.gave_up = self.counters.last_error
        elif lost:
            self._dropped(lost)  # never written: the recorder was stopped first

    def _close_session(self) -> None:
        """Close the session with the counters: as written; failing that, with nothing but the
        counters (the smallest write there is); failing that, after moving what the ``-wal`` file
        holds into the database (a file-size limit or quota on the ``-wal`` file: the checkpoint
        then frees room in it).  A session that cannot be closed stays open."""
        conn = getattr(self.writer, "conn", None)
        if self._aborted and conn is not None:
            self._quietly(conn, "PRAGMA busy_timeout = 0")  # at once: no waiting for a lock
        redactor = self.converter.redactor
        redacted = {"redacted_values": redactor.count} if redactor is not None else {}
        for attempt in range(3):
            try:
                self.writer.close(**self.counters.attributes(), **redacted, **self._attributes)
                self.close_error = None
                return
            except RecordingError as exc:
                self.close_error = exc
                if attempt == 0:
                    lost = self.writer.discard_pending(spans=True)  # the session's row alone
                    if lost:
                        self.counters.recorded -= lost
                        self.counters.errors[self._failing or error_category(exc)] += lost
                elif attempt == 1 and conn is not None:
                    self._quietly(conn, "PRAGMA busy_timeout = 0")
                    self._quietly(conn, "PRAGMA wal_checkpoint(TRUNCATE)")

    @staticmethod
    def _quietly(conn: Any, sql: str) -> None:
        try:
            conn.execute(sql)
        except Exception:
            pass  # a last attempt: its failure is the close's

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
        if self._failing:
            dropped = self.counters.dropped - self._dropped_before
            self.log.info(f"recording resumed after {time.monotonic() - self._failed_since:.1f}s of failing "
                          f"writes; {dropped:,} operations dropped meanwhile", dropped=dropped)
            self._failing, self._retry_at, self._backoff = "", None, RETRY_FIRST_S

    def _fail(self, exc: RecordingError) -> None:
        """A write attempt failed: count it, and retry later.  The writer keeps the batch; until it
        is in, nothing new is taken (see the module doc)."""
        self._retry_at = time.monotonic() + self._backoff
        if self._aborted:
            return  # interrupted on purpose (abort): no failure of the disk's
        category = error_category(exc)
        self.counters.write_failures += 1
        if not self._failing:
            self._failed_since, self._dropped_before = time.monotonic(), self.counters.dropped
        if str(exc) != self.counters.last_error or not self._failing:
            self.log.error(f"recording error ({category}): {exc}; retrying, new operations are dropped "
                           "and counted meanwhile", category=category)
        self.counters.last_error = str(exc)
        self._failing = category
        self._backoff = min(self._backoff * 2, RETRY_MAX_S)

    def snapshot(self) -> dict[str, Any]:
        """Counters for the metrics endpoint (read from another thread: approximate)."""
        c = self.counters
        return {"recorded": c.recorded, "dropped": c.dropped, "sampled_out": c.sampled_out,
                "errors": dict(c.errors), "write_failures": c.write_failures,
                "queue_depth": len(self._items), "queue_bytes": self._bytes, "spans": c.spans}
