"""Session statistics: counts, error rate, latency percentiles, a timeline, top objects.

Everything comes from SQL aggregates over ``operations``; nothing is loaded per op.
Latency percentiles come from the per-op log-scale bucket ``dur_bucket`` the
writer stores (32 buckets per octave), so they are exact up to the bucket width
(~2 %); means and maxima are exact.

Why the queries look the way they do (measured on 1M ops, 2 cores): a GROUP BY
without a matching index is a sort of every row, and that sort dominates the
cost.  Sorting one integer key is ~1.6x cheaper than sorting (verb, kind,
status, bucket) as text columns, so verb, kind, status and latency bucket are
folded into one integer.  Three grouped scans (that key; time bucket x latency
bucket; object) plus a per-second count over the timestamp index run on two
connections, each over half of the session, in parallel.

Sampled sessions (``record --sample RATE`` keeps that fraction of non-watch
requests): request counts are scaled by 1/RATE, so totals, per-verb/kind/status
counts, the timeline, error counts and the peak estimate what the operator
really sent; ``sample_rate`` < 1 marks them as estimates.  Latency percentiles
and means need no scaling (a uniform sample has the same distribution), so they
and ``Latency.count`` stay as recorded.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

from replay_tui.engine.format import (
    EVENT_ERROR,
    EVENT_VERBS,
    READ_VERBS,
    VERB_ORDER,
    WATCH,
    WRITE_VERBS,
    ObjectKey,
)
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.writer import bucket_value_ns

TOP_OBJECTS = 10
PARALLEL_MIN = 200_000  # below this many ops a second connection costs more than it saves
SECOND_NS = 1_000_000_000

#: Latency is a property of requests: a watch request lasts as long as its stream
#: and a watch event has no duration, so both are left out of the overall and
#: per-kind latency (``latency_by_verb`` still shows them).
LATENCY_VERBS = frozenset(VERB_ORDER) - EVENT_VERBS - {WATCH}

_DUR_SPAN = 2048  # dur_bucket < 2048 for any 64-bit duration
_STATUS_SPAN = 1001  # statuses 0..999; 1000 = out of range (re-read by text)
#: Verb -> small integer, and the SQL expression computing it (unknown verbs: len(VERB_ORDER)).
VERB_CODE = {v: i for i, v in enumerate(VERB_ORDER)}
_VERB_SPAN = len(VERB_ORDER) + 1  # last code: a verb outside the vocabulary
_REQUEST_CODES = len(READ_VERBS | WRITE_VERBS)
assert set(VERB_ORDER[:_REQUEST_CODES]) == READ_VERBS | WRITE_VERBS
VERB_CODE_SQL = ("CASE verb " + " ".join(f"WHEN '{v}' THEN {i}" for v, i in VERB_CODE.items())
              + f" ELSE {len(VERB_ORDER)} END")


# (A CASE costs less per row than "verb IN (...)".)
_IS_REQUEST_SQL = ("CASE verb " + " ".join(f"WHEN '{v}' THEN 1" for v in VERB_ORDER if v in LATENCY_VERBS)
                   + " ELSE 0 END")


class Latency(msgspec.Struct):
    """Latency summary in milliseconds; percentiles are nearest-rank, within one bucket (~2 %)."""

    count: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    mean: float = 0.0
    max: float = 0.0


class Timeline(msgspec.Struct):
    """Ops per time bucket (what a sparkline draws): bucket i starts at start_ns + i * width_ns.

    ``p95_ms`` is over the requests of each bucket (0 where there are none), like ``latency_ms``.
    """

    start_ns: int = 0
    width_ns: int = 0
    counts: list[int] = msgspec.field(default_factory=list)
    errors: list[int] = msgspec.field(default_factory=list)
    p95_ms: list[float] = msgspec.field(default_factory=list)


class ObjectActivity(msgspec.Struct):
    """How often one object was read (get/list/watch naming it) and written."""

    key: str
    obj_id: int
    reads: int
    writes: int


class TopObjects(msgspec.Struct):
    by_reads: list[ObjectActivity] = msgspec.field(default_factory=list)
    by_writes: list[ObjectActivity] = msgspec.field(default_factory=list)


class Stats(msgspec.Struct):
    """What ``replay-tui stats`` prints; ``msgspec.to_builtins`` gives its JSON."""

    operations: int = 0
    requests: int = 0  # operations that are not watch events
    by_verb: dict[str, int] = msgspec.field(default_factory=dict)
    by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    by_status: dict[str, int] = msgspec.field(default_factory=dict)
    errors: int = 0
    error_rate: float = 0.0  # errors / operations, 0..1
    reconciles: int = 0
    watch_events: int = 0
    latency_ms: Latency = msgspec.field(default_factory=Latency)
    latency_by_verb: dict[str, Latency] = msgspec.field(default_factory=dict)
    latency_by_kind: dict[str, Latency] = msgspec.field(default_factory=dict)
    timeline: Timeline = msgspec.field(default_factory=Timeline)
    top_objects: TopObjects = msgspec.field(default_factory=TopObjects)
    first_ns: int = 0
    last_ns: int = 0
    duration_s: float = 0.0
    ops_per_s: float = 0.0
    peak_ops_per_s: float = 0.0
    sample_rate: float = 1.0  # < 1: request counts above are estimates (recorded / rate)
    recorded_operations: int = 0  # operations actually in the recording


def request_scale(rate: float) -> float:
    """What one recorded non-watch request stands for in a session sampled at ``rate``."""
    return 1.0 / rate if 0.0 < rate < 1.0 else 1.0


# --- histograms ---------------------------------------------------------------------

class Histogram:
    """Counts per latency bucket plus the exact count, sum and max (ns)."""

    __slots__ = ("buckets", "count", "max", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.max = 0

    def add(self, bucket: int, count: int, total: int = 0, maximum: int = 0) -> None:
        self.buckets[bucket] = self.buckets.get(bucket, 0) + count
        self.count += count
        self.total += total
        self.max = max(self.max, maximum)

    def percentile_ns(self, q: float) -> float:
        return percentile_ns(self.buckets, q, self.max or None)

    def latency(self) -> Latency:
        if not self.count:
            return Latency()
        return Latency(count=self.count, p50=self.percentile_ns(0.50) / 1e6,
                       p95=self.percentile_ns(0.95) / 1e6, p99=self.percentile_ns(0.99) / 1e6,
                       mean=self.total / self.count / 1e6, max=self.max / 1e6)


def percentile_ns(buckets: dict[int, int], q: float, max_ns: float | None = None) -> float:
    """Nearest-rank percentile (0 < q <= 1) of a bucket histogram, in ns.

    The value is the bucket's geometric middle, capped at the known maximum
    (which makes the top percentiles exact when the slowest op is alone in its bucket).
    """
    n = sum(buckets.values())
    if n == 0:
        return 0.0
    rank = max(1, math.ceil(q * n - 1e-9))
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            value = bucket_value_ns(bucket)
            return min(value, max_ns) if max_ns is not None else value
    return 0.0  # unreachable


async def gather_all(*coros: Awaitable[Any]) -> list[Any]:
    """Run concurrently; when one fails the others are cancelled (and awaited) before it raises,
    so no query is left running on a connection about to be closed."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# --- the queries ----------------------------------------------------------------------

