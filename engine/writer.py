"""Writing recordings: batched inserts in WAL mode, state versions and keyframes.

A writer is synchronous (plain ``sqlite3``): recorders run it on a thread of
its own behind a bounded queue, importers run it inline.  Operations are
buffered and written in batches; each batch is one transaction, so a reader in
another process (``replay-tui DB --follow``) sees every committed batch and
never half of one.  An *atomic* session (importers) is one transaction from
start to close: a failed import leaves nothing behind.

While writing, the writer keeps the map object -> current version, which is
small (one entry per live object, not per operation).  It uses it to store a
version only when an object really changed and to emit keyframes.
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

from replay_tui.engine import codec
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
from replay_tui.engine.schema import OP_COLUMNS, RecordingError, create, describe_sqlite_error

DEFAULT_BATCH = 2000
PACK_CHUNK = 256  # new bodies handed to the compression thread at a time
DEFAULT_KEYFRAME_INTERVAL = 1024
BLOB_CACHE = 65536  # content hashes remembered for de-duplication
LIST_ITEM_CACHE = 16384  # list items remembered as already parsed
BUCKETS_PER_OCTAVE = 32  # latency histogram resolution: ~2.2 % wide buckets

_OBJECT_VERBS = frozenset({GET, CREATE, UPDATE, PATCH, ADDED, MODIFIED})
_INSERT_OP = f"INSERT INTO operations ({', '.join(OP_COLUMNS)}) VALUES ({', '.join('?' * len(OP_COLUMNS))})"


def duration_bucket(duration_ns: int) -> int:
    """Log-scale latency bucket, stored per op so percentiles are a GROUP BY away."""
    if duration_ns <= 1:
        return 0
    return int(math.log2(duration_ns) * BUCKETS_PER_OCTAVE)


def bucket_value_ns(bucket: int) -> float:
    """Geometric middle of a latency bucket, in nanoseconds."""
    if bucket <= 0:
        return 0.0
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_OCTAVE)


def _parse_head(data: bytes) -> ObjectHead | None:
    try:
        head = decode_head(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
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
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Index pages of a long session stay in the writer's cache (32 MB, not 2 MB).
        conn.execute("PRAGMA cache_size = -32768")
        create(conn)
    except sqlite3.Error as exc:
        raise RecordingError(describe_sqlite_error(exc, path)) from None
    return conn


class RecordingWriter:
    """A recording file open for writing; hands out session writers."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.conn = open_write(self.path)
        # A worker thread compresses new bodies beside the writing thread (zstd holds
        # no GIL).  Checkpoints stay on the writing connection: run on another
        # connection (tried) they made the writing thread block for milliseconds at a
        # time, more than they saved.
        self._pool: ThreadPoolExecutor | None = None
        self._compressor: zstandard.ZstdCompressor | None = None

    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-tui-writer")
            self._compressor = codec.new_compressor()
        return self._pool

    def compress_async(self, datas: list[bytes]) -> Future[list[bytes]]:
        """Compress bodies on the worker thread while this one goes on (zstd holds no GIL)."""
        pool = self._worker()
        assert self._compressor is not None  # made with the pool
        return pool.submit(codec.compress_many, datas, self._compressor)

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


