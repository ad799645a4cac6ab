"""Writing recordings: batched inserts in WAL mode, state versions, keyframes, rollups.

A writer is synchronous (plain ``sqlite3``): recorders run it on a thread of
its own behind a bounded queue, importers run it inline.  Operations are
buffered and written in batches; each batch is one transaction, so a reader in
another process (``replay-tui DB --follow``) sees every committed batch and
never half of one.  An *atomic* session (importers) is one transaction from
start to close: a failed import leaves nothing behind.

While writing, the writer keeps the map object -> current version, which is
small (one entry per live object, not per operation).  It uses it to store a
version only when an object really changed and to emit keyframes.  In the same
transaction as the ops it writes what readers would otherwise have to scan for:
the rollups (``engine.rollups``) and the change index (``engine.changes``).

Ids of objects, bodies and paths come from the session's own id space
(``session_id << ID_SHIFT``), so the writer numbers them itself.  New bodies are
compressed on a worker thread (zstd holds no GIL) while the rows are built; once
``DICT_SAMPLE_BYTES`` of bodies have been seen a dictionary is trained on them
there, and later bodies use it.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgspec
import zstandard

from replay_tui.engine import codec, liveness
from replay_tui.engine.changes import ChangeTracker
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
from replay_tui.engine.rollups import BUCKETS_PER_OCTAVE, RollupWriter
from replay_tui.engine.schema import (
    FORMAT_V2,
    ID_SHIFT,
    OP_COLUMNS,
    RecordingError,
    create,
    describe_sqlite_error,
)

DEFAULT_BATCH = 2000
PACK_CHUNK = 256  # new bodies handed to the compression thread at a time
DEFAULT_KEYFRAME_INTERVAL = 1024
BLOB_CACHE = 65536  # content hashes remembered for de-duplication
LIST_ITEM_CACHE = 16384  # list items remembered as already parsed
DICT_SAMPLE_BYTES = 4 << 20  # bodies a session's dictionary is trained on (measured: ratio ~9.7)
DICT_MIN_SAMPLES = 32


_OBJECT_VERBS = frozenset({GET, CREATE, UPDATE, PATCH, ADDED, MODIFIED})
_INSERT_OP = f"INSERT INTO operations ({', '.join(OP_COLUMNS)}) VALUES ({', '.join('?' * len(OP_COLUMNS))})"


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
    """A recording file open for writing; hands out session writers."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.conn = open_write(self.path)
        # A worker thread compresses new bodies (and trains dictionaries) beside the
        # writing thread: zstd holds no GIL.  Checkpoints stay on the writing connection:
        # run on another connection (tried) they made the writing thread block for
        # milliseconds at a time, more than they saved.
        self._pool: ThreadPoolExecutor | None = None

    def worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-tui-writer")
        return self._pool

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
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.conn.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# A buffered op: (operation, request JSON, response JSON); a reconcile span's start or end
# travels in the same buffer as (None, event, args), so the rollups see it in seq order.
_Pending = tuple[Any, Any, Any]
_UNPARSED: Any = object()  # a cached body whose head has not been parsed yet
_SKIP: Any = object()  # a list item that names no object
_BEGIN, _END = "begin", "end"


