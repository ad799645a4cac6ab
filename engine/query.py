"""Trace queries: the filter language (engine.filters) over a whole session, streamed.

``stream`` yields matches window by window, so the first ones print while the
rest of the session is still being scanned: windows start small (a selective
query answers quickly near the start) and double up to ``filters.SCAN_WINDOW``.

``changed=PATH`` terms are decided against bodies: for every version an op
produced (``states`` rows, list items included) that the writer's change index
says may have changed one of the paths (``engine.changes``; SQLite filters the
rest out), the field is read from the new version and from the object's previous
one; the op matches when some object's value differs, for every changed= term
(alternatives of one term: any of them).  Only the field is decoded (engine.watch's
extractor), on a worker thread.  A schema-1 session has no change index: each of
its versions is read, in smaller windows.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from replay_tui.engine import codec
from replay_tui.engine.changes import format_path, implied_by, index_path, token
from replay_tui.engine.diff import MISSING, parse_path
from replay_tui.engine.filters import SCAN_WINDOW, Filter
from replay_tui.engine.format import OpRow
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import OPROW_COLUMNS, Session
from replay_tui.engine.watch import FieldReader, candidates_sql, jsonable, same

FIRST_WINDOW = 4096
BODY_FIRST = 256  # first window when bodies are read (changed=): the first match comes fast
BODY_WINDOW = 4096  # largest window when bodies are read
VALUE_CACHE = 32768


class FieldMatch(msgspec.Struct, kw_only=True):
    """A field an op changed (for changed= terms)."""

    obj_id: int
    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"obj_id": self.obj_id, "path": self.path, "old": jsonable(self.old),
                "new": jsonable(self.new), "op": "added" if self.old is MISSING else
                "removed" if self.new is MISSING else "changed"}


class Match(msgspec.Struct, kw_only=True):
    """One matching op, with the fields it changed when the query asked (changed=)."""

    row: OpRow
    fields: list[FieldMatch] = msgspec.field(default_factory=list)


class _Values:
    """Field values of stored bodies, by (path, blob id): read in batches, decoded off-loop."""

    def __init__(self, session: Session, paths: set[str]):
        self.session = session
        self.fields = {p: FieldReader(p) for p in paths}
        self.cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self.candidates: tuple[str, tuple[Any, ...]] | None = None  # the change-index condition
        self.trusted: dict[str, str] = {}  # paths the index decides, and their tokens
        # Windows of ops per query: wide when the change index leaves few versions to read.
        self.window = BODY_WINDOW if session.format < 2 else SCAN_WINDOW

    async def load(self, blob_ids: set[int]) -> None:
        missing = sorted({b for b in blob_ids
                          if any((p, b) not in self.cache for p in self.fields)})
        for start in range(0, len(missing), 500):
            part = missing[start:start + 500]
            rows = await self.session.rec.fetchall(
                f"SELECT id, codec, data FROM blobs WHERE id IN ({','.join('?' * len(part))})", part)
            if len(rows) != len(part):
                raise RecordingError(f"{self.session.path}: the recording is corrupted (a body is missing)")
            for kind, data in ((r[1], r[2]) for r in rows):
                if kind == codec.ZSTD_DICT:
                    await self.session.rec.load_dictionary(codec.Dictionaries.frame_dict_id(data))
                    break  # a session has one dictionary
            try:
                values = await asyncio.to_thread(self._extract, rows)
            except ValueError as exc:  # codec.BodyError
                raise RecordingError(f"{self.session.path}: the recording is corrupted ({exc})") from None
            for key, value in values:
                self.cache[key] = value
            while len(self.cache) > VALUE_CACHE:
                self.cache.popitem(last=False)

    def _extract(self, rows: list[tuple[Any, ...]]) -> list[tuple[tuple[str, int], Any]]:
        out = []
        unpack = self.session.rec.unpack
        for blob_id, kind, data in rows:
            raw = unpack(kind, data)
            for path, field in self.fields.items():
                out.append(((path, blob_id), field.value(raw)))
        return out

    def get(self, path: str, blob_id: int | None) -> Any:
        return MISSING if blob_id is None else self.cache.get((path, blob_id), MISSING)


FieldValues = _Values  # (the TUI's field columns read values the same way)


async def _trusted(session: Session, paths: set[str]) -> dict[str, str]:
    """Paths the change index records whole (``changes.index_path``: no list index, not too deep;
    not a list item's member, which a first version does not list),
    with the token that names them in ``states.changed`` ('' when no version changed them)."""
    if session.format < 2:
        return {}
    whole = {p: q for p, q in ((p, format_path(parse_path(p))) for p in paths)
             if index_path(p, session.format) == q and implied_by(q, session.format) is None}
    if not whole:
        return {}
    rows = await session.rec.fetchall(
        f"SELECT path, id FROM paths WHERE session_id = ? AND path IN ({','.join('?' * len(whole))})",
        (session.id, *sorted(set(whole.values()))))
    ids = dict(rows)
    return {p: token(ids[q], session.format) if q in ids else "" for p, q in whole.items()}


async def _changed_in(session: Session, flt: Filter, lo: int, hi: int, values: _Values,
                      with_values: bool = True) -> dict[int, list[FieldMatch]]:
    """Ops in (lo, hi] passing the SQL part whose versions change every changed= term.

    Without ``with_values`` (a count, a filtered timeline) a path the index records whole is
    decided by it, and only the other versions (the index could not compare them) are read;
    with them, every candidate is read and the values say (each match lists them)."""
    if values.candidates is None:
        values.candidates = await candidates_sql(session, list(values.fields), "s.changed")
        values.trusted = await _trusted(session, set(values.fields))
    candidates, candidate_params = values.candidates
    trusted = {} if with_values else values.trusted
    ops = (session.id, lo, hi, *flt.params)
    in_ops = f"s.seq IN (SELECT seq FROM operations WHERE session_id = ? AND seq > ? AND seq <= ? AND ({flt.sql}))"
    prev = ("(SELECT p.blob_id FROM states p INDEXED BY states_object WHERE p.session_id = s.session_id"
            " AND p.obj_id = s.obj_id AND p.seq < s.seq ORDER BY p.seq DESC LIMIT 1)")
    found: dict[int, set[str]] = {}
    fields: dict[int, list[FieldMatch]] = {}
    to_read: list[tuple[int, int, int | None, int | None, list[str]]] = []
    unsure = [p for p in values.fields if p not in trusted]
    if trusted:
        # What the index decides: no body is read, no previous version looked up.
        marks = {p: m for p, m in trusted.items() if m}
        if marks:
            rows = await session.rec.fetchall(
                f"SELECT s.seq, s.changed FROM states s WHERE s.session_id = ? AND s.seq > ? AND s.seq <= ?"
                f" AND ({' OR '.join('instr(s.changed, ?) > 0' for _ in marks)}) AND {in_ops}",
                (session.id, lo, hi, *marks.values(), *ops))
            for seq, changed in rows:
                found.setdefault(seq, set()).update(p for p, m in marks.items() if m in changed)
        read_sql, read_params = (f"(s.changed IS NULL OR {candidates})", candidate_params) if unsure \
            else ("s.changed IS NULL", ())
    else:
        read_sql, read_params = candidates, candidate_params
    rows = await session.rec.fetchall(
        f"SELECT s.seq, s.obj_id, s.blob_id, {'s.changed' if session.format >= 2 else 'NULL'}, {prev}"
        f" FROM states s WHERE s.session_id = ? AND s.seq > ? AND s.seq <= ? AND {read_sql} AND {in_ops}"
        " ORDER BY s.seq", (session.id, lo, hi, *read_params, *ops))
    for seq, obj_id, blob_id, changed, before in rows:
        if blob_id == before:
            continue
        check = [p for p in values.fields if changed is None or p not in trusted]
        if check:
            to_read.append((seq, obj_id, blob_id, before, check))
    if to_read:
        await values.load({b for r in to_read for b in (r[2], r[3]) if b is not None})
        for seq, obj_id, blob_id, before, check in to_read:
            for path in check:
                old, new = values.get(path, before), values.get(path, blob_id)
                if not same(old, new):
                    found.setdefault(seq, set()).add(path)
                    fields.setdefault(seq, []).append(FieldMatch(obj_id=obj_id, path=path, old=old, new=new))
    return {seq: fields.get(seq, []) for seq, paths in found.items()
            if all(any(p in paths for p in term) for term in flt.changed)}


def _windows(start: int, end: int, forward: bool, largest: int,
             first: int = FIRST_WINDOW) -> Iterator[tuple[int, int]]:
    """(lo, hi] ranges from ``start`` towards ``end``, growing from ``first`` to ``largest``."""
    size = min(first, largest)
    if forward:
        lo = start
        while lo < end:
            hi = min(lo + size, end)
            yield lo, hi
            lo = hi
            size = min(size * 2, largest)
    else:
        hi = end
        while hi > start:
            lo = max(hi - size, start)
            yield lo, hi
            hi = lo
            size = min(size * 2, largest)


async def stream(session: Session, flt: Filter, *, after: int = 0, upto: int | None = None,
                 limit: int | None = None) -> AsyncIterator[list[Match]]:
    """Matches in (after, upto], oldest first, a window at a time (only non-empty windows)."""
    end = session.last if upto is None else min(upto, session.last)
    values = _Values(session, {p for term in flt.changed for p in term}) if flt.changed else None
    largest = values.window if values is not None else SCAN_WINDOW
    found = 0
    for lo, hi in _windows(after, end, True, largest, BODY_FIRST if values is not None else FIRST_WINDOW):
        fields: dict[int, list[FieldMatch]] = {}
        if values is not None:
            fields = await _changed_in(session, flt, lo, hi, values)
            if not fields:
                continue
            seqs = sorted(fields)
            if limit is not None:
                seqs = seqs[: limit - found]
            rows = await _rows(session, seqs)
        else:
            rows = [OpRow(*r) for r in await session.rec.fetchall(
                f"SELECT {OPROW_COLUMNS} FROM operations WHERE session_id = ? AND seq > ? AND seq <= ?"
                f" AND ({flt.sql}) ORDER BY seq" + ("" if limit is None else f" LIMIT {int(limit - found)}"),
                (session.id, lo, hi, *flt.params))]
        if not rows:
            continue
        found += len(rows)
        yield [Match(row=r, fields=fields.get(r.seq, [])) for r in rows]
        if limit is not None and found >= limit:
            return


async def _rows(session: Session, seqs: list[int]) -> list[OpRow]:
    out: list[OpRow] = []
    for start in range(0, len(seqs), 500):
        part = seqs[start:start + 500]
        out.extend(OpRow(*r) for r in await session.rec.fetchall(
            f"SELECT {OPROW_COLUMNS} FROM operations WHERE session_id = ? AND seq IN"
            f" ({','.join('?' * len(part))}) ORDER BY seq", (session.id, *part)))
    return out


async def scan(session: Session, flt: Filter, after: int, upto: int) -> list[int]:
    """Matching seqs in (after, upto] (what a filtered timeline needs), exact for changed= too."""
    if not flt.changed:
        rows = await session.rec.fetchall(
            f"SELECT seq FROM operations WHERE session_id = ? AND seq > ? AND seq <= ?"
            f" AND ({flt.sql}) ORDER BY seq", (session.id, after, upto, *flt.params))
        return [r[0] for r in rows]
    return [seq async for seqs in _matching(session, flt, after, upto) for seq in seqs]


async def _matching(session: Session, flt: Filter, after: int, upto: int) -> AsyncIterator[list[int]]:
    """The seqs of matching ops in (after, upto], a window at a time (changed= terms decided by
    the change index where it can, by values where it cannot)."""
    values = _Values(session, {p for term in flt.changed for p in term})
    for lo, hi in _windows(after, min(upto, session.last), True, values.window, BODY_FIRST):
        found = await _changed_in(session, flt, lo, hi, values, with_values=False)
        if found:
            yield sorted(found)


async def find(session: Session, seq: int, flt: Filter, forward: bool = True) -> int | None:
    """The next (previous) matching op after (before) ``seq``; exact for changed= terms."""
    if not flt.changed:
        from replay_tui.engine.filters import find as sql_find
        return await sql_find(session, seq, flt, forward)
    values = _Values(session, {p for term in flt.changed for p in term})
    if forward:
        windows = _windows(seq, session.last, True, values.window, BODY_FIRST)
    else:
        windows = _windows(0, min(seq - 1, session.last), False, values.window, BODY_FIRST)
    for lo, hi in windows:
        found = await _changed_in(session, flt, lo, hi, values, with_values=False)
        if found:
            return min(found) if forward else max(found)
    return None


async def count(session: Session, flt: Filter) -> int:
    """How many ops match (reads bodies for changed= terms: a scan of the session)."""
    if not flt.changed:
        from replay_tui.engine.filters import count as sql_count
        return await sql_count(session, flt)
    n = 0
    async for seqs in _matching(session, flt, 0, session.last):
        n += len(seqs)
    return n
