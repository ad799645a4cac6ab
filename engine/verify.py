"""Checking a recording: SQLite's integrity check, then the recording's own invariants.

``check`` yields one line per problem found (``replay-tui check``); ``first_damaged_op``
finds, for a reader that hit a damaged row, the op to name in its one-line error.  Both
read through their own read-only connection (engine.readonly) with text as bytes, so a
damaged text cell is a finding, not an exception.

What a sound recording holds (the writer's invariants):

* every session's ops are seqs 1..N with no gap, N its ``op_count`` once closed;
* every text column is UTF-8, every verb one the format knows;
* every body an op or a state version names exists and decodes (zstd, then JSON);
* every state version names an object that exists and a seq of its session;
* every keyframe decodes, and maps each live object to the version the states table
  holds for it at that point (replaying the states from the start must agree);
* reconcile spans and marks point at ops of their session.

Tables the check does not know (added by a later release) are left alone.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from replay_tui.engine import codec
from replay_tui.engine.format import VERBS
from replay_tui.engine.readonly import lock_down, read_uri
from replay_tui.engine.schema import APPLICATION, SCHEMA_VERSION

REQUIRED = ("meta", "sessions", "operations", "objects", "blobs", "states", "keyframes")
OP_TEXT = ("verb", "api_version", "resource", "kind", "namespace", "name", "subresource", "uid",
           "resource_version", "reason", "message", "patch_type", "query", "actor")
INTEGRITY_LINES = 100  # problems SQLite's integrity check reports at most
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)  # a damaged page can make SQLite's own message unreadable


def connect(path: str) -> sqlite3.Connection:
    """A read-only connection that returns text as bytes (a damaged cell is data, not an error)."""
    conn = sqlite3.connect(read_uri(path), uri=True)
    conn.text_factory = bytes
    lock_down(conn)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def first_damaged_op(path: str, session_id: int, *, bodies: bool = False) -> int | None:
    """The first op of a session that cannot be read (a row SQLite fails on, text that is not
    UTF-8, a verb that is none; with ``bodies``, a body of the op or a version it made that
    does not decode); None when every op reads."""
    try:
        conn = connect(path)
    except DB_ERRORS:
        return None
    last = 0
    try:
        cur = conn.execute(f"SELECT seq, {', '.join(OP_TEXT)}, request_blob, response_blob FROM operations"
                           " WHERE session_id = ? ORDER BY seq", (session_id,))
        for row in cur:
            last = row[0] if isinstance(row[0], int) else last + 1
            text = row[1:-2]
            if _bad_text(text) or text[0].decode("utf-8", "replace") not in VERBS:
                return last
            if bodies and not all(_body_ok(conn, b) for b in (*row[-2:], *_versions(conn, session_id, last))):
                return last
        return None
    except DB_ERRORS:
        return last + 1
    finally:
        conn.close()


def _versions(conn: sqlite3.Connection, session_id: int, seq: int) -> list[Any]:
    return [r[0] for r in conn.execute("SELECT blob_id FROM states WHERE session_id = ? AND seq = ?",
                                       (session_id, seq))]


def _body_ok(conn: sqlite3.Connection, blob_id: Any) -> bool:
    if blob_id is None:
        return True
    row = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    if row is None or not isinstance(row[1], bytes):
        return False
    try:
        codec.from_json(codec.unpack(row[0], row[1]))
    except (ValueError, TypeError):
        return False
    return True


def _bad_text(cells: tuple[Any, ...]) -> str | None:
    """The first column of ``OP_TEXT`` whose cell is not UTF-8 text."""
    try:  # the common case in one decode: an ASCII newline between cells cannot complete a broken sequence
        b"\n".join([c for c in cells if c is not None]).decode("utf-8")
        return None
    except (UnicodeDecodeError, TypeError):
        pass
    for name, cell in zip(OP_TEXT, cells):
        if cell is None:
            continue
        if not isinstance(cell, bytes):
            return name
        try:
            cell.decode("utf-8")
        except UnicodeDecodeError:
            return name
    return None


class _Checker:
    def __init__(self, path: str, quick: bool, counts: dict[str, int]):
        self.path = path
        self.quick = quick
        self.counts = counts
        self.conn = connect(path)

    def run(self) -> Iterator[str]:
        yield from self._integrity()
        tables = {_text(r[0]) for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED if t not in tables]
        if missing:
            yield f"missing tables: {', '.join(missing)} (not a complete replay-tui recording)"
            return
        yield from _guard("meta", self._meta)
        sessions: list[tuple[Any, ...]] = []
        yield from _guard("sessions", lambda: self._sessions(sessions))
        for sid, name, ended_ns, op_count, attributes in sessions:
            label = f"session {_text(name)!r} (id {sid})"
            yield from _guard(label, functools.partial(self._session, sid, _text(name), ended_ns, op_count,
                                                       attributes, tables))
        yield from _guard("operations", self._orphans)
        if not self.quick:
            yield from _guard("bodies", self._bodies)

    def _sessions(self, out: list[tuple[Any, ...]]) -> Iterator[str]:
        out += self.conn.execute("SELECT id, name, ended_ns, op_count, attributes FROM sessions ORDER BY id")
        self.counts["sessions"] = len(out)
        yield from ()

    # --- SQLite's view ----------------------------------------------------------------------

    def _integrity(self) -> Iterator[str]:
        pragma = "quick_check" if self.quick else "integrity_check"
        for (row,) in self.conn.execute(f"PRAGMA {pragma}({INTEGRITY_LINES})"):
            for text in _text(row).splitlines():  # one row may hold several lines
                if text.strip() and text != "ok" and not text.startswith("*** in database"):
                    yield f"sqlite: {text.strip()}"

    def _meta(self) -> Iterator[str]:
        meta = {_text(k): _text(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        if meta.get("application") != APPLICATION:
            yield f"meta: application is {meta.get('application')!r}, not {APPLICATION!r}"
        version = meta.get("schema_version", "")
        if not version.isdigit() or not 1 <= int(version) <= SCHEMA_VERSION:
            yield f"meta: schema_version {version!r} is not one this release reads (1..{SCHEMA_VERSION})"

    # --- one session --------------------------------------------------------------------------

    def _session(self, sid: int, name: str, ended_ns: Any, op_count: Any, attributes: Any,
                 tables: set[str]) -> Iterator[str]:
        where = f"session {name!r} (id {sid})"
        try:
            if not isinstance(msgspec.json.decode(attributes or b"{}"), dict):
                yield f"{where}: attributes are not a JSON object"
        except (ValueError, RecursionError) as exc:
            yield f"{where}: attributes are not JSON ({_one_line(exc)})"
        last = 0
        for row in self.conn.execute(
                f"SELECT seq, {', '.join(OP_TEXT)} FROM operations WHERE session_id = ? ORDER BY seq", (sid,)):
            seq = row[0]
            if not isinstance(seq, int):
                yield f"{where}: an op has seq {_text(seq)!r}, not a number"
                continue
            if seq != last + 1:
                yield f"{where}: ops {last + 1}..{seq - 1} are missing (seqs jump from {last} to {seq})" \
                    if seq > last + 1 else f"{where}: op {seq} comes after op {last}"
            last = max(last, seq)
            self.counts["ops"] = self.counts.get("ops", 0) + 1
            bad = _bad_text(row[1:])
            if bad:
                yield f"{where} op {seq}: column {bad} is not UTF-8 text"
            elif _text(row[1]) not in VERBS:
                yield f"{where} op {seq}: unknown verb {_text(row[1])[:40]!r}"
        if ended_ns is not None and op_count != last:
            yield f"{where}: closed with op_count {op_count}, but its last op is {last}"
        yield from self._references(sid, where, last)
        yield from self._keyframes(sid, where)
        if "reconciles" in tables:
            for rid, start, end in self.conn.execute(
                    "SELECT id, start_seq, end_seq FROM reconciles WHERE session_id = ?"
                    " AND (start_seq < 1 OR start_seq > ? + 1 OR end_seq > ? OR end_seq < start_seq - 1)",
                    (sid, last, last)):
                yield f"{where}: reconcile {rid} spans ops {start}..{end}, outside 1..{last}"
        if "marks" in tables:
            for mark, seq in self.conn.execute(
                    "SELECT name, seq FROM marks WHERE session_id = ? AND (seq < 0 OR seq > ?)", (sid, last)):
                yield f"{where}: mark {_text(mark)!r} at op {seq}, outside 0..{last}"

    def _references(self, sid: int, where: str, last: int) -> Iterator[str]:
        checks: list[tuple[str, str, Callable[[tuple[Any, ...]], str]]] = [
            ("SELECT o.seq, o.request_blob FROM operations o LEFT JOIN blobs b ON b.id = o.request_blob"
             " WHERE o.session_id = ? AND o.request_blob IS NOT NULL AND b.id IS NULL", "",
             lambda r: f"{where} op {r[0]}: request body {r[1]} is missing"),
            ("SELECT o.seq, o.response_blob FROM operations o LEFT JOIN blobs b ON b.id = o.response_blob"
             " WHERE o.session_id = ? AND o.response_blob IS NOT NULL AND b.id IS NULL", "",
             lambda r: f"{where} op {r[0]}: response body {r[1]} is missing"),
            ("SELECT o.seq, o.obj_id FROM operations o LEFT JOIN objects j ON j.id = o.obj_id"
             " WHERE o.session_id = ? AND o.obj_id IS NOT NULL AND j.id IS NULL", "",
             lambda r: f"{where} op {r[0]}: object {r[1]} is missing"),
            ("SELECT s.seq, s.obj_id, s.blob_id FROM states s LEFT JOIN blobs b ON b.id = s.blob_id"
             " WHERE s.session_id = ? AND s.blob_id IS NOT NULL AND b.id IS NULL", "",
             lambda r: f"{where} op {r[0]}: the version of object {r[1]} names body {r[2]}, which is missing"),
            ("SELECT s.seq, s.obj_id FROM states s LEFT JOIN objects j ON j.id = s.obj_id"
             " WHERE s.session_id = ? AND j.id IS NULL", "",
             lambda r: f"{where} op {r[0]}: a version names object {r[1]}, which is missing"),
            ("SELECT seq, obj_id FROM states WHERE session_id = ? AND (seq < 1 OR seq > ?)", "last",
             lambda r: f"{where}: a version of object {r[1]} at op {r[0]}, outside 1..{last}"),
        ]
        for sql, extra, line in checks:
            params = (sid, last) if extra else (sid,)
            for n, row in enumerate(self.conn.execute(sql, params)):
                if n == 20:
                    yield f"{where}: ... more like the above"
                    break
                yield line(row)

    def _keyframes(self, sid: int, where: str) -> Iterator[str]:
        """Each keyframe must equal the live map that replaying the states up to it gives."""
        live: dict[int, tuple[int | None, int]] = {}
        states = self.conn.execute(
            "SELECT seq, obj_id, blob_id FROM states WHERE session_id = ? ORDER BY seq", (sid,))
        pending = next(states, None)
        for kf_seq, data in self.conn.execute(
                "SELECT seq, data FROM keyframes WHERE session_id = ? ORDER BY seq", (sid,)):
            while pending is not None and pending[0] <= kf_seq:
                vseq, obj_id, blob_id = pending
                if blob_id is None:
                    live.pop(obj_id, None)
                else:
                    live[obj_id] = (blob_id, vseq)
                pending = next(states, None)
            try:
                entries = codec.decode_msgpack(data)
                mapping = {int(e[0]): (int(e[1]), int(e[2])) for e in entries}
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                yield f"{where}: the keyframe at op {kf_seq} does not decode ({_one_line(exc)})"
                continue
            if mapping != live:
                wrong = sorted(set(mapping.items()) ^ set(live.items()))[:3]
                yield (f"{where}: the keyframe at op {kf_seq} disagrees with the versions before it "
                       f"({len(set(mapping.items()) ^ set(live.items()))} entries differ, e.g. object "
                       f"{wrong[0][0]})")

    def _orphans(self) -> Iterator[str]:
        for (sid,) in self.conn.execute(
                "SELECT DISTINCT o.session_id FROM operations o LEFT JOIN sessions s ON s.id = o.session_id"
                " WHERE s.id IS NULL"):
            yield f"ops of session id {sid}, which is not in the sessions table"

    # --- bodies ---------------------------------------------------------------------------

    def _bodies(self) -> Iterator[str]:
        bad = 0
        for blob_id, codec_id, data in self.conn.execute("SELECT id, codec, data FROM blobs"):
            self.counts["bodies"] = self.counts.get("bodies", 0) + 1
            try:
                if not isinstance(data, bytes):
                    raise codec.BodyError(f"stored as {type(data).__name__}, not bytes")
                codec.from_json(codec.unpack(codec_id, data))
            except (ValueError, TypeError) as exc:
                bad += 1
                if bad <= 20:
                    yield f"{self._body_owner(blob_id)}: body {blob_id} does not decode ({_one_line(exc)[:160]})"
        if bad > 20:
            yield f"... {bad - 20} more bodies do not decode"

    def _body_owner(self, blob_id: int) -> str:
        row = self.conn.execute(
            "SELECT s.name, o.session_id, o.seq FROM operations o JOIN sessions s ON s.id = o.session_id"
            " WHERE o.request_blob = ? OR o.response_blob = ? LIMIT 1", (blob_id, blob_id)).fetchone()
        if row is None:
            row = self.conn.execute(
                "SELECT s.name, t.session_id, t.seq FROM states t JOIN sessions s ON s.id = t.session_id"
                " WHERE t.blob_id = ? LIMIT 1", (blob_id,)).fetchone()
        if row is None:
            return "a body no op names"
        return f"session {_text(row[0])!r} (id {row[1]}) op {row[2]}"


def _guard(label: str, make: Callable[[], Iterator[str]]) -> Iterator[str]:
    """The lines of one part of the check; damage that stops it is one more line, and the
    check goes on with the next part."""
    try:
        yield from make()
    except DB_ERRORS as exc:
        yield f"{label}: {_one_line(exc)} (the rest of it could not be checked)"


def check(path: str, *, quick: bool = False, counts: dict[str, int] | None = None) -> Iterator[str]:
    """One line per problem in the recording at ``path`` (nothing when it is sound).

    ``counts`` receives how many sessions, ops and bodies were checked.

    Raises ``sqlite3.Error`` (or UnicodeDecodeError) only when the file cannot be read at all;
    damage met midway is reported as a problem line, and the check goes on where it can.
    """
    checker = _Checker(path, quick, counts if counts is not None else {})
    try:
        yield from _guard("sqlite", checker.run)
    finally:
        checker.conn.close()
