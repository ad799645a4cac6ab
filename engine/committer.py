"""Committing a session's batches: the rollups, hot loops and links, compression and the inserts.

The writer (``engine.writer.SessionWriter``) turns operations into rows: identities,
de-duplicated bodies, object versions with the paths each changed (the change index,
``engine.changes``), keyframes.  What is left of a batch is a ``Committer``'s: folding
the rows into the rollups (``engine.rollups``) and the hot loops and causality links
(``engine.loops``), compressing the new bodies (with the session's dictionary once it
is trained), and the inserts and the commit.

A committer runs in the writer's process (``Committer``), or in a process of its own
(``ProcessCommitter``, ``RecordingWriter(path, process=True)``): there it commits one
batch while the writer prepares the next, each on a core of its own.  A batch travels
as msgpack through a shared memory file (no copy through a pipe); at most one is in
flight, and its failure is reported when the writer next hands over or waits
(``flush``, ``close``), so the writer can keep the batch and retry it.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import msgspec
import zstandard

from replay_tui.engine import codec
from replay_tui.engine import loops as loop_folds
from replay_tui.engine.format import ADDED, CREATE, DELETE, DELETED, GET, MODIFIED, PATCH, UPDATE
from replay_tui.engine.loops import LOOP_WINDOW_NS, LoopFold, SpanLinks
from replay_tui.engine.rollups import BEGIN, RollupWriter
from replay_tui.engine.schema import FORMAT_V3, ID_SHIFT, OP_COLUMNS, RecordingError, describe_sqlite_error

PACK_CHUNK = 256  # new bodies handed to the compression thread at a time
DICT_SAMPLE_BYTES = 4 << 20  # bodies a session's dictionary is trained on (measured: ratio ~9.7)
DICT_MIN_SAMPLES = 32

# What the hot-loop fold reads of the ops (analysis.hot_loops streams the same from SQL).
_LOOP_VERBS = frozenset((GET, CREATE, UPDATE, PATCH, DELETE, ADDED, MODIFIED, DELETED))
_LOOP_ALWAYS = frozenset((CREATE, UPDATE, PATCH, ADDED, MODIFIED))  # the rest only when they made a version
_PUT_LOOPS = ("INSERT OR REPLACE INTO rollup_loops (session_id, obj_id, max_writes, max_reconciles, data)"
              " VALUES (?, ?, ?, ?, ?)")
_PUT_EDGES = "INSERT OR REPLACE INTO rollup_edges (session_id, source, target, data) VALUES (?, ?, ?, ?)"
# Loop records evicted from memory (``LoopFold.evict``): the connection's own temporary table
# (SQLite's temp store: a file, with a small page cache), dropped with the connection.
_SPILL_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS fold_loops (session_id INTEGER NOT NULL, obj_id INTEGER NOT NULL,"
                " data BLOB NOT NULL, PRIMARY KEY (session_id, obj_id)) WITHOUT ROWID")
_PUT_SPILL = "INSERT OR REPLACE INTO temp.fold_loops (session_id, obj_id, data) VALUES (?, ?, ?)"
_PUT_COUNT = "INSERT OR REPLACE INTO rollup_counts (session_id, what, key, n) VALUES (?, ?, ?, ?)"
_INSERT_OP = f"INSERT INTO operations ({', '.join(OP_COLUMNS)}) VALUES ({', '.join('?' * len(OP_COLUMNS))})"
# Columns of an op row the rollups read (OP_COLUMNS order).
(_SEQ, _TS, _VERB, _KIND, _NAMESPACE, _NAME, _SUBRESOURCE, _RECONCILE, _OBJ, _ERROR, _GENERATION, _RV) = (
    OP_COLUMNS.index(c) for c in ("seq", "ts_ns", "verb", "kind", "namespace", "name", "subresource", "reconcile",
                                  "obj_id", "error", "generation", "resource_version"))


class Batch(msgspec.Struct, array_like=True, gc=False):
    """One batch of a session, as the writer hands it over (rows without the session id
    where the committer adds it)."""

    op_count: int  # the session's ops once this batch is in
    objects: list[tuple[Any, ...]]  # (id, api_group, kind, namespace, name): new objects
    ops: list[tuple[Any, ...]]  # operations rows, OP_COLUMNS
    # (seq, obj_id, blob_id, changed) of each new version: blob_id None for a deletion; changed the
    # paths it changed (``states.changed``: the writer keeps the change index, ``engine.changes``).
    states: list[tuple[Any, ...]]
    blobs: list[tuple[int, bytes]]  # new bodies (id, JSON)
    keyframes: list[tuple[int, bytes]]  # (seq, data)
    spans: list[tuple[Any, ...]]  # reconciles rows without session_id
    marks: list[tuple[Any, ...]]  # marks rows without session_id
    # In buffer order: (ops of this batch before it, BEGIN, rid, reconciler, kind, namespace, name,
    # start_seq, start_ns, trigger_seq) or (ops before it, END, reconciler, duration_ns, failed, rid,
    # end_seq): what the rollups and the loops fold with the ops.
    span_events: list[tuple[Any, ...]]
    paths: list[tuple[int, str]]  # (id, path) of the paths the change index numbered for this batch


_encode_batch = msgspec.msgpack.Encoder().encode_into
_decode_batch = msgspec.msgpack.Decoder(Batch).decode


class _Session:
    """What the committer keeps for one session between batches."""

    def __init__(self, sid: int, atomic: bool, conn: sqlite3.Connection):
        self.sid = sid
        self.atomic = atomic
        self.rollups = RollupWriter(sid)
        # Hot loops and causality links (engine.loops).  A failed batch cannot be taken out of
        # them: they are given up for the rest of the session (``broken``), its readers then
        # stream its ops as for a session written before them.
        self.conn = conn
        self.loops = LoopFold(LOOP_WINDOW_NS)
        self.loops.fetch = self._spilled
        self.loops.find = self._named
        self.links = SpanLinks(conn, sid, (_OBJ, _VERB, _ERROR, _RECONCILE, _KIND, _NAMESPACE, _NAME, _SUBRESOURCE,
                                           _RV))
        self.broken = False
        self.unmarked = False  # the markers saying the folds are there are deleted
        # Compression: plain zstd until the session's dictionary is trained.
        self.compressor = codec.new_compressor()
        self.codec = codec.ZSTD
        self.samples: list[bytes] | None = [] if DICT_SAMPLE_BYTES > 0 else None
        self.sample_bytes = 0
        self.training: Future[zstandard.ZstdCompressionDict] | None = None
        self.dictionary_row: tuple[int, int, bytes] | None = None  # to insert with the next batch


    def _spilled(self, obj_id: int) -> bytes | None:
        row = self.conn.execute("SELECT data FROM temp.fold_loops WHERE session_id = ? AND obj_id = ?",
                                (self.sid, obj_id)).fetchone()
        return row[0] if row is not None else None


    def _named(self, key: tuple[str, str, str]) -> list[int]:
        kind, namespace, name = key
        low = self.sid << ID_SHIFT
        return [row[0] for row in self.conn.execute(
            "SELECT id FROM objects WHERE name = ? AND kind = ? AND namespace = ? AND id >= ? AND id < ? ORDER BY id",
            (name, kind, namespace, low, low + (1 << ID_SHIFT)))]


class Committer:
    """Commits batches into a recording open for writing, in this process."""

    pipelined = False  # a batch is committed before ``submit`` returns

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path
        self._sessions: dict[int, _Session] = {}
        self._failed: dict[int, RecordingError] = {}
        # A worker thread compresses new bodies (and trains dictionaries) beside the
        # committing thread: zstd holds no GIL.  Checkpoints stay on the writing connection:
        # run on another connection (tried) they made the writing thread block for
        # milliseconds at a time, more than they saved.
        self._pool: ThreadPoolExecutor | None = None

    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-tui-writer")
        return self._pool

    def _error(self, exc: sqlite3.Error) -> RecordingError:
        return RecordingError(describe_sqlite_error(exc, self.path))

    # --- sessions -------------------------------------------------------------------------

    def open(self, name: str, source: str, actor: str, cluster: str, attributes: str, keyframe_interval: int,
             atomic: bool) -> tuple[int, str]:
        """Insert a session's row (a unique name) in a transaction left open: ``opened`` commits it
        once the writer holds the session's lock (an atomic session's stays open to its close)."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken = {r[0] for r in conn.execute(
                "SELECT name FROM sessions WHERE name = ? OR name LIKE ?", (name, name + "-%"))}
            unique, n = name, 2
            while unique in taken:
                unique, n = f"{name}-{n}", n + 1
            cur = conn.execute(
                "INSERT INTO sessions (name, source, started_ns, actor, cluster, attributes,"
                " keyframe_interval, format) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (unique, source, time.time_ns(), actor, cluster, attributes, keyframe_interval, FORMAT_V3))
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error(exc) from None
        assert cur.lastrowid is not None
        sid = int(cur.lastrowid)
        self._sessions[sid] = _Session(sid, atomic, conn)
        return sid, unique

    def opened(self, sid: int, commit: bool) -> None:
        """The writer holds the lock (``commit``: commit the row), or gave up (roll it back)."""
        try:
            if commit:
                self.conn.execute("COMMIT")
                return
        except sqlite3.Error as exc:
            self._rollback()
            self._sessions.pop(sid, None)
            raise self._error(exc) from None
        self._rollback()
        self._sessions.pop(sid, None)

    def submit(self, sid: int, batch: Batch) -> None:
        """Commit a batch (here: at once; its error is raised by ``wait``)."""
        try:
            self.write(sid, batch)
        except RecordingError as exc:
            self._failed[sid] = exc

    def wait(self, sid: int) -> None:
        """Raise the error of the session's last batch, if it failed."""
        exc = self._failed.pop(sid, None)
        if exc is not None:
            raise exc

    def close_session(self, sid: int, first_ts: int | None, end_ns: int, attributes: str, op_count: int) -> None:
        session = self._sessions[sid]
        conn = self.conn
        try:
            if not session.atomic:
                conn.execute("BEGIN IMMEDIATE")
            if not session.broken:
                session.links.finish()  # (spans that waited for ops after them: there are no more)
                self._fold_rows(session)
            conn.execute(
                "UPDATE sessions SET started_ns = COALESCE(?, started_ns), ended_ns = ?, attributes = ?,"
                " op_count = ? WHERE id = ?", (first_ts, end_ns, attributes, op_count, sid))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if session.atomic:
                self._forget(sid)
            raise self._error(exc) from None
        self._forget(sid)

    def abort(self, sid: int) -> None:
        """Give up a session: roll back what is not committed (all of an atomic session)."""
        self._rollback()
        self._forget(sid)

    def _forget(self, sid: int) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None and session.training is not None:
            session.training.cancel()
        if session is not None and session.loops.evicted:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("DELETE FROM temp.fold_loops WHERE session_id = ?", (sid,))
        self._failed.pop(sid, None)

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.conn.close()

    # --- a batch ------------------------------------------------------------------------

    def write(self, sid: int, batch: Batch) -> None:
        """Fold, compress and insert one batch in one transaction (the atomic session's, for an
        import).  On failure the session's state is as before the batch, and the
        transaction is rolled back (all of an atomic session's)."""
        session = self._sessions[sid]
        saved = (session.dictionary_row, session.samples, session.sample_bytes)
        session.rollups.start()
        try:
            if not session.atomic:
                self.conn.execute("BEGIN IMMEDIATE")
            self._write(session, batch)
            if not session.atomic:
                self.conn.execute("COMMIT")
            session.unmarked = session.broken
        except sqlite3.Error as exc:
            self._rollback()
            session.rollups.rollback()
            session.broken = True
            session.dictionary_row, session.samples, session.sample_bytes = saved
            raise self._error(exc) from None

    def _compression(self, session: _Session) -> None:
        """Switch to the session's dictionary once the worker has trained it."""
        training = session.training
        if training is None or not training.done():
            return
        session.training = None
        try:
            dictionary = training.result()
        except (zstandard.ZstdError, RuntimeError, ValueError):
            return  # too few or too uniform samples: plain zstd it stays
        session.compressor = codec.dict_compressor(dictionary)
        session.codec = codec.ZSTD_DICT
        session.dictionary_row = (dictionary.dict_id(), session.sid, dictionary.as_bytes())

    def _write(self, session: _Session, batch: Batch) -> None:
        conn, sid = self.conn, session.sid
        self._compression(session)
        pool = self._worker()
        compressor = session.compressor
        blobs = batch.blobs
        # New bodies compress on the worker while the rollups, hot loops and links are folded.
        min_compress = codec.MIN_COMPRESS
        big = [data for _, data in blobs if len(data) >= min_compress]
        packing = [pool.submit(codec.compress_many, big[i:i + PACK_CHUNK], compressor)
                   for i in range(0, len(big), PACK_CHUNK)]
        samples = session.samples
        if samples is not None:
            for data in big:
                samples.append(data)
                session.sample_bytes += len(data)
                if session.sample_bytes >= DICT_SAMPLE_BYTES and len(samples) >= DICT_MIN_SAMPLES:
                    session.training = pool.submit(codec.train, samples, codec.DICT_BASE + sid)
                    session.samples = None
                    break

        self._fold(session, batch)

        if batch.objects:
            conn.executemany("INSERT INTO objects (id, api_group, kind, namespace, name) VALUES (?, ?, ?, ?, ?)",
                             batch.objects)
        paths = batch.paths
        if paths:
            conn.executemany("INSERT INTO paths (session_id, id, path) VALUES (?, ?, ?)",
                             [(sid, pid, path) for pid, path in paths])
        if session.dictionary_row is not None:
            conn.execute("INSERT INTO dictionaries (id, session_id, data) VALUES (?, ?, ?)", session.dictionary_row)
            session.dictionary_row = None
        conn.executemany(_INSERT_OP, batch.ops)
        conn.executemany(
            f"INSERT OR REPLACE INTO states (session_id, seq, obj_id, blob_id, changed) VALUES ({sid}, ?, ?, ?, ?)",
            batch.states)
        if batch.keyframes:
            conn.executemany("INSERT OR REPLACE INTO keyframes (session_id, seq, data) VALUES (?, ?, ?)",
                             [(sid, seq, data) for seq, data in batch.keyframes])
        if batch.spans:
            conn.executemany(
                "INSERT OR REPLACE INTO reconciles (session_id, id, reconciler, kind, namespace, name,"
                " start_seq, end_seq, start_ns, end_ns, trigger_seq, error, inferred, source_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(sid, *row) for row in batch.spans])
        if batch.marks:
            conn.executemany(
                "INSERT OR REPLACE INTO marks (session_id, name, seq, note, created_ns) VALUES (?, ?, ?, ?, ?)",
                [(sid, *row) for row in batch.marks])
        conn.execute("UPDATE sessions SET op_count = ? WHERE id = ?", (batch.op_count, sid))
        for sql, rows in session.rollups.statements():
            if rows:
                conn.executemany(sql, rows)
        self._fold_rows(session)
        compressed: list[bytes] = []
        for future in packing:
            compressed.extend(future.result())
        body_codec = session.codec
        packed = codec.pack_many([d for _, d in blobs], compressed, [body_codec] * len(compressed))
        conn.executemany("INSERT INTO blobs (id, codec, data) VALUES (?, ?, ?)",
                         [(bid, c, data) for (bid, _), (c, data) in zip(blobs, packed)])

    def _fold(self, session: _Session, batch: Batch) -> None:
        """The batch's ops, versions, GETs and span events into the rollups and (unless given up)
        the hot loops and causality links, each in the order they happened."""
        states, events, ops = batch.states, batch.span_events, batch.ops
        session.rollups.fold(ops, states, events)
        if session.broken:
            return
        loops, links = session.loops, session.links
        loop_op, link_op, version_seqs = loops.op, links.op, links.version
        for obj_id, _, kind, namespace, name in batch.objects:
            loops.object(obj_id, kind, namespace, name)
        n_ops, n_states, n_events = len(ops), len(states), len(events)
        s = e = 0
        state_seq = states[0][0] if n_states else None
        event_at = events[0][0] if n_events else n_ops + 1
        loop_verbs, always = _LOOP_VERBS, _LOOP_ALWAYS
        for i in range(n_ops + 1):
            while event_at <= i:
                event = events[e]
                e += 1
                event_at = events[e][0] if e < n_events else n_ops + 1
                if event[1] == BEGIN:
                    _, _, rid, reconciler, kind, namespace, name, start, start_ns, trigger = event
                    loops.reconcile(start, start_ns, kind, namespace, name, trigger, learning=True)
                    links.begin(rid, reconciler, kind, namespace, name, start, trigger)
                else:
                    links.end(event[5], event[6])
            if i == n_ops:
                break
            row = ops[i]
            seq, obj_id = row[_SEQ], row[_OBJ]
            versioned, blob = 0, None
            while state_seq == seq:
                state = states[s]
                version_seqs[state[1]] = seq
                if state[1] == obj_id:
                    versioned, blob = 1, state[2]
                s += 1
                state_seq = states[s][0] if s < n_states else None
            if obj_id is not None and not row[_ERROR]:
                verb = row[_VERB]
                if verb in loop_verbs and (versioned or verb in always):
                    loop_op(seq, row[_TS], obj_id, verb, row[_SUBRESOURCE], row[_GENERATION], versioned, blob)
            link_op(seq, obj_id, row)

    def _fold_rows(self, session: _Session) -> None:
        """The hot-loop records and causality edges the batch changed, and the counts that say
        the session has them (deleted again once the folds are given up)."""
        conn, sid = self.conn, session.sid
        if session.broken:
            if not session.unmarked:  # (until a transaction doing it commits)
                conn.execute("DELETE FROM rollup_counts WHERE session_id = ? AND what IN ('loops', 'causality')",
                             (sid,))
            return
        loops, graph = session.loops, session.links.graph
        window = loops.window_ns
        rows = []
        for obj_id in loops.touched:
            loop = loops.loops[obj_id]
            if loop.write_window is not None or loop.rec_window is not None:
                rows.append((sid, obj_id, *loop.stored(window)))
        if rows:
            conn.executemany(_PUT_LOOPS, rows)
        # Memory: the least recently used records and edges wait in the file.
        loops.settled()
        spill = loops.evict(loop_folds.LOOP_RECORDS)
        if spill:
            conn.execute(_SPILL_TABLE)
            conn.executemany(_PUT_SPILL, [(sid, obj_id, data) for obj_id, data in spill])
        loops.evict_names(loop_folds.NAMES_KEPT)  # (the batch's objects are inserted)
        if graph.dirty:
            conn.executemany(_PUT_EDGES, graph.rows(sid, graph.dirty))
        graph.settled()
        graph.evict(loop_folds.EDGES_KEPT)
        conn.executemany(_PUT_COUNT, [(sid, "loops", "window_ns", window),
                                      (sid, "causality", "reconciles", graph.total),
                                      (sid, "causality", "triggered", graph.triggered),
                                      (sid, "causality", "linked", graph.linked)])


# --- in a process of its own --------------------------------------------------------------------

_PROCESS_ENDED = "the recording's writer process ended unexpectedly"


class _Shared:
    """A memory file both processes map: where a batch travels (grown when one does not fit)."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.size = size
        self.map = mmap.mmap(fd, size)

    def grow(self, size: int) -> None:
        self.map.close()
        os.ftruncate(self.fd, size)
        self.size = size
        self.map = mmap.mmap(self.fd, size)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


SHARED_START = 32 << 20


class ProcessCommitter:
    """A Committer in a child process: ``submit`` hands a batch over and returns; the next
    ``submit``, ``wait`` or any other call first collects its outcome."""

    pipelined = True

    def __init__(self, path: str):
        self.path = path
        # A fresh interpreter (not multiprocessing's spawn: it would import the caller's
        # __main__ again), given one end of a socket pair and the shared memory file.
        ours, theirs = socket.socketpair()
        fd = None
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("replay-tui-batch", os.MFD_CLOEXEC)
            os.ftruncate(fd, SHARED_START)
            self._shared: _Shared | None = _Shared(fd, SHARED_START)
        else:
            self._shared = None
        child_fd = theirs.fileno()
        args = [sys.executable, "-c", "from replay_tui.engine.committer import serve; serve()",
                str(child_fd), path, str(fd if fd is not None else -1), str(SHARED_START)]
        try:
            self._process = subprocess.Popen(args, pass_fds=[f for f in (child_fd, fd) if f is not None],
                                             stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            theirs.close()
            if self._shared is not None:
                self._shared.close()
            raise RecordingError(f"{path}: cannot start the writer process ({exc})") from None
        theirs.close()
        self._conn = Connection(ours.detach())
        self._buffer = bytearray()
        self._inflight: int | None = None  # the session whose batch the child is committing
        self._failed: dict[int, RecordingError] = {}
        try:
            self._reply()  # the child opened the recording (or says why it could not)
        except RecordingError:
            self._conn.close()
            self._process.wait(timeout=10)
            if self._shared is not None:
                self._shared.close()
            raise

    @property
    def pid(self) -> int:
        """The writer process's id."""
        return self._process.pid

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            raise RecordingError(f"{self.path}: {_PROCESS_ENDED}") from None

    def _reply(self) -> Any:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            raise RecordingError(f"{self.path}: {_PROCESS_ENDED}") from None
        if status == "error":
            raise RecordingError(value)
        return value

    def _collect(self) -> None:
        """The outcome of the batch in flight, kept for its session's ``wait``."""
        sid = self._inflight
        if sid is None:
            return
        self._inflight = None
        try:
            self._reply()
        except RecordingError as exc:
            self._failed[sid] = exc

    def _call(self, *message: Any) -> Any:
        self._collect()
        self._send(message)
        return self._reply()

    def open(self, name: str, source: str, actor: str, cluster: str, attributes: str, keyframe_interval: int,
             atomic: bool) -> tuple[int, str]:
        sid, unique = self._call("open", name, source, actor, cluster, attributes, keyframe_interval, atomic)
        return int(sid), str(unique)

    def opened(self, sid: int, commit: bool) -> None:
        self._call("opened", sid, commit)

    def submit(self, sid: int, batch: Batch) -> None:
        self._collect()
        buffer = self._buffer
        _encode_batch(batch, buffer)
        size = len(buffer)
        shared = self._shared
        if shared is None:
            self._send(("batch", sid, bytes(buffer), 0))
        else:
            grown = 0
            if size > shared.size:
                shared.grow(max(size, shared.size * 2))
                grown = shared.size
            shared.map[:size] = buffer
            self._send(("batch", sid, size, grown))
        if len(buffer) > SHARED_START:
            self._buffer = bytearray()  # (a rare huge batch: its buffer is not kept)
        self._inflight = sid

    def wait(self, sid: int) -> None:
        if self._inflight == sid:
            self._collect()
        exc = self._failed.pop(sid, None)
        if exc is not None:
            raise exc

    def close_session(self, sid: int, first_ts: int | None, end_ns: int, attributes: str, op_count: int) -> None:
        self._call("close", sid, first_ts, end_ns, attributes, op_count)

    def abort(self, sid: int) -> None:
        with contextlib.suppress(RecordingError):
            self._call("abort", sid)
        self._failed.pop(sid, None)

    def close(self) -> None:
        with contextlib.suppress(RecordingError):
            self._call("quit")
        self._conn.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._shared is not None:
            self._shared.close()
            self._shared = None


def serve() -> None:
    """The child's entry (``sys.argv``: socket fd, recording, shared memory fd or -1, its size)."""
    fd, path, shared_fd, size = sys.argv[1:5]
    _serve(Connection(int(fd)), path, int(shared_fd), int(size))


def _serve(conn: Connection, path: str, fd: int, size: int) -> None:
    """Open the recording, then commit what the writer hands over until it quits (or ends:
    then what is not committed is rolled back)."""
    from replay_tui.engine.writer import open_write

    # Ctrl-C is the writer's to handle (it aborts or closes the session, then quits this
    # process); an interrupted child would only print a traceback and lose the batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Long-lived state (rollups, hot-loop records, the link ring) would make the cyclic
    # collector's full passes slow; the child makes no reference cycles worth collecting often.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    shared = _Shared(fd, size) if fd >= 0 else None
    try:
        committer = Committer(open_write(path), path)
    except RecordingError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ok", None))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            try:
                if kind == "batch":
                    _, sid, payload, grown = message
                    if isinstance(payload, bytes):
                        batch = _decode_batch(payload)
                    else:
                        assert shared is not None
                        if grown:
                            shared.map.close()
                            shared.size = grown
                            shared.map = mmap.mmap(shared.fd, grown)
                        batch = _decode_batch(memoryview(shared.map)[:payload])
                    committer.write(sid, batch)
                    value: Any = None
                elif kind == "open":
                    value = committer.open(*message[1:])
                elif kind == "opened":
                    committer.opened(*message[1:])
                    value = None
                elif kind == "close":
                    committer.close_session(*message[1:])
                    value = None
                elif kind == "abort":
                    committer.abort(message[1])
                    value = None
                elif kind == "quit":
                    conn.send(("ok", None))
                    break
                else:
                    raise RecordingError(f"{path}: the writer process was asked {kind!r}")
            except RecordingError as exc:
                conn.send(("error", str(exc)))
                continue
            conn.send(("ok", value))
    finally:
        committer.close()
        if shared is not None:
            shared.close()
