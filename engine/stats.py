"""Session statistics: counts, error rate, latency percentiles, a timeline, top objects.

Everything comes from the rollups the writer kept (``engine.rollups``): a few
thousand rows however long the session, nothing loaded per op.  Latency
percentiles come from the log-scale bucket of each op (32 buckets per octave), so
they are exact up to the bucket width (~2 %); means and maxima are exact.  The
timeline is assembled from time buckets of the finest resolution the session
kept (at least ``rollups.TIME_LIMIT / buckets`` of them per timeline bucket), and
its p95 line from a coarser latency histogram (4 buckets per octave, capped at the
bucket's slowest request).  The peak rate counts whole seconds from the first op.

Sampled sessions (``record --sample RATE`` keeps that fraction of non-watch
requests): request counts are scaled by 1/RATE, so totals, per-verb/kind/status
counts, the timeline, error counts and the peak estimate what the operator
really sent; ``sample_rate`` < 1 marks them as estimates.  Latency percentiles
and means need no scaling (a uniform sample has the same distribution), so they
and ``Latency.count`` stay as recorded.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import msgspec

from replay_tui.engine import rollups
from replay_tui.engine.format import EVENT_ERROR, EVENT_VERBS, VERB_ORDER, ObjectKey
from replay_tui.engine.rollups import LATENCY_VERBS, bucket_value_ns
from replay_tui.engine.store import Session

TOP_OBJECTS = 10
SECOND_NS = 1_000_000_000

__all__ = ["LATENCY_VERBS", "Histogram", "Latency", "Stats", "Timeline", "compute", "gather_all",
           "id_range", "object_label", "percentile_ns", "request_scale"]


class Latency(msgspec.Struct):
    """Latency summary in milliseconds over the ops whose latency was recorded (``count`` of them);
    percentiles are nearest-rank, within one bucket (~2 %).  With none recorded (a Sieve trace's
    one-second timestamps, watch events) every figure is None: unknown, never "0 ns"."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    max: float | None = None


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
    ops_per_s: float = 0.0  # over the whole seconds the session spans (average_rate): <= the peak
    peak_ops_per_s: float = 0.0  # the most ops in one second, counted from the first op
    sample_rate: float = 1.0  # < 1: request counts above are estimates (recorded / rate)
    recorded_operations: int = 0  # operations actually in the recording
    # False: ``requests`` and ``operations`` are estimates too; True when not sampled, or when the
    # recorder stored how many requests it saw (``exact_requests``)
    requests_exact: bool = True


def request_scale(rate: float) -> float:
    """What one recorded non-watch request stands for in a session sampled at ``rate``."""
    return 1.0 / rate if 0.0 < rate < 1.0 else 1.0


# --- histograms ---------------------------------------------------------------------

class Histogram:
    """Counts and latency sums per latency bucket, plus the exact count, sum and max (ns).

    Bucket 0 holds the ops whose duration is 0 (or 1 ns): a latency the source did not record
    (``engine.format.has_latency``).  They are counted (``count``), and left out of ``timed``,
    the percentiles, the mean and the max."""

    __slots__ = ("buckets", "count", "max", "sums", "timed", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.sums: dict[int, int] = {}
        self.count = 0
        self.timed = 0
        self.total = 0
        self.max = 0

    def add(self, bucket: int, count: int, total: int = 0, maximum: int = 0) -> None:
        self.count += count
        if bucket <= 0:  # no latency recorded
            return
        self.buckets[bucket] = self.buckets.get(bucket, 0) + count
        self.sums[bucket] = self.sums.get(bucket, 0) + total
        self.timed += count
        self.total += total
        self.max = max(self.max, maximum)

    def percentile_ns(self, q: float) -> float | None:
        return percentile_ns(self.buckets, q, self.max or None, self.sums)

    def latency(self) -> Latency:
        if not self.timed:
            return Latency()
        p50, p95, p99 = (self.percentile_ns(q) for q in (0.50, 0.95, 0.99))
        return Latency(count=self.timed, p50=_ms(p50), p95=_ms(p95), p99=_ms(p99),
                       mean=self.total / self.timed / 1e6, max=self.max / 1e6)


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


def percentile_ns(buckets: dict[int, int], q: float, max_ns: float | None = None,
                  sums: dict[int, int] | None = None) -> float | None:
    """Nearest-rank percentile (0 < q <= 1) of a bucket histogram, in ns (None: no samples).

    The last rank is the known maximum.  Any other is its bucket's mean when the sums per
    bucket are known (a value between the bucket's smallest and largest sample, so always
    within the samples' range, and the sample itself when it is alone), else the bucket's
    geometric middle; capped at the maximum either way."""
    found = nearest_rank(buckets, q)
    if found is None:
        return None
    bucket, last = found
    if last and max_ns:
        return float(max_ns)
    total = sums.get(bucket) if sums else None
    value = total / buckets[bucket] if total else bucket_value_ns(bucket)
    return min(value, max_ns) if max_ns else value


def nearest_rank(counts: dict[int, int], q: float) -> tuple[int, bool] | None:
    """The histogram bucket holding the nearest rank of ``q``, and whether that rank is the last
    (whose value is the known maximum); None without samples."""
    n = sum(counts.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n - 1e-9))
    seen = 0
    for key in sorted(counts):
        seen += counts[key]
        if seen >= rank:
            return key, rank == n
    return None  # unreachable


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

