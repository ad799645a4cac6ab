"""Write-time rollups: the aggregates statistics and reports read, kept by the writer.

The writer folds every op into a few tables in the same transaction as the op rows,
so ``stats``, the TUI's statistics and a report's summary read O(buckets), not O(ops):

* ``rollup_ops``: per (verb, kind, status, resource, subresource, latency bucket):
  count, total and max latency, the op with the max.  Counts by verb, kind and status,
  latency percentiles per verb and kind, the endpoint table, slow-operation counts.
* ``rollup_time``: per time bucket: ops, errors, and the requests' latency histogram
  at 4 buckets per octave (~19 %), at one resolution (``LEVEL_NS``: 1 ms to 11 days):
  the finest at which the session spans at most ``TIME_LIMIT`` buckets.  As the session
  grows, its buckets are added up into the next resolution (ten times coarser), so a
  reader reads at most ``TIME_LIMIT`` buckets.  Level ``SECONDS`` keeps per-second
  totals for the peak rate.  Buckets count from the session's first op.
* ``rollup_objects``: per object: reads, watches, writes, versions, and what the
  access patterns need (successful GETs, the versions they returned, the most GETs of
  one version) and the reconcilers that wrote it.
* ``rollup_slowest``: the ``SLOWEST_KEPT`` slowest requests.
* ``rollup_counts``: reconcile spans, namespaces, the time base.
* ``rollup_reconcilers``: per reconciler: spans, failures, cycle times, request time
  per verb, its slowest op, writes per kind.

Recordings of schema 1 (``Session.format`` 1) have no rollups: the same rows are
computed from their operations by the queries here (``*_v1``), so every reader has
one code path and an old file is simply slower to summarise.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from replay_tui.engine.format import (
    EVENT_VERBS,
    GET,
    LIST,
    READ_VERBS,
    VERB_ORDER,
    WATCH,
    WRITE_VERBS,
)
from replay_tui.engine.schema import OP_COLUMNS

#: Requests that have a latency: a watch lasts as long as its stream, a watch event has none.
LATENCY_VERBS = frozenset(VERB_ORDER) - EVENT_VERBS - {WATCH}
LEVEL_NS = tuple(1_000_000 * 10**k for k in range(10))  # 1 ms ... 10^6 s
TIME_LIMIT = 3840  # buckets of one resolution a reader may have to read
SECONDS = 100  # the level of per-second totals (code 0: other ops, 1: requests)
SECOND_NS = 1_000_000_000
LATENCY_SHIFT = 3  # timeline latency code: dur_bucket >> 3 (4 buckets per octave)
NON_REQUEST = -1  # timeline code of ops that are not requests with a latency
SLOWEST_KEPT = 1000
SPAN_NAMES = 65536  # reconcile ids remembered with their reconciler (ops name the recent ones)
BEGIN, END = 0, 1  # span events (``committer.Batch.span_events``)

if TYPE_CHECKING:
    from replay_tui.engine.store import Session

_encode = msgspec.msgpack.encode
_decode = msgspec.msgpack.decode

_LATENCY_IN = ",".join(f"'{v}'" for v in sorted(LATENCY_VERBS))
_UPSERT_OPS = (
    "INSERT INTO rollup_ops (session_id, verb, kind, status, resource, subresource, bucket, n, total_ns,"
    " max_ns, max_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
    " n = n + excluded.n, total_ns = total_ns + excluded.total_ns,"
    " max_seq = CASE WHEN excluded.max_ns > max_ns THEN excluded.max_seq ELSE max_seq END,"
    " max_ns = MAX(max_ns, excluded.max_ns)")
_UPSERT_TIME = (
    "INSERT INTO rollup_time (session_id, level, t, code, n, errors, max_ns) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO UPDATE SET n = n + excluded.n, errors = errors + excluded.errors,"
    " max_ns = MAX(max_ns, excluded.max_ns)")
# t // 10 with Python's rounding (toward minus infinity: an op before the first one has t < 0)
_COARSEN = (
    "INSERT INTO rollup_time (session_id, level, t, code, n, errors, max_ns) SELECT ?, ?, d, code, SUM(n),"
    " SUM(errors), MAX(max_ns) FROM (SELECT CASE WHEN t >= 0 THEN t / 10 ELSE -((9 - t) / 10) END AS d,"
    " code, n, errors, max_ns FROM rollup_time WHERE session_id = ? AND level = ?) GROUP BY d, code"
    " ON CONFLICT DO UPDATE SET n = n + excluded.n, errors = errors + excluded.errors,"
    " max_ns = MAX(max_ns, excluded.max_ns)")
_UPSERT_COUNTS = ("INSERT INTO rollup_counts (session_id, what, key, n) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT DO UPDATE SET n = n + excluded.n")
_PUT_OBJECTS = "INSERT OR REPLACE INTO rollup_objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_PUT_RECONCILERS = "INSERT OR REPLACE INTO rollup_reconcilers (session_id, reconciler, data) VALUES (?, ?, ?)"

# A per-object record: [reads (get/list), watches, writes, versions, successful gets, versions
# those returned, most gets of one version, that version's seq (the 8 stored columns), the
# object's version now (seq; 0: none yet), the version the last GET returned (-1: none),
# GETs of it so far, {reconciler: writes} or None]
_READS, _WATCHES, _WRITES, _VERSIONS, _GETS, _VREAD, _MAXR, _MAXV, _NOW, _LASTV, _RUN, _WRITERS = range(12)
# The columns of an op row (``OP_COLUMNS``) the fold reads, in the order it unpacks them.
_FOLDED = itemgetter(*(OP_COLUMNS.index(c) for c in (
    "seq", "ts_ns", "duration_ns", "verb", "kind", "namespace", "name", "status", "resource", "subresource",
    "dur_bucket", "error", "obj_id", "reconcile")))
_STORED = _NOW
BUCKETS_PER_OCTAVE = 32  # latency histogram resolution: ~2.2 % wide buckets


def duration_bucket(duration_ns: int) -> int:
    """Log-scale latency bucket, stored per op so percentiles are a GROUP BY away."""
    if duration_ns <= 1:
        return 0
    return int(math.log2(duration_ns) * BUCKETS_PER_OCTAVE)


def bucket_floor_ns(bucket: int) -> float:
    """The shortest latency of a bucket, in nanoseconds."""
    return 2 ** (bucket / BUCKETS_PER_OCTAVE) if bucket > 0 else 0.0


def bucket_value_ns(bucket: int) -> float:
    """Geometric middle of a latency bucket, in nanoseconds."""
    if bucket <= 0:
        return 0.0
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_OCTAVE)


def level_for(span_ns: int) -> int:
    """The finest time resolution a session spanning ``span_ns`` still has."""
    for level, width in enumerate(LEVEL_NS):
        if span_ns <= TIME_LIMIT * width:
            return level
    return len(LEVEL_NS) - 1


class Reconciler(msgspec.Struct):
    """One reconciler's rollup (a msgpack document per reconciler)."""

    spans: int = 0
    failed: int = 0
    cycle: dict[int, list[int]] = msgspec.field(default_factory=dict)  # bucket -> [n, total, max] (ns)
    verbs: dict[str, int] = msgspec.field(default_factory=dict)  # request verb -> total latency (ns)
    slowest: list[Any] = msgspec.field(default_factory=list)  # [ns, seq, verb, kind, ns, name, sub, rid]
    writes_by_kind: dict[str, int] = msgspec.field(default_factory=dict)


