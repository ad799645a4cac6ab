"""Import kubestep databases (the Go record/replay tool) as replay-tui sessions.

kubestep keeps SQLite tables::

    operations(session_id, sequence_number, timestamp, operation_type, resource_kind,
               namespace, name, resource_data, error, duration_ms, actor_id, uid,
               resource_version, generation, verb)
    reconcile_spans(id, session_id, actor_id, start_ts, end_ts, duration_ms, kind,
                    namespace, name, trigger_uid, trigger_resource_version,
                    trigger_reason, error)

Each kubestep ``session_id`` becomes a session of its own (named after it; one
transaction each), or only the one ``--session`` names.  Mapping:

* seq order is ``sequence_number`` order; ``timestamp`` (kubestep writes Unix
  seconds; ms, us, ns and RFC 3339 text are recognised too) and
  ``duration_ms`` give time and duration;
* ``operation_type`` GET/LIST/CREATE/UPDATE/PATCH/DELETE/WATCH gives the verb
  (``verb`` refines it: ``deletecollection``, or the event type of a WATCH
  row: ADDED/MODIFIED/DELETED; a WATCH row whose ``resource_data`` is a watch
  event ``{"type", "object"}`` is that event);
* ``resource_data`` is the object JSON (the response; for a failed write, the
  request); kind and apiVersion missing from it are put back (apiVersion from
  another row of the kind, else a table of built-in kinds);
* ``error`` text becomes an error op: status and reason read from the text
  (``not found`` -> 404 NotFound, ``the object has been modified`` -> 409
  Conflict, ...; 500 InternalError when nothing matches), the text as message;
* ``actor_id`` is the actor; a reconcile span is one ``Reconcile`` whose
  reconciler is its ``actor_id``, ``source_id`` its ``id``, error its error;
  it covers the ops (not watch events) of its actor between ``start_ts`` and
  ``end_ts`` (from its first such op), and its trigger is the latest op on the object
  ``trigger_uid`` (at ``trigger_resource_version`` when given) before it.
  ``trigger_reason`` has no place in the format and is dropped.

A file that is empty, not SQLite, or without an ``operations`` table (a
replay-tui recording, say) is refused in one line, and so is a database
without operations.  Rows that cannot be read (unknown operation type, ``resource_data`` that is
not JSON, a timestamp that is not one) are counted as malformed, by
``sequence_number``; the op is kept without the unreadable part when it can
be.  The source is read in chunks through a read-only connection.
"""

from __future__ import annotations

import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import msgspec

from replay_tui.engine.format import (
    CREATE,
    DELETE,
    DELETECOLLECTION,
    EVENT_VERBS,
    GET,
    LIST,
    PATCH,
    UPDATE,
    WATCH,
    Operation,
)
from replay_tui.engine.readonly import lock_down, read_uri
from replay_tui.engine.schema import SQLITE_MAGIC, RecordingError
from replay_tui.recorder.importers.common import (
    CORE_BY_KIND,
    CORE_BY_LOWER_KIND,
    CORE_BY_PLURAL,
    INPUT_ERRORS,
    BadInput,
    Bodies,
    ImportFormatError,
    ImportResult,
    Malformed,
    Progress,
    Tally,
    Target,
    check_input,
    check_op,
    classify_error,
    describe_input_error,
    epoch_to_ns,
    pluralise,
    status_body,
)

SOURCE = "kubestep"
EXPECTED = "a kubestep database"
NOT_KUBESTEP = "not a kubestep database (expected an SQLite file with an operations table)"
CHUNK = 1000
MAX_TRIGGERS = 100_000
MAX_OPEN_SPANS = 1000

OP_COLUMNS = ("session_id", "sequence_number", "timestamp", "operation_type", "resource_kind",
              "namespace", "name", "resource_data", "error", "duration_ms", "actor_id", "uid",
              "resource_version", "generation", "verb")
