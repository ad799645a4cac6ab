"""Field watchpoints: when did a field of an object change, forward or backward.

A watch is ``KIND/NAMESPACE/NAME:PATH`` (``Deployment/default/web:.spec.replicas``,
``Pod/default/api-0:.status.conditions[type=Ready].status``).  Its *change index*
answers continue and reverse-continue (``after``/``before``) at once, by reading the
object's versions outward from the position until the value differs: the writer's change
index (``engine.changes``) says which versions may have changed the path, SQLite keeps
only those (and versions it could not compare), and only their bodies are decompressed
and the field extracted, a few at first, more while no change turns up.  A first answer
costs the distance to the nearest change (a field that never changes again after N has
every later candidate read to prove it), not the object's history.

``update`` reads the whole history in one streamed query (the CLI's counts, the TUI's
index) and keeps the versions at which the field differs from the one before, compactly;
then next / prev / last are bisections over a sorted array, so stepping through changes
costs microseconds however long the session is.  A schema-1 session has no change index:
every version is a candidate.

Only the field is decoded: a msgspec type shaped like the path skips the rest
of each body, which makes the build several times faster than a full decode.
A session that is still growing extends its indexes on the next access.

Positions follow the engine's convention: position N is the state just after
op N.  ``last(N)`` is the change that gave the field its value at N (seq <= N);
``next(N)`` the first change after it (seq > N); ``prev(N)`` the last change
strictly before op N (seq < N), which is what a reverse-continue from a cursor
that sits on a change needs.
"""

from __future__ import annotations

import asyncio
import bisect
import weakref
from array import array
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import msgspec

from replay_tui.engine import codec
from replay_tui.engine.changes import EVERY, implied_by, index_path, token
from replay_tui.engine.diff import MISSING, PathError, change_kind, get_path, key_segment, list_key, parse_path
from replay_tui.engine.format import ObjectKey
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Session

INDEX_CACHE = 64  # change indexes kept per session
FETCH = 2048  # versions per fetch while building
FIRST = 16  # versions read by an outward scan's first chunk (then 4x as many, up to FETCH)
RECENT_VALUES = 4096  # distinct values whose JSON an index stores once
ABSENT, DELETED = -1, -2  # a change's value size: no value (absent; the object deleted)
NO_RECONCILE = -(1 << 63)


class FieldSpecError(RecordingError):
    """A watch expression that does not parse; ``column`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, expression: str = "", column: int = 0):
        super().__init__(message)
        self.expression = expression
        self.column = column
        self.short = message


class FieldRef(msgspec.Struct, frozen=True):
    """What a watch names: an object (as typed) and a field path ('' = the whole object)."""

    resource: str
    path: str

    def __str__(self) -> str:
        return f"{self.resource}:{self.path}"


def parse_field(text: str) -> FieldRef:
    """``KIND/NAMESPACE/NAME:PATH`` (or ``KIND/NAME:PATH``) -> FieldRef; PATH is checked here."""
    raw = text.strip()
    resource, sep, path = raw.partition(":")
    if not sep or not resource:
        raise FieldSpecError(
            f"bad field {text!r}: expected KIND/NAMESPACE/NAME:PATH (e.g. Deployment/default/web:.spec.replicas)",
            raw, 1)
    if resource.count("/") not in (1, 2) or any(not p for p in resource.split("/")):
        raise FieldSpecError(f"bad resource {resource!r} in {text!r}: expected KIND/NAMESPACE/NAME or KIND/NAME",
                             raw, 1)
    path = path.strip()
    if path == ".":
        path = ""
    check_path(path, raw, len(resource) + 2)
    return FieldRef(resource, path)


def check_path(path: str, expression: str = "", offset: int = 1) -> list[tuple[str, Any]]:
    """Parse a field path; FieldSpecError (with the column in ``expression``) when it is bad."""
    if path and path[0] not in ".[":
        raise FieldSpecError(f"bad field path {path!r}: it starts with '.' or '[' (e.g. .spec.replicas)",
                             expression or path, offset)
    try:
        return parse_path(path)
    except PathError as exc:
        column = offset
        text = str(exc)
        marker = " at column "
        if marker in text:
            try:
                column = offset + int(text.split(marker, 1)[1].split(":", 1)[0]) - 1
            except ValueError:
                pass
        raise FieldSpecError(text, expression or path, column) from None


def path_for(document: Any, parts: list[str | int]) -> str:
    """The watch path of a node reached by keys and list indexes (what a state pane knows).

    List items are named by their key field when the list has one, the way diffs
    name them (``[type=Ready]``, ``[name=web]``), so the watch follows the item
    when the list is reordered; otherwise by index.
    """
    path = ""
    node = document
    for part in parts:
        if isinstance(node, list) and isinstance(part, int):
            key = list_key(node)
            if key is not None and 0 <= part < len(node):
                value = node[part][key]
                path += f"[{key}={value if isinstance(value, str) else msgspec.json.encode(value).decode()}]"
            else:
                path += f"[{part}]"
            node = node[part] if 0 <= part < len(node) else None
        elif isinstance(node, dict) and isinstance(part, str):
            path += key_segment(part)
            node = node.get(part)
        else:
            raise FieldSpecError(f"no field {part!r} under {path or '.'}")
    return path


# --- values ---------------------------------------------------------------------------

def same(a: Any, b: Any) -> bool:
    """JSON equality: types matter (1 != 1.0 != true), dict key order does not."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def jsonable(value: Any) -> Any:
    """MISSING as None, for JSON output (a change's ``op`` says whether it was absent)."""
    return None if value is MISSING else value