class Group(NamedTuple):
    """Ops sharing verb, kind, status and latency bucket (one row of the main grouped scan)."""

    verb: str
    kind: str
    status: int
    bucket: int
    n: int  # how many ops
    total_ns: int
    max_ns: int
    max_seq: int  # the op with max_ns
    over: int  # ops longer than the ``over_ns`` asked for (0 when not asked)


class _Part(msgspec.Struct):
    """One connection's share of the work: aggregates over a rowid range and a time range."""

    groups: list[Group]
    timeline: list[tuple[Any, ...]]
    objects: list[tuple[Any, ...]]
    peak: int


# A rowid range reads the table in order; "+session_id" keeps SQLite off the session
# index, which would fetch each row by a separate lookup.  Rowids grow with seq
# within a session, so [rowid of seq 1, rowid of the last seq] holds it all.
_RANGE = "id BETWEEN ? AND ? AND +session_id = ?"


async def id_range(session: Session) -> tuple[int, int] | None:
    """Rowids of the session's first and last op; None when it has none."""
    row = await session.rec.fetchone(
        "SELECT (SELECT id FROM operations WHERE session_id = ?1 ORDER BY seq LIMIT 1),"
        " (SELECT id FROM operations WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1)", (session.id,))
    return (row[0], row[1]) if row and row[0] is not None else None


