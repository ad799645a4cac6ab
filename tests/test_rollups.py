"""The writer's rollups say what the operations say: statistics, analysis and reports read
from the rollups equal the same figures computed from the op rows (the way a schema-1
recording is read), on synthetic traffic of every shape, sampled, across batches, after
a failed transaction was retried, and at every time resolution."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import generator
from replay_tui.engine import analysis, report, rollups, stats
from replay_tui.engine.format import Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import T0, k8s_object, op_for


async def _both(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
    """(from the rollups, from the op rows) of everything that reads rollups."""
    async def everything() -> dict[str, Any]:
        rep = await report.build(session, slow_ms=20.0)
        found = await analysis.analyze(session, slow_ms=20.0)
        return msgspec.to_builtins({"stats": await stats.compute(session), "report": rep,
                                    "slow": found.slow_operations, "access": found.access_patterns})

    assert session.format == 3
    a = await everything()
    session.format = 1
    try:
        b = await everything()
    finally:
        session.format = 2
    return a, b


def _synthetic(path: Path, ops: int, seed: int, batch: int, **attributes: Any) -> None:
    with RecordingWriter(path) as w:
        generator.write_session(w, ops, seed=seed, batch=batch)
        if attributes:
            w.conn.execute("UPDATE sessions SET attributes = ?", (msgspec.json.encode(attributes).decode(),))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.integers(1, 1500), seed=st.integers(0, 10_000), batch=st.sampled_from([7, 100, 2000]))
def test_rollups_agree_with_the_operations(tmp_path_factory: pytest.TempPathFactory, ops: int, seed: int,
                                           batch: int) -> None:
    path = tmp_path_factory.mktemp("r") / "r.db"
    _synthetic(path, ops, seed, batch)

    async def check() -> None:
        async with await Recording.open(path) as rec:
            a, b = await _both(await rec.session())
            assert a == b

    asyncio.run(check())


async def test_a_sampled_session_scales_the_same_either_way(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _synthetic(path, 3000, 5, 500, sample_rate=0.25)
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        a, b = await _both(ses)
        assert a == b
        assert a["stats"]["sample_rate"] == 0.25 and a["stats"]["operations"] > 3000


async def test_latencies_not_recorded_are_left_out_the_same_either_way(tmp_path: Path) -> None:
    """A Sieve trace (every duration 0: not recorded) and a session mixing recorded and unrecorded
    latencies: both paths leave the unknown ones out of every percentile, mean and max."""
    from replay_tui.recorder.importers.sieve import import_sieve

    sieve = tmp_path / "sieve.db"
    import_sieve(str(Path(__file__).parent / "data" / "cassandra-operator-recreate.sieve-server.log"),
                 str(sieve), progress=False)
    mixed = tmp_path / "mixed.db"
    cfg = k8s_object("ConfigMap", "cfg", data={"a": "1"})
    with RecordingWriter(mixed) as w:
        s = w.session("s", "audit")
        for i in range(40):
            s.append(op_for("get", cfg, response=cfg, duration_ns=(i % 4) * 3_000_000, ts_ns=T0 + i * 10**8))
        s.close()
    for path in (sieve, mixed):
        async with await Recording.open(path) as rec:
            a, b = await _both(await rec.session())
            assert a == b
            lat = a["stats"]["latency_ms"]
            if path == sieve:
                assert lat["count"] == 0 and lat["p50"] is None and lat["max"] is None
            else:
                assert lat["count"] == 30 and lat["p50"] == pytest.approx(6.0) and lat["mean"] == pytest.approx(6.0)


async def test_a_batch_that_failed_and_was_retried_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    cfg = k8s_object("ConfigMap", "cfg", data={"a": "1"})
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy", batch=1000)
        for i in range(5):
            s.append(op_for("get", cfg, response=cfg, duration_ns=(i + 1) * 1_000_000, ts_ns=T0 + i))
        s.flush()
        blocker = sqlite3.connect(path, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        w.conn.execute("PRAGMA busy_timeout = 50")
        for i in range(5, 9):
            s.append(op_for("update", k8s_object("ConfigMap", "cfg", rv=i, data={"a": str(i)}),
                            response=k8s_object("ConfigMap", "cfg", rv=i, data={"a": str(i)}),
                            duration_ns=7_000_000, ts_ns=T0 + i))
        with pytest.raises(RecordingError):
            s.flush()
        blocker.rollback()
        blocker.close()
        s.flush()  # the retry
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        a, b = await _both(ses)
        assert a == b
        assert a["stats"]["operations"] == 9 and a["stats"]["by_verb"] == {"get": 5, "update": 4}


async def test_a_long_session_keeps_only_the_resolutions_it_can_use(tmp_path: Path) -> None:
    """Ops spread over 10 hours: the 1 ms .. 1 s resolutions are dropped as the session grows."""
    path = tmp_path / "long.db"
    hour = 3600 * 10**9
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy", batch=50)
        for i in range(400):
            s.append(Operation(verb="get", kind="Pod", api_version="v1", namespace="n", name=f"p{i % 7}",
                               status=500 if i % 13 == 0 else 200, duration_ns=(i % 50 + 1) * 1_000_000,
                               ts_ns=T0 + i * 10 * hour // 400))
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        levels = {r[0] for r in await rec.fetchall("SELECT DISTINCT level FROM rollup_time")}
        first, last = await ses.time_range()
        finest = rollups.level_for(last - first)
        assert min(levels) == finest and finest == 4  # 10 s buckets: 3,600 of them
        a, b = await _both(ses)
        assert a == b
        assert sum(a["stats"]["timeline"]["counts"]) == 400