class FieldChange(msgspec.Struct, kw_only=True):
    """One op at which a watched field took a new value (MISSING: absent, or object deleted)."""

    seq: int
    old: Any
    new: Any
    verb: str = ""
    actor: str = ""
    reconcile: int | None = None
    ts_ns: int = 0
    deleted: bool = False  # the op deleted the object

    @property
    def kind(self) -> str:
        return change_kind(self.old, self.new)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "op": self.kind, "old": jsonable(self.old), "new": jsonable(self.new),
                "verb": self.verb, "actor": self.actor, "reconcile": self.reconcile,
                "ts_ns": self.ts_ns, "object_deleted": self.deleted}


# --- extracting one field cheaply -----------------------------------------------------

_UNSET = msgspec.UNSET
_decode_any = msgspec.json.Decoder().decode


def _extractor(segments: list[tuple[str, Any]]) -> tuple[Any, list[tuple[str, Any]]]:
    """A decoder that keeps only the keys of the path's leading ``.key`` segments, and the rest.

    ``.status.conditions[type=Ready].status`` decodes {status: {conditions: list}}
    and leaves ``[type=Ready].status`` to ``get_path``.
    """
    lead = 0
    while lead < len(segments) and segments[lead][0] == "key":
        lead += 1
    if lead == 0:
        return None, segments
    rest = segments[lead:]
    typ: Any = object if not rest else (list[Any] if rest[0][0] != "key" else object)
    for depth in range(lead - 1, -1, -1):
        key = segments[depth][1]
        typ = msgspec.defstruct(
            f"_Watch{depth}", [("f", typ, msgspec.field(name=key, default=_UNSET))],
            gc=False)
    return msgspec.json.Decoder(typ).decode, rest


class FieldReader:
    """Reads one path out of stored bodies."""

    def __init__(self, path: str):
        self.segments = parse_path(path)
        self.decode, self.rest = _extractor(self.segments)
        self.lead = len(self.segments) - len(self.rest)

    def value(self, data: bytes) -> Any:
        if self.decode is None:
            return get_path(codec.from_json(data), self.rest)
        try:
            node = self.decode(data)
        except msgspec.ValidationError:  # a field of another shape (null, a string...): the slow way
            return get_path(codec.from_json(data), self.segments)
        except msgspec.DecodeError as exc:
            raise codec.BodyError(f"malformed body: {exc}") from None
        for _ in range(self.lead):
            node = node.f
            if node is _UNSET:
                return MISSING
        return get_path(node, self.rest) if self.rest else node




# --- the change index ------------------------------------------------------------------