class SessionWriter:
    """Appends operations, reconcile spans and marks to one session."""

    def __init__(self, recording: RecordingWriter, name: str, source: str, *, actor: str,
                 cluster: str, attributes: dict[str, Any], keyframe_interval: int, batch: int,
                 atomic: bool):
        self.recording = recording
        self.conn = recording.conn
        self.path = recording.path
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
        # content hash -> [blob id, parsed head of the body (_UNPARSED until needed)]
        self._blobs: OrderedDict[bytes, list[Any]] = OrderedDict()
        # (list prefix, hash of an item as listed) -> (object key, hash of the stored form)
        self._list_seen: dict[tuple[bytes, bytes], Any] = {}
        # obj_id -> (content hash, blob id, seq of that version): the live objects.
        self._live: dict[int, tuple[bytes, int, int]] = {}
        self._rows_since_keyframe = 0
        self._last_ts = 0
        self._first_ts: int | None = None
        self._lock = liveness.SessionLock(None)
        # What a failed batch handed out (forgotten again when its transaction rolls back).
        self._batch_hashes: list[bytes] = []
        self._batch_objects: list[tuple[tuple[str, str, str, str], tuple[str, str, str, str] | None]] = []
        self._batch_paths: list[tuple[int, str]] = []
        # Compression: plain zstd until the session's dictionary is trained.
        self._compressor = codec.new_compressor()
        self._codec = codec.ZSTD
        self._samples: list[bytes] | None = [] if DICT_SAMPLE_BYTES > 0 else None
        self._sample_bytes = 0
        self._training: Future[zstandard.ZstdCompressionDict] | None = None
        self._dictionary_row: tuple[int, int, bytes] | None = None  # to insert with the next batch
        self.changes = ChangeTracker(1)  # path ids are per session (paths' key is (session, id))
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.name = self._unique_name(name)
            cur = self.conn.execute(
                "INSERT INTO sessions (name, source, started_ns, actor, cluster, attributes,"
                " keyframe_interval, format) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.name, source, time.time_ns(), actor, cluster,
                 msgspec.json.encode(self.attributes).decode(), keyframe_interval, FORMAT_V2),
            )
            assert cur.lastrowid is not None
            self.id = int(cur.lastrowid)
            if not atomic:
                # Readers tell a live session from one a dead writer left (engine.liveness);
                # the lock is held before the row is visible.
                self._lock = liveness.hold(self.path, self.id)
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._lock.release()
            self._rollback()
            raise RecordingError(describe_sqlite_error(exc, self.path)) from None
        first = (self.id << ID_SHIFT) + 1
        self._next_blob = self._next_object = first
        self.rollups = RollupWriter(self.id)

    # --- public API ----------------------------------------------------------

    def append(self, op: Operation) -> int:
        """Buffer one operation; returns its seq.  Flushes a full batch."""
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
            self.flush()
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
        self._buffer.append((None, _BEGIN, (rid, reconciler)))
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
        self._buffer.append((None, _END, (span.reconciler, span.end_ns - span.start_ns, bool(error))))

    def mark(self, name: str, seq: int | None = None, note: str = "") -> None:
        self._marks.append(Mark(name=name, seq=self.seq if seq is None else seq, note=note,
                                created_ns=time.time_ns()))

    def flush(self) -> None:
        """Write buffered operations; commits unless the session is atomic."""
        if not self._buffer and not self._dirty_reconciles and not self._marks:
            return
        pending, self._buffer = self._buffer, []
        saved = self._save()
        try:
            if not self.atomic:
                self.conn.execute("BEGIN IMMEDIATE")
            self._write(pending)
            if not self.atomic:
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if not self.atomic:
                # Keep the batch (and the state it was applied to) for the next flush:
                # seqs stay contiguous and a locked file costs a delay, not operations.
                self._restore(saved)
                self._buffer = pending + self._buffer
            raise RecordingError(describe_sqlite_error(exc, self.path)) from None
        self.changes.committed()

    def close(self, **attributes: Any) -> None:
        """Flush, record the end time and attributes, and commit."""
        if self.closed:
            return
        self.attributes.update(attributes)
        self.flush()
        try:
            if not self.atomic:
                self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "UPDATE sessions SET started_ns = COALESCE(?, started_ns), ended_ns = ?, attributes = ?,"
                " op_count = ? WHERE id = ?",
                (self._first_ts, max(self._last_ts, 0) or time.time_ns(),
                 msgspec.json.encode(self.attributes).decode(), self.seq, self.id))
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise RecordingError(describe_sqlite_error(exc, self.path)) from None
        self.closed = True
        if self._training is not None:
            self._training.cancel()
        self._lock.release()

    def discard_pending(self, *, spans: bool = False) -> int:
        """Forget the operations buffered and not written: a batch whose writes keep failing (a full disk).

        Their seqs are taken back, so the session stays contiguous, and spans and marks are cut to
        what was written (``spans``: those not written yet are forgotten too, leaving the smallest
        write there is, the session's own row).  Returns the number of operations forgotten.  A
        recorder calls it when it gives up retrying, before closing the session with its counts."""
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
        self._rollback()
        self.closed = True
        self._lock.release()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None and self.atomic:
            self.abort()
        else:
            self.close()

    # --- internals -------------------------------------------------------------

    def _rollback(self) -> None:
        # Ids handed out in the failed transaction are void: forget what the batch cached.
        for h in self._batch_hashes:
            self._blobs.pop(h, None)
        for key, av in self._batch_objects:
            self._objects.pop(key, None)
            if av is not None:
                self._objects_av.pop(av, None)
        self._list_seen.clear()
        self.changes.rolled_back(self.changes.committed())
        self._batch_hashes, self._batch_objects = [], []
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _save(self) -> tuple[Any, ...]:
        """What a batch changes besides the database, to put back if its transaction fails."""
        self.rollups.start()
        self._batch_hashes, self._batch_objects = [], []
        return (dict(self._live), self._rows_since_keyframe, dict(self._reconciles),
                set(self._dirty_reconciles), list(self._marks), self._dictionary_row, self._samples,
                self._sample_bytes)

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (live, since, reconciles, dirty, marks, self._dictionary_row, self._samples,
         self._sample_bytes) = saved
        self._live, self._rows_since_keyframe = live, since
        self._reconciles, self._dirty_reconciles, self._marks = reconciles, dirty, marks
        self.rollups.rollback()

    def _unique_name(self, name: str) -> str:
        taken = {r[0] for r in self.conn.execute(
            "SELECT name FROM sessions WHERE name = ? OR name LIKE ?", (name, name + "-%"))}
        if name not in taken:
            return name
        n = 2
        while f"{name}-{n}" in taken:
            n += 1
        return f"{name}-{n}"

    def _object_id(self, key: tuple[str, str, str, str], new_objects: list[tuple[Any, ...]],
                   av: tuple[str, str, str, str] | None = None) -> int:
        oid = self._objects.get(key)
        if oid is None:
            oid = self._objects[key] = self._next_object
            self._next_object += 1
            new_objects.append((oid, *key))
            self._batch_objects.append((key, av))
        return oid

    def _compression(self) -> None:
        """Switch to the session's dictionary once the worker has trained it."""
        training = self._training
        if training is None or not training.done():
            return
        self._training = None
        try:
            dictionary = training.result()
        except (zstandard.ZstdError, RuntimeError, ValueError):
            return  # too few or too uniform samples: plain zstd it stays
        self._compressor = codec.dict_compressor(dictionary)
        self._codec = codec.ZSTD_DICT
        self._dictionary_row = (dictionary.dict_id(), self.id, dictionary.as_bytes())

    def _write(self, pending: list[_Pending]) -> None:
        """One batch: blobs (de-duplicated), op rows, state versions, keyframes, spans, marks,
        rollups, paths.

        The hot path of ingest, so written flat: locals instead of attributes, each
        body hashed once, a body's head parsed once per distinct body (cached with
        its blob id), and new bodies compressed on a worker thread while the rows
        are inserted.
        """
        conn = self.conn
        self._compression()
        pool = self.recording.worker()
        compressor, body_codec = self._compressor, self._codec
        fresh: list[tuple[int, bytes]] = []  # new bodies (id, JSON)
        big: list[bytes] = []  # those of them worth compressing, not yet handed over
        packing: list[Future[list[bytes]]] = []
        min_compress = codec.MIN_COMPRESS
        op_rows: list[tuple[Any, ...]] = []
        state_rows: list[tuple[int, int, int, int | None, str | None]] = []
        keyframes: list[tuple[int, int, bytes]] = []
        new_objects: list[tuple[Any, ...]] = []
        blobs = self._blobs
        batch_hashes = self._batch_hashes
        live = self._live
        objects_av = self._objects_av
        sid = self.id
        digest = codec.digest
        interval = self.keyframe_interval
        since = self._rows_since_keyframe
        encode_query = msgspec.json.encode
        log2 = math.log2
        track = self.changes.version
        forget = self.changes.forget
        rollups = self.rollups
        fold = rollups.op
        fold_version = rollups.version
        samples = self._samples

        def put_blob(data: bytes) -> tuple[bytes, list[Any]]:
            nonlocal samples
            h = digest(data)
            entry = blobs.get(h)
            if entry is not None:
                blobs.move_to_end(h)
                return h, entry
            bid = self._next_blob
            self._next_blob = bid + 1
            entry = [bid, _UNPARSED]
            fresh.append((bid, data))
            if len(data) >= min_compress:
                big.append(data)
                if len(big) >= PACK_CHUNK:
                    packing.append(pool.submit(codec.compress_many, big[:], compressor))
                    big.clear()
                if samples is not None:
                    samples.append(data)
                    self._sample_bytes += len(data)
                    if self._sample_bytes >= DICT_SAMPLE_BYTES and len(samples) >= DICT_MIN_SAMPLES:
                        self._training = pool.submit(codec.train, samples, codec.DICT_BASE + sid)
                        samples = self._samples = None
            blobs[h] = entry
            batch_hashes.append(h)
            if len(blobs) > BLOB_CACHE:
                blobs.popitem(last=False)
            return h, entry

        def body_of(obj_id: int, bid: int) -> Any:
            """The object's stored version, decoded: what partial metadata updates."""
            data = self.changes.raw(obj_id)
            if data is None:
                data = next((d for fid, d in reversed(fresh) if fid == bid), None)
            if data is None:
                row = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (bid,)).fetchone()
                if row is None:
                    return None
                dicts = codec.Dictionaries.of(conn)
                if self._dictionary_row is not None:
                    dicts.add(self._dictionary_row[0], self._dictionary_row[2])
                data = codec.unpack(row[0], row[1], dicts)
            return msgspec.json.decode(data)

        def version(obj_id: int, h: bytes | None, bid: int | None, seq: int, data: bytes | None) -> None:
            """A version (``h`` None: the deletion) of an object, unless it is the one it has;
            ``data`` is its JSON (None with an ``h``: not at hand, its changes go unrecorded)."""
            nonlocal since
            current = live.get(obj_id)
            if h is None:
                if current is None:
                    return
                del live[obj_id]
            else:
                if current is not None and current[0] == h:
                    return
                live[obj_id] = (h, bid, seq)  # type: ignore[assignment]
                if data is None:
                    forget(obj_id)
            state_rows.append((sid, seq, obj_id, bid, track(obj_id, data)))
            fold_version(obj_id, seq)
            since += 1

        def list_versions(response: bytes, seq: int) -> None:
            for key, h, bid, item in self._list_items(response, put_blob):
                version(self._object_id(key, new_objects), h, bid, seq, item)

        for op, request, response in pending:
            if op is None:  # a reconcile span began or ended here
                if request == _BEGIN:
                    rollups.span_begin(*response)
                else:
                    rollups.span_end(*response)
                continue
            req_entry = put_blob(request)[1] if request is not None else None
            if response is not None:
                rh, resp_entry = put_blob(response)
                resp_bid = resp_entry[0]
                head = resp_entry[1]
                if head is _UNPARSED:
                    head = resp_entry[1] = _parse_head(response)
            else:
                rh, resp_bid, head = None, None, None
            req_head = None
            if req_entry is not None and (head is None or head.kind in ("", "Status")
                                          or head.kind.endswith("List")):
                req_head = req_entry[1]
                if req_head is _UNPARSED:
                    req_head = req_entry[1] = _parse_head(request)
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
            verb, status, seq = op.verb, op.status, op.seq
            error = status >= 400 or verb == EVENT_ERROR
            ok = 200 <= status < 300 or (status == 0 and not error)
            duration = op.duration_ns
            bucket = int(log2(duration) * BUCKETS_PER_OCTAVE) if duration > 1 else 0
            fold(seq, op.ts_ns, duration, verb, kind, namespace, name, status, op.resource, op.subresource,
                 bucket, error, obj_id, op.reconcile)
            if wrapped is not None:
                if ok:
                    self._carried_versions(op, wrapped, put_blob, version, body_of, new_objects)
                if obj_id is not None and verb == GET and not error:
                    rollups.got(obj_id)
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
                if verb == GET and not error:
                    rollups.got(obj_id)
            elif verb == LIST and ok and response is not None:
                list_versions(response, seq)
            query = op.query
            op_rows.append((
                sid, seq, op.ts_ns, duration, verb, api_version, op.resource,
                kind, namespace, name, op.subresource, op.uid, op.resource_version,
                op.generation, status, op.reason, op.message, op.patch_type,
                encode_query(query).decode() if query else None,
                req_entry[0] if req_entry is not None else None, resp_bid, op.actor, op.reconcile,
                obj_id, bucket, int(error),
            ))
            if since >= interval and since >= len(live) // 4:
                data = codec.encode_msgpack([[oid, v[1], v[2]] for oid, v in live.items()])
                keyframes.append((sid, seq, data))
                since = 0
        self._rows_since_keyframe = since

        # The last new bodies compress on the worker while the rows go in.
        if big:
            packing.append(pool.submit(codec.compress_many, big, compressor))
        if new_objects:
            conn.executemany("INSERT INTO objects (id, api_group, kind, namespace, name) VALUES (?, ?, ?, ?, ?)",
                             new_objects)
        paths = self.changes.fresh
        if paths:
            conn.executemany("INSERT INTO paths (session_id, id, path) VALUES (?, ?, ?)",
                             [(sid, pid, path) for pid, path in paths])
        if self._dictionary_row is not None:
            conn.execute("INSERT INTO dictionaries (id, session_id, data) VALUES (?, ?, ?)", self._dictionary_row)
            self._dictionary_row = None
        conn.executemany(_INSERT_OP, op_rows)
        conn.executemany(
            "INSERT OR REPLACE INTO states (session_id, seq, obj_id, blob_id, changed) VALUES (?, ?, ?, ?, ?)",
            state_rows)
        conn.executemany("INSERT OR REPLACE INTO keyframes (session_id, seq, data) VALUES (?, ?, ?)",
                         keyframes)
        spans = []
        for rid in self._dirty_reconciles:
            r = self._reconciles[rid]
            spans.append((sid, r.id, r.reconciler, r.kind, r.namespace, r.name, r.start_seq,
                          r.end_seq, r.start_ns, r.end_ns, r.trigger_seq, r.error, int(r.inferred),
                          r.source_id))
            if r.end_seq is not None:
                del self._reconciles[rid]
        self._dirty_reconciles.clear()
        conn.executemany(
            "INSERT OR REPLACE INTO reconciles (session_id, id, reconciler, kind, namespace, name,"
            " start_seq, end_seq, start_ns, end_ns, trigger_seq, error, inferred, source_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", spans)
        conn.executemany(
            "INSERT OR REPLACE INTO marks (session_id, name, seq, note, created_ns) VALUES (?, ?, ?, ?, ?)",
            [(sid, m.name, m.seq, m.note, m.created_ns) for m in self._marks])
        self._marks.clear()
        conn.execute("UPDATE sessions SET op_count = ? WHERE id = ?", (self.seq, sid))
        for sql, rows in rollups.statements():
            if rows:
                conn.executemany(sql, rows)
        compressed: list[bytes] = []
        for future in packing:
            compressed.extend(future.result())
        packed = codec.pack_many([d for _, d in fresh], compressed, [body_codec] * len(compressed))
        conn.executemany("INSERT INTO blobs (id, codec, data) VALUES (?, ?, ?)",
                         [(bid, c, data) for (bid, _), (c, data) in zip(fresh, packed)])

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
                entry[1] = head
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