# A buffered op: (operation, request JSON, response JSON).
_Pending = tuple[Operation, "bytes | None", "bytes | None"]
_UNPARSED: Any = object()  # a cached body whose head has not been parsed yet
_SKIP: Any = object()  # a list item that names no object


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
        try:
            if atomic:
                self.conn.execute("BEGIN IMMEDIATE")
            self.name = self._unique_name(name)
            cur = self.conn.execute(
                "INSERT INTO sessions (name, source, started_ns, actor, cluster, attributes,"
                " keyframe_interval) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.name, source, time.time_ns(), actor, cluster,
                 msgspec.json.encode(self.attributes).decode(), keyframe_interval),
            )
            assert cur.lastrowid is not None
            self.id = int(cur.lastrowid)
        except sqlite3.Error as exc:
            self._rollback()
            raise RecordingError(describe_sqlite_error(exc, self.path)) from None

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

    def mark(self, name: str, seq: int | None = None, note: str = "") -> None:
        self._marks.append(Mark(name=name, seq=self.seq if seq is None else seq, note=note,
                                created_ns=time.time_ns()))

    def set_attributes(self, **attributes: Any) -> None:
        self.attributes.update(attributes)

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

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None and self.atomic:
            self.abort()
        else:
            self.close()

    # --- internals -------------------------------------------------------------

    def _rollback(self) -> None:
        # Ids handed out in the failed transaction are void: forget every cached id.
        self._blobs.clear()
        self._list_seen.clear()
        self._objects.clear()
        self._objects_av.clear()
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _save(self) -> tuple[Any, ...]:
        """What a batch changes besides the database, to put back if its transaction fails."""
        return (dict(self._live), self._rows_since_keyframe, dict(self._reconciles),
                set(self._dirty_reconciles), list(self._marks))

    def _restore(self, saved: tuple[Any, ...]) -> None:
        live, since, reconciles, dirty, marks = saved
        self._live, self._rows_since_keyframe = live, since
        self._reconciles, self._dirty_reconciles, self._marks = reconciles, dirty, marks

    def _unique_name(self, name: str) -> str:
        taken = {r[0] for r in self.conn.execute(
            "SELECT name FROM sessions WHERE name = ? OR name LIKE ?", (name, name + "-%"))}
        if name not in taken:
            return name
        n = 2
        while f"{name}-{n}" in taken:
            n += 1
        return f"{name}-{n}"

    def _object_id(self, key: tuple[str, str, str, str]) -> int:
        oid = self._objects.get(key)
        if oid is None:
            self.conn.execute(
                "INSERT OR IGNORE INTO objects (api_group, kind, namespace, name) VALUES (?, ?, ?, ?)",
                key)
            oid = self.conn.execute(
                "SELECT id FROM objects WHERE api_group = ? AND kind = ? AND namespace = ? AND name = ?",
                key).fetchone()[0]
            self._objects[key] = oid
        return oid

    def _write(self, pending: list[_Pending]) -> None:
        """One batch: blobs (de-duplicated), op rows, state versions, keyframes, spans, marks.

        The hot path of ingest, so written flat: locals instead of attributes, each
        body hashed once, a body's head parsed once per distinct body (cached with
        its blob id), and new bodies compressed on a worker thread while the rows
        are inserted.
        """
        conn = self.conn
        next_blob = first_blob = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM blobs").fetchone()[0]
        fresh: list[bytes] = []  # new bodies, ids first_blob, first_blob + 1, ...
        big: list[bytes] = []  # those of them worth compressing, not yet handed over
        packing: list[Future[list[bytes]]] = []
        compress_async = self.recording.compress_async
        min_compress = codec.MIN_COMPRESS
        op_rows: list[tuple[Any, ...]] = []
        state_rows: list[tuple[int, int, int, int | None]] = []
        keyframes: list[tuple[int, int, bytes]] = []
        blobs = self._blobs
        live = self._live
        objects_av = self._objects_av
        sid = self.id
        digest = codec.digest
        interval = self.keyframe_interval
        since = self._rows_since_keyframe
        encode_query = msgspec.json.encode
        log2 = math.log2

        def put_blob(data: bytes) -> tuple[bytes, list[Any]]:
            nonlocal next_blob
            h = digest(data)
            entry = blobs.get(h)
            if entry is not None:
                blobs.move_to_end(h)
                return h, entry
            entry = [next_blob, _UNPARSED]
            next_blob += 1
            fresh.append(data)
            if len(data) >= min_compress:
                big.append(data)
                if len(big) >= PACK_CHUNK:
                    packing.append(compress_async(big[:]))
                    big.clear()
            blobs[h] = entry
            if len(blobs) > BLOB_CACHE:
                blobs.popitem(last=False)
            return h, entry

        def body_of(bid: int) -> Any:
            """A stored body, decoded: what partial metadata updates."""
            if bid >= first_blob:
                return msgspec.json.decode(fresh[bid - first_blob])
            row = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (bid,)).fetchone()
            return msgspec.json.decode(codec.unpack(*row)) if row else None

        def version(obj_id: int, h: bytes | None, bid: int | None, seq: int) -> None:
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
            state_rows.append((sid, seq, obj_id, bid))
            since += 1

        for op, request, response in pending:
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
                    req_head = req_entry[1] = _parse_head(request)  # type: ignore[arg-type]
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
                        (api_group(api_version), kind, namespace, name))
            verb, status, seq = op.verb, op.status, op.seq
            error = status >= 400 or verb == EVENT_ERROR
            ok = 200 <= status < 300 or (status == 0 and not error)
            if wrapped is not None:
                if ok:
                    self._carried_versions(op, wrapped, put_blob, version, body_of)
            elif obj_id is not None:
                if ok and verb in _OBJECT_VERBS and response is not None \
                        and head is not None and head.kind == kind:
                    version(obj_id, rh, resp_bid, seq)
                elif ok and verb == DELETE:
                    meta = head.metadata if head is not None else None
                    if head is not None and head.kind not in ("", "Status") and meta is not None \
                            and meta.deletionTimestamp and meta.finalizers and response is not None:
                        version(obj_id, rh, resp_bid, seq)  # terminating, finalizers pending
                    else:
                        version(obj_id, None, None, seq)
                elif verb == DELETED or (verb == GET and status == 404):
                    version(obj_id, None, None, seq)
                elif verb == LIST and ok and response is not None:
                    self._list_versions(response, put_blob, version, seq)
            elif verb == LIST and ok and response is not None:
                self._list_versions(response, put_blob, version, seq)
            duration = op.duration_ns
            query = op.query
            op_rows.append((
                sid, seq, op.ts_ns, duration, verb, api_version, op.resource,
                kind, namespace, name, op.subresource, op.uid, op.resource_version,
                op.generation, status, op.reason, op.message, op.patch_type,
                encode_query(query).decode() if query else None,
                req_entry[0] if req_entry is not None else None, resp_bid, op.actor, op.reconcile,
                obj_id, int(log2(duration) * BUCKETS_PER_OCTAVE) if duration > 1 else 0, int(error),
            ))
            if since >= interval and since >= len(live) // 4:
                data = codec.encode_msgpack([[oid, v[1], v[2]] for oid, v in live.items()])
                keyframes.append((sid, seq, data))
                since = 0
        self._rows_since_keyframe = since

        # The last new bodies compress on the worker while the rows go in.
        if big:
            packing.append(compress_async(big))
        conn.executemany(_INSERT_OP, op_rows)
        conn.executemany(
            "INSERT OR REPLACE INTO states (session_id, seq, obj_id, blob_id) VALUES (?, ?, ?, ?)",
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
        compressed = [c for future in packing for c in future.result()]
        blob_rows = [(first_blob + i, c, data)
                     for i, (c, data) in enumerate(codec.pack_many(fresh, compressed))]
        conn.executemany("INSERT INTO blobs (id, codec, data) VALUES (?, ?, ?)", blob_rows)

    def _list_versions(self, response: bytes, put_blob: Any, version: Any, seq: int) -> None:
        for key, h, bid in self._list_items(response, put_blob):
            version(self._object_id(key), h, bid, seq)

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

    def _list_items(self, data: bytes, put_blob: Any) -> Iterable[tuple[tuple[str, str, str, str], bytes, int]]:
        """Each object of a list response, with kind and apiVersion set as a GET would return them.

        Lists repeat mostly unchanged items, so what an item became (its key and the
        content hash of the stored form) is remembered by the hash of the item as
        listed: a repeated item costs a hash and a lookup, not a JSON parse.
        """
        try:
            body = decode_list(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
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
                    yield key, h, entry[0]
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
            yield key, h, entry[0]

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
                          body_of: Any) -> None:
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
            obj_id = self._object_id(key)
            if verb == DELETED:
                version(obj_id, None, None, seq)
                continue
            if not item.partial:
                h, entry = put_blob(item.raw)
            else:
                current = self._live.get(obj_id)
                previous = body_of(current[1]) if current is not None else None
                merged = merge_partial(previous, item.raw, op.kind, op.api_version)
                if merged is None or merged == previous:
                    continue
                h, entry = put_blob(codec.to_json(merged))
            version(obj_id, h, entry[0], seq)
