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
from typing import Any, Iterable

import msgspec

from engine import codec
from engine.format import (
    ADDED, CREATE, DELETE, DELETED, GET, LIST, MODIFIED, PATCH, UPDATE,
    Mark, Operation, Reconcile, api_group, is_error,
)
from engine.schema import OP_COLUMNS, RecordingError, create, describe_sqlite_error

DEFAULT_BATCH = 2000
DEFAULT_KEYFRAME_INTERVAL = 1024
BLOB_CACHE = 65536  # content hashes remembered for de-duplication
BUCKETS_PER_OCTAVE = 32  # latency histogram resolution: ~2.2 % wide buckets

_OBJECT_VERBS = frozenset({GET, CREATE, UPDATE, PATCH, ADDED, MODIFIED})


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


class _Meta(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    generation: int | None = None
    deletionTimestamp: str | None = None
    finalizers: list[str] | None = None


class _Head(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    metadata: _Meta | None = None


class _ListBody(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    items: list[msgspec.Raw] | None = None


_head = msgspec.json.Decoder(_Head).decode
_list_body = msgspec.json.Decoder(_ListBody).decode


def _parse_head(data: bytes) -> _Head | None:
    try:
        head = _head(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return head


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
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        create(conn)
    except sqlite3.Error as exc:
        raise RecordingError(describe_sqlite_error(exc, path)) from None
    return conn


class RecordingWriter:
    """A recording file open for writing; hands out session writers."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.conn = open_write(self.path)

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
        self.conn.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Pending(msgspec.Struct):
    op: Operation
    request: bytes | None
    response: bytes | None


class SessionWriter:
    """Appends operations, reconcile spans and marks to one session."""

    def __init__(self, recording: RecordingWriter, name: str, source: str, *, actor: str,
                 cluster: str, attributes: dict[str, Any], keyframe_interval: int, batch: int,
                 atomic: bool):
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
        self._blobs: OrderedDict[bytes, int] = OrderedDict()
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
            self.id = int(cur.lastrowid)
        except sqlite3.Error as exc:
            self._rollback()
            raise RecordingError(describe_sqlite_error(exc, self.path)) from None

    # --- public API ----------------------------------------------------------

    def append(self, op: Operation) -> int:
        """Buffer one operation; returns its seq.  Flushes a full batch."""
        self.seq += 1
        op.seq = self.seq
        if op.ts_ns <= 0:
            op.ts_ns = time.time_ns()
        self._last_ts = max(self._last_ts, op.ts_ns + max(op.duration_ns, 0))
        if self._first_ts is None or op.ts_ns < self._first_ts:
            self._first_ts = op.ts_ns
        request = codec.to_json(op.request) if op.request is not None else None
        response = codec.to_json(op.response) if op.response is not None else None
        self._buffer.append(_Pending(op, request, response))
        if len(self._buffer) >= self.batch:
            self.flush()
        return self.seq

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

    def end_reconcile(self, rid: int, *, error: str = "", ts_ns: int | None = None) -> None:
        """Close a span at the last op appended so far."""
        span = self._reconciles.get(rid)
        if span is None:
            raise KeyError(f"unknown reconcile span {rid}")
        span.end_seq = max(self.seq, span.start_seq - 1)
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
        try:
            if not self.atomic:
                self.conn.execute("BEGIN IMMEDIATE")
            self._write(pending)
            if not self.atomic:
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
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
        self._blobs.clear()  # ids handed out in the failed transaction are void
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

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
        conn = self.conn
        next_blob = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM blobs").fetchone()[0]
        blob_rows: list[tuple[int, int, bytes]] = []
        op_rows: list[tuple[Any, ...]] = []
        state_rows: list[tuple[int, int, int, int | None]] = []
        keyframes: list[tuple[int, int, bytes]] = []

        def put_blob(data: bytes) -> tuple[bytes, int]:
            nonlocal next_blob
            h = codec.digest(data)
            bid = self._blobs.get(h)
            if bid is not None:
                self._blobs.move_to_end(h)
                return h, bid
            bid = next_blob
            next_blob += 1
            c, packed = codec.pack(data)
            blob_rows.append((bid, c, packed))
            self._blobs[h] = bid
            if len(self._blobs) > BLOB_CACHE:
                self._blobs.popitem(last=False)
            return h, bid

        def version(obj_id: int, h: bytes | None, bid: int | None, seq: int) -> None:
            current = self._live.get(obj_id)
            if h is None:
                if current is None:
                    return
                del self._live[obj_id]
            else:
                if current is not None and current[0] == h:
                    return
                self._live[obj_id] = (h, bid, seq)  # type: ignore[assignment]
            state_rows.append((self.id, seq, obj_id, bid))
            self._rows_since_keyframe += 1

        for p in pending:
            op = p.op
            req = put_blob(p.request) if p.request is not None else None
            resp = put_blob(p.response) if p.response is not None else None
            head = _parse_head(p.response) if p.response is not None else None
            self._fill_identity(op, head, p.request)
            obj_id = None
            if op.kind and op.name:
                obj_id = self._object_id((api_group(op.api_version), op.kind, op.namespace, op.name))
            ok = 200 <= op.status < 300 or (op.status == 0 and not is_error(op.verb, op.status))
            verb = op.verb
            if obj_id is not None and ok and verb in _OBJECT_VERBS and resp is not None \
                    and head is not None and head.kind == op.kind:
                version(obj_id, resp[0], resp[1], op.seq)
            elif obj_id is not None and ok and verb == DELETE:
                meta = head.metadata if head is not None else None
                if head is not None and head.kind not in ("", "Status") and meta is not None \
                        and meta.deletionTimestamp and meta.finalizers and resp is not None:
                    version(obj_id, resp[0], resp[1], op.seq)  # terminating, finalizers pending
                else:
                    version(obj_id, None, None, op.seq)
            elif obj_id is not None and verb == DELETED:
                version(obj_id, None, None, op.seq)
            elif obj_id is not None and verb == GET and op.status == 404:
                version(obj_id, None, None, op.seq)
            elif verb == LIST and ok and p.response is not None:
                for key, h, bid in self._list_items(p.response, put_blob):
                    version(self._object_id(key), h, bid, op.seq)
            op_rows.append((
                self.id, op.seq, op.ts_ns, op.duration_ns, verb, op.api_version, op.resource,
                op.kind, op.namespace, op.name, op.subresource, op.uid, op.resource_version,
                op.generation, op.status, op.reason, op.message, op.patch_type,
                msgspec.json.encode(op.query).decode() if op.query else None,
                req[1] if req else None, resp[1] if resp else None, op.actor, op.reconcile,
                obj_id, duration_bucket(op.duration_ns), int(is_error(verb, op.status)),
            ))
            if self._rows_since_keyframe >= max(self.keyframe_interval, len(self._live) // 4):
                data = codec.encode_msgpack(
                    [[oid, v[1], v[2]] for oid, v in self._live.items()])
                keyframes.append((self.id, op.seq, data))
                self._rows_since_keyframe = 0

        conn.executemany("INSERT INTO blobs (id, codec, data) VALUES (?, ?, ?)", blob_rows)
        conn.executemany(
            f"INSERT INTO operations ({', '.join(OP_COLUMNS)}) VALUES ({', '.join('?' * len(OP_COLUMNS))})",
            op_rows)
        conn.executemany(
            "INSERT OR REPLACE INTO states (session_id, seq, obj_id, blob_id) VALUES (?, ?, ?, ?)",
            state_rows)
        conn.executemany("INSERT OR REPLACE INTO keyframes (session_id, seq, data) VALUES (?, ?, ?)",
                         keyframes)
        for rid in self._dirty_reconciles:
            r = self._reconciles[rid]
            conn.execute(
                "INSERT OR REPLACE INTO reconciles (session_id, id, reconciler, kind, namespace, name,"
                " start_seq, end_seq, start_ns, end_ns, trigger_seq, error, inferred, source_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.id, r.id, r.reconciler, r.kind, r.namespace, r.name, r.start_seq, r.end_seq,
                 r.start_ns, r.end_ns, r.trigger_seq, r.error, int(r.inferred), r.source_id))
            if r.end_seq is not None:
                del self._reconciles[rid]
        self._dirty_reconciles.clear()
        conn.executemany(
            "INSERT OR REPLACE INTO marks (session_id, name, seq, note, created_ns) VALUES (?, ?, ?, ?, ?)",
            [(self.id, m.name, m.seq, m.note, m.created_ns) for m in self._marks])
        self._marks.clear()
        conn.execute("UPDATE sessions SET op_count = ? WHERE id = ?", (self.seq, self.id))

    @staticmethod
    def _fill_identity(op: Operation, head: _Head | None, request: bytes | None) -> None:
        """Take kind, namespace, name, uid, resourceVersion from the body where the op lacks them."""
        if (head is None or head.kind in ("", "Status") or head.kind.endswith("List")) \
                and request is not None:
            head = _parse_head(request)  # a failed create: identify the object by what was sent
            if head is not None and head.kind.endswith("List"):
                head = None
        if head is None or head.kind in ("", "Status"):
            return
        meta = head.metadata or _Meta()
        if not op.kind:
            op.kind = head.kind[: -len("List")] if head.kind.endswith("List") else head.kind
        if not op.api_version:
            op.api_version = head.apiVersion
        if op.kind == head.kind:
            op.name = op.name or meta.name
            op.namespace = op.namespace or meta.namespace
            op.uid = op.uid or meta.uid
            op.resource_version = op.resource_version or meta.resourceVersion
            if op.generation is None:
                op.generation = meta.generation

    @staticmethod
    def _list_items(data: bytes, put_blob: Any) -> Iterable[tuple[tuple[str, str, str, str], bytes, int]]:
        """Each object of a list response, with kind and apiVersion set as a GET would return them."""
        try:
            body = _list_body(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if not body.items or not body.kind.endswith("List"):
            return
        kind = body.kind[: -len("List")]
        group = api_group(body.apiVersion)
        prefix = msgspec.json.encode({"kind": kind, "apiVersion": body.apiVersion})[:-1] + b","
        for raw in body.items:
            item = bytes(raw)
            head = _parse_head(item)
            if head is None or head.metadata is None or not head.metadata.name:
                continue
            if not head.kind and item.startswith(b"{") and item != b"{}":
                item = prefix + item[1:]
            h, bid = put_blob(item)
            yield (group, head.kind or kind, head.metadata.namespace, head.metadata.name), h, bid
