"""Writing recordings: batched inserts in WAL mode, state versions, keyframes, rollups.

A writer is synchronous (plain ``sqlite3``): recorders run it on a thread of
its own behind a bounded queue, importers run it inline.  Operations are
buffered and written in batches; each batch is one transaction, so a reader in
another process (``replay-tui DB --follow``) sees every committed batch and
never half of one.  An *atomic* session (importers) is one transaction from
start to close: a failed import leaves nothing behind.

While writing, the writer keeps the map object -> current version, which is
small (one entry per live object, not per operation).  It uses it to store a
version only when an object really changed and to emit keyframes, and compares each
new version with the object's last one (the change index, ``engine.changes``).  A
batch's rows go to a committer (``engine.committer``), which folds them into the
rollups (``engine.rollups``), the hot loops and links (``engine.loops``), compresses the
new bodies and inserts everything in one transaction.  The committer runs in this
process, or (``RecordingWriter(path, process=True)``) in a process of its own: the
writer then prepares the next batch while the last one is committed, and a batch's
failure is raised by the next hand-over (``append`` of a full batch), ``flush`` or
``close``, with the batch kept for the retry as always.

Ids of objects, bodies and paths come from the session's own id space
(``session_id << ID_SHIFT``), so the writer numbers them itself.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from math import log2
from typing import Any

import msgspec

from replay_tui.engine import codec, liveness
from replay_tui.engine.changes import ChangeTracker
from replay_tui.engine.committer import Batch, Committer, ProcessCommitter
from replay_tui.engine.format import (
    ADDED,
    CREATE,
    DELETE,
    DELETED,
    EVENT_ERROR,
    GET,
    LIST,
    MODIFIED,
    PATCH,
    UPDATE,
    Mark,
    ObjectHead,
    ObjectMeta,
    Operation,
    Reconcile,
    api_group,
    decode_head,
    decode_list,
)
from replay_tui.engine.partial import WRAPPER_KINDS, Carried, carried, merge_partial
from replay_tui.engine.rollups import BEGIN, BUCKETS_PER_OCTAVE, END
from replay_tui.engine.schema import (
    ID_SHIFT,
    OP_COLUMNS,
    RecordingError,
    create,
    describe_sqlite_error,
)

DEFAULT_BATCH = 2000
DEFAULT_KEYFRAME_INTERVAL = 1024
BLOB_CACHE = 65536  # content hashes remembered for de-duplication
LIST_ITEM_CACHE = 16384  # list items remembered as already parsed
RECENT_BYTES = 32 << 20  # latest versions kept as JSON (what a partial metadata update applies to)


_OBJECT_VERBS = frozenset({GET, CREATE, UPDATE, PATCH, ADDED, MODIFIED})
# _prepare reads an Operation's fields by position (msgspec.structs.astuple, one C call per op)
# and copies api_version ... patch_type into the op row as they are.
assert Operation.__struct_fields__ == (
    "verb", "ts_ns", "duration_ns", "api_version", "resource", "kind", "namespace", "name", "subresource", "uid",
    "resource_version", "generation", "status", "reason", "message", "patch_type", "query", "request", "response",
    "actor", "reconcile", "seq")
assert OP_COLUMNS[:5] == ("session_id", "seq", "ts_ns", "duration_ns", "verb")
assert OP_COLUMNS[5:18] == Operation.__struct_fields__[3:16]
assert OP_COLUMNS[18:] == ("query", "request_blob", "response_blob", "actor", "reconcile", "obj_id", "dur_bucket",
                           "error")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while (unless it already is), then on again: what
    was allocated meanwhile is counted, so the next allocation collects if it is due."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse_head(data: bytes) -> ObjectHead | None:
    try:
        head = decode_head(data)
    except (ValueError, RecursionError):  # msgspec's errors, bad UTF-8, nesting too deep
        return None
    return head


def _identify(op: Operation, meta: ObjectMeta) -> None:
    """Take name, namespace, uid, resourceVersion and generation from the object's metadata where the op lacks them."""
    op.name = op.name or meta.name
    op.namespace = op.namespace or meta.namespace
    op.uid = op.uid or meta.uid
    op.resource_version = op.resource_version or meta.resourceVersion
    if op.generation is None:
        op.generation = meta.generation