async def known_kinds(rec: Recording) -> list[str]:
    """Kinds the integer key can name: every object's kind, and '' (requests without one)."""
    kinds = [r[0] for r in await rec.fetchall("SELECT DISTINCT kind FROM objects ORDER BY kind")]
    return kinds if "" in kinds else ["", *kinds]


async def groups(rec: Recording, session_id: int, id_lo: int, id_hi: int, kinds: Sequence[str],
                 *, over_ns: int | None = None) -> list[Group]:
    """The main grouped scan over ops with rowid in [id_lo, id_hi]; see the module doc."""
    span = (id_lo, id_hi, session_id)
    nk = len(kinds) + 1
    kind_case = "CASE kind " + " ".join("WHEN ? THEN ?" for _ in kinds) + f" ELSE {len(kinds)} END"
    kind_params: list[Any] = [x for i, k in enumerate(kinds) for x in (k, i)]
    status_case = f"CASE WHEN status BETWEEN 0 AND 999 THEN status ELSE {_STATUS_SPAN - 1} END"
    over = "SUM(duration_ns > ?)" if over_ns is not None else "0"
    over_params = (over_ns,) if over_ns is not None else ()
    # seq is a "bare" column: with a single max() in the query SQLite takes it from the max row.
    aggregates = f"COUNT(*), SUM(duration_ns), MAX(duration_ns), seq, {over}"
    rows = await rec.fetchall(
        f"SELECT ((({VERB_CODE_SQL}) * {nk} + ({kind_case})) * {_STATUS_SPAN} + {status_case})"
        f" * {_DUR_SPAN} + dur_bucket AS k, {aggregates} FROM operations WHERE {_RANGE} GROUP BY k",
        (*kind_params, *over_params, *span))
    out: list[Group] = []
    unknown = False
    for key, n, total, mx, seq, n_over in rows:
        rest, bucket = divmod(key, _DUR_SPAN)
        rest, status = divmod(rest, _STATUS_SPAN)
        v, k = divmod(rest, nk)
        if v == len(VERB_ORDER) or k == len(kinds) or status == _STATUS_SPAN - 1:
            unknown = True
            continue
        out.append(Group(VERB_ORDER[v], kinds[k], status, bucket, n, total or 0, mx or 0, seq, n_over or 0))
    if unknown:
        # Rows the integer key cannot name (a kind not in ``objects``, an unknown verb,
        # a status outside 0..999) are read again by their text; normally there are none.
        marks = ",".join("?" * len(kinds))
        verbs = ",".join(f"'{v}'" for v in VERB_ORDER)
        rows = await rec.fetchall(
            f"SELECT verb, kind, status, dur_bucket, {aggregates} FROM operations WHERE {_RANGE}"
            f" AND (kind NOT IN ({marks}) OR verb NOT IN ({verbs}) OR status NOT BETWEEN 0 AND 999)"
            " GROUP BY verb, kind, status, dur_bucket", (*over_params, *span, *kinds))
        out.extend(Group(r[0], r[1], r[2], r[3], r[4], r[5] or 0, r[6] or 0, r[7], r[8] or 0) for r in rows)
    return out