async def candidates_sql(session: Session, paths: list[str], column: str) -> tuple[str, tuple[Any, ...]]:
    """An SQL condition on a ``states.changed`` column that keeps the versions which may have
    changed any of ``paths`` (all of them in a schema-1 session), and its parameters."""
    if session.format < 2:
        return "1", ()
    fmt = session.format
    looked = {index_path(p, fmt) for p in paths}
    if "" in looked:
        return "1", ()  # a path the index cannot narrow down (a list index: [2])
    items = {item for item in (implied_by(p, fmt) for p in looked) if item is not None}
    asked = looked | items
    rows = await session.rec.fetchall(
        f"SELECT path, id FROM paths WHERE session_id = ? AND path IN ({','.join('?' * len(asked))})",
        (session.id, *sorted(asked)))
    ids = dict(rows)
    found = sorted(ids[p] for p in looked if p in ids)
    listed = sorted(ids[p] for p in items if p in ids)  # a member is in every row listing its item
    clauses = [f"{column} IS NULL", *(f"instr({column}, ?) > 0" for _ in found),
               *(f"(instr({column}, '{EVERY}') > 0 AND instr({column}, ?) > 0)" for _ in listed)]
    return "(" + " OR ".join(clauses) + ")", tuple(token(i, fmt) for i in (*found, *listed))