async def id_range(session: Session) -> tuple[int, int] | None:
    """Rowids of the session's first and last op; None when it has none.

    Rowids grow with seq within a session, so a scan of the rowid range reads the
    session's ops in order without going through the session index row by row."""
    row = await session.rec.fetchone(
        "SELECT (SELECT id FROM operations WHERE session_id = ?1 ORDER BY seq LIMIT 1),"
        " (SELECT id FROM operations WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1)", (session.id,))
    return (row[0], row[1]) if row and row[0] is not None else None


async def compute(session: Session, *, buckets: int = 60) -> Stats:
    """Statistics of a whole session (it may still be recording: what is committed so far),
    from its rollups: O(buckets) however many ops it holds."""
    buckets = max(1, int(buckets))
    first_ns, last_ns = await session.time_range()
    reconciles = await rollups.reconcile_count(session)
    rate = session.info.sample_rate
    groups = await rollups.op_groups(session)
    if not groups:
        return Stats(reconciles=reconciles, sample_rate=rate, timeline=Timeline(
            counts=[0] * buckets, errors=[0] * buckets, p95_ms=[0.0] * buckets))
    width_ns = max(1, -(-(last_ns - first_ns) // buckets))  # the last op joins the last bucket
    scale = request_scale(rate)
    cells = await rollups.timeline(session, first_ns, last_ns, width_ns, buckets)
    peak = await rollups.peak(session, first_ns, scale)
    return await _assemble(session, groups, cells, peak, first_ns, last_ns, width_ns, buckets, reconciles, rate)


def _rounded(counts: dict[str, float]) -> dict[str, int]:
    return {k: round(v) for k, v in counts.items()}


async def _assemble(session: Session, groups: Sequence[rollups.OpGroup], cells: Sequence[tuple[int, ...]],
                    peak: int, first_ns: int, last_ns: int, width_ns: int, buckets: int, reconciles: int,
                    rate: float) -> Stats:
    scale = request_scale(rate)
    by_verb: dict[str, float] = {}
    by_kind: dict[str, float] = {}
    by_status: dict[str, float] = {}
    overall = Histogram()
    per_verb: dict[str, Histogram] = {}
    per_kind: dict[str, Histogram] = {}
    errors = 0.0
    recorded = 0
    for verb, kind, status, _res, _sub, bucket, n, total, mx, _ in groups:
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
    exact = exact_requests(session.info.attributes or {}, sum(
        n for v, *_, n, _t, _m, _s in groups if v not in EVENT_VERBS)) if rate < 1.0 else None
    if exact is not None:
        operations = exact + watch_events
    duration_s = (last_ns - first_ns) / 1e9
    return Stats(
        requests_exact=rate >= 1.0 or exact is not None,
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
        timeline=_timeline(cells, first_ns, width_ns, buckets, scale),
        top_objects=await _top_objects(session, scale),
        first_ns=first_ns,
        last_ns=last_ns,
        duration_s=duration_s,
        ops_per_s=average_rate(operations, first_ns, last_ns, peak),
        peak_ops_per_s=float(peak),
        sample_rate=rate,
        recorded_operations=recorded,
    )


def exact_requests(attributes: dict[str, Any], recorded_requests: int) -> int | None:
    """How many requests a sampled session's recorder saw, when it says: the proxy stores its count
    (``requests``); else the requests recorded plus those it counted and left out (``sampled_out``),
    when nothing was dropped or lost.  None: only an estimate (recorded / rate) can be given."""
    def count(name: str) -> int | None:
        value = attributes.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    seen = count("requests")
    if seen is not None:
        return seen
    errors = attributes.get("errors")
    lost = sum(v for v in errors.values() if isinstance(v, int)) if isinstance(errors, dict) else 0
    if count("recorded") is None or count("dropped") or lost:
        return None
    return recorded_requests + (count("sampled_out") or 0)


def average_rate(operations: int, first_ns: int, last_ns: int, peak: int) -> float:
    """Operations per second over the seconds the session spans, counted as the peak counts them
    (whole seconds from the first op), so the average never exceeds the peak: 9 ops within 24 ms
    are 9/s, not 382/s (the mean of the per-second counts is at most their largest; the min
    only absorbs the peak's rounding in a sampled session)."""
    seconds = max(last_ns - first_ns, 0) // SECOND_NS + 1
    rate = operations / seconds
    return min(rate, float(peak)) if peak else rate


def _ordered_verbs(counts: dict[str, Any]) -> dict[str, Any]:
    order = [v for v in VERB_ORDER if v in counts] + sorted(set(counts) - set(VERB_ORDER))
    return {v: counts[v] for v in order}


def _timeline(cells: Iterable[tuple[int, ...]], first_ns: int, width_ns: int, buckets: int,
              scale: float = 1.0) -> Timeline:
    counts = [0.0] * buckets
    errors = [0.0] * buckets
    hists: list[dict[int, int]] = [{} for _ in range(buckets)]
    maxima = [0] * buckets
    for t, code, n, errs, mx in cells:
        request = code != rollups.NON_REQUEST
        w = scale if request else 1.0
        counts[t] += n * w
        errors[t] += errs * w
        if request and code > 0:  # code 0: no latency recorded (Histogram)
            hists[t][code] = hists[t].get(code, 0) + n
            maxima[t] = max(maxima[t], mx)
    return Timeline(start_ns=first_ns, width_ns=width_ns, counts=[round(c) for c in counts],
                    errors=[round(e) for e in errors],
                    p95_ms=[_coarse_percentile(h, 0.95, m) / 1e6 for h, m in zip(hists, maxima)])


def _coarse_percentile(codes: dict[int, int], q: float, max_ns: int) -> float:
    """Nearest-rank percentile of a timeline histogram (4 buckets per octave), capped at the max;
    the max itself when the rank is the last (the p95 of fewer than 20 requests)."""
    found = nearest_rank(codes, q)
    if found is None:
        return 0.0
    code, last = found
    if last and max_ns:
        return float(max_ns)
    value = rollups.coarse_value_ns(code)
    return min(value, max_ns) if max_ns else value


async def _top_objects(session: Session, scale: float = 1.0) -> TopObjects:
    by_reads = await rollups.top_objects(
        session, "ROUND(reads * ?2) + watches DESC, obj_id", TOP_OBJECTS, (scale,), "reads + watches > 0")
    by_writes = await rollups.top_objects(
        session, "ROUND(writes * ?2) DESC, obj_id", TOP_OBJECTS, (scale,), "writes > 0")
    keys = await session.object_keys(list({o.obj_id for o in (*by_reads, *by_writes)}))

    def item(o: rollups.ObjectRollup) -> ObjectActivity:
        return ObjectActivity(key=object_label(keys.get(o.obj_id), o.obj_id), obj_id=o.obj_id,
                              reads=round(o.reads * scale) + o.watches, writes=round(o.writes * scale))

    return TopObjects(by_reads=[item(o) for o in by_reads], by_writes=[item(o) for o in by_writes])


def object_label(key: ObjectKey | None, obj_id: int) -> str:
    """An object's key as people read it, or #id when the key is unknown."""
    return str(key) if key is not None else f"#{obj_id}"