async def _scan(rec: Recording, session_id: int, id_lo: int, id_hi: int, ts_lo: int, ts_hi: int,
                kinds: Sequence[str], first_ns: int, width_ns: int, scale: float) -> _Part:
    """Aggregate ops with rowid in [id_lo, id_hi] (and, for the peak, ts in [ts_lo, ts_hi))."""
    span = (id_lo, id_hi, session_id)
    main = await groups(rec, session_id, id_lo, id_hi, kinds)
    # The low bit says whether the ops were requests, whose latency makes the p95 line.
    timeline = await rec.fetchall(
        f"SELECT ((ts_ns - ?) / ? * {_DUR_SPAN} + dur_bucket) * 2 + ({_IS_REQUEST_SQL}) AS k,"
        f" COUNT(*), SUM(error) FROM operations WHERE {_RANGE} GROUP BY k", (first_ns, width_ns, *span))
    # Requests only (codes below _REQUEST_CODES); verb codes are cheaper to test than IN lists.
    objects = await rec.fetchall(
        f"SELECT obj_id * {_VERB_SPAN} + ({VERB_CODE_SQL}) AS k, COUNT(*) FROM operations WHERE {_RANGE}"
        f" AND obj_id IS NOT NULL AND ({VERB_CODE_SQL}) < {_REQUEST_CODES} GROUP BY k", span)
    # Per-second counts from the timestamp index alone (no table reads), unless sampled
    # requests must be weighed (then the verb is read too).
    weight = "COUNT(*)" if scale == 1.0 else f"SUM(1 + ({_IS_REQUEST_SQL}) * {scale - 1.0!r})"
    row = await rec.fetchone(
        f"SELECT {weight} AS n FROM operations WHERE session_id = ? AND ts_ns >= ? AND ts_ns < ?"
        f" GROUP BY (ts_ns - ?) / {SECOND_NS} ORDER BY n DESC LIMIT 1",
        (session_id, ts_lo, ts_hi, first_ns))
    return _Part(main, timeline, objects, round(row[0]) if row else 0)