class ChangeIndex:
    """The ops at which one field of one object changed, sorted by seq.

    Two ways in.  ``after``/``before`` answer at any time: from what ``update`` has read
    when that covers the answer, else by reading the object's versions outward from the
    position, a few at a time (the change index's candidates only, decoding only until the
    value differs), so the first answer costs the distance to the nearest change, not the
    object's history.  ``update`` reads the whole history once (and what a growing session
    adds later); then ``next``/``prev``/``last``/``value_at``/``changes`` are bisections
    in memory over what it read (the CLI's counts, the TUI's panel and continue).

    The changes are held compactly, ~65 bytes each (a hot object's 770,537 resourceVersions
    as Python objects took ~180 MB, now ~50 MB): parallel arrays of seqs, op fields and where the new
    value's JSON sits in one buffer; a value is decoded when it is asked for (the JSON of a value
    decoded from JSON decodes to an equal one: msgspec refuses numbers and strings that would not).
    """

    def __init__(self, session: Session, obj_id: int, key: ObjectKey | None, path: str):
        self.session = session
        self.obj_id = obj_id
        self.key = key
        self.path = path
        self._field = FieldReader(path)
        self.seqs = array("q")
        self._start = array("q")  # where change i's new value's JSON starts in ``_json``
        self._size = array("l")  # and its length: ABSENT or DELETED for no value
        self._json = bytearray()
        self._recent: dict[bytes, int] = {}  # a value's JSON -> where it already is (bounded)
        self._verb = array("l")  # ids into ``_names``
        self._actor = array("l")
        self._reconcile = array("q")  # NO_RECONCILE for none
        self._ts = array("q")
        self._names: list[str] = [""]
        self._name_ids: dict[str, int] = {"": 0}
        self.upto = 0  # versions up to this seq have been read
        self.versions = 0  # how many versions the object has (up to ``upto``)
        self.decoded = 0  # how many of them were candidates, decoded
        self.scanned = 0  # versions read by ``after``/``before`` beyond what ``update`` read
        self._current: Any = MISSING  # the value after the last version read
        self._at_upto: Any = MISSING  # the value at ``upto`` (``_current`` moves on while a build runs)
        self._lock = asyncio.Lock()

    @property
    def label(self) -> str:
        return f"{self.key if self.key is not None else self.obj_id}:{self.path or '.'}"

    def __len__(self) -> int:
        return len(self.seqs)

    # --- building --------------------------------------------------------------------

    async def update(self) -> ChangeIndex:
        """Read the versions recorded since the last build (all of them the first time).

        ``INDEXED BY``: without statistics SQLite prefers walking the primary key
        (session, seq) for the ORDER BY, which reads every version of every object.

        Three stages overlap: SQLite reads the next batch (on the connection's
        thread) while a worker thread decompresses and extracts the field from
        this one; the event loop only folds values into the index, so a TUI
        stays responsive while a large index builds.
        """
        async with self._lock:  # two callers must not fold the same versions twice
            last = self.session.last
            if last <= self.upto:
                return self
            mark = (len(self.seqs), len(self._json), self.versions, self.decoded, self._current)
            try:
                await self._read(last)
            except BaseException:  # cancelled or failed: forget the half-read range
                n, size, self.versions, self.decoded, self._current = mark
                for column in (self.seqs, self._start, self._size, self._verb, self._actor,
                               self._reconcile, self._ts):
                    del column[n:]
                del self._json[size:]
                self._recent.clear()
                raise
            self.upto, self._at_upto = last, self._current
        return self

    async def _read(self, last: int) -> None:
        rec = self.session.rec
        span = (self.session.id, self.obj_id, self.upto, last)
        row = await rec.fetchone(
            "SELECT COUNT(*) FROM states INDEXED BY states_object WHERE session_id = ? AND obj_id = ?"
            " AND seq > ? AND seq <= ?", span)
        self.versions += int(row[0]) if row else 0
        candidates, params = await candidates_sql(self.session, [self.path], "s.changed")
        stream = rec.stream(
            f"{_BODIES} WHERE s.session_id = ? AND s.obj_id = ? AND s.seq > ? AND s.seq <= ? AND {candidates}"
            " ORDER BY s.seq", (*span, *params), size=FETCH)
        cache: dict[int, Any] = {}
        pending: list[asyncio.Future[Any]] = []  # [fetch of the next batch, extraction of this one]
        ops: list[asyncio.Future[Any]] = []  # the op fields of the changes found, read meanwhile
        try:
            fetch: asyncio.Future[Any] = asyncio.ensure_future(anext(stream, None))
            pending.append(fetch)
            work: asyncio.Future[Any] | None = None
            while True:
                rows = await fetch
                pending.remove(fetch)
                following = None
                if rows is not None:
                    fetch = asyncio.ensure_future(anext(stream, None))
                    following = asyncio.ensure_future(asyncio.to_thread(self._extract, rows, cache))
                    pending += [fetch, following]
                if work is not None:
                    folded = len(self.seqs)
                    self._fold(await work)
                    pending.remove(work)
                    if len(self.seqs) > folded:
                        ops.append(asyncio.ensure_future(self._ops(folded, len(self.seqs))))
                work = following
                if rows is None:
                    break
            await asyncio.gather(*ops)
        except codec.BodyError as exc:
            raise RecordingError(f"{rec.path}: the recording is corrupted ({exc})") from None
        finally:
            for future in pending + ops:
                if not future.done():
                    future.cancel()
                try:
                    await future
                except BaseException:
                    pass
            await stream.aclose()

    def _value_of(self, blob_id: int | None, kind: int, data: bytes | None, cache: dict[int, Any]) -> Any:
        """The field in one version (MISSING for a deletion); any thread may call it."""
        if blob_id is None:
            return MISSING
        value = cache.get(blob_id, _UNSET)
        if value is _UNSET:
            if data is None:
                raise codec.BodyError(f"body {blob_id} is missing")
            value = self._field.value(self.session.rec.unpack(kind, data))
            if len(cache) < 4096:
                cache[blob_id] = value
        return value

    def _extract(self, rows: list[tuple[Any, ...]], cache: dict[int, Any]) -> list[tuple[Any, ...]]:
        """(seq, blob id, value) per version: runs on a worker thread."""
        value_of = self._value_of
        return [(seq, blob_id, value_of(blob_id, kind, data, cache)) for seq, blob_id, kind, data in rows]

    def _fold(self, versions: list[tuple[Any, ...]]) -> None:
        """Keep the versions at which the value differs from the one before (their ops' fields
        are filled in by ``_ops``)."""
        current = self._current
        for seq, blob_id, value in versions:
            self.decoded += 1
            if same(value, current):
                continue
            current = value
            self._append(seq, value, blob_id is None)
        self._current = current

    async def _ops(self, start: int, end: int) -> None:
        """The verb, actor, reconcile and time of changes ``start`` to ``end``, read for them alone
        (joined to every candidate version they cost as much as reading its body)."""
        rec, names = self.session.rec, self._name
        for at in range(start, end, 500):
            seqs = self.seqs[at:min(at + 500, end)]
            rows = await rec.fetchall(
                "SELECT seq, verb, actor, reconcile, ts_ns FROM operations WHERE session_id = ?"
                f" AND seq IN ({','.join('?' * len(seqs))})", (self.session.id, *seqs))
            where = {seq: at + i for i, seq in enumerate(seqs)}
            for seq, verb, actor, reconcile, ts_ns in rows:
                i = where[seq]
                self._verb[i], self._actor[i] = names(verb or ""), names(actor or "")
                self._reconcile[i] = NO_RECONCILE if reconcile is None else reconcile
                self._ts[i] = ts_ns or 0

    def _append(self, seq: int, value: Any, deleted: bool) -> None:
        """A change, its op's fields blank (name 0 is '') until ``_ops`` reads them."""
        self.seqs.append(seq)
        if value is MISSING:
            self._start.append(0)
            self._size.append(DELETED if deleted else ABSENT)
        else:
            data = msgspec.json.encode(value)  # (decodes to an equal value: it was decoded from JSON)
            at = self._recent.get(data)
            if at is None:
                at = len(self._json)
                self._json += data
                if len(self._recent) < RECENT_VALUES:
                    self._recent[data] = at
            self._start.append(at)
            self._size.append(len(data))
        self._verb.append(0)
        self._actor.append(0)
        self._reconcile.append(NO_RECONCILE)
        self._ts.append(0)

    def _name(self, text: str) -> int:
        n = self._name_ids.get(text)
        if n is None:
            n = self._name_ids[text] = len(self._names)
            self._names.append(text)
        return n

    # --- answers over what has been read ---------------------------------------------

    def _value(self, i: int) -> Any:
        """The new value of change ``i`` (decoded from its JSON: a fresh object each time)."""
        size = self._size[i]
        if size < 0:
            return MISSING
        at = self._start[i]
        return _decode_any(self._json[at:at + size])

    def change(self, i: int) -> FieldChange:
        reconcile = self._reconcile[i]
        return FieldChange(seq=self.seqs[i], old=self._value(i - 1) if i > 0 else MISSING,
                           new=self._value(i), verb=self._names[self._verb[i]],
                           actor=self._names[self._actor[i]],
                           reconcile=None if reconcile == NO_RECONCILE else reconcile,
                           ts_ns=self._ts[i], deleted=self._size[i] == DELETED)

    def changes(self, after: int = 0, upto: int | None = None) -> list[FieldChange]:
        """Every change with ``after < seq <= upto`` (all of them by default), oldest first."""
        lo = bisect.bisect_right(self.seqs, after)
        hi = len(self.seqs) if upto is None else bisect.bisect_right(self.seqs, upto)
        return [self.change(i) for i in range(lo, hi)]

    def next(self, seq: int) -> FieldChange | None:
        """Continue: the first change after position ``seq``."""
        i = bisect.bisect_right(self.seqs, seq)
        return self.change(i) if i < len(self.seqs) else None

    def prev(self, seq: int) -> FieldChange | None:
        """Reverse-continue: the last change strictly before op ``seq``."""
        i = bisect.bisect_left(self.seqs, seq)
        return self.change(i - 1) if i > 0 else None

    def last(self, seq: int) -> FieldChange | None:
        """The change that gave the field its value at position ``seq`` (the op that last changed it)."""
        i = bisect.bisect_right(self.seqs, seq)
        return self.change(i - 1) if i > 0 else None

    def value_at(self, seq: int) -> Any:
        """The field's value at position ``seq`` (MISSING: absent, or no such object then)."""
        i = bisect.bisect_right(self.seqs, seq)
        return self._value(i - 1) if i > 0 else MISSING

    def step(self, seq: int, forward: bool = True) -> FieldChange | None:
        """``next`` or ``prev``: what a debugger's continue / reverse-continue does."""
        return self.next(seq) if forward else self.prev(seq)

    # --- answers at any time ---------------------------------------------------------

    async def after(self, seq: int) -> FieldChange | None:
        """``next(seq)`` whether or not the index has been read that far: what it has read
        answers when it can; the rest is read forward from ``seq`` until the value differs."""
        upto, last = self.upto, self.session.last
        if seq < upto:
            found = self.next(seq)  # (complete up to ``upto``; one past it folded since is right too)
            if found is not None or upto >= last:
                return found
            seq, base = upto, self._at_upto
        elif seq >= last:
            return None
        elif seq == upto:
            base = self._at_upto
        else:
            base = await self._value_before(seq + 1)
        async with aclosing(self._outward(seq, last, forward=True)) as scan:
            async for rows, values in scan:
                for row, value in zip(rows, values):
                    if not same(value, base):
                        return await self._scanned(row, base, value)
        return None

    async def before(self, seq: int) -> FieldChange | None:
        """``prev(seq)`` whether or not the index has been read that far: the versions after
        what it has read are read backward from ``seq`` until two differ."""
        upto = self.upto
        if seq <= upto + 1:
            return self.prev(seq)
        newer: tuple[Any, Any] | None = None  # (row, value) of the newest candidate not yet told apart
        async with aclosing(self._outward(seq - 1, upto, forward=False)) as scan:
            async for rows, values in scan:
                for row, value in zip(rows, values):
                    if newer is not None and not same(value, newer[1]):
                        return await self._scanned(newer[0], value, newer[1])
                    newer = (row, value)
        if newer is not None and not same(self._at_upto, newer[1]):
            return await self._scanned(newer[0], self._at_upto, newer[1])
        return self.prev(upto + 1)

    async def _value_before(self, seq: int) -> Any:
        """The field's value just before op ``seq``: that of the latest candidate version before it."""
        async with aclosing(self._outward(seq - 1, 0, forward=False, first=1)) as scan:
            async for _rows, values in scan:
                return values[0]
        return MISSING

    async def _scanned(self, row: tuple[Any, ...], old: Any, new: Any) -> FieldChange:
        """The change a scan found (the op's fields are read for it alone: joined to every
        version scanned they cost as much as the rest of the scan)."""
        seq, blob_id, _kind, _data = row
        op = await self.session.rec.fetchone(
            "SELECT verb, actor, reconcile, ts_ns FROM operations WHERE session_id = ? AND seq = ?",
            (self.session.id, seq))
        verb, actor, reconcile, ts_ns = op if op is not None else ("", "", None, 0)
        return FieldChange(seq=seq, old=old, new=new, verb=verb or "", actor=actor or "",
                           reconcile=reconcile, ts_ns=ts_ns or 0, deleted=blob_id is None)

    async def _outward(self, seq: int, bound: int, *, forward: bool,
                       first: int = 0) -> AsyncGenerator[tuple[list[tuple[Any, ...]], list[Any]], None]:
        """The candidate versions from ``seq`` on (forward: after it, up to ``bound``; backward:
        at or before it, down to just above ``bound``), nearest first, with the field's value in
        each.  Fetched in chunks that grow (``first`` versions (FIRST), then 4x as many, up to
        FETCH), the next fetched while this one is decoded; decoded in parts that double (1, 2,
        4... versions), so a consumer that stops early had at most twice what it read decoded."""
        rec = self.session.rec
        candidates, params = await candidates_sql(self.session, [self.path], "s.changed")
        order = "s.seq > ? AND s.seq <= ? ORDER BY s.seq" if forward else \
            "s.seq <= ? AND s.seq > ? ORDER BY s.seq DESC"
        sql = f"{_BODIES} WHERE s.session_id = ? AND s.obj_id = ? AND {candidates} AND {order} LIMIT ?"
        head = (self.session.id, self.obj_id, *params)
        cache: dict[int, Any] = {}
        size, part = first or FIRST, 1
        fetch: asyncio.Future[Any] | None = asyncio.ensure_future(rec.fetchall(sql, (*head, seq, bound, size)))
        try:
            while fetch is not None:
                rows = await fetch
                fetch = None
                if len(rows) == size:  # there may be more: fetch them while these are decoded
                    seq = rows[-1][0] if forward else rows[-1][0] - 1
                    size = min(size * 4, FETCH)
                    fetch = asyncio.ensure_future(rec.fetchall(sql, (*head, seq, bound, size)))
                at = 0
                while at < len(rows):
                    chunk = rows[at:at + part]
                    at += len(chunk)
                    part = min(part * 2, FETCH)
                    self.scanned += len(chunk)
                    try:
                        values = await asyncio.to_thread(self._values, chunk, cache) if len(chunk) > 8 else \
                            self._values(chunk, cache)
                    except codec.BodyError as exc:
                        raise RecordingError(f"{rec.path}: the recording is corrupted ({exc})") from None
                    yield chunk, values
        finally:
            if fetch is not None:
                fetch.cancel()
                try:
                    await fetch
                except BaseException:
                    pass

    def _values(self, rows: list[tuple[Any, ...]], cache: dict[int, Any]) -> list[Any]:
        value_of = self._value_of
        return [value_of(row[1], row[2], row[3], cache) for row in rows]


