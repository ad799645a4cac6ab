"""Reading recordings: read-only async connections, sessions, operations by seq.

Every read goes through aiosqlite on a connection opened with ``mode=ro`` and
``PRAGMA query_only``, so nothing here can modify a recording.  A recording may
still be growing (another process is writing it in WAL mode): ``Session.refresh``
re-reads the tail, which costs one index lookup.

Errors a user can act on surface as ``RecordingError`` with a one-line message;
a pending query is interrupted when the task awaiting it is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiosqlite
import msgspec

from replay_tui.engine import codec, liveness, readonly, verify
from replay_tui.engine.format import Mark, ObjectKey, Operation, OpRow, Reconcile, SessionInfo
from replay_tui.engine.readonly import read_uri
from replay_tui.engine.schema import (
    FORMAT_V1,
    SQLITE_MAGIC,
    RecordingError,
    check_meta,
    describe_sqlite_error,
)

BODY_CACHE = 512
CORRUPTED = "the recording is corrupted"
_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '([^']*)'")
_INT64_MAX = 2**63 - 1
OPROW_COLUMNS = ("seq, ts_ns, duration_ns, verb, kind, namespace, name, subresource, status, reason, reconcile,"
                 " resource")
_OP_COLUMNS = (
    "seq, ts_ns, duration_ns, verb, api_version, resource, kind, namespace, name, subresource, uid,"
    " resource_version, generation, status, reason, message, patch_type, query, request_blob,"
    " response_blob, actor, reconcile"
)
_RECONCILE_COLUMNS = ("id, reconciler, kind, namespace, name, start_seq, end_seq, start_ns, end_ns,"
                      " trigger_seq, error, inferred, source_id")


class PositionError(RecordingError):
    """A position outside the session."""


class SessionNotFound(RecordingError):
    """No session by that id or name."""


class Interrupted(RecordingError):
    """The query was stopped by ``interrupt()``: a cancelled neighbour's on a shared connection.

    Not a problem with the recording: the caller may simply run the read again.
    """


def check_file(path: str) -> None:
    """Fail early, in one line, on a path that cannot be a recording."""
    if not os.path.exists(path):
        raise RecordingError(f"{path}: no such file")
    if os.path.isdir(path):
        raise RecordingError(f"{path}: is a directory, not a recording")
    if not os.path.isfile(path):  # a FIFO or device: reading its head could block forever
        raise RecordingError(f"{path}: not a regular file, not a recording")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc.strerror})") from None
    if len(head) == 0:
        raise RecordingError(f"{path}: empty file, not a recording")
    if head != SQLITE_MAGIC:
        raise RecordingError(f"{path}: not an SQLite database (not a replay-tui recording)")


def sqlite_error(exc: BaseException, path: str) -> RecordingError:
    """An error of SQLite (or of decoding what it returned) as one line a user can act on;
    damage reads "the recording is corrupted", never SQLite's raw text."""
    if isinstance(exc, UnicodeDecodeError):  # SQLite quoted damaged bytes in its own message
        return RecordingError(f"{path}: {CORRUPTED} (unreadable text)")
    text = str(exc)
    m = _NOT_UTF8.search(text)
    if m:
        return RecordingError(f"{path}: {CORRUPTED} (column {m.group(1)} holds text that is not UTF-8)")
    if "not a database" in text.lower():  # it opened as one: damage met while reading
        return RecordingError(f"{path}: {CORRUPTED} ({_one_line(exc)})")
    return RecordingError(describe_sqlite_error(exc, path))


def at_op(exc: RecordingError, seq: int | None, session: str | None = None) -> RecordingError:
    """The same error, saying which op the damage is at (when it is damage and does not say yet)."""
    text = str(exc)
    if seq is None or CORRUPTED not in text or f"{CORRUPTED} at op" in text:
        return exc
    where = f"{CORRUPTED} at op {seq}" + (f" of session {session!r}" if session else "")
    return type(exc)(text.replace(CORRUPTED, where, 1))


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line (decoders may quote the bad bytes, newlines included)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _cannot_write_side_files(exc: RecordingError) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


def _reconcile(row: Sequence[Any]) -> Reconcile:
    return Reconcile(id=row[0], reconciler=row[1], kind=row[2], namespace=row[3], name=row[4],
                     start_seq=row[5], end_seq=row[6], start_ns=row[7], end_ns=row[8],
                     trigger_seq=row[9], error=row[10], inferred=bool(row[11]), source_id=row[12])


