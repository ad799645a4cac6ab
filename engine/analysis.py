"""Analysis of a session: hot loops, slow operations, error patterns, access patterns.

Each finding names the objects and the seqs to jump to.  Counting is done by
SQL aggregates; what needs order (sliding windows, runs of conflicts, spec
changes between writes) streams rows in seq order and keeps one small record
per object, never per op.

A *spec change* is read from ``generation``, which the API server bumps only when
an object's spec changes.  For objects without a generation (ConfigMaps,
Secrets...) a write counts as a change when it produced a new version (a body
different from the last one seen) and did not go to the ``status`` subresource.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import AsyncGenerator
from typing import Any, NamedTuple

import msgspec

from replay_tui.engine import diff as diffmod
from replay_tui.engine import rollups
from replay_tui.engine.format import (
    ADDED,
    CREATE,
    DELETE,
    DELETED,
    EVENT_VERBS,
    GET,
    LIST,
    MODIFIED,
    PATCH,
    UPDATE,
    VERB_ORDER,
    WATCH,
    WRITE_VERBS,
    target_label,
)
from replay_tui.engine.loops import LOOP_WINDOW_NS, HotLoop, LoopFold, stored_loop
from replay_tui.engine.schema import ID_SHIFT, RecordingError
from replay_tui.engine.stats import LATENCY_VERBS, gather_all, id_range, object_label
from replay_tui.engine.store import Session

EXAMPLES = 5  # example seqs per finding (as engine.loops keeps them)
TOP = 20  # entries per ranked list
SLOWEST = 20
STORM_MIN = 3  # conflicts on one object, each within the window of the previous, to call it a storm
MAX_HOT = 50
DIFF_HOT = 10  # hot loops whose changing fields are read (two bodies each)
MAX_FIELDS = 20
MAX_SQL_LIST = 50_000  # candidate objects written into the SQL text as an IN list

_OBJECT_WRITES = (CREATE, UPDATE, PATCH)
_SPEC_VERBS = (GET, CREATE, UPDATE, PATCH, DELETE, ADDED, MODIFIED, DELETED)
__all__ = ["HotLoop"]  # (defined with the fold, engine.loops)


# --- results ------------------------------------------------------------------------

class SlowOp(msgspec.Struct):
    seq: int
    verb: str
    target: str
    ms: float
    status: int


class SlowOperations(msgspec.Struct):
    """Requests over the threshold (watch streams and watch events are not requests with a latency).

    ``timing`` is False when no request carries a latency (a Sieve trace's one-second
    timestamps): then there is nothing to rank, rather than a list of "0 ns" operations.
    """

    threshold_ms: float = 0.0
    timing: bool = True
    count: int = 0
    slowest: list[SlowOp] = msgspec.field(default_factory=list)
    slowest_by_verb: dict[str, SlowOp] = msgspec.field(default_factory=dict)
    count_by_verb: dict[str, int] = msgspec.field(default_factory=dict)


class ErrorGroup(msgspec.Struct):
    status: int
    reason: str
    count: int
    example_seqs: list[int]


class ObjectErrors(msgspec.Struct):
    key: str
    obj_id: int | None
    count: int
    example_seqs: list[int]


class VerbErrors(msgspec.Struct):
    verb: str
    count: int
    example_seqs: list[int]


class ConflictStorm(msgspec.Struct):
    """409 Conflicts on one object, each within ``window_s`` of the previous: a retry storm."""

    key: str
    obj_id: int | None
    count: int
    first_seq: int
    last_seq: int
    duration_s: float
    example_seqs: list[int]


class ErrorPatterns(msgspec.Struct):
    total: int = 0
    by_status_reason: list[ErrorGroup] = msgspec.field(default_factory=list)
    by_object: list[ObjectErrors] = msgspec.field(default_factory=list)
    by_verb: list[VerbErrors] = msgspec.field(default_factory=list)
    conflict_storms: list[ConflictStorm] = msgspec.field(default_factory=list)


class KindAccess(msgspec.Struct):
    kind: str
    gets: int
    lists: int
    watches: int
    writes: int
    watch_events: int
    read_write_ratio: float | None  # (gets + lists) / writes; None without writes
    lists_per_min: float


class ObjectReads(msgspec.Struct):
    """GETs of one object, and how many of them returned a version already read."""

    key: str
    obj_id: int
    gets: int
    versions_read: int
    max_reads_of_one_version: int
    redundant_gets: int  # gets - versions_read: answers the operator's cache already had
    most_read_version_seq: int  # the op that produced the most re-read version (0: before the session)


class AccessPatterns(msgspec.Struct):
    by_kind: list[KindAccess] = msgspec.field(default_factory=list)
    rereads: list[ObjectReads] = msgspec.field(default_factory=list)  # an unchanged version read >= hot_min times
    most_read: list[ObjectReads] = msgspec.field(default_factory=list)


class Analysis(msgspec.Struct):
    hot_loops: list[HotLoop] = msgspec.field(default_factory=list)  # worst first (see hot_loops)
    slow_operations: SlowOperations = msgspec.field(default_factory=SlowOperations)
    error_patterns: ErrorPatterns = msgspec.field(default_factory=ErrorPatterns)
    access_patterns: AccessPatterns = msgspec.field(default_factory=AccessPatterns)


# --- entry point ----------------------------------------------------------------------

async def analyze(session: Session, *, slow_ms: float = 1000.0, window_s: float = 60.0,
                  hot_min: int = 10) -> Analysis:
    """All four analyses of one session."""
    if not (math.isfinite(slow_ms) and slow_ms >= 0 and math.isfinite(window_s) and window_s > 0
            and hot_min >= 1):
        raise RecordingError(f"analysis needs slow_ms >= 0, window_s > 0 and hot_min >= 1"
                             f" (got {slow_ms}, {window_s}, {hot_min})")
    window_ns = int(window_s * 1e9)
    # Hot loops (SQL streams folded in Python) run on a second connection while the
    # grouped scans run on this one: SQLite releases the GIL, so both cores work.
    other = await session.rec.clone()
    try:
        mirror = Session(other, session.info)

        async def rest() -> tuple[SlowOperations, ErrorPatterns, AccessPatterns]:
            grouped = await _grouped(session, slow_ms)
            return (await _slow(session, slow_ms, grouped),
                    await error_patterns(session, window_ns=window_ns),
                    await _access(session, grouped, hot_min))

        loops, (slow, errors, access) = await gather_all(
            hot_loops(mirror, window_ns=window_ns, hot_min=hot_min), rest())
    finally:
        await other.close()
    return Analysis(hot_loops=loops, slow_operations=slow, error_patterns=errors, access_patterns=access)


# --- hot loops ------------------------------------------------------------------------

async def _prefetched(stream: Any) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """Chunks of a stream, the next one already being read while this one is processed."""
    it = aiter(stream)
    pending = asyncio.ensure_future(anext(it, None))
    try:
        while True:
            rows = await pending
            if rows is None:
                return
            pending = asyncio.ensure_future(anext(it, None))
            yield rows
    finally:
        if not pending.done():
            pending.cancel()
            try:
                await pending
            except (asyncio.CancelledError, StopAsyncIteration):
                pass
        await it.aclose()


async def _candidates(session: Session, id_lo: int, id_hi: int, window_ns: int, hot_min: int,
                      by_name: dict[tuple[str, str, str], list[int]]) -> set[int]:
    """Objects that may reach ``hot_min`` writes or reconciles in a sliding window.

    A sliding window overlaps at most two fixed windows of its width, so one of
    those holds at least half of it: a count per fixed window is a cheap, safe filter.
    """
    half = (hot_min + 1) // 2
    writes = ",".join(f"'{v}'" for v in _OBJECT_WRITES)
    rows = await session.rec.fetchall(
        "SELECT DISTINCT obj_id FROM (SELECT obj_id FROM operations WHERE id BETWEEN ? AND ?"
        f" AND +session_id = ? AND error = 0 AND obj_id IS NOT NULL AND verb IN ({writes})"
        " GROUP BY obj_id, ts_ns / ? HAVING COUNT(*) >= ?)", (id_lo, id_hi, session.id, window_ns, half))
    found = {r[0] for r in rows}
    rows = await session.rec.fetchall(
        "SELECT DISTINCT kind, namespace, name FROM (SELECT kind, namespace, name FROM reconciles"
        " WHERE session_id = ? AND name != '' GROUP BY kind, namespace, name, start_ns / ?"
        " HAVING COUNT(*) >= ?)", (session.id, window_ns, half))
    for kind, ns, name in rows:
        found.update(by_name.get((kind, ns, name), ()))
    return found


async def hot_loops(session: Session, *, window_ns: int, hot_min: int, folded: bool = True) -> list[HotLoop]:
    """Objects with >= hot_min writes (or reconciles) without a spec change inside one window.

    The writer folds them as it commits (``engine.loops``, in ``LOOP_WINDOW_NS``): then the
    objects' records are read.  Otherwise (another window, a session written before the
    fold, ``folded=False``) the same fold runs over the session's rows: candidates first
    (a cheap count per fixed window), then two streams in seq order, merged here: the
    candidates' successful writes, watch events and reads that brought a new version (the
    rest cannot change the verdict), and reconcile starts.  Both come in index order, so
    SQLite sorts nothing; the state kept is one small record per candidate object.  Listed
    worst first: the longest chain of self-triggered reconciles, then the most writes (or
    reconciles) in one window; each says where it starts (``HotLoop.first_seq``).
    """
    window_ns = max(window_ns, 1)
    if folded and window_ns == LOOP_WINDOW_NS and await rollups.count(session, "loops", "window_ns") == window_ns:
        rows = await session.rec.fetchall(
            "SELECT data FROM rollup_loops WHERE session_id = ? AND (max_writes >= ? OR max_reconciles >= ?)",
            (session.id, hot_min, hot_min))
        stored = [stored_loop(r[0]) for r in rows]
        stored.sort(key=lambda s: (-s.loop.longest_self_trigger_chain,
                                   -max(s.loop.max_in_window, s.loop.max_reconciles_in_window), s.loop.obj_id))
        stored = stored[:MAX_HOT]
        keys = await session.object_keys([s.loop.obj_id for s in stored])
        out = []
        for s in stored:
            s.loop.key = object_label(keys.get(s.loop.obj_id), s.loop.obj_id)
            out.append(s.loop)
        pairs = [s.pair for s in stored]
    else:
        out, pairs = await _hot_loops_from_ops(session, window_ns, hot_min)
    for loop_result, pair in zip(out[:DIFF_HOT], pairs[:DIFF_HOT]):
        if pair is not None:
            loop_result.changed_fields = await _changed_fields(session, *pair)
    return out


async def _hot_loops_from_ops(session: Session, window_ns: int, hot_min: int
                              ) -> tuple[list[HotLoop], list[tuple[int, int] | None]]:
    sid = session.id
    bounds = await id_range(session)
    if bounds is None:
        return [], []
    id_lo, id_hi = bounds
    fold = LoopFold(window_ns)
    # The objects a reconcile may be about: the session's own (schema 2 gives each its id space).
    own = "" if session.format < 2 else \
        f" WHERE id >= {int(session.id) << ID_SHIFT} AND id < {(int(session.id) + 1) << ID_SHIFT}"
    async for rows in session.rec.stream(f"SELECT id, kind, namespace, name FROM objects{own}"):
        for oid, kind, ns, name in rows:
            fold.object(oid, kind, ns, name)
    candidates = await _candidates(session, id_lo, id_hi, window_ns, hot_min, fold.by_name)
    if not candidates:
        return [], []
    fold.candidates = candidates

    writes = ",".join(f"'{v}'" for v in _OBJECT_WRITES)
    verbs = ",".join(f"'{v}'" for v in _SPEC_VERBS)
    events = f"'{ADDED}','{MODIFIED}'"
    # Object ids are integers from this file: inlined, they need no SQL variables (of
    # which an SQLite build may allow only 999).  Past MAX_SQL_LIST they are filtered here.
    only = ""
    if len(candidates) <= MAX_SQL_LIST:
        only = f" AND o.obj_id IN ({','.join(str(int(c)) for c in sorted(candidates))})"
    # Rowids grow with seq within a session: a rowid range reads the table in seq order
    # without going through the session index row by row.
    ops_sql = (
        "SELECT o.seq, o.ts_ns, o.obj_id, o.verb, o.subresource, o.generation, s.seq IS NOT NULL,"
        " s.blob_id FROM operations o LEFT JOIN states s"
        " ON s.session_id = o.session_id AND s.seq = o.seq AND s.obj_id = o.obj_id"
        " WHERE o.id BETWEEN ? AND ? AND +o.session_id = ? AND o.error = 0 AND o.obj_id IS NOT NULL"
        f"{only} AND o.verb IN ({verbs}) AND (o.verb IN ({writes},{events}) OR s.seq IS NOT NULL)"
        " ORDER BY o.id")
    rec_sql = ("SELECT start_seq, start_ns, kind, namespace, name, trigger_seq FROM reconciles"
               " WHERE session_id = ? AND name != '' ORDER BY start_seq")

    op_it = _prefetched(session.rec.stream(ops_sql, (id_lo, id_hi, sid), size=10000))
    rec_it = _prefetched(session.rec.stream(rec_sql, (sid,), size=10000))
    ops: list[tuple[Any, ...]] = await anext(op_it, [])
    recs: list[tuple[Any, ...]] = await anext(rec_it, [])
    i = j = 0
    try:
        while ops or recs:
            # Reconcile starts up to the next op (a reconcile starting at seq N precedes op N).
            limit = ops[i][0] if ops else None
            while recs and (limit is None or recs[j][0] <= limit):
                seq, ts, kind, ns, name, trigger = recs[j]
                fold.reconcile(seq, ts, kind, ns, name, trigger)
                j += 1
                if j == len(recs):
                    recs, j = await anext(rec_it, []), 0
            # Ops up to the next reconcile start.
            limit = recs[j][0] if recs else None
            while ops and (limit is None or ops[i][0] < limit):
                seq, ts, oid, verb, sub, gen, versioned, blob = ops[i]
                fold.op(seq, ts, oid, verb, sub, gen, versioned, blob)
                i += 1
                if i == len(ops):
                    ops, i = await anext(op_it, []), 0
    finally:
        await op_it.aclose()
        await rec_it.aclose()

    found = [o for o in fold.loops.values() if o.max_writes >= hot_min or o.max_reconciles >= hot_min]
    # Worst first: the longest self-feeding chain, then the most writes or reconciles in a window.
    found.sort(key=lambda o: (-o.longest_chain, -max(o.max_writes, o.max_reconciles), o.obj_id))
    found = found[:MAX_HOT]
    keys = await session.object_keys([o.obj_id for o in found])
    return [o.result(object_label(keys.get(o.obj_id), o.obj_id), window_ns) for o in found], [o.pair for o in found]


async def _changed_fields(session: Session, blob_a: int, blob_b: int) -> list[str]:
    """Paths that differ between two versions (what a no-spec-change write keeps changing)."""
    old = await session.rec.body(blob_a)
    new = await session.rec.body(blob_b)
    paths = [ch.path for ch in diffmod.diff(old, new)]
    return paths[:MAX_FIELDS]


# --- slow operations ------------------------------------------------------------------

class _Group(NamedTuple):
    """A rollup group with the count of its ops over the slow threshold."""

    verb: str
    kind: str
    n: int
    max_ns: int
    max_seq: int
    over: int


async def _grouped(session: Session, slow_ms: float) -> list[_Group]:
    """The rollup groups (verb, kind, status, resource, latency bucket): one read serves both
    the slow-operation summary and the access patterns.  How many ops of a group are
    over the threshold: all or none, unless the threshold falls inside its latency
    bucket; then the slowest requests the writer kept tell, when they reach that far
    down (else the ops of that bucket are counted as over when its middle is)."""
    over_ns = int(slow_ms * 1e6)
    groups = await rollups.op_groups(session)
    threshold_bucket = rollups.duration_bucket(over_ns)
    exact: dict[int, int] | None = None  # seq -> duration of the kept slowest requests
    if any(g.bucket == threshold_bucket and g.max_ns > over_ns for g in groups):
        kept = await rollups.slowest(session, rollups.SLOWEST_KEPT)
        if kept is None:  # a schema-1 session: count them in its operations
            exact = None
        elif len(kept) < rollups.SLOWEST_KEPT or kept[-1][1] < rollups.bucket_floor_ns(threshold_bucket):
            exact = dict(kept)
    straddling: dict[tuple[str, str], int] = {}
    if exact is not None:
        seqs = [seq for seq, d in exact.items() if d > over_ns and rollups.duration_bucket(d) == threshold_bucket]
        for verb, kind, n in await _over_by_group(session, seqs):
            straddling[(verb, kind)] = straddling.get((verb, kind), 0) + n
    elif session.format < 2:
        for verb, kind, n in await session.rec.fetchall(
                "SELECT verb, kind, COUNT(*) FROM operations WHERE session_id = ? AND dur_bucket = ?"
                " AND duration_ns > ? GROUP BY verb, kind", (session.id, threshold_bucket, over_ns)):
            straddling[(verb, kind)] = n
    out: dict[tuple[str, str], list[int]] = {}
    for g in groups:
        if g.bucket < threshold_bucket or g.max_ns <= over_ns:
            over = 0
        elif g.bucket > threshold_bucket:
            over = g.n
        elif exact is not None or session.format < 2:
            over = straddling.pop((g.verb, g.kind), 0)
        else:
            over = g.n if rollups.bucket_value_ns(g.bucket) > over_ns else 0
        acc = out.get((g.verb, g.kind))
        if acc is None:
            out[(g.verb, g.kind)] = [g.n, g.max_ns, g.max_seq, over]
        else:
            acc[0] += g.n
            acc[3] += over
            if g.max_ns > acc[1] or (g.max_ns == acc[1] and g.max_seq < acc[2]):
                acc[1], acc[2] = g.max_ns, g.max_seq
    return [_Group(verb, kind, *acc) for (verb, kind), acc in out.items()]


async def _over_by_group(session: Session, seqs: list[int]) -> list[tuple[str, str, int]]:
    if not seqs:
        return []
    rows = await session.rec.fetchall(
        f"SELECT verb, kind, COUNT(*) FROM operations WHERE session_id = ? AND seq IN ({','.join('?' * len(seqs))})"
        " GROUP BY verb, kind", (session.id, *seqs))
    return [(r[0], r[1], r[2]) for r in rows]


async def _op_rows(session: Session, seqs: list[int]) -> dict[int, tuple[Any, ...]]:
    rows = await session.rec.fetchall(
        "SELECT seq, verb, kind, namespace, name, subresource, status, duration_ns, resource FROM operations"
        f" WHERE session_id = ? AND seq IN ({','.join('?' * len(seqs))})", (session.id, *seqs))
    return {r[0]: r for r in rows}


def _slow_op(r: tuple[Any, ...]) -> SlowOp:
    seq, verb, kind, ns, name, sub, status, dur, resource = r
    return SlowOp(seq=seq, verb=verb, target=target_label(kind, ns, name, sub, resource), ms=dur / 1e6,
                  status=status)


async def _slow(session: Session, slow_ms: float, grouped: list[_Group]) -> SlowOperations:
    slowest: dict[str, tuple[int, int]] = {}  # verb -> (duration, seq)
    count_by_verb: dict[str, int] = {}
    if not any(g.max_ns > 0 for g in grouped if g.verb in LATENCY_VERBS):
        return SlowOperations(threshold_ms=slow_ms, timing=False)
    for g in grouped:
        verb, over, mx, seq = g.verb, g.over, g.max_ns, g.max_seq
        if verb not in LATENCY_VERBS or mx <= 0:  # no latency recorded: not a candidate
            continue
        if over:
            count_by_verb[verb] = count_by_verb.get(verb, 0) + over
        best = slowest.get(verb)
        if best is None or (mx, -seq) > (best[0], -best[1]):
            slowest[verb] = (mx, seq)
    kept = await rollups.slowest(session, SLOWEST)
    if kept is not None:
        rows = await _op_rows(session, [seq for seq, _ in kept]) if kept else {}
        top = [rows[seq] for seq, _ in kept if seq in rows and rows[seq][7] > 0]
    else:  # a schema-1 session: the slowest requests are found by a scan
        verbs = ",".join(f"'{v}'" for v in sorted(LATENCY_VERBS))
        id_lo, id_hi = await id_range(session) or (0, -1)
        top = await session.rec.fetchall(
            "SELECT seq, verb, kind, namespace, name, subresource, status, duration_ns, resource FROM operations"
            f" WHERE id BETWEEN ? AND ? AND +session_id = ? AND verb IN ({verbs}) AND duration_ns > 0"
            " ORDER BY duration_ns DESC, seq LIMIT ?", (id_lo, id_hi, session.id, SLOWEST))
    details = await _op_rows(session, [seq for _, seq in slowest.values()]) if slowest else {}
    order = [v for v in VERB_ORDER if v in slowest]
    return SlowOperations(
        threshold_ms=slow_ms, count=sum(count_by_verb.values()),
        slowest=[_slow_op(r) for r in top],
        slowest_by_verb={v: _slow_op(details[slowest[v][1]]) for v in order if slowest[v][1] in details},
        count_by_verb={v: count_by_verb[v] for v in VERB_ORDER if v in count_by_verb})


# --- error patterns -------------------------------------------------------------------

class _Tally:
    __slots__ = ("count", "examples")

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[int] = []

    def add(self, seq: int) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(seq)


class _Run:
    __slots__ = ("count", "examples", "first_seq", "first_ts", "last_seq", "last_ts")

    def __init__(self, seq: int, ts: int):
        self.count = 1
        self.first_seq = self.last_seq = seq
        self.first_ts = self.last_ts = ts
        self.examples = [seq]


async def error_patterns(session: Session, *, window_ns: int) -> ErrorPatterns:
    """Failed ops grouped by (status, reason), object and verb; runs of 409 Conflicts per object."""
    by_reason: dict[tuple[int, str], _Tally] = {}
    by_object: dict[int | str, _Tally] = {}
    by_verb: dict[str, _Tally] = {}
    runs: dict[int | str, _Run] = {}
    storms: list[tuple[int | str, _Run]] = []
    labels: dict[int | str, str] = {}
    total = 0
    async for rows in session.rec.stream(
            "SELECT seq, ts_ns, verb, kind, namespace, name, subresource, status, reason, obj_id, resource"
            " FROM operations WHERE session_id = ? AND error = 1 ORDER BY seq", (session.id,)):
        for seq, ts, verb, kind, ns, name, _sub, status, reason, obj_id, resource in rows:
            total += 1
            by_reason.setdefault((status, reason), _Tally()).add(seq)
            by_verb.setdefault(verb, _Tally()).add(seq)
            ident: int | str = obj_id if obj_id is not None else target_label(kind, ns, name, "", resource)
            if ident == "":
                ident = "(no object)"
            by_object.setdefault(ident, _Tally()).add(seq)
            if status == 409:
                run = runs.get(ident)
                if run is not None and ts - run.last_ts <= window_ns:
                    run.count += 1
                    run.last_seq, run.last_ts = seq, ts
                    if len(run.examples) < EXAMPLES:
                        run.examples.append(seq)
                else:
                    if run is not None and run.count >= STORM_MIN:
                        storms.append((ident, run))
                    runs[ident] = _Run(seq, ts)
    storms.extend((ident, run) for ident, run in runs.items() if run.count >= STORM_MIN)
    storms.sort(key=lambda s: (-s[1].count, s[1].first_seq))
    top_objects = heapq.nsmallest(TOP, by_object.items(), key=lambda kv: (-kv[1].count, kv[1].examples[0]))
    ids = [i for i, _ in top_objects if isinstance(i, int)] + [i for i, _ in storms if isinstance(i, int)]
    keys = await session.object_keys(ids)
    for ident in [i for i, _ in top_objects] + [i for i, _ in storms]:
        labels[ident] = object_label(keys.get(ident), ident) if isinstance(ident, int) else ident

    def oid(ident: int | str) -> int | None:
        return ident if isinstance(ident, int) else None

    return ErrorPatterns(
        total=total,
        by_status_reason=[ErrorGroup(status=s, reason=r, count=t.count, example_seqs=t.examples)
                          for (s, r), t in sorted(by_reason.items(), key=lambda kv: (-kv[1].count, kv[0]))],
        by_object=[ObjectErrors(key=labels[i], obj_id=oid(i), count=t.count, example_seqs=t.examples)
                   for i, t in top_objects],
        by_verb=[VerbErrors(verb=v, count=t.count, example_seqs=t.examples)
                 for v, t in sorted(by_verb.items(), key=lambda kv: (-kv[1].count, kv[0]))],
        conflict_storms=[ConflictStorm(key=labels[i], obj_id=oid(i), count=r.count, first_seq=r.first_seq,
                                       last_seq=r.last_seq, duration_s=(r.last_ts - r.first_ts) / 1e9,
                                       example_seqs=r.examples) for i, r in storms[:TOP]])


# --- access patterns ------------------------------------------------------------------

async def _access(session: Session, grouped: list[_Group], hot_min: int) -> AccessPatterns:
    first, last = await session.time_range()
    minutes = max(last - first, 1_000_000_000) / 60e9
    kinds: dict[str, dict[str, int]] = {}
    for g in grouped:
        kind, verb, n = g.kind, g.verb, g.n
        if kind:
            verbs = kinds.setdefault(kind, {})
            verbs[verb] = verbs.get(verb, 0) + n
    by_kind = []
    for kind, verbs in kinds.items():
        gets, lists = verbs.get(GET, 0), verbs.get(LIST, 0)
        writes = sum(n for v, n in verbs.items() if v in WRITE_VERBS)
        by_kind.append(KindAccess(
            kind=kind, gets=gets, lists=lists, watches=verbs.get(WATCH, 0), writes=writes,
            watch_events=sum(n for v, n in verbs.items() if v in EVENT_VERBS),
            read_write_ratio=(gets + lists) / writes if writes else None,
            lists_per_min=lists / minutes))
    by_kind.sort(key=lambda k: (-(k.gets + k.lists + k.writes + k.watch_events), k.kind))

    # Each successful GET returned the object's version current at its seq; the rollup
    # counts them per object (the GETs, the versions they returned, the most of one).
    rereads = await rollups.top_objects(session, "gets - versions_read DESC, obj_id", TOP,
                                        (hot_min,), "max_reads >= ?2")
    most = await rollups.top_objects(session, "gets DESC, obj_id", TOP, (), "gets > 0")
    keys = await session.object_keys([r.obj_id for r in (*rereads, *most)])

    def item(r: rollups.ObjectRollup) -> ObjectReads:
        return ObjectReads(key=object_label(keys.get(r.obj_id), r.obj_id), obj_id=r.obj_id, gets=r.gets,
                           versions_read=r.versions_read, max_reads_of_one_version=r.max_reads,
                           redundant_gets=r.gets - r.versions_read, most_read_version_seq=r.max_read_seq)

    return AccessPatterns(by_kind=by_kind, rereads=[item(r) for r in rereads], most_read=[item(r) for r in most])