_BODIES = ("SELECT s.seq, s.blob_id, b.codec, b.data FROM states s INDEXED BY states_object"
           " LEFT JOIN blobs b ON b.id = s.blob_id")


_indexes: weakref.WeakKeyDictionary[Session, OrderedDict[tuple[int, str], ChangeIndex]] = \
    weakref.WeakKeyDictionary()


async def change_index(session: Session, obj_id: int, path: str, *,
                       key: ObjectKey | None = None, build: bool = True) -> ChangeIndex:
    """The (cached) change index of one field of one object, brought up to the session's end
    (``build=False``: as it is; its ``after``/``before`` answer without reading it all)."""
    check_path(path)
    cache = _indexes.setdefault(session, OrderedDict())
    index = cache.get((obj_id, path))
    if index is None:
        if key is None:
            key = (await session.object_keys([obj_id])).get(obj_id)
        index = ChangeIndex(session, obj_id, key, path)
        cache[(obj_id, path)] = index
        if len(cache) > INDEX_CACHE:
            cache.popitem(last=False)
    else:
        cache.move_to_end((obj_id, path))
    return await index.update() if build else index


def forget(session: Session) -> None:
    """Drop the session's cached indexes (they are rebuilt on demand)."""
    _indexes.pop(session, None)


async def watch(session: Session, spec: str | FieldRef, *, build: bool = True) -> ChangeIndex:
    """``KIND/NAMESPACE/NAME:PATH`` -> the change index of that field (see ``change_index``)."""
    ref = parse_field(spec) if isinstance(spec, str) else spec
    obj_id, key = await session.resolve_object(ref.resource)
    return await change_index(session, obj_id, ref.path, key=key, build=build)


