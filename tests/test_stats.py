"""Session statistics: exact counts, percentiles within a latency bucket, timeline, top objects."""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.engine import stats
from replay_tui.engine.format import Operation
from replay_tui.engine.store import Recording, Session
from tests.conftest import SECOND, T0, k8s_object, list_body, op_for, status_body, write_session

MS = 1_000_000
BUCKET_TOLERANCE = 0.012  # half a bucket (2^(1/64) - 1 ~ 1.09 %), plus rounding


def nearest_rank(values: list[int], q: float) -> int:
    """The textbook nearest-rank percentile: the ceil(q * n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def close(got_ms: float, exact_ns: int, tolerance: float = BUCKET_TOLERANCE) -> bool:
    exact_ms = exact_ns / MS
    return abs(got_ms - exact_ms) <= tolerance * exact_ms + 1e-6


# --- a session whose every number is known ---------------------------------------------

GET_MS = [3, 5, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377]  # 12 gets
UPDATE_MS = [10, 20, 30, 40, 2500]  # 5 updates; the last one is the slowest request
WATCH_MS = 600_000  # a watch stream lasting 10 minutes is not a latency


def known_ops() -> list[Operation]:
    """24 ops over 40 s: gets, updates (two 409s), a failed list, a watch and its events."""
    ops: list[Operation] = []
    t = T0

    def add(op: Operation, at: int) -> None:
        op.ts_ns = at
        ops.append(op)

    web = k8s_object("Deployment", "web", api_version="apps/v1", generation=1, spec={"replicas": 1})
    cfg = k8s_object("ConfigMap", "cfg", data={"a": "1"})
    for i, ms in enumerate(GET_MS):  # gets of cfg, one per second from T0
        add(op_for("get", cfg, response=cfg, duration_ns=ms * MS), t + i * SECOND)
    for i, ms in enumerate(UPDATE_MS):  # updates of web at 20 s..24 s; the 2nd and 3rd conflict
        status = 409 if i in (1, 2) else 200
        body = status_body(409, "Conflict") if status == 409 else web
        add(op_for("update", web, status=status, reason="Conflict" if status == 409 else "",
                   request=web, response=body, duration_ns=ms * MS), t + (20 + i) * SECOND)
    add(Operation(verb="list", kind="Lease", api_version="coordination.k8s.io/v1", status=500,
                  reason="InternalError", duration_ns=7 * MS,
                  response=status_body(500, "InternalError")), t + 30 * SECOND)
    add(Operation(verb="watch", kind="ConfigMap", api_version="v1", namespace="default", status=200,
                  duration_ns=WATCH_MS * MS, query={"watch": "true"}), t + 31 * SECOND)
    # Four watch events inside one second (the peak), then an ERROR event.
    for i in range(4):
        add(op_for("modified", cfg, status=0, response=cfg), t + 35 * SECOND + i * 100 * MS)
    add(Operation(verb="error", response=status_body(410, "Expired")), t + 40 * SECOND)
    return ops


def with_reconcile(ops: list[Operation]) -> list[Any]:
    """Two reconcile spans around the updates."""
    steps: list[Any] = []
    for i, op in enumerate(ops):
        if i in (12, 14):
            steps.append(lambda sw: sw.begin_reconcile("web", kind="Deployment", namespace="default",
                                                       name="web"))
        steps.append(op)
    return steps


@pytest.fixture
async def known(session_of: Callable[..., Awaitable[Session]]) -> Session:
    return await session_of(with_reconcile(known_ops()))


async def test_counts_are_exact(known: Session) -> None:
    s = await stats.compute(known)
    assert s.operations == 24
    assert s.by_verb == {"get": 12, "list": 1, "watch": 1, "update": 5, "modified": 4, "error": 1}
    assert list(s.by_verb) == ["get", "list", "watch", "update", "modified", "error"]
    assert s.by_kind == {"ConfigMap": 17, "Deployment": 5, "Lease": 1, "": 1}
    assert s.by_status == {"0": 5, "200": 16, "409": 2, "500": 1}
    assert s.errors == 4  # two 409s, the 500 and the watch ERROR event
    assert s.error_rate == pytest.approx(4 / 24)
    assert s.reconciles == 2
    assert s.watch_events == 5
    assert s.requests == 19


async def test_latency_percentiles_within_a_bucket_and_exact_mean_and_max(known: Session) -> None:
    s = await stats.compute(known)
    requests = [ms * MS for ms in GET_MS + UPDATE_MS + [7]]  # not the watch, not the events
    lat = s.latency_ms
    assert lat.count == len(requests)
    for q, got in ((0.50, lat.p50), (0.95, lat.p95), (0.99, lat.p99)):
        assert close(got, nearest_rank(requests, q)), (q, got, nearest_rank(requests, q))
    assert lat.mean == pytest.approx(sum(requests) / len(requests) / MS)
    assert lat.max == 2500.0  # exact, from SQL

    gets = s.latency_by_verb["get"]
    assert gets.count == 12 and gets.max == 377.0 and gets.mean == pytest.approx(sum(GET_MS) / 12)
    assert close(gets.p50, nearest_rank([m * MS for m in GET_MS], 0.5))
    assert s.latency_by_verb["watch"].max == WATCH_MS  # shown per verb, kept out of the overall
    assert s.latency_by_verb["modified"] == stats.Latency()  # watch events: no latency, not "0 ns"
    assert set(s.latency_by_verb) == set(s.by_verb)
    assert s.latency_by_kind["Deployment"].count == 5
    assert s.latency_by_kind["Deployment"].max == 2500.0
    assert close(s.latency_by_kind["Deployment"].p50, 30 * MS)
    assert "" not in s.latency_by_kind  # the ERROR event has no kind and no latency


async def test_time_range_rates_and_peak(known: Session) -> None:
    s = await stats.compute(known)
    assert s.first_ns == T0 and s.last_ns == T0 + 40 * SECOND
    assert s.duration_s == pytest.approx(40.0)
    assert s.ops_per_s == pytest.approx(24 / 41)  # over the 41 whole seconds it touches, as the peak counts
    assert s.peak_ops_per_s == 4.0  # the four watch events in one second


async def test_the_average_rate_never_exceeds_the_peak(session_of: Callable[..., Awaitable[Session]]) -> None:
    """9 ops within 24 ms: 9/s on average, peak 9/s (not 382/s); ops at both ends of 1.01 s likewise."""
    def gets(times_ms: list[float]) -> list[Operation]:
        return [Operation(verb="get", kind="Pod", api_version="v1", namespace="d", name="p", status=200,
                          duration_ns=MS, ts_ns=T0 + int(t * MS)) for t in times_ms]

    burst = await stats.compute(await session_of(gets([i * 3 for i in range(9)])))
    assert (burst.operations, burst.peak_ops_per_s, burst.ops_per_s) == (9, 9.0, 9.0)
    ends = await stats.compute(await session_of(gets([0, 1, 2, 3, 1005, 1006, 1007, 1010])))
    assert ends.peak_ops_per_s == 4.0 and ends.ops_per_s == 4.0 <= ends.peak_ops_per_s


async def test_timeline_buckets_hold_every_op_where_it_happened(known: Session) -> None:
    s = await stats.compute(known, buckets=40)
    tl = s.timeline
    assert tl.start_ns == T0 and tl.width_ns == SECOND  # 40 s over 40 buckets
    assert len(tl.counts) == len(tl.errors) == len(tl.p95_ms) == 40
    assert sum(tl.counts) == s.operations and sum(tl.errors) == s.errors
    assert tl.counts[0] == 1 and tl.counts[19] == 0 and tl.counts[35] == 4
    assert tl.counts[39] == 1  # the op at exactly 40 s closes the last bucket
    assert [i for i, e in enumerate(tl.errors) if e] == [21, 22, 30, 39]
    assert close(tl.p95_ms[24], 2500 * MS)
    assert tl.p95_ms[19] == 0.0
    assert tl.counts[31] == 1 and tl.p95_ms[31] == 0.0  # the 10-minute watch is not a latency
    assert tl.counts[30] == 1 and close(tl.p95_ms[30], 7 * MS)
    coarse = (await stats.compute(known, buckets=4)).timeline
    assert coarse.counts == [10, 2, 5, 7]  # 0-10 s, 10-20 s, 20-30 s, 30-40 s


async def test_top_objects_by_reads_and_writes(known: Session) -> None:
    s = await stats.compute(known)
    reads, writes = s.top_objects.by_reads, s.top_objects.by_writes
    assert (reads[0].key, reads[0].reads, reads[0].writes) == ("ConfigMap/default/cfg", 12, 0)
    assert (writes[0].key, writes[0].writes, writes[0].reads) == ("Deployment.apps/default/web", 5, 0)
    assert writes[0].obj_id != reads[0].obj_id
    assert len(writes) == 1  # cfg was never written


async def test_json_shape_is_what_the_cli_reads(known: Session) -> None:
    data = msgspec.to_builtins(await stats.compute(known))
    for field in ("operations", "by_verb", "by_kind", "by_status", "errors", "error_rate", "reconciles",
                  "watch_events", "latency_ms", "latency_by_verb", "latency_by_kind", "timeline",
                  "top_objects", "first_ns", "last_ns", "duration_s", "ops_per_s", "peak_ops_per_s"):
        assert field in data
    assert set(data["latency_ms"]) >= {"p50", "p95", "p99", "mean", "max"}
    assert set(data["timeline"]) >= {"start_ns", "width_ns", "counts", "errors", "p95_ms"}
    assert set(data["top_objects"]["by_reads"][0]) >= {"key", "reads", "writes", "obj_id"}
    msgspec.json.encode(data)  # plain JSON


async def test_the_writers_rollups_say_what_the_operations_say(known: Session) -> None:
    """The rollups (read by default) and the same aggregates computed from the op rows (how a
    schema-1 recording is read) agree on every figure."""
    assert known.format == 3
    from_rollups = msgspec.to_builtins(await stats.compute(known))
    known.format = 1
    from_ops = msgspec.to_builtins(await stats.compute(known))
    assert from_rollups == from_ops


async def test_kinds_and_statuses_outside_the_fast_path_are_still_counted(
        session_of: Callable[..., Awaitable[Session]]) -> None:
    # A kind no object ever had (an empty list) and a status outside 0..999 take the text path.
    ops = [Operation(verb="list", kind="Ghost", api_version="v1", status=200, duration_ns=4 * MS,
                     response=list_body("Ghost", [])),
           Operation(verb="get", kind="ConfigMap", api_version="v1", namespace="d", name="x",
                     status=1234, duration_ns=6 * MS),
           op_for("get", k8s_object("ConfigMap", "y"), response=k8s_object("ConfigMap", "y"),
                  duration_ns=5 * MS)]
    s = await stats.compute(await session_of(ops))
    assert s.by_kind == {"ConfigMap": 2, "Ghost": 1}
    assert s.by_status == {"200": 2, "1234": 1}
    assert s.errors == 1
    assert s.latency_by_kind["Ghost"].max == 4.0
    assert s.latency_ms.count == 3 and s.latency_ms.max == 6.0


async def test_an_empty_session_gives_zeros(session_of: Callable[..., Awaitable[Session]]) -> None:
    s = await stats.compute(await session_of([]), buckets=10)
    assert s.operations == 0 and s.errors == 0 and s.error_rate == 0.0
    assert s.by_verb == {} and s.latency_ms == stats.Latency()
    assert s.timeline.counts == [0] * 10 and s.timeline.p95_ms == [0.0] * 10
    assert s.top_objects.by_reads == [] and s.peak_ops_per_s == 0.0 and s.duration_s == 0.0
    msgspec.json.encode(s)


async def test_only_the_asked_session_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    write_session(path, known_ops(), name="a")
    write_session(path, [op_for("get", k8s_object("Pod", "p"), duration_ns=MS)], name="b")
    async with await Recording.open(path) as rec:
        a = await stats.compute(await rec.session("a"))
        b = await stats.compute(await rec.session("b"))
    assert a.operations == 24 and b.operations == 1 and b.by_kind == {"Pod": 1}


# --- percentiles against the textbook definition ------------------------------------------

def _percentiles_of(durations: list[int]) -> stats.Stats:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.db"
        ops = [Operation(verb="get", kind="Pod", api_version="v1", namespace="d", name="p",
                         status=200, ts_ns=T0 + i, duration_ns=d) for i, d in enumerate(durations)]
        write_session(path, ops)

        async def run() -> stats.Stats:
            async with await Recording.open(path) as rec:
                return await stats.compute(await rec.session())

        return asyncio.run(run())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.integers(2, 10_000), st.integers(10_000, 10**12), st.just(0)), min_size=1,
                max_size=300))
def test_percentiles_are_within_3_percent_of_nearest_rank(durations: list[int]) -> None:
    """Over the latencies recorded (a duration of 0 is one the source did not record: left out of every
    figure, never a "0 ns"); each percentile within the samples' range, and the sample itself when alone."""
    s = _percentiles_of(durations)
    lat = s.latency_ms
    timed = [d for d in durations if d > 0]
    assert lat.count == len(timed)
    if not timed:
        assert lat == stats.Latency() and s.latency_by_kind["Pod"] == stats.Latency()
        return
    for q, got in ((0.50, lat.p50), (0.95, lat.p95), (0.99, lat.p99)):
        exact = nearest_rank(timed, q)
        assert got is not None and abs(got * MS - exact) <= 0.03 * exact, (q, got * MS, exact)
        assert min(timed) <= round(got * MS) <= max(timed) or got * MS == pytest.approx(min(timed))
    assert lat.max is not None and lat.max * MS == pytest.approx(max(timed))
    assert lat.mean is not None and lat.mean * MS == pytest.approx(sum(timed) / len(timed))
    if len(timed) == 1:
        assert lat.p50 == lat.p95 == lat.p99 == lat.max == pytest.approx(lat.mean)