_decode_reconciler = msgspec.msgpack.Decoder(Reconciler).decode


class RollupWriter:
    """The writer's side: folds ops into batch aggregates, and keeps what spans batches.

    A batch (``start`` ... ``statements``) is undone by ``rollback`` when its
    transaction fails: the writer then retries the same ops.
    """

    def __init__(self, session_id: int):
        self.sid = session_id
        self.base: int | None = None  # ts of the first op: time buckets count from it
        self.lo = self.hi = 0
        self.finest = 0  # levels below it are no longer written
        self.objects: dict[int, list[Any]] = {}
        self.slowest: list[tuple[int, int]] = []  # min-heap of (duration, -seq)
        self.reconcilers: dict[str, Reconciler] = {}
        self.span_names: OrderedDict[int, str] = OrderedDict()
        self._saved: tuple[Any, ...] = ()
        self._undo_objects: dict[int, list[Any] | None] = {}
        self._undo_reconcilers: dict[str, Reconciler | None] = {}
        self.start()

    # --- a batch ------------------------------------------------------------------------

    def start(self) -> None:
        self.cube: dict[tuple[Any, ...], list[int]] = {}
        self.time: dict[tuple[int, int], list[int]] = {}  # (t at level self.finest, code) -> [n, errors, max]
        self.seconds: dict[tuple[int, int], int] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.touched: set[int] = set()
        self.touched_reconcilers: set[str] = set()
        self._undo_objects = {}
        self._undo_reconcilers = {}
        # (span_names only gains entries: a retried batch adds the same ones again)
        self._saved = (self.base, self.lo, self.hi, self.finest, list(self.slowest))
        self._slowest_before = {seq for _, seq in self.slowest}

    def rollback(self) -> None:
        self.base, self.lo, self.hi, self.finest, self.slowest = self._saved
        for obj_id, record in self._undo_objects.items():
            if record is None:
                self.objects.pop(obj_id, None)
            else:
                self.objects[obj_id] = record
        for name, doc in self._undo_reconcilers.items():
            if doc is None:
                self.reconcilers.pop(name, None)
            else:
                self.reconcilers[name] = doc
        self.start()

    def _object(self, obj_id: int) -> list[Any]:
        record = self.objects.get(obj_id)
        if obj_id not in self.touched:
            self.touched.add(obj_id)
            self._undo_objects[obj_id] = None if record is None else [
                *record[:_WRITERS], dict(record[_WRITERS]) if record[_WRITERS] else None]
        if record is None:
            record = self.objects[obj_id] = [0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, None]
        return record

    def _reconciler(self, name: str) -> Reconciler:
        doc = self.reconcilers.get(name)
        if name not in self.touched_reconcilers:
            self.touched_reconcilers.add(name)
            self._undo_reconcilers[name] = None if doc is None else msgspec.structs.replace(
                doc, cycle={k: list(v) for k, v in doc.cycle.items()}, verbs=dict(doc.verbs),
                slowest=list(doc.slowest), writes_by_kind=dict(doc.writes_by_kind))
        if doc is None:
            doc = self.reconcilers[name] = Reconciler()
        return doc

    # --- folding ------------------------------------------------------------------------

    def fold(self, ops: list[tuple[Any, ...]], states: list[tuple[Any, ...]],
             events: list[tuple[Any, ...]]) -> None:
        """A batch, in the order it happened: its op rows (``OP_COLUMNS``), the versions they
        recorded ((seq, obj_id, ...), in seq order: a version counts before the op's GET reads
        it) and its span events (``committer.Batch.span_events``: a span's name is known to
        the ops after its start).

        The hot path of a commit: one loop over the rows with everything it touches in
        locals; per-batch state goes back to the attributes at the end."""
        cube, cells, seconds, counts = self.cube, self.time, self.seconds, self.counts
        heap, span_names, objects, touched = self.slowest, self.span_names, self.objects, self.touched
        width = LEVEL_NS[self.finest]
        base, lo, hi = self.base, self.lo, self.hi
        latency, reads, writes = LATENCY_VERBS, READ_VERBS, WRITE_VERBS
        # heap[0] once the heap is full: only a request slower than it enters (ties: the later seq)
        floor = heap[0] if len(heap) >= SLOWEST_KEPT else None
        docs: dict[str, Reconciler] = {}  # the reconcilers this batch touched
        pick = _FOLDED
        n_ops, n_states, n_events = len(ops), len(states), len(events)
        s = e = 0
        state_seq = states[0][0] if n_states else None
        event_at = events[0][0] if n_events else n_ops + 1
        for i in range(n_ops):
            while event_at <= i:
                self._span_event(events[e])
                e += 1
                event_at = events[e][0] if e < n_events else n_ops + 1
            seq, ts, duration, verb, kind, namespace, name, status, resource, subresource, bucket, error, \
                obj_id, reconcile = pick(ops[i])
            if base is None:
                base = lo = hi = ts
            elif ts < lo:
                lo = ts
            elif ts > hi:
                hi = ts
            key = (verb, kind, status, resource, subresource, bucket)
            group = cube.get(key)
            if group is None:
                cube[key] = [1, duration, duration, seq]
            else:
                group[0] += 1
                group[1] += duration
                if duration > group[2]:
                    group[2] = duration
                    group[3] = seq
            rel = ts - base
            if verb in latency:
                request = 1
                tkey = (rel // width, bucket >> LATENCY_SHIFT)
                cell = cells.get(tkey)
                if cell is None:
                    cells[tkey] = [1, error, duration]
                else:
                    cell[0] += 1
                    cell[1] += error
                    if duration > cell[2]:
                        cell[2] = duration
                entry = (duration, -seq)
                if floor is None:
                    heapq.heappush(heap, entry)
                    if len(heap) >= SLOWEST_KEPT:
                        floor = heap[0]
                elif entry > floor:
                    heapq.heapreplace(heap, entry)
                    floor = heap[0]
            else:
                request = 0
                tkey = (rel // width, NON_REQUEST)
                cell = cells.get(tkey)
                if cell is None:
                    cells[tkey] = [1, error, 0]
                else:
                    cell[0] += 1
                    cell[1] += error
            skey = (rel // SECOND_NS, request)
            seconds[skey] = seconds.get(skey, 0) + 1
            if namespace:
                nkey = ("namespace", namespace)
                counts[nkey] = counts.get(nkey, 0) + 1
            writer = None
            if reconcile is not None:
                writer = span_names.get(reconcile)
                if writer is not None:
                    doc = docs.get(writer)
                    if doc is None:
                        doc = docs[writer] = self._reconciler(writer)
                    if request:
                        doc.verbs[verb] = doc.verbs.get(verb, 0) + duration
                        slowest = doc.slowest
                        if not slowest or duration > slowest[0]:
                            doc.slowest = [duration, seq, verb, kind, namespace, name, subresource, reconcile]
                    if verb in writes:
                        label = kind or "?"
                        doc.writes_by_kind[label] = doc.writes_by_kind.get(label, 0) + 1
            if obj_id is not None:
                if verb in reads:
                    record = objects[obj_id] if obj_id in touched else self._object(obj_id)
                    record[_WATCHES if verb == WATCH else _READS] += 1
                elif verb in writes:
                    record = objects[obj_id] if obj_id in touched else self._object(obj_id)
                    record[_WRITES] += 1
                    if writer is not None:
                        writers = record[_WRITERS]
                        if writers is None:
                            writers = record[_WRITERS] = {}
                        writers[writer] = writers.get(writer, 0) + 1
            while state_seq == seq:  # the versions this op recorded
                oid = states[s][1]
                record = objects[oid] if oid in touched else self._object(oid)
                record[_VERSIONS] += 1
                record[_NOW] = seq
                s += 1
                state_seq = states[s][0] if s < n_states else None
            if obj_id is not None and verb == GET and not error:  # it returned the version current now
                record = objects[obj_id] if obj_id in touched else self._object(obj_id)
                record[_GETS] += 1
                version = record[_NOW]
                if version == record[_LASTV]:
                    record[_RUN] += 1
                else:  # versions only move forward: a version once left is never read again
                    record[_LASTV] = version
                    record[_RUN] = 1
                    record[_VREAD] += 1
                if record[_RUN] > record[_MAXR]:
                    record[_MAXR] = record[_RUN]
                    record[_MAXV] = version
        for event in events[e:]:
            self._span_event(event)
        self.base, self.lo, self.hi = base, lo, hi

    def _span_event(self, event: tuple[Any, ...]) -> None:
        if event[1] == BEGIN:
            self.span_begin(event[2], event[3])
        else:
            self.span_end(event[2], event[3], event[4])

    def span_begin(self, rid: int, reconciler: str) -> None:
        self.span_names[rid] = reconciler
        if len(self.span_names) > SPAN_NAMES:
            self.span_names.popitem(last=False)
        self._reconciler(reconciler).spans += 1
        self.counts[("reconciles", "")] = self.counts.get(("reconciles", ""), 0) + 1

    def span_end(self, reconciler: str, duration_ns: int | None, failed: bool) -> None:
        doc = self._reconciler(reconciler)
        if failed:
            doc.failed += 1
        if duration_ns is not None and duration_ns >= 0:
            cell = doc.cycle.setdefault(duration_bucket(duration_ns), [0, 0, 0])
            cell[0] += 1
            cell[1] += duration_ns
            cell[2] = max(cell[2], duration_ns)

    # --- the rows of a batch ------------------------------------------------------------------

    def statements(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """(SQL, rows) to execute in the batch's transaction."""
        sid = self.sid
        out: list[tuple[str, list[tuple[Any, ...]]]] = []
        out.append((_UPSERT_OPS, [(sid, *key, g[0], g[1], g[2], g[3]) for key, g in self.cube.items()]))
        counts = dict(self.counts)
        base_saved = self._saved[0]
        if self.base is not None and base_saved is None:
            counts[("base", "")] = self.base
        # Time: one resolution is kept, the finest the session's span allows.  When the
        # session outgrows it, its rows are added up into the next one (in SQL: at most
        # TIME_LIMIT buckets of them, once per resolution) and dropped; the batch was folded
        # at the resolution it began with, and is divided down to the one now kept.
        time_rows: list[tuple[Any, ...]] = []
        start = self.finest
        finest = max(start, level_for(self.hi - self.lo))
        coarser = [(sid, level + 1, sid, level) for level in range(start, finest)]
        factor = 10 ** (finest - start)
        cells: dict[tuple[int, int], list[int]] = {}
        for (t, code), (n, errs, mx) in self.time.items():
            key = (t // factor, code)
            cell = cells.get(key)
            if cell is None:
                cells[key] = [n, errs, mx]
            else:
                cell[0] += n
                cell[1] += errs
                cell[2] = max(cell[2], mx)
        time_rows.extend((sid, finest, t, code, c[0], c[1], c[2]) for (t, code), c in cells.items())
        self.finest = finest
        time_rows.extend((sid, SECONDS, t, code, n, 0, 0) for (t, code), n in self.seconds.items())
        for row in coarser:  # in order: each resolution from the one before
            out.append((_COARSEN, [row]))
            out.append(("DELETE FROM rollup_time WHERE session_id = ? AND level = ?", [row[2:]]))
        out.append((_UPSERT_TIME, time_rows))
        out.append((_UPSERT_COUNTS, [(sid, what, key, n) for (what, key), n in counts.items()]))
        objects = self.objects
        out.append((_PUT_OBJECTS, [
            (sid, obj_id, *objects[obj_id][:_STORED], _encode(objects[obj_id][_WRITERS])
             if objects[obj_id][_WRITERS] else None) for obj_id in self.touched]))
        now = {seq for _, seq in self.slowest}
        gone = self._slowest_before - now
        if gone:
            out.append(("DELETE FROM rollup_slowest WHERE session_id = ? AND seq = ?",
                        [(sid, -seq) for seq in gone]))
        out.append(("INSERT OR IGNORE INTO rollup_slowest (session_id, seq, duration_ns) VALUES (?, ?, ?)",
                    [(sid, -seq, d) for d, seq in self.slowest if seq not in self._slowest_before]))
        out.append((_PUT_RECONCILERS, [(sid, name, _encode(self.reconcilers[name]))
                                       for name in self.touched_reconcilers]))
        return out


# --- readers: the rollups of a session (computed from its operations for schema-1 sessions) ----

class OpGroup(NamedTuple):
    """Ops sharing verb, kind, status, resource, subresource and latency bucket."""

    verb: str
    kind: str
    status: int
    resource: str
    subresource: str
    bucket: int
    n: int
    total_ns: int
    max_ns: int
    max_seq: int


def _v1(session: Session) -> bool:
    return session.format < 2


async def op_groups(session: Session) -> list[OpGroup]:
    """Every (verb, kind, status, resource, subresource, bucket) group of the session."""
    if _v1(session):
        sql = ("SELECT verb, kind, status, resource, subresource, dur_bucket, COUNT(*), SUM(duration_ns),"
               " MAX(duration_ns), seq FROM operations WHERE session_id = ?"
               " GROUP BY verb, kind, status, resource, subresource, dur_bucket")
    else:
        sql = ("SELECT verb, kind, status, resource, subresource, bucket, n, total_ns, max_ns, max_seq"
               " FROM rollup_ops WHERE session_id = ?")
    return [OpGroup(*r) for r in await session.rec.fetchall(sql, (session.id,))]


async def count(session: Session, what: str, key: str = "") -> int | None:
    """A counter of ``rollup_counts`` (None for a schema-1 session)."""
    if _v1(session):
        return None
    row = await session.rec.fetchone(
        "SELECT n FROM rollup_counts WHERE session_id = ? AND what = ? AND key = ?", (session.id, what, key))
    return int(row[0]) if row else 0


async def reconcile_count(session: Session) -> int:
    n = await count(session, "reconciles")
    return n if n is not None else await session.reconcile_count()


async def namespaces(session: Session) -> list[str]:
    """The namespaces the session's ops named, sorted."""
    if _v1(session):
        sql = ("SELECT DISTINCT namespace FROM operations WHERE session_id = ? AND namespace != ''"
               " ORDER BY namespace")
    else:
        sql = "SELECT key FROM rollup_counts WHERE session_id = ? AND what = 'namespace' ORDER BY key"
    return [r[0] for r in await session.rec.fetchall(sql, (session.id,))]


def coarse_value_ns(code: int) -> float:
    """The geometric middle of a timeline latency code (4 buckets per octave)."""
    return 2 ** ((code * (1 << LATENCY_SHIFT) + (1 << (LATENCY_SHIFT - 1))) / BUCKETS_PER_OCTAVE)


async def timeline(session: Session, first_ns: int, last_ns: int, width_ns: int,
                   buckets: int) -> list[tuple[int, int, int, int, int]]:
    """(display bucket, code, ops, errors, max request latency) over ``buckets`` buckets of
    ``width_ns`` from ``first_ns``; code NON_REQUEST or a request latency code.  Each time
    bucket of the finest resolution kept goes where it starts (at most 1/``TIME_LIMIT`` of
    the session off)."""
    level = level_for(last_ns - first_ns)
    width_level = LEVEL_NS[level]
    if _v1(session):
        base = first_ns
        source = (f"(SELECT (ts_ns - ?2) / {width_level} AS t,"
                  f" CASE WHEN verb IN ({_LATENCY_IN}) THEN dur_bucket >> {LATENCY_SHIFT} ELSE {NON_REQUEST}"
                  " END AS code, COUNT(*) AS n, SUM(error) AS errors,"
                  f" MAX(CASE WHEN verb IN ({_LATENCY_IN}) THEN duration_ns ELSE 0 END) AS max_ns"
                  " FROM operations WHERE session_id = ?1 GROUP BY t, code)")
    else:
        base = await count(session, "base") or first_ns
        source = f"(SELECT t, code, n, errors, max_ns FROM rollup_time WHERE session_id = ?1 AND level = {level})"
    rows = await session.rec.fetchall(
        f"SELECT MIN(MAX((?3 + t * {width_level} - ?2) / ?4, 0), ?5) AS d, code, SUM(n), SUM(errors),"
        f" MAX(max_ns) FROM {source} GROUP BY d, code",
        (session.id, first_ns, base, width_ns, buckets - 1))
    return [(int(d), code, n, errs or 0, mx or 0) for d, code, n, errs, mx in rows]


async def peak(session: Session, first_ns: int, scale: float) -> int:
    """The most ops in one second (requests weighed by ``scale`` in a sampled session)."""
    if _v1(session):
        weight = "COUNT(*)" if scale == 1.0 else f"SUM(1 + (verb IN ({_LATENCY_IN})) * {scale - 1.0!r})"
        row = await session.rec.fetchone(
            f"SELECT {weight} AS n FROM operations WHERE session_id = ? AND ts_ns >= ?"
            f" GROUP BY (ts_ns - ?) / {SECOND_NS} ORDER BY n DESC LIMIT 1", (session.id, first_ns, first_ns))
    else:
        row = await session.rec.fetchone(
            f"SELECT MAX(x) FROM (SELECT SUM(CASE code WHEN 1 THEN n * {scale!r} ELSE n END) AS x FROM rollup_time"
            f" WHERE session_id = ? AND level = {SECONDS} GROUP BY t)", (session.id,))
    return round(row[0]) if row and row[0] is not None else 0


class ObjectRollup(NamedTuple):
    obj_id: int
    reads: int  # get/list requests naming it
    watches: int
    writes: int
    versions: int
    gets: int  # successful gets
    versions_read: int
    max_reads: int
    max_read_seq: int


_OBJECT_COLUMNS = "obj_id, reads, watches, writes, versions, gets, versions_read, max_reads, max_read_seq"


def _objects_v1(session: Session) -> str:
    """The per-object rollup of a schema-1 session, as a subquery (parameter ?1: the session)."""
    writes = ",".join(f"'{v}'" for v in sorted(WRITE_VERBS))
    return (
        "(SELECT o.obj_id, o.reads, o.watches, o.writes, COALESCE(v.versions, 0) AS versions,"
        " COALESCE(g.gets, 0) AS gets, COALESCE(g.versions_read, 0) AS versions_read,"
        " COALESCE(g.max_reads, 0) AS max_reads, COALESCE(g.max_read_seq, 0) AS max_read_seq FROM"
        f" (SELECT obj_id, SUM(verb IN ('{GET}', '{LIST}')) AS reads, SUM(verb = '{WATCH}') AS watches,"
        f"  SUM(verb IN ({writes})) AS writes FROM operations WHERE session_id = ?1 AND obj_id IS NOT NULL"
        "  GROUP BY obj_id) o"
        " LEFT JOIN (SELECT obj_id, COUNT(*) AS versions FROM states WHERE session_id = ?1 GROUP BY obj_id) v"
        "  ON v.obj_id = o.obj_id"
        # (LIMIT -1 keeps SQLite from flattening the inner query and looking v up twice.)
        " LEFT JOIN (SELECT obj_id, SUM(n) AS gets, COUNT(*) AS versions_read, MAX(n) AS max_reads,"
        "  v AS max_read_seq FROM (SELECT obj_id, v, COUNT(*) AS n FROM (SELECT o.obj_id AS obj_id,"
        "  COALESCE((SELECT MAX(s.seq) FROM states s WHERE s.session_id = ?1 AND s.obj_id = o.obj_id"
        f"  AND s.seq <= o.seq), 0) AS v FROM operations o WHERE o.session_id = ?1 AND o.verb = '{GET}'"
        "  AND o.error = 0 AND o.obj_id IS NOT NULL LIMIT -1) GROUP BY obj_id, v) GROUP BY obj_id) g"
        "  ON g.obj_id = o.obj_id)")


async def top_objects(session: Session, order: str, limit: int, params: tuple[Any, ...] = (),
                      where: str = "1") -> list[ObjectRollup]:
    """Objects of the session's per-object rollup, the first ``limit`` by the SQL ``order``."""
    source = _objects_v1(session) if _v1(session) else "(SELECT * FROM rollup_objects WHERE session_id = ?1)"
    rows = await session.rec.fetchall(
        f"SELECT {_OBJECT_COLUMNS} FROM {source} WHERE {where} ORDER BY {order} LIMIT {int(limit)}",
        (session.id, *params))
    return [ObjectRollup(*r) for r in rows]


async def writers(session: Session, obj_ids: list[int]) -> dict[int, dict[str, int]]:
    """{obj_id: {reconciler: writes}} for these objects."""
    if not obj_ids:
        return {}
    marks = ",".join(str(int(o)) for o in obj_ids)
    out: dict[int, dict[str, int]] = {}
    if _v1(session):
        writes = ",".join(f"'{v}'" for v in sorted(WRITE_VERBS))
        for name, obj_id, n in await session.rec.fetchall(
                "SELECT r.reconciler, o.obj_id, COUNT(*) FROM operations o JOIN reconciles r"
                " ON r.session_id = o.session_id AND r.id = o.reconcile"
                f" WHERE o.session_id = ? AND o.verb IN ({writes}) AND o.obj_id IN ({marks})"
                " GROUP BY r.reconciler, o.obj_id", (session.id,)):
            out.setdefault(obj_id, {})[name] = n
        return out
    for obj_id, data in await session.rec.fetchall(
            f"SELECT obj_id, writers FROM rollup_objects WHERE session_id = ? AND obj_id IN ({marks})"
            " AND writers IS NOT NULL", (session.id,)):
        out[obj_id] = _decode(data)
    return out


async def slowest(session: Session, limit: int) -> list[tuple[int, int]] | None:
    """(seq, duration) of the slowest requests, slowest first (None: not kept, schema 1)."""
    if _v1(session):
        return None
    rows = await session.rec.fetchall(
        "SELECT seq, duration_ns FROM rollup_slowest WHERE session_id = ? ORDER BY duration_ns DESC, seq"
        " LIMIT ?", (session.id, limit))
    return [(r[0], r[1]) for r in rows]


async def reconcilers(session: Session) -> dict[str, Reconciler]:
    """Each reconciler's rollup (computed from spans and ops for a schema-1 session)."""
    if not _v1(session):
        return {name: _decode_reconciler(data) for name, data in await session.rec.fetchall(
            "SELECT reconciler, data FROM rollup_reconcilers WHERE session_id = ?", (session.id,))}
    rec, sid = session.rec, session.id
    out: dict[str, Reconciler] = {}
    async for rows in rec.stream(
            "SELECT reconciler, error != '', end_ns - start_ns FROM reconciles WHERE session_id = ?", (sid,)):
        for name, failed, dur in rows:
            doc = out.setdefault(name, Reconciler())
            doc.spans += 1
            doc.failed += int(bool(failed))
            if dur is not None and dur >= 0:
                cell = doc.cycle.setdefault(duration_bucket(dur), [0, 0, 0])
                cell[0] += 1
                cell[1] += dur
                cell[2] = max(cell[2], dur)
    join = "FROM operations o JOIN reconciles r ON r.session_id = o.session_id AND r.id = o.reconcile"
    for name, verb, total, mx, seq, kind, ns, obj, sub, rid in await rec.fetchall(
            "SELECT r.reconciler, o.verb, SUM(o.duration_ns), MAX(o.duration_ns), o.seq, o.kind, o.namespace,"
            f" o.name, o.subresource, o.reconcile {join} WHERE o.session_id = ? AND o.verb IN ({_LATENCY_IN})"
            " GROUP BY r.reconciler, o.verb", (sid,)):
        doc = out.setdefault(name, Reconciler())
        doc.verbs[verb] = total or 0
        if not doc.slowest or (mx or 0) > doc.slowest[0]:
            doc.slowest = [mx or 0, seq, verb, kind, ns, obj, sub, rid]
    writes = ",".join(f"'{v}'" for v in sorted(WRITE_VERBS))
    for name, kind, n in await rec.fetchall(
            f"SELECT r.reconciler, o.kind, COUNT(*) {join} WHERE o.session_id = ? AND o.verb IN ({writes})"
            " GROUP BY r.reconciler, o.kind", (sid,)):
        out.setdefault(name, Reconciler()).writes_by_kind[kind or "?"] = n
    return out