class WatchSet:
    """The fields a user watches in one session (the TUI's panel): add, remove, continue over all."""

    def __init__(self, session: Session):
        self.session = session
        self.watches: list[ChangeIndex] = []

    def __len__(self) -> int:
        return len(self.watches)

    async def add(self, obj_id: int, path: str, *, key: ObjectKey | None = None) -> ChangeIndex:
        for w in self.watches:
            if w.obj_id == obj_id and w.path == path:
                return w
        index = await change_index(self.session, obj_id, path, key=key)
        self.watches.append(index)
        return index

    async def add_spec(self, spec: str) -> ChangeIndex:
        ref = parse_field(spec)
        obj_id, key = await self.session.resolve_object(ref.resource)
        return await self.add(obj_id, ref.path, key=key)

    def remove(self, obj_id: int, path: str) -> bool:
        before = len(self.watches)
        self.watches = [w for w in self.watches if not (w.obj_id == obj_id and w.path == path)]
        return len(self.watches) != before

    async def refresh(self) -> None:
        """Catch up with a growing session."""
        for w in self.watches:
            await w.update()

    def step(self, seq: int, forward: bool = True) -> tuple[ChangeIndex, FieldChange] | None:
        """The nearest change of any watched field after (before) position ``seq``."""
        best: tuple[ChangeIndex, FieldChange] | None = None
        for w in self.watches:
            ch = w.step(seq, forward)
            if ch is None:
                continue
            if best is None or (ch.seq < best[1].seq if forward else ch.seq > best[1].seq):
                best = (w, ch)
        return best

    def values_at(self, seq: int) -> list[tuple[ChangeIndex, Any, FieldChange | None]]:
        """Each watch with its value at ``seq`` and the change that set it."""
        return [(w, w.value_at(seq), w.last(seq)) for w in self.watches]