def open_write(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating, mode 0600) a recording for writing, in WAL mode."""
    path = os.fspath(path)
    if not os.path.exists(path):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise RecordingError(f"{path}: directory {parent} does not exist")
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        # 16 KiB pages (new files only): compressed bodies of 1-3 KB pack with less waste
        # (-35 % file size) and a batch commits in a quarter of the WAL frames.
        conn.execute("PRAGMA page_size = 16384")
        create(conn)  # first: a file that is not a recording is refused before WAL mode would change it
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Index pages of a long session stay in the writer's cache (32 MB, not 2 MB).
        conn.execute("PRAGMA cache_size = -32768")
    except sqlite3.Error as exc:
        raise RecordingError(describe_sqlite_error(exc, path)) from None
    except RecordingError as exc:  # not a recording, or a newer one: say which file
        raise RecordingError(f"{path}: {exc}") from None
    return conn


class RecordingWriter:
    """A recording file open for writing; hands out session writers.

    ``process``: commit in a process of its own (``engine.committer.ProcessCommitter``),
    for bulk writes (imports, the benchmark): the batches are prepared here and
    committed there at the same time.  ``pause_collector``: the cyclic garbage collector is off
    while a batch is written (False in a process that is not ours: the in-process hook's
    operator, whose own use of ``gc`` is left alone)."""

    def __init__(self, path: str | os.PathLike[str], *, process: bool = False, pause_collector: bool = True):
        self.path = os.fspath(path)
        self.pause_collector = pause_collector
        self.conn: sqlite3.Connection | None = None
        self.committer: Committer | ProcessCommitter
        if process:
            self.committer = ProcessCommitter(self.path)
        else:
            self.conn = open_write(self.path)
            self.committer = Committer(self.conn, self.path)

    def session(
        self,
        name: str,
        source: str,
        *,
        actor: str = "",
        cluster: str = "",
        attributes: dict[str, Any] | None = None,
        keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
        batch: int = DEFAULT_BATCH,
        atomic: bool = False,
    ) -> SessionWriter:
        return SessionWriter(self, name, source, actor=actor, cluster=cluster,
                             attributes=attributes or {}, keyframe_interval=keyframe_interval,
                             batch=batch, atomic=atomic)

    def close(self) -> None:
        self.committer.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# A buffered op: (operation, request JSON, response JSON); a reconcile span's start or end
# travels in the same buffer as (None, event, args), so the rollups see it in seq order.
_Pending = tuple[Any, Any, Any]
_UNPARSED: Any = object()  # a cached body whose head has not been parsed yet
_SKIP: Any = object()  # a list item that names no object


class _Handed(msgspec.Struct, gc=False):
    """What preparing a batch handed out, forgotten again if its commit fails."""

    hashes: list[bytes]
    objects: list[tuple[tuple[str, str, str, str], tuple[str, str, str, str] | None]]
    paths: list[tuple[int, str]]  # path ids the change index numbered


class SessionWriter:
    """Appends operations, reconcile spans and marks to one session."""

    def __init__(self, recording: RecordingWriter, name: str, source: str, *, actor: str,
                 cluster: str, attributes: dict[str, Any], keyframe_interval: int, batch: int,
                 atomic: bool):
        self.recording = recording
        self.conn = recording.conn
        self.path = recording.path
        self.committer = recording.committer
        self.atomic = atomic
        self.batch = batch
        self.keyframe_interval = keyframe_interval
        self.attributes = dict(attributes)
        self.seq = 0
        self.closed = False
        self.json_bytes = 0  # request and response bodies appended, as JSON (what a raw log would hold)
        self._buffer: list[_Pending] = []
        self._reconciles: dict[int, Reconcile] = {}
        self._dirty_reconciles: set[int] = set()
        self._marks: list[Mark] = []
        self._next_reconcile = 1
        self._objects: dict[tuple[str, str, str, str], int] = {}
        # (api_version, kind, namespace, name) -> obj_id: skips api_group() per op.
        self._objects_av: dict[tuple[str, str, str, str], int] = {}
        # content hash -> (blob id, parsed head of the body (_UNPARSED until needed))
        self._blobs: OrderedDict[bytes, tuple[int, Any]] = OrderedDict()
        # (list prefix, hash of an item as listed) -> (object key, hash of the stored form)
        self._list_seen: dict[tuple[bytes, bytes], Any] = {}
        # obj_id -> (content hash, blob id, seq of that version): the live objects.
        self._live: dict[int, tuple[bytes, int, int]] = {}
        # obj_id -> JSON of its latest version, while RECENT_BYTES hold them.
        self._recent: OrderedDict[int, bytes] = OrderedDict()
        self._recent_bytes = 0
        # The change index: each new version compared with the object's last one (engine.changes),
        # here rather than in the committer: a committer in a process of its own has more to do.
        self._changes = ChangeTracker(1)  # path ids are per session (paths' key is (session, id))
        self._rows_since_keyframe = 0
        self._last_ts = 0
        self._first_ts: int | None = None
        self._lock = liveness.SessionLock(None)
        self._handed = _Handed([], [], [])
        # The batch the committer has and has not confirmed: (ops, state before, handed out, batch).
        self._inflight: tuple[list[_Pending], tuple[Any, ...], _Handed, Batch] | None = None
        self._reader: sqlite3.Connection | None = None  # (process commits: stored bodies, rarely)
        encoded = msgspec.json.encode(self.attributes).decode()
        self.id, self.name = self.committer.open(name, source, actor, cluster, encoded, keyframe_interval, atomic)
        if not atomic:
            # Readers tell a live session from one a dead writer left (engine.liveness);
            # the lock is held before the row is visible.
            self._lock = liveness.hold(self.path, self.id)
            try:
                self.committer.opened(self.id, True)
            except RecordingError:
                self._lock.release()
                raise
        first = (self.id << ID_SHIFT) + 1
        self._next_blob = self._next_object = first

    # --- public API ----------------------------------------------------------

    def append(self, op: Operation) -> int:
        """Buffer one operation; returns its seq.  Hands a full batch over."""
        self.seq = seq = self.seq + 1
        op.seq = seq
        ts = op.ts_ns
        if ts <= 0:
            ts = op.ts_ns = time.time_ns()
        end = ts + op.duration_ns if op.duration_ns > 0 else ts
        if end > self._last_ts:
            self._last_ts = end
        if self._first_ts is None or ts < self._first_ts:
            self._first_ts = ts
        request, response = op.request, op.response
        if request is not None and type(request) is not bytes:
            request = codec.to_json(request)
        if response is not None and type(response) is not bytes:
            response = codec.to_json(response)
        if request is not None:
            self.json_bytes += len(request)
        if response is not None:
            self.json_bytes += len(response)
        buffer = self._buffer
        buffer.append((op, request, response))
        if len(buffer) >= self.batch:
            self._hand_over(wait=False)
        return seq

    def extend(self, ops: Iterable[Operation]) -> None:
        for op in ops:
            self.append(op)

    def begin_reconcile(self, reconciler: str, *, kind: str = "", namespace: str = "",
                        name: str = "", trigger_seq: int | None = None, inferred: bool = False,
                        source_id: str = "", ts_ns: int | None = None) -> int:
        """Open a reconcile span starting at the next op; returns its id for ``Operation.reconcile``."""
        rid = self._next_reconcile
        self._next_reconcile += 1
        self._reconciles[rid] = Reconcile(
            id=rid, reconciler=reconciler, kind=kind, namespace=namespace, name=name,
            start_seq=self.seq + 1, start_ns=ts_ns or time.time_ns(), trigger_seq=trigger_seq,
            inferred=inferred, source_id=source_id)
        self._dirty_reconciles.add(rid)
        span = self._reconciles[rid]
        self._buffer.append((None, BEGIN, (rid, reconciler, kind, namespace, name, span.start_seq, span.start_ns,
                                           trigger_seq)))
        return rid

    def end_reconcile(self, rid: int, *, error: str = "", ts_ns: int | None = None,
                      end_seq: int | None = None) -> None:
        """Close a span at ``end_seq``, by default the last op appended so far.

        Interleaved spans (concurrent reconciles) pass the seq of their own last op.
        """
        span = self._reconciles.get(rid)
        if span is None:
            raise KeyError(f"unknown reconcile span {rid}")
        last = self.seq if end_seq is None else min(end_seq, self.seq)
        span.end_seq = max(last, span.start_seq - 1)
        span.end_ns = ts_ns or time.time_ns()
        span.error = error
        self._dirty_reconciles.add(rid)
        self._buffer.append((None, END, (span.reconciler, span.end_ns - span.start_ns, bool(error), rid,
                                         span.end_seq)))

    def mark(self, name: str, seq: int | None = None, note: str = "") -> None:
        self._marks.append(Mark(name=name, seq=self.seq if seq is None else seq, note=note,
                                created_ns=time.time_ns()))

    def flush(self) -> None:
        """Write buffered operations; commits unless the session is atomic.  Returns once
        everything appended so far is committed (or raises, keeping it for the next flush)."""
        self._hand_over(wait=True)

    def close(self, **attributes: Any) -> None:
        """Flush, record the end time and attributes, and commit."""
        if self.closed:
            return
        self.attributes.update(attributes)
        self.flush()
        self.committer.close_session(self.id, self._first_ts, max(self._last_ts, 0) or time.time_ns(),
                                     msgspec.json.encode(self.attributes).decode(), self.seq)
        self.closed = True
        self._lock.release()
        self._close_reader()

    def discard_pending(self, *, spans: bool = False) -> int:
        """Forget the operations buffered and not written: a batch whose writes keep failing (a full disk).

        Their seqs are taken back, so the session stays contiguous, and spans and marks are cut to
        what was written (``spans``: those not written yet are forgotten too, leaving the smallest
        write there is, the session's own row).  Returns the number of operations forgotten.  A
        recorder calls it when it gives up retrying, before closing the session with its counts."""
        try:
            self._settle()  # a batch in flight is written, or comes back to the buffer
        except RecordingError:
            pass
        lost = sum(1 for pending in self._buffer if pending[0] is not None)
        self._buffer = []
        self.seq -= lost
        last = self.seq
        for rid in list(self._reconciles):
            span = self._reconciles[rid]
            if span.start_seq > last + 1 or (spans and rid in self._dirty_reconciles):
                del self._reconciles[rid]  # (a span starting after the last written op was never written)
                self._dirty_reconciles.discard(rid)
            elif span.end_seq is not None and span.end_seq > last:
                span.end_seq = max(last, span.start_seq - 1)
        for mark in self._marks:
            mark.seq = min(mark.seq, last)
        if spans:
            self._marks.clear()
        return lost

    def abort(self) -> None:
        """Give up: an atomic session vanishes; a streaming one keeps what was committed."""
        self._buffer.clear()
        try:
            self._settle()
        except RecordingError:
            pass
        self._buffer.clear()
        self.committer.abort(self.id)
        self.closed = True
        self._lock.release()
        self._close_reader()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None and self.atomic:
            self.abort()
        else:
            self.close()

    # --- internals -------------------------------------------------------------

    def _hand_over(self, *, wait: bool) -> None:
        """Prepare the buffered ops as a batch and give it to the committer (which may still be
        committing the one before: its outcome is collected first).  ``wait``: until committed."""
        if not self._buffer and not self._dirty_reconciles and not self._marks:
            if wait:
                self._settle()
            return
        # A batch makes and drops tens of thousands of containers (rows, versions, decoded
        # members): with the cyclic collector paused they die by reference counting before it
        # ever walks them, and the long-lived caches are walked less often (measured: the
        # collector took ~12 % of an in-process ingest's CPU).  Paused for one batch only, and
        # resumed once the batch's locals are gone.
        if not self.recording.pause_collector:
            self._hand_over_batch(wait)
            return
        with _collector_paused():
            self._hand_over_batch(wait)

    def _hand_over_batch(self, wait: bool) -> None:
        pending, self._buffer = self._buffer, []
        saved = self._save()
        handed = self._handed = _Handed([], [], [])
        try:
            batch = self._prepare(pending)
        except sqlite3.Error as exc:  # (reading a stored body for a partial metadata update)
            self._undo(handed, saved, pending)
            raise RecordingError(describe_sqlite_error(exc, self.path)) from None
        inflight = self._inflight
        if inflight is not None:
            self._inflight = None
            try:
                self.committer.wait(self.id)
            except RecordingError:
                self._undo(handed, saved, pending)
                self._undo(inflight[2], inflight[1], inflight[0])
                raise
        self.committer.submit(self.id, batch)
        self._inflight = (pending, saved, handed, batch)
        if wait or not self.committer.pipelined:
            self._settle()

    def _settle(self) -> None:
        """Wait for the batch in flight; if it failed, take it back (state and ops) and raise."""
        inflight = self._inflight
        if inflight is None:
            return
        self._inflight = None
        try:
            self.committer.wait(self.id)
        except RecordingError:
            self._undo(inflight[2], inflight[1], inflight[0])
            raise

    def _undo(self, handed: _Handed, saved: tuple[Any, ...], pending: list[_Pending]) -> None:
        """A batch was not committed: what preparing it handed out is void, the state goes back
        to before it, and (unless the session is atomic: it is lost as a whole) its ops wait
        in the buffer again, ahead of what came since, so seqs stay contiguous."""
        for h in handed.hashes:
            self._blobs.pop(h, None)
        for key, av in handed.objects:
            self._objects.pop(key, None)
            if av is not None:
                self._objects_av.pop(av, None)
        self._list_seen.clear()
        self._recent.clear()
        self._recent_bytes = 0
        self._changes.rolled_back(handed.paths + self._changes.committed())
        if not self.atomic:
            self._restore(saved)
            self._buffer = pending + self._buffer

    def _save(self) -> tuple[Any, ...]:
        """What a batch changes besides the database, to put back if its transaction fails."""
        return (dict(self._live), self._rows_since_keyframe, dict(self._reconciles),
                set(self._dirty_reconciles), list(self._marks))

    def _restore(self, saved: tuple[Any, ...]) -> None:
        live, since, reconciles, dirty, marks = saved
        self._live, self._rows_since_keyframe = live, since
        self._reconciles, self._dirty_reconciles, self._marks = reconciles, dirty, marks

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _object_id(self, key: tuple[str, str, str, str], new_objects: list[tuple[Any, ...]],
                   av: tuple[str, str, str, str] | None = None) -> int:
        oid = self._objects.get(key)
        if oid is None:
            oid = self._objects[key] = self._next_object
            self._next_object += 1
            new_objects.append((oid, *key))
            self._handed.objects.append((key, av))
        return oid

    def _stored_body(self, bid: int, fresh: list[tuple[int, bytes]]) -> bytes | None:
        """A body by blob id: in this batch, the one in flight, or the file."""
        data = next((d for fid, d in reversed(fresh) if fid == bid), None)
        if data is None and self._inflight is not None:
            data = next((d for fid, d in self._inflight[3].blobs if fid == bid), None)
        if data is not None:
            return data
        conn = self.conn
        if conn is None:
            if self._reader is None:
                self._reader = sqlite3.connect(f"file:{os.path.abspath(self.path)}?mode=ro", uri=True,
                                               check_same_thread=False)
            conn = self._reader
        row = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (bid,)).fetchone()
        if row is None:
            return None
        return codec.unpack(row[0], row[1], codec.Dictionaries.of(conn))

    def _prepare(self, pending: list[_Pending]) -> Batch:
        """One batch's rows: blobs (de-duplicated), op rows, state versions, keyframes, spans, marks.

        The hot path of ingest, so written flat: locals instead of attributes, each
        body hashed once, a body's head parsed once per distinct body (cached with
        its blob id).
        """
        fresh: list[tuple[int, bytes]] = []  # new bodies (id, JSON)
        op_rows: list[tuple[Any, ...]] = []
        state_rows: list[tuple[Any, ...]] = []
        keyframes: list[tuple[int, bytes]] = []
        new_objects: list[tuple[Any, ...]] = []
        span_events: list[tuple[Any, ...]] = []
        blobs = self._blobs
        batch_hashes = self._handed.hashes
        live = self._live
        recent = self._recent
        objects_av = self._objects_av
        sid = self.id
        digest = codec.digest
        interval = self.keyframe_interval
        since = self._rows_since_keyframe
        track = self._changes.version
        encode_query = msgspec.json.encode
        astuple = msgspec.structs.astuple

        def put_blob(data: bytes) -> tuple[bytes, tuple[int, Any]]:
            h = digest(data)
            entry = blobs.get(h)
            if entry is not None:
                blobs.move_to_end(h)
                return h, entry
            return h, new_blob(h, data)

        def new_blob(h: bytes, data: bytes) -> tuple[int, Any]:
            bid = self._next_blob
            self._next_blob = bid + 1
            entry = blobs[h] = (bid, _UNPARSED)
            fresh.append((bid, data))
            batch_hashes.append(h)
            if len(blobs) > BLOB_CACHE:
                blobs.popitem(last=False)
            return entry

        def body_of(obj_id: int, bid: int) -> Any:
            """The object's stored version, decoded: what partial metadata updates."""
            data = recent.get(obj_id)
            if data is None:
                data = self._stored_body(bid, fresh)
            return msgspec.json.decode(data) if data is not None else None

        def version(obj_id: int, h: bytes | None, bid: int | None, seq: int, data: bytes | None) -> None:
            """A version (``h`` None: the deletion) of an object, unless it is the one it has;
            ``data`` is its JSON (None with an ``h``: not at hand, its changes go unrecorded)."""
            nonlocal since
            current = live.get(obj_id)
            if h is None:
                if current is None:
                    return
                del live[obj_id]
            elif current is not None and current[0] == h:
                return
            else:
                live[obj_id] = (h, bid, seq)  # type: ignore[assignment]
            old = recent.pop(obj_id, None)
            if old is not None:
                self._recent_bytes -= len(old)
            if data is not None:
                recent[obj_id] = data
                self._recent_bytes += len(data)
                if self._recent_bytes > RECENT_BYTES:
                    while self._recent_bytes > RECENT_BYTES and len(recent) > 1:
                        self._recent_bytes -= len(recent.popitem(last=False)[1])
            state_rows.append((seq, obj_id, bid, track(obj_id, data)))
            since += 1

        def list_versions(response: bytes, seq: int) -> None:
            for key, h, bid, item in self._list_items(response, put_blob):
                version(self._object_id(key, new_objects), h, bid, seq, item)

        for op, request, response in pending:
            if op is None:  # a reconcile span began or ended here
                span_events.append((len(op_rows), request, *response))
                continue
            if request is not None:
                qh, req_entry = put_blob(request)
            else:
                req_entry = None
            if response is not None:
                rh, resp_entry = put_blob(response)
                resp_bid, head = resp_entry
                if head is _UNPARSED:
                    head = _parse_head(response)
                    blobs[rh] = (resp_bid, head)
            else:
                rh, resp_bid, head = None, None, None
            req_head = None
            if req_entry is not None and (head is None or head.kind in ("", "Status")
                                          or head.kind.endswith("List")):
                req_head = req_entry[1]
                if req_head is _UNPARSED:
                    req_head = _parse_head(request)
                    blobs[qh] = (req_entry[0], req_head)
            wrapped = carried(response, head.kind) if head is not None and head.kind in WRAPPER_KINDS \
                and response is not None else None
            if wrapped is not None:  # a Table or PartialObjectMetadata: the objects inside tell
                self._identify_carried(op, wrapped)
                head = None
            self._fill_identity(op, head, req_entry is not None, req_head)
            kind, name, namespace, api_version = op.kind, op.name, op.namespace, op.api_version
            obj_id = None
            if kind and name:
                av = (api_version, kind, namespace, name)
                obj_id = objects_av.get(av)
                if obj_id is None:
                    obj_id = objects_av[av] = self._object_id(
                        (api_group(api_version), kind, namespace, name), new_objects, av)
            fields = astuple(op)  # (Operation's fields in order, in C: no attribute look-up each)
            verb, status, seq, duration, query = fields[0], fields[12], fields[21], fields[2], fields[16]
            error = status >= 400 or verb == EVENT_ERROR
            ok = 200 <= status < 300 or (status == 0 and not error)
            bucket = int(log2(duration) * BUCKETS_PER_OCTAVE) if duration > 1 else 0
            op_rows.append((
                sid, seq, fields[1], duration, verb, *fields[3:16],  # api_version ... patch_type
                encode_query(query).decode() if query else None,
                req_entry[0] if req_entry is not None else None, resp_bid, fields[19], fields[20],
                obj_id, bucket, int(error),
            ))
            if wrapped is not None:
                if ok:
                    self._carried_versions(op, wrapped, put_blob, version, body_of, new_objects)
            elif obj_id is not None:
                if ok and verb in _OBJECT_VERBS and response is not None \
                        and head is not None and head.kind == kind:
                    version(obj_id, rh, resp_bid, seq, response)
                elif ok and verb == DELETE:
                    meta = head.metadata if head is not None else None
                    if head is not None and head.kind not in ("", "Status") and meta is not None \
                            and meta.deletionTimestamp and meta.finalizers and response is not None:
                        version(obj_id, rh, resp_bid, seq, response)  # terminating, finalizers pending
                    else:
                        version(obj_id, None, None, seq, None)
                elif verb == DELETED or (verb == GET and status == 404):
                    version(obj_id, None, None, seq, None)
                elif verb == LIST and ok and response is not None:
                    list_versions(response, seq)
            elif verb == LIST and ok and response is not None:
                list_versions(response, seq)
            if since >= interval and since >= len(live) // 4:
                data = codec.encode_msgpack([[oid, v[1], v[2]] for oid, v in live.items()])
                keyframes.append((seq, data))
                since = 0
        self._rows_since_keyframe = since

        spans = []
        for rid in self._dirty_reconciles:
            r = self._reconciles[rid]
            spans.append((r.id, r.reconciler, r.kind, r.namespace, r.name, r.start_seq,
                          r.end_seq, r.start_ns, r.end_ns, r.trigger_seq, r.error, int(r.inferred),
                          r.source_id))
            if r.end_seq is not None:
                del self._reconciles[rid]
        self._dirty_reconciles.clear()
        marks = [(m.name, m.seq, m.note, m.created_ns) for m in self._marks]
        self._marks.clear()
        paths = self._changes.committed()
        self._handed.paths.extend(paths)
        return Batch(self.seq, new_objects, op_rows, state_rows, fresh, keyframes, spans, marks, span_events, paths)

    @staticmethod
    def _fill_identity(op: Operation, head: ObjectHead | None, has_request: bool,
                       request_head: ObjectHead | None) -> None:
        """Take kind, namespace, name, uid, resourceVersion from the body where the op lacks them.

        ``request_head`` is the parsed request body, needed only when the response does not
        identify the object.
        """
        if op.resource.startswith("/"):
            return  # a non-resource path (/api, /apis/...): discovery documents are no objects
        if (head is None or head.kind in ("", "Status") or head.kind.endswith("List")) \
                and has_request:
            head = request_head  # a failed create: identify the object by what was sent
            if head is not None and (head.kind.endswith("List") or head.kind.endswith("Options")):
                head = None  # DeleteOptions, ListOptions: parameters, not the object
        if head is None or head.kind in ("", "Status"):
            return
        meta = head.metadata or ObjectMeta()
        if not op.kind:
            op.kind = head.kind[: -len("List")] if head.kind.endswith("List") else head.kind
        if not op.api_version:
            op.api_version = head.apiVersion
        if op.kind == head.kind:
            _identify(op, meta)

    def _list_items(self, data: bytes, put_blob: Any) -> Iterable[tuple[tuple[str, str, str, str], bytes, int,
                                                                         bytes | None]]:
        """Each object of a list response, with kind and apiVersion set as a GET would return them.

        Lists repeat mostly unchanged items, so what an item became (its key and the
        content hash of the stored form) is remembered by the hash of the item as
        listed: a repeated item costs a hash and a lookup, not a JSON parse.
        Yields (key, content hash, blob id, stored JSON or None when it was not rebuilt).
        """
        try:
            body = decode_list(data)
        except (ValueError, RecursionError):
            return
        if not body.items or not body.kind.endswith("List"):
            return
        kind = body.kind[: -len("List")]
        group = api_group(body.apiVersion)
        prefix = msgspec.json.encode({"kind": kind, "apiVersion": body.apiVersion})[:-1] + b","
        seen = self._list_seen
        blobs = self._blobs
        digest = codec.digest
        for raw in body.items:
            listed = (prefix, digest(raw))
            known = seen.get(listed)
            if known is not None:
                if known is _SKIP:
                    continue
                key, h = known
                entry = blobs.get(h)
                if entry is not None:  # what put_blob would do with the rebuilt item
                    blobs.move_to_end(h)
                    yield key, h, entry[0], None
                    continue
            item = raw_item = bytes(raw)
            head = _parse_head(item)
            if head is None or head.metadata is None or not head.metadata.name:
                seen[listed] = _SKIP
                continue
            if not head.kind and item.startswith(b"{") and item != b"{}":
                item = prefix + item[1:]
            h, entry = put_blob(item)
            if entry[1] is _UNPARSED and item is raw_item:
                blobs[h] = entry = (entry[0], head)
            key = (group, head.kind or kind, head.metadata.namespace, head.metadata.name)
            seen[listed] = (key, h)
            if len(seen) > LIST_ITEM_CACHE:
                del seen[next(iter(seen))]
            yield key, h, entry[0], item

    @staticmethod
    def _identify_carried(op: Operation, wrapped: list[Carried]) -> None:
        """Name a single-object op (a get, a watch event) by the one object its Table or
        PartialObjectMetadata carries; its kind stays the request's (a partial object has none)."""
        if op.verb == LIST or len(wrapped) != 1 or op.resource.startswith("/"):
            return
        item = wrapped[0]
        meta = item.head.metadata or ObjectMeta()
        if not op.kind and not item.partial:
            op.kind = item.head.kind
        _identify(op, meta)

    def _carried_versions(self, op: Operation, wrapped: list[Carried], put_blob: Any, version: Any,
                          body_of: Any, new_objects: list[tuple[Any, ...]]) -> None:
        """State from the objects a Table or PartialObjectMetadata(List) carries: a whole object is
        a version as it is; partial metadata updates the object as last seen, key by key."""
        verb, seq = op.verb, op.seq
        if verb not in _OBJECT_VERBS and verb not in (LIST, DELETED):
            return
        group = api_group(op.api_version)
        for item in wrapped:
            meta = item.head.metadata or ObjectMeta()
            if item.partial:
                if not op.kind:
                    continue  # an unknown resource: nothing to call the object
                key = (group, op.kind, meta.namespace, meta.name)
            else:
                key = (api_group(item.head.apiVersion), item.head.kind, meta.namespace, meta.name)
            obj_id = self._object_id(key, new_objects)
            if verb == DELETED:
                version(obj_id, None, None, seq, None)
                continue
            if not item.partial:
                data = item.raw
            else:
                current = self._live.get(obj_id)
                previous = body_of(obj_id, current[1]) if current is not None else None
                merged = merge_partial(previous, item.raw, op.kind, op.api_version)
                if merged is None or merged == previous:
                    continue
                data = codec.to_json(merged)
            h, entry = put_blob(data)
            version(obj_id, h, entry[0], seq, data)