class Recording:
    """One recording file, open read-only."""

    def __init__(self, path: str, db: aiosqlite.Connection, dicts: codec.Dictionaries | None = None):
        self.path = path
        self.db = db
        self._bodies: OrderedDict[int, bytes] = OrderedDict()  # blob id -> its JSON
        self._inflight = 0  # calls awaiting this connection
        self.schema_version = 1
        self._held: tuple[int, int] | None = None  # a read-write reading connection (engine.readonly.hold)
        # zstd dictionaries of the sessions opened so far (shared with clones)
        self.dicts = dicts if dicts is not None else codec.Dictionaries()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Recording:
        path = os.fspath(path)
        check_file(path)
        # How to read without writing or leaving -wal/-shm files behind: engine.readonly.
        no_writer = not os.path.exists(path + "-wal")
        try:
            rec, tables = await cls._connect(path, False)
        except RecordingError as exc:
            if not no_writer or not _cannot_write_side_files(exc):
                raise
            rec, tables = await cls._connect(path, True)
        try:
            if "meta" not in tables:
                raise RecordingError(f"{path}: an SQLite database but not a replay-tui recording")
            try:
                rec.schema_version = check_meta(dict(await rec.fetchall("SELECT key, value FROM meta")))
            except RecordingError as exc:
                raise RecordingError(f"{path}: {exc}") from None
            missing = {"sessions", "operations", "states", "objects", "blobs", "keyframes"} - tables
            if missing:
                raise RecordingError(f"{path}: incomplete recording (missing {', '.join(sorted(missing))})")
        except BaseException:
            await rec.close()
            raise
        return rec

    @classmethod
    async def _connect(cls, path: str, immutable: bool) -> tuple[Recording, set[str]]:
        """A read-only connection and the file's table names."""
        uri = read_uri(path, immutable=immutable)
        try:
            db = await aiosqlite.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise RecordingError(describe_sqlite_error(exc, path)) from None
        rec = cls(path, db)
        if uri.endswith("?mode=rw"):
            rec._held = readonly.hold(path)
        try:
            await rec.execute("PRAGMA query_only = 1")
            await db.set_authorizer(readonly.authorizer)  # with query_only: nothing can write
            await rec.execute("PRAGMA busy_timeout = 5000")
            tables = {r[0] for r in await rec.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except BaseException:
            await rec.close()
            raise
        return rec, tables

    async def clone(self) -> Recording:
        """Another read-only connection to the same file, for heavy work beside interactive reads."""
        other = await Recording.open(self.path)
        other.dicts = self.dicts
        return other

    async def close(self) -> None:
        try:
            await self.db.close()
        finally:
            held, self._held = self._held, None
            readonly.release(held)

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- queries --------------------------------------------------------------

    async def _run(self, coro: Any) -> Any:
        self._inflight += 1
        try:
            return await coro
        except asyncio.CancelledError:
            # sqlite3's interrupt stops whatever runs on the connection: only when this
            # call is the one outstanding can that be ours, not another task's query.
            if self._inflight == 1:
                try:
                    await self.db.interrupt()
                except Exception:
                    pass
            raise
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":
                raise Interrupted(f"{self.path}: the read was interrupted") from None
            raise sqlite_error(exc, self.path) from None
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise sqlite_error(exc, self.path) from None
        except ValueError as exc:  # aiosqlite: connection closed
            raise RecordingError(f"{self.path}: {exc}") from None
        except OverflowError:  # a parameter beyond SQLite's 64-bit integers
            raise RecordingError(f"{self.path}: a number in the query is out of range") from None
        finally:
            self._inflight -= 1

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        async def go() -> None:
            cur = await self.db.execute(sql, params)
            await cur.close()
        await self._run(go())

    async def fetchall(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        return list(await self._run(self.db.execute_fetchall(sql, params)))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def stream(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = (),
                     size: int = 5000) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """Yield lists of rows, ``size`` at a time, without holding the whole result."""
        async def opener() -> aiosqlite.Cursor:
            return await self.db.execute(sql, params)
        cur = await self._run(opener())
        try:
            while True:
                rows = await self._run(cur.fetchmany(size))
                if not rows:
                    return
                yield rows
        finally:
            await cur.close()

    async def body(self, blob_id: int | None) -> Any:
        """A stored body, decoded: a fresh object on every call, so callers may change it.

        The JSON (decompressed) is cached, not the decoded object: the same version is
        read again and again, and a shared mutable object would let one caller's edit
        show up in every later read.
        """
        if blob_id is None:
            return None
        data = self._bodies.get(blob_id)
        if data is not None:
            self._bodies.move_to_end(blob_id)
        else:
            row = await self.fetchone("SELECT codec, data FROM blobs WHERE id = ?", (blob_id,))
            if row is None:
                raise RecordingError(f"{self.path}: {CORRUPTED} (body {blob_id} is missing)")
            if row[0] == codec.ZSTD_DICT and isinstance(row[1], bytes):
                await self.load_dictionary(codec.Dictionaries.frame_dict_id(row[1]))
            try:
                data = self.unpack(row[0], row[1])
            except (ValueError, TypeError) as exc:  # BodyError, or a value that is not a blob
                raise await self._corrupted_body(blob_id, exc) from None
        try:
            value = codec.from_json(data)
        except (ValueError, TypeError) as exc:  # BodyError, bad UTF-8
            raise await self._corrupted_body(blob_id, exc) from None
        self._bodies[blob_id] = data
        if len(self._bodies) > BODY_CACHE:
            self._bodies.popitem(last=False)
        return value

    def unpack(self, kind: int, data: bytes) -> bytes:
        """A stored body's JSON (BodyError when it cannot be read); any thread may call it."""
        return codec.unpack(kind, data, self.dicts)

    async def load_dictionary(self, dict_id: int | None) -> None:
        """Make a body dictionary known (those of a session are loaded when it is opened)."""
        if dict_id is None or dict_id in self.dicts or self.schema_version < 2:
            return
        row = await self.fetchone("SELECT data FROM dictionaries WHERE id = ?", (dict_id,))
        if row is not None and isinstance(row[0], bytes):
            self.dicts.add(dict_id, row[0])

    async def load_dictionaries(self, session_id: int) -> None:
        if self.schema_version < 2:
            return
        for dict_id, data in await self.fetchall(
                "SELECT id, data FROM dictionaries WHERE session_id = ?", (session_id,)):
            if dict_id not in self.dicts and isinstance(data, bytes):
                self.dicts.add(dict_id, data)

    async def bodies(self, blob_ids: Sequence[int]) -> dict[int, Any]:
        """Many stored bodies at once (blob id -> decoded body): one query per 500, for loading a
        whole state (``state.Snapshot.items``) without a round trip per object."""
        out: dict[int, Any] = {}
        wanted = sorted(set(blob_ids))
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk:chunk + 500]
            rows = await self.fetchall(
                f"SELECT id, codec, data FROM blobs WHERE id IN ({','.join('?' * len(part))})", part)
            for blob_id, codec_id, data in rows:
                out[blob_id] = self.decode_body(blob_id, codec_id, data)
        missing = [b for b in wanted if b not in out]
        if missing:
            raise RecordingError(f"{self.path}: {CORRUPTED} (body {missing[0]} is missing)")
        return out

    def decode_body(self, blob_id: int, codec_id: int, data: bytes) -> Any:
        """A body as stored (codec, data) decoded; a corrupted one is a one-line RecordingError."""
        try:
            return codec.from_json(codec.unpack(codec_id, data, self.dicts))
        except (ValueError, TypeError) as exc:  # BodyError, bad UTF-8, a value that is not a blob
            raise self._body_error(blob_id, exc) from None

    def unpack_body(self, blob_id: int, codec_id: int, data: bytes) -> bytes:
        """A body's JSON as stored (decompressed, not decoded)."""
        try:
            return codec.unpack(codec_id, data, self.dicts)
        except (ValueError, TypeError) as exc:
            raise self._body_error(blob_id, exc) from None

    def _body_error(self, blob_id: int, exc: BaseException) -> RecordingError:
        """A body that cannot be read, as one line (without the op: see ``_corrupted_body``)."""
        detail = _one_line(exc).removeprefix("corrupted body: ").removeprefix("malformed body: ")
        return RecordingError(f"{self.path}: {CORRUPTED} (body {blob_id}: {detail})")

    async def _corrupted_body(self, blob_id: int, exc: BaseException) -> RecordingError:
        """A body that cannot be read, and the op that stored it."""
        error = self._body_error(blob_id, exc)
        try:  # which op stored it: a scan, but only on the way to an error
            row = await self.fetchone(
                "SELECT seq FROM operations WHERE request_blob = ? OR response_blob = ? ORDER BY seq LIMIT 1",
                (blob_id, blob_id))
            if row is None:
                row = await self.fetchone("SELECT seq FROM states WHERE blob_id = ? ORDER BY seq LIMIT 1",
                                          (blob_id,))
        except RecordingError:
            return error
        return at_op(error, row[0] if row else None)

    async def damaged_op(self, session_id: int, *, bodies: bool = False) -> int | None:
        """The first op of a session that cannot be read (engine.verify), for an error to name."""
        return await asyncio.to_thread(verify.first_damaged_op, self.path, session_id, bodies=bodies)

    # --- sessions -------------------------------------------------------------

    async def sessions(self) -> list[SessionInfo]:
        fmt = "s.format" if self.schema_version >= 2 else str(FORMAT_V1)
        rows = await self.fetchall(
            "SELECT s.id, s.name, s.source, s.started_ns, s.ended_ns, s.actor, s.cluster, s.attributes,"
            " s.keyframe_interval, (SELECT COALESCE(MAX(seq), 0) FROM operations o WHERE o.session_id = s.id),"
            f" {fmt} FROM sessions s ORDER BY s.id")
        infos = [self._info(r) for r in rows]
        await self._mark_interrupted(infos)
        return infos

    async def _mark_interrupted(self, infos: Sequence[SessionInfo]) -> None:
        """Open sessions whose writer is gone (engine.liveness): interrupted, with their last op time."""
        open_ = [i for i in infos if i.ended_ns is None]
        live = liveness.live_sessions(self.path, (i.id for i in open_))
        if live is None:
            return  # cannot tell: an open session stays "recording"
        for info in open_:
            if info.id in live:
                info.interrupted = False
                continue
            # Read again: a writer commits its end time, then drops the lock, so a session that
            # closed between the caller's read and the lock check has its end time now.
            row = await self.fetchone(
                "SELECT s.ended_ns, (SELECT MAX(ts_ns) FROM operations WHERE session_id = s.id)"
                " FROM sessions s WHERE s.id = ?", (info.id,))
            if row is not None and row[0] is not None:
                info.ended_ns, info.interrupted = row[0], False
            else:
                info.interrupted = True
                info.last_op_ns = row[1] if row else None

    def _info(self, r: Sequence[Any]) -> SessionInfo:
        try:
            attributes = msgspec.json.decode(r[7]) if r[7] else {}
        except (ValueError, TypeError):
            attributes = {}
        return SessionInfo(id=r[0], name=r[1], source=r[2], started_ns=r[3], ended_ns=r[4],
                           actor=r[5], cluster=r[6], attributes=attributes,
                           keyframe_interval=r[8], operations=r[9], format=r[10])

    async def session(self, ref: str | int | None = None) -> Session:
        """A session by id or name; may be omitted when the file holds exactly one."""
        infos = await self.sessions()
        if not infos:
            raise SessionNotFound(f"{self.path}: the recording holds no sessions")
        if ref is None or ref == "":
            if len(infos) > 1:
                names = ", ".join(f"{i.id}:{i.name}" for i in infos[:10])
                raise SessionNotFound(
                    f"{self.path}: {len(infos)} sessions, pick one with --session ({names})")
            return await self._session(infos[0])
        text = str(ref)
        for info in infos:
            if info.name == text:
                return await self._session(info)
        if text.isdigit():
            for info in infos:
                if info.id == int(text):
                    return await self._session(info)
        raise SessionNotFound(f"{self.path}: no session {text!r} (see: replay-tui sessions {self.path})")

    async def _session(self, info: SessionInfo) -> Session:
        await self.load_dictionaries(info.id)
        return Session(self, info)


class Session:
    """One recorded session: operations by seq, reconciles, marks, objects."""

    def __init__(self, recording: Recording, info: SessionInfo):
        self.rec = recording
        self.info = info
        self.id = info.id
        self.last = info.operations
        self.format = info.format  # 1: written before rollups and the change index (engine.rollups)
        self._keys: dict[int, ObjectKey] = {}
        # Decoded keyframes (seq -> {obj_id: (blob_id, version seq)}), most recent last.
        self.keyframes: OrderedDict[int, dict[int, tuple[int, int]]] = OrderedDict()

    @property
    def path(self) -> str:
        return self.rec.path

    async def refresh(self) -> int:
        """Re-read the tail: the number of operations now committed, and whether recording ended."""
        row = await self.rec.fetchone(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM operations WHERE session_id = ?), ended_ns"
            " FROM sessions WHERE id = ?", (self.id, self.id))
        if row is None:
            raise SessionNotFound(f"{self.path}: session {self.info.name!r} disappeared")
        self.last = row[0]
        self.info.operations = row[0]
        self.info.ended_ns = row[1]
        if row[1] is None and not self.info.interrupted:
            await self.rec._mark_interrupted([self.info])  # the writer may have died since
        return self.last

    def check_position(self, seq: int, *, allow_zero: bool = False) -> int:
        low = 0 if allow_zero else 1
        if allow_zero and seq == 0:
            return 0  # "before the first op" exists even in a session with no ops yet
        if self.last == 0:
            raise PositionError(f"session {self.info.name!r} has no operations")
        if not low <= seq <= self.last:
            raise PositionError(f"position {seq} is out of range (the session has ops 1..{self.last})")
        return seq

    async def op(self, seq: int) -> Operation:
        """The full operation at ``seq``, bodies decoded."""
        self.check_position(seq)
        try:
            return await self._op(seq)
        except RecordingError as exc:
            raise at_op(exc, seq) from None

    async def _op(self, seq: int) -> Operation:
        row = await self.rec.fetchone(
            f"SELECT {_OP_COLUMNS} FROM operations WHERE session_id = ? AND seq = ?", (self.id, seq))
        if row is None:
            raise PositionError(f"no operation at position {seq}")
        query = None
        if row[17]:
            try:
                query = msgspec.json.decode(row[17])
            except (ValueError, TypeError):
                query = None
        return Operation(
            seq=row[0], ts_ns=row[1], duration_ns=row[2], verb=row[3], api_version=row[4],
            resource=row[5], kind=row[6], namespace=row[7], name=row[8], subresource=row[9],
            uid=row[10], resource_version=row[11], generation=row[12], status=row[13],
            reason=row[14], message=row[15], patch_type=row[16], query=query,
            request=await self.rec.body(row[18]), response=await self.rec.body(row[19]),
            actor=row[20], reconcile=row[21])

    async def op_object(self, seq: int) -> int | None:
        """The object id an op addressed (None for collection requests)."""
        row = await self.rec.fetchone(
            "SELECT obj_id FROM operations WHERE session_id = ? AND seq = ?", (self.id, seq))
        return row[0] if row else None

    async def rows(self, start: int, count: int) -> list[OpRow]:
        """Light rows ``start .. start+count-1``: what a timeline shows."""
        rows = await self.rec.fetchall(
            f"SELECT {OPROW_COLUMNS} FROM operations WHERE session_id = ? AND seq >= ? AND seq < ?"
            " ORDER BY seq", (self.id, start, start + count))
        return [OpRow(*r) for r in rows]

    async def seq_at_time(self, ts_ns: int) -> int:
        """The first op starting at or after ``ts_ns`` (the last op when none does)."""
        ts_ns = max(min(ts_ns, _INT64_MAX), -_INT64_MAX - 1)  # year 9999 still means "the end"
        row = await self.rec.fetchone(
            "SELECT seq FROM operations WHERE session_id = ? AND ts_ns >= ? ORDER BY ts_ns, seq LIMIT 1",
            (self.id, ts_ns))
        if row is None:
            if self.last == 0:
                raise PositionError(f"session {self.info.name!r} has no operations")
            return self.last
        return int(row[0])

    async def time_range(self) -> tuple[int, int]:
        """(first op's start, last op's start), in ns."""
        # Two subqueries: MIN and MAX in one SELECT defeat SQLite's index lookups (a full scan).
        row = await self.rec.fetchone(
            "SELECT (SELECT MIN(ts_ns) FROM operations WHERE session_id = ?),"
            " (SELECT MAX(ts_ns) FROM operations WHERE session_id = ?)", (self.id, self.id))
        return (row[0] or 0, row[1] or 0) if row else (0, 0)

    async def next_error(self, seq: int, forward: bool = True) -> int | None:
        op, order = (">", "ASC") if forward else ("<", "DESC")
        row = await self.rec.fetchone(
            f"SELECT seq FROM operations WHERE session_id = ? AND error = 1 AND seq {op} ?"
            f" ORDER BY seq {order} LIMIT 1", (self.id, seq))
        return row[0] if row else None

    # --- reconciles and marks ---------------------------------------------------

    async def reconcile(self, rid: int) -> Reconcile | None:
        row = await self.rec.fetchone(
            f"SELECT {_RECONCILE_COLUMNS} FROM reconciles WHERE session_id = ? AND id = ?", (self.id, rid))
        return _reconcile(row) if row else None

    async def next_reconcile(self, seq: int, forward: bool = True) -> Reconcile | None:
        """The next reconcile starting after ``seq`` (or the previous one starting before it)."""
        op, order = (">", "ASC") if forward else ("<", "DESC")
        row = await self.rec.fetchone(
            f"SELECT {_RECONCILE_COLUMNS} FROM reconciles WHERE session_id = ? AND start_seq {op} ?"
            f" ORDER BY start_seq {order}, id {order} LIMIT 1", (self.id, seq))
        return _reconcile(row) if row else None

    async def reconcile_count(self) -> int:
        row = await self.rec.fetchone("SELECT COUNT(*) FROM reconciles WHERE session_id = ?", (self.id,))
        return int(row[0]) if row else 0

    async def marks(self) -> list[Mark]:
        rows = await self.rec.fetchall(
            "SELECT name, seq, note, created_ns FROM marks WHERE session_id = ? ORDER BY seq, name",
            (self.id,))
        return [Mark(name=r[0], seq=r[1], note=r[2], created_ns=r[3]) for r in rows]

    # --- objects ------------------------------------------------------------------

    async def object_keys(self, obj_ids: Sequence[int]) -> dict[int, ObjectKey]:
        """Keys of objects by id (cached per session); an id the file does not hold is damage."""
        missing = [i for i in set(obj_ids) if i not in self._keys]
        for chunk in range(0, len(missing), 500):
            part = missing[chunk:chunk + 500]
            rows = await self.rec.fetchall(
                f"SELECT id, api_group, kind, namespace, name FROM objects WHERE id IN"
                f" ({','.join('?' * len(part))})", part)
            for r in rows:
                self._keys[r[0]] = ObjectKey(r[1], r[2], r[3], r[4])
        keys = self._keys
        for i in obj_ids:
            if i not in keys:  # (every id a reader has came from this file's rows)
                raise RecordingError(f"{self.path}: {CORRUPTED} (object id {i} is used but not recorded)")
        return {i: keys[i] for i in obj_ids}

    async def resolve_object(self, spec: str) -> tuple[int, ObjectKey]:
        """``KIND/NAMESPACE/NAME`` or ``KIND/NAME`` (cluster-scoped) to an object of this session.

        KIND matches a kind or a plural resource, case-insensitively, optionally
        qualified by its group (``Deployment.apps``).
        """
        parts = spec.strip().split("/")
        if len(parts) == 3:
            kind, namespace, name = parts
        elif len(parts) == 2:
            kind, name = parts
            namespace = None
        else:
            raise RecordingError(f"bad resource {spec!r}: expected KIND/NAMESPACE/NAME or KIND/NAME")
        if not kind or not name:
            raise RecordingError(f"bad resource {spec!r}: expected KIND/NAMESPACE/NAME or KIND/NAME")
        kind, _, group = kind.partition(".")
        # By kind first; by plural resource only when no kind matches: that lookup scans
        # the session's operations (resource is not indexed).
        rows: list[tuple[Any, ...]] = []
        for kind_cond, kind_params in (
                ("lower(o.kind) = lower(?)", [kind]),
                ("o.kind IN (SELECT kind FROM operations WHERE session_id = ? AND lower(resource) = lower(?)"
                 " LIMIT 1)", [self.id, kind])):
            sql = ("SELECT o.id, o.api_group, o.kind, o.namespace, o.name FROM objects o WHERE o.name = ?"
                   f" AND {kind_cond}"
                   " AND EXISTS (SELECT 1 FROM states s WHERE s.session_id = ? AND s.obj_id = o.id)")
            params: list[Any] = [name, *kind_params, self.id]
            if namespace is not None:
                sql += " AND o.namespace = ?"
                params.append(namespace)
            if group:
                sql += " AND o.api_group = ?"
                params.append(group)
            rows = await self.rec.fetchall(sql, params)
            if rows:
                break
        if not rows:
            raise RecordingError(f"no object {spec!r} in session {self.info.name!r}")
        if len(rows) > 1:
            options = ", ".join(str(ObjectKey(*r[1:])) for r in rows[:5])
            raise RecordingError(f"{spec!r} is ambiguous: {options}")
        r = rows[0]
        key = ObjectKey(r[1], r[2], r[3], r[4])
        self._keys[r[0]] = key
        return r[0], key