REQUIRED_OP_COLUMNS = ("session_id", "sequence_number", "timestamp", "operation_type")
SPAN_COLUMNS = ("id", "session_id", "actor_id", "start_ts", "end_ts", "duration_ms", "kind",
                "namespace", "name", "trigger_uid", "trigger_resource_version", "trigger_reason",
                "error")

TYPE_VERBS = {"GET": GET, "LIST": LIST, "CREATE": CREATE, "UPDATE": UPDATE, "PATCH": PATCH,
              "DELETE": DELETE, "DELETECOLLECTION": DELETECOLLECTION, "WATCH": WATCH}


class _Meta(msgspec.Struct):
    uid: str = ""
    resourceVersion: str = ""


class _Head(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    metadata: _Meta | None = None


class _WatchEvent(msgspec.Struct):
    type: str = ""
    object: msgspec.Raw = msgspec.Raw()


_decode_head = msgspec.json.Decoder(_Head).decode
_decode_event = msgspec.json.Decoder(_WatchEvent).decode


class _Row(msgspec.Struct):
    session_id: Any = None
    sequence_number: Any = None
    timestamp: Any = None
    operation_type: Any = None
    resource_kind: Any = None
    namespace: Any = None
    name: Any = None
    resource_data: Any = None
    error: Any = None
    duration_ms: Any = None
    actor_id: Any = None
    uid: Any = None
    resource_version: Any = None
    generation: Any = None
    verb: Any = None


class _Span(msgspec.Struct):
    id: Any = None
    session_id: Any = None
    actor_id: Any = None
    start_ts: Any = None
    end_ts: Any = None
    duration_ms: Any = None
    kind: Any = None
    namespace: Any = None
    name: Any = None
    trigger_uid: Any = None
    trigger_resource_version: Any = None
    trigger_reason: Any = None
    error: Any = None
    start_ns: int = 0
    end_ns: int | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _shown(value: Any) -> Any:
    """A value as a reason quotes it (text columns arrive as bytes)."""
    return _text(value) if isinstance(value, bytes) else value


def _ns(value: Any) -> int | None:
    return epoch_to_ns(value)


#: What reading a damaged database raises: SQLite's errors, and (when SQLite quotes the damaged
#: bytes in its message) the failure to decode that message.
_DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)


# --- the source database -----------------------------------------------------------------