async def compute(session: Session, *, buckets: int = 60) -> Stats:
    """Statistics of a whole session (it may still be recording: what is committed so far)."""
    rec, sid = session.rec, session.id
    buckets = max(1, int(buckets))
    row = await rec.fetchone(
        "SELECT (SELECT id FROM operations WHERE session_id = ?1 ORDER BY seq LIMIT 1),"
        " (SELECT id FROM operations WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1),"
        " (SELECT seq FROM operations WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1),"
        " (SELECT MIN(ts_ns) FROM operations WHERE session_id = ?1),"
        " (SELECT MAX(ts_ns) FROM operations WHERE session_id = ?1),"
        " (SELECT COUNT(*) FROM reconciles WHERE session_id = ?1)", (sid,))
    assert row is not None
    id_lo, id_hi, last_seq, first_ns, last_ns, reconciles = row
    rate = session.info.sample_rate
    if id_lo is None:
        return Stats(reconciles=reconciles or 0, sample_rate=rate, timeline=Timeline(
            counts=[0] * buckets, errors=[0] * buckets, p95_ms=[0.0] * buckets))
    width_ns = max(1, -(-(last_ns - first_ns) // buckets))  # the last op joins the last bucket
    kinds = await known_kinds(rec)
    args = (kinds, first_ns, width_ns, request_scale(rate))
    if last_seq >= PARALLEL_MIN and id_hi > id_lo:
        id_mid = (id_lo + id_hi) // 2
        ts_mid = first_ns + (last_ns - first_ns) // 2 // SECOND_NS * SECOND_NS
        other = await rec.clone()
        try:
            parts = await gather_all(
                _scan(rec, sid, id_lo, id_mid, first_ns, ts_mid, *args),
                _scan(other, sid, id_mid + 1, id_hi, ts_mid, last_ns + 1, *args))
        finally:
            await other.close()
    else:
        parts = [await _scan(rec, sid, id_lo, id_hi, first_ns, last_ns + 1, *args)]
    return await _assemble(session, parts, first_ns, last_ns, width_ns, buckets, reconciles, rate)


def _rounded(counts: dict[str, float]) -> dict[str, int]:
    return {k: round(v) for k, v in counts.items()}


async def _assemble(session: Session, parts: Sequence[_Part], first_ns: int, last_ns: int,
                    width_ns: int, buckets: int, reconciles: int, rate: float) -> Stats:
    scale = request_scale(rate)
    by_verb: dict[str, float] = {}
    by_kind: dict[str, float] = {}
    by_status: dict[str, float] = {}
    overall = Histogram()
    per_verb: dict[str, Histogram] = {}
    per_kind: dict[str, Histogram] = {}
    errors = 0.0
    recorded = 0
    for verb, kind, status, bucket, n, total, mx, _, _ in (g for part in parts for g in part.groups):
        recorded += n
        w = n * scale if verb in LATENCY_VERBS else n
        by_verb[verb] = by_verb.get(verb, 0) + w
        by_kind[kind] = by_kind.get(kind, 0) + w
        by_status[str(status)] = by_status.get(str(status), 0) + w
        if status >= 400 or verb == EVENT_ERROR:
            errors += w
        per_verb.setdefault(verb, Histogram()).add(bucket, n, total, mx)
        if verb in LATENCY_VERBS:
            overall.add(bucket, n, total, mx)
            per_kind.setdefault(kind, Histogram()).add(bucket, n, total, mx)

    operations = round(sum(by_verb.values()))
    watch_events = sum(round(n) for v, n in by_verb.items() if v in EVENT_VERBS)
    duration_s = (last_ns - first_ns) / 1e9
    return Stats(
        operations=operations,
        requests=operations - watch_events,
        by_verb=_ordered_verbs(_rounded(by_verb)),
        by_kind=dict(sorted(_rounded(by_kind).items(), key=lambda kv: (-kv[1], kv[0]))),
        by_status=dict(sorted(_rounded(by_status).items(), key=lambda kv: int(kv[0]))),
        errors=round(errors),
        error_rate=errors / operations if operations else 0.0,
        reconciles=reconciles,
        watch_events=watch_events,
        latency_ms=overall.latency(),
        latency_by_verb={v: per_verb[v].latency() for v in _ordered_verbs(per_verb)},
        latency_by_kind={k: per_kind[k].latency() for k in sorted(per_kind)},
        timeline=_timeline(parts, first_ns, width_ns, buckets, scale),
        top_objects=await _top_objects(session, parts, scale),
        first_ns=first_ns,
        last_ns=last_ns,
        duration_s=duration_s,
        ops_per_s=operations / duration_s if duration_s > 0 else float(operations),
        peak_ops_per_s=float(max(p.peak for p in parts)),
        sample_rate=rate,
        recorded_operations=recorded,
    )


def _ordered_verbs(counts: dict[str, Any]) -> dict[str, Any]:
    order = [v for v in VERB_ORDER if v in counts] + sorted(set(counts) - set(VERB_ORDER))
    return {v: counts[v] for v in order}


def _timeline(parts: Iterable[_Part], first_ns: int, width_ns: int, buckets: int,
              scale: float = 1.0) -> Timeline:
    counts = [0.0] * buckets
    errors = [0.0] * buckets
    hists: list[dict[int, int]] = [{} for _ in range(buckets)]
    for part in parts:
        for key, n, errs in part.timeline:
            t, bucket = divmod(key >> 1, _DUR_SPAN)
            t = min(max(t, 0), buckets - 1)
            w = scale if key & 1 else 1.0
            counts[t] += n * w
            errors[t] += (errs or 0) * w
            if key & 1:
                hists[t][bucket] = hists[t].get(bucket, 0) + n
    return Timeline(start_ns=first_ns, width_ns=width_ns, counts=[round(c) for c in counts],
                    errors=[round(e) for e in errors], p95_ms=[percentile_ns(h, 0.95) / 1e6 for h in hists])


async def _top_objects(session: Session, parts: Iterable[_Part], scale: float = 1.0) -> TopObjects:
    reads: dict[int, int] = {}
    writes: dict[int, int] = {}
    for part in parts:
        for key, n in part.objects:
            obj_id, code = divmod(key, _VERB_SPAN)
            verb = VERB_ORDER[code]
            target = writes if verb in WRITE_VERBS else reads
            target[obj_id] = target.get(obj_id, 0) + (round(n * scale) if verb in LATENCY_VERBS else n)
    top_r = heapq.nsmallest(TOP_OBJECTS, reads, key=lambda o: (-reads[o], o))
    top_w = heapq.nsmallest(TOP_OBJECTS, writes, key=lambda o: (-writes[o], o))
    keys = await session.object_keys(list({*top_r, *top_w}))

    def item(obj_id: int) -> ObjectActivity:
        return ObjectActivity(key=object_label(keys.get(obj_id), obj_id), obj_id=obj_id,
                              reads=reads.get(obj_id, 0), writes=writes.get(obj_id, 0))

    return TopObjects(by_reads=[item(o) for o in top_r], by_writes=[item(o) for o in top_w])


def object_label(key: ObjectKey | None, obj_id: int) -> str:
    """An object's key as people read it, or #id when the key is unknown."""
    return str(key) if key is not None else f"#{obj_id}"