class Source:
    """A kubestep database, open read-only."""

    def __init__(self, path: str):
        check_input(path, EXPECTED)
        with open(path, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise ImportFormatError(f"{path}: {NOT_KUBESTEP}")
        self.path = path
        uri = read_uri(path)  # reads without leaving -wal/-shm files beside the source
        try:
            self.conn = sqlite3.connect(uri, uri=True)
            # Text as bytes: a value that is not UTF-8 is one bad row, not an unreadable database.
            self.conn.text_factory = bytes
            lock_down(self.conn)
            tables = {_text(r[0]) for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except _DB_ERRORS as exc:
            raise ImportFormatError(f"{path}: {NOT_KUBESTEP} ({describe_input_error(exc)})") from None
        if "meta" in tables and "sessions" in tables:
            self.conn.close()
            raise ImportFormatError(f"{path}: a replay-tui recording, {NOT_KUBESTEP}")
        if "operations" not in tables:
            self.conn.close()
            raise ImportFormatError(f"{path}: {NOT_KUBESTEP}")
        try:
            self.op_columns = self._columns("operations")
            self.span_columns = self._columns("reconcile_spans") if "reconcile_spans" in tables else set()
        except _DB_ERRORS as exc:
            self.conn.close()
            raise ImportFormatError(f"{path}: {NOT_KUBESTEP} ({describe_input_error(exc)})") from None
        missing = [c for c in REQUIRED_OP_COLUMNS if c not in self.op_columns]
        if missing:
            self.conn.close()
            raise ImportFormatError(f"{path}: {NOT_KUBESTEP} (operations has no column "
                                    f"{', '.join(missing)})")
        if self.span_columns and not {"id", "session_id", "start_ts"} <= self.span_columns:
            self.span_columns = set()

    def _columns(self, table: str) -> set[str]:
        return {_text(r[1]) for r in self.conn.execute(f"PRAGMA table_info({table})")}

    def _select(self, columns: tuple[str, ...], present: set[str]) -> str:
        return ", ".join(c if c in present else f"NULL AS {c}" for c in columns)

    def close(self) -> None:
        self.conn.close()

    def sessions(self) -> list[tuple[str, int]]:
        """(session id, operation count), oldest session first."""
        try:
            rows = self.conn.execute(
                "SELECT session_id, COUNT(*), MIN(timestamp) FROM operations"
                " GROUP BY session_id ORDER BY MIN(timestamp), session_id").fetchall()
        except _DB_ERRORS as exc:
            raise RecordingError(f"{self.path}: cannot read operations ({describe_input_error(exc)})") from None
        return [(_text(r[0]), int(r[1])) for r in rows]

    def api_versions(self, session_id: str) -> dict[str, str]:
        """kind -> apiVersion as the session's own objects say it (one query, in SQLite)."""
        if "resource_data" not in self.op_columns or "resource_kind" not in self.op_columns:
            return {}
        try:
            rows = self.conn.execute(
                "SELECT resource_kind, json_extract(resource_data, '$.apiVersion') FROM operations"
                " WHERE session_id = ? AND json_valid(resource_data)"
                " AND json_type(resource_data, '$.apiVersion') = 'text'"
                " GROUP BY resource_kind", (session_id,)).fetchall()
        except _DB_ERRORS:
            return {}  # no JSON1: learned while importing instead
        return {_text(k): _text(v) for k, v in rows if k and v}

    def operations(self, session_id: str) -> Iterator[_Row]:
        sql = (f"SELECT {self._select(OP_COLUMNS, self.op_columns)} FROM operations"
               " WHERE session_id = ? ORDER BY sequence_number")
        yield from self._stream(sql, (session_id,), _Row)

    def spans(self, session_id: str) -> Iterator[_Span]:
        if not self.span_columns:
            return iter(())
        sql = (f"SELECT {self._select(SPAN_COLUMNS, self.span_columns)} FROM reconcile_spans"
               " WHERE session_id = ? ORDER BY start_ts, id")
        return self._stream(sql, (session_id,), _Span)

    def _stream(self, sql: str, params: tuple[Any, ...], struct: Any) -> Iterator[Any]:
        try:
            cur = self.conn.execute(sql, params)
            while True:
                rows = cur.fetchmany(CHUNK)
                if not rows:
                    return
                for row in rows:
                    yield struct(*row)
        except _DB_ERRORS as exc:
            raise RecordingError(f"{self.path}: cannot read ({describe_input_error(exc)})") from None


# --- one session ---------------------------------------------------------------------------

class _Spans:
    """Places reconcile spans among the ops, which arrive in seq order.

    A span begins before the first op of its actor at or after its start, and
    ends before the first op after its end; ops of its actor in between carry it.
    """

    def __init__(self, sw: Any, spans: Iterator[_Span], malformed: Malformed):
        self.sw = sw
        self.malformed = malformed
        self.spans = spans
        self.next: _Span | None = None
        self.waiting: list[_Span] = []
        self.open: list[tuple[_Span, int]] = []
        self.by_uid: OrderedDict[str, int] = OrderedDict()
        self.by_uid_rv: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.count = 0
        self._advance()

    def _advance(self) -> None:
        for span in self.spans:
            start = _ns(span.start_ts)
            if start is None:
                self.malformed.add(0, f"reconcile span {_text(span.id)!r}: bad start_ts "
                                      f"{_shown(span.start_ts)!r}")
                continue
            span.start_ns = start
            span.end_ns = _ns(span.end_ts)
            if span.end_ns is None and span.duration_ms not in (None, ""):
                try:
                    span.end_ns = start + int(float(span.duration_ms) * 1_000_000)
                except (TypeError, ValueError, OverflowError):  # OverflowError: infinity
                    pass
            self.next = span
            return
        self.next = None

    def _begin(self, span: _Span) -> int:
        uid, rv = _text(span.trigger_uid), _text(span.trigger_resource_version)
        trigger = None
        if uid:
            trigger = (self.by_uid_rv.get((uid, rv)) if rv else None) or self.by_uid.get(uid)
        rid = self.sw.begin_reconcile(
            _text(span.actor_id), kind=_text(span.kind), namespace=_text(span.namespace),
            name=_text(span.name), trigger_seq=trigger, source_id=_text(span.id),
            ts_ns=span.start_ns or None)
        self.count += 1
        self.open.append((span, rid))
        if len(self.open) > MAX_OPEN_SPANS:
            self.open.pop(0)  # never ended: stays open, no longer takes ops
        return rid

    def _end(self, span: _Span, rid: int) -> None:
        self.sw.end_reconcile(rid, error=_text(span.error), ts_ns=span.end_ns or None)

    def before(self, ts: int, actor: str) -> int | None:
        """Spans that start or end by ``ts``; returns the span the next op (by ``actor``) is in."""
        while self.next is not None and self.next.start_ns <= ts:
            self.waiting.append(self.next)
            self._advance()
        for span, rid in [o for o in self.open if o[0].end_ns is not None and o[0].end_ns < ts]:
            self._end(span, rid)
            self.open.remove((span, rid))
        for span in [s for s in self.waiting if s.end_ns is not None and s.end_ns < ts]:
            self.waiting.remove(span)
            rid = self._begin(span)  # no op of its own: an empty span here
            self._end(span, rid)
            self.open.remove((span, rid))
        if not actor:
            return None
        for span in [s for s in self.waiting if _text(s.actor_id) == actor]:
            self.waiting.remove(span)
            self._begin(span)
        for span, rid in reversed(self.open):
            if _text(span.actor_id) == actor:
                return rid
        return None

    def seen(self, seq: int, uid: str, rv: str) -> None:
        """Remember the latest op on an object, to find span triggers."""
        if not uid:
            return
        for index, key in ((self.by_uid, uid), (self.by_uid_rv, (uid, rv))):
            index[key] = seq  # type: ignore[index]
            index.move_to_end(key)  # type: ignore[arg-type]
            if len(index) > MAX_TRIGGERS:
                index.popitem(last=False)

    def finish(self) -> None:
        while self.next is not None:
            self.waiting.append(self.next)
            self._advance()
        for span in self.waiting:
            rid = self._begin(span)
            if span.end_ns is not None:
                self._end(span, rid)
        self.waiting.clear()
        for span, rid in self.open:
            if span.end_ns is not None:
                self._end(span, rid)
        self.open.clear()


class KubestepSession:
    """Streams one kubestep session into one replay-tui session."""

    def __init__(self, sw: Any, api_versions: dict[str, str], spans: Iterator[_Span],
                 malformed: Malformed, bodies: Bodies | None = None):
        self.sw = sw
        self.bodies = bodies if bodies is not None else Bodies()
        self.api_versions = dict(api_versions)
        self.malformed = malformed
        self.tally = Tally()
        self.spans = _Spans(sw, spans, malformed)
        self.last_ts = 0
        self.rows = 0

    def _type(self, kind: str, data: bytes | None) -> tuple[str, str, str, _Meta]:
        """(kind, apiVersion, plural, object metadata) of a row."""
        head = None
        if data is not None:
            try:
                head = _decode_head(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                head = None
        core = CORE_BY_KIND.get(kind) or CORE_BY_LOWER_KIND.get(kind.lower()) or CORE_BY_PLURAL.get(kind)
        if head is not None and head.kind and not head.kind.endswith("List") and head.kind != "Status":
            kind = head.kind
        elif core:
            kind = core[0]
        api_version = self.api_versions.get(kind, "")
        if not api_version and head is not None and head.apiVersion:
            api_version = self.api_versions[kind] = head.apiVersion
        if not api_version and core:
            api_version = core[1]
        plural = core[2] if core else pluralise(kind.lower())
        meta = head.metadata if head is not None and head.metadata is not None else _Meta()
        return kind, api_version, plural, meta

    def row(self, r: _Row) -> None:
        self.rows += 1
        line = r.sequence_number if isinstance(r.sequence_number, int) else self.rows
        try:
            self._row(r, line)
        except INPUT_ERRORS as exc:  # bad bytes, deep nesting, numbers out of range: one bad row
            self.malformed.add(line, describe_input_error(exc))

    def _row(self, r: _Row, line: int) -> None:
        otype = _text(r.operation_type).strip().upper()
        verb_col = _text(r.verb).strip().lower()
        verb = TYPE_VERBS.get(otype)
        if verb is None and verb_col in TYPE_VERBS.values():
            verb = verb_col
        if verb is None:
            self.malformed.add(line, f"unknown operation_type {_text(r.operation_type)!r}")
            return
        if verb == DELETE and verb_col == DELETECOLLECTION:
            verb = DELETECOLLECTION
        ts = _ns(r.timestamp)
        if ts is None:
            self.malformed.add(line, f"bad timestamp {_shown(r.timestamp)!r}")
            ts = self.last_ts
        self.last_ts = max(self.last_ts, ts)
        data: bytes | None = None
        raw = r.resource_data
        if raw not in (None, "", b""):
            # bytes (text or a blob), else a number: never bytes(n), which is n zero bytes
            data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
            try:
                data = self.bodies(data, secret=False, what="resource_data")  # checked: any JSON
            except BadInput as exc:
                self.malformed.add(line, str(exc))
                data = None
        if verb == WATCH:
            event_verb = verb_col if verb_col in EVENT_VERBS else ""
            if data is not None and data.lstrip().startswith(b"{"):
                try:
                    event = _decode_event(data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    event = None
                if event is not None and event.type and event.object:
                    event_verb = event.type.lower() if event.type.lower() in EVENT_VERBS else event_verb
                    data = bytes(event.object) if event_verb else data
            verb = event_verb or WATCH
        kind, api_version, plural, meta = self._type(_text(r.resource_kind), data)
        if data is not None and plural == "secrets" and api_version == "v1":
            data = self.bodies(data, secret=True)  # as recorded, before a list is wrapped
        error = _text(r.error).strip()
        duration = 0
        if r.duration_ms not in (None, ""):
            try:
                duration = max(0, int(float(r.duration_ms) * 1_000_000))
            except (TypeError, ValueError, OverflowError):  # OverflowError: infinity
                self.malformed.add(line, f"bad duration_ms {_shown(r.duration_ms)!r}")
        generation = r.generation if isinstance(r.generation, int) and r.generation > 0 else None
        actor = _text(r.actor_id)
        op = Operation(verb=verb, ts_ns=ts, duration_ns=duration, api_version=api_version,
                       resource=plural, kind=kind, namespace=_text(r.namespace), name=_text(r.name),
                       uid=_text(r.uid) or meta.uid,
                       resource_version=_text(r.resource_version) or meta.resourceVersion,
                       generation=generation, actor=actor)
        if data is not None and verb == LIST and data.lstrip().startswith(b"["):
            data = b'{"kind":%s,"apiVersion":%s,"items":%s}' % (
                msgspec.json.encode(kind + "List"), msgspec.json.encode(api_version), data)
        if data is not None:
            data = self._with_type(data, kind, api_version, verb)
        if error:
            op.status, op.reason = classify_error(error)
            op.message = error
            op.request = data
            op.response = status_body(op.status, op.reason, error, kind=plural, name=op.name)
        else:
            if verb in EVENT_VERBS:
                op.status = 0
            else:
                op.status = 201 if verb == CREATE else 200
            if verb in (DELETE, DELETECOLLECTION):
                op.request = data
            else:
                op.response = data
        check_op(op)
        # Watch events are what a controller hears, not what its reconciler does.
        op.reconcile = self.spans.before(ts, "" if verb in EVENT_VERBS else actor)
        seq = self.sw.append(op)
        self.tally.count(op.verb, op.error)
        self.spans.seen(seq, op.uid, op.resource_version)

    @staticmethod
    def _with_type(data: bytes, kind: str, api_version: str, verb: str) -> bytes:
        """Put kind/apiVersion into an object that lacks them, so its state can be replayed."""
        if not data.startswith(b"{") or not kind:
            return data
        try:
            head = _decode_head(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return data
        if head.kind or head.apiVersion:
            return data
        want = kind + "List" if verb == LIST else kind
        prefix = msgspec.json.encode({"kind": want, "apiVersion": api_version})
        return prefix[:-1] + (b"," if data[1:].strip() != b"}" else b"") + data[1:]

    def finish(self) -> None:
        self.spans.finish()


def import_kubestep(src: str, db: str, *, session: str | None = None,
                    progress: bool | None = None, redact: bool = True) -> list[ImportResult]:
    """Import every session of a kubestep database (or the one named) into recording ``db``.

    Each session is its own transaction: a failure rolls back the session
    being imported (sessions imported before it stay).
    """
    source = Source(src)
    try:
        sessions = source.sessions()
        if session is not None:
            chosen = [s for s in sessions if s[0] == session]
            if not chosen:
                names = ", ".join(s[0] for s in sessions[:10]) or "none"
                raise ImportFormatError(f"{src}: no kubestep session {session!r} (sessions: {names})")
            sessions = chosen
        if not sessions:
            raise ImportFormatError(f"{src}: the kubestep database holds no operations, "
                                    "nothing to import")
        total = sum(n for _, n in sessions)
        bar = Progress(f"importing {os.path.basename(src)}", total, unit="rows", enabled=progress)
        results: list[ImportResult] = []
        done = 0
        with Target(db) as target:
            for session_id, _count in sessions:
                malformed = Malformed()
                attributes: dict[str, Any] = {
                    "source_file": os.path.abspath(src), "format": "kubestep database",
                    "kubestep_session": session_id}
                with target.session(session_id or "kubestep", SOURCE, attributes) as sw:
                    importer = KubestepSession(sw, source.api_versions(session_id),
                                               source.spans(session_id), malformed, Bodies(redact))
                    try:
                        for row in source.operations(session_id):
                            importer.row(row)
                            done += 1
                            if bar.enabled:
                                bar.update(done, done)
                    finally:
                        bar.done()
                    importer.finish()
                    if importer.tally.ops == 0 and importer.spans.count == 0:
                        raise ImportFormatError(
                            f"{src}: kubestep session {session_id!r} has no readable operation "
                            f"({malformed.count} malformed rows; first: {malformed.describe_first()})")
                    attrs = importer.tally.attributes()
                    attrs.update(reconciles=importer.spans.count, malformed=malformed.count,
                                 malformed_lines=malformed.lines, rows=importer.rows,
                                 **importer.bodies.attributes())
                    sw.close(**attrs)
                    results.append(ImportResult(
                        db=db, session=sw.name, session_id=sw.id, source=src,
                        ops=importer.tally.ops, verbs=dict(importer.tally.verbs),
                        reconciles=importer.spans.count, errors=importer.tally.errors,
                        malformed=malformed.count, malformed_lines=list(malformed.lines),
                        redacted=importer.bodies.redacted))
        return results
    finally:
        source.close()
