"""Reading while another process writes, and cancelling long reads.

The writer runs in a separate process (as a recorder does), commits small
batches with pauses, and logs the wall-clock time of each commit; the test
keeps one Recording open and polls ``Session.refresh``.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import filters, state
from replay_tui.engine.format import Operation
from replay_tui.engine.store import Recording
from replay_tui.engine.writer import RecordingWriter

ROOT = Path(__file__).resolve().parent.parent
BATCHES, BATCH = 12, 25
LATENCY_BUDGET_NS = 250_000_000

WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from replay_tui.engine.format import Operation
    from replay_tui.engine.writer import RecordingWriter
    path, batches, size, pause = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    with RecordingWriter(path) as w:
        sw = w.session("live", "synthetic", batch=10**6, keyframe_interval=7)
        print("ready", flush=True)
        for b in range(batches):
            for i in range(size):
                n = sw.seq + 1
                obj = {"kind": "ConfigMap", "apiVersion": "v1",
                       "metadata": {"name": f"obj-{n}", "namespace": "default"}, "data": {"n": str(n)}}
                sw.append(Operation(verb="create", status=201, response=obj, ts_ns=1_700_000_000_000_000_000 + n))
            sw.flush()
            print("commit", sw.seq, time.time_ns(), flush=True)
            time.sleep(pause)
        sw.close()
        print("closed", sw.seq, time.time_ns(), flush=True)
""")


async def _start_writer(path: Path, batches: int, size: int, pause: float) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(ROOT), str(path), str(batches), str(size), str(pause),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready", (line, await proc.stderr.read())  # type: ignore[union-attr]
    return proc


async def test_refresh_sees_every_commit_in_order_and_promptly(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    proc = await _start_writer(path, BATCHES, BATCH, 0.04)
    seen: dict[int, int] = {}  # last seq -> when this reader first saw it
    async with await Recording.open(path) as rec:
        session = await rec.session("live")
        assert session.info.live
        last = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now_last = await session.refresh()
            seen_at = time.time_ns()
            assert now_last >= last, "the tail went backwards"
            if now_last > last:
                seen[now_last] = seen_at
                # Whole batches only: a reader never sees half of one.
                assert now_last % BATCH == 0, f"saw {now_last} ops, not a whole batch of {BATCH}"
                rows = await session.rows(last + 1, now_last - last)
                assert [r.seq for r in rows] == list(range(last + 1, now_last + 1))
                assert [r.name for r in rows] == [f"obj-{s}" for s in range(last + 1, now_last + 1)]
                # States are committed with their ops: the snapshot has one object per op.
                snap = await state.snapshot(session, now_last)
                assert len(snap) == now_last
                last = now_last
            if last == BATCHES * BATCH and session.info.ended_ns is not None:
                break
            await asyncio.sleep(0.01)
        assert last == BATCHES * BATCH
        assert not session.info.live
        op = await session.op(last)
        assert op.response["data"] == {"n": str(last)}

    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-500:]
    commits = [(int(p[1]), int(p[2])) for p in (ln.split() for ln in out.decode().splitlines())
               if p[0] == "commit"]
    assert [c[0] for c in commits] == [BATCH * (i + 1) for i in range(BATCHES)]
    late = []
    for seq, committed_at in commits:
        first_seen = min(t for s, t in seen.items() if s >= seq)
        if first_seen - committed_at > LATENCY_BUDGET_NS:
            late.append((seq, (first_seen - committed_at) / 1e6))
    assert not late, f"ops seen later than 250 ms after their commit: {late}"


async def test_follow_yields_growth_and_ends_with_the_session(tmp_path: Path) -> None:
    from replay_tui.engine.follow import follow

    path = tmp_path / "live.db"
    proc = await _start_writer(path, 5, 10, 0.03)
    async with await Recording.open(path) as rec:
        session = await rec.session()
        got = [n async for n in follow(session, interval=0.02)]
    await proc.communicate()
    assert got and got == sorted(got) and got[-1] == 50
    assert all(n % 10 == 0 for n in got)


# --- cancellation ----------------------------------------------------------------------------

SLOW_SQL = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000)"
            " SELECT count(*) FROM c")
PROMPT_S = 0.5


@pytest.fixture(scope="module")
def big_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60k body-less ops: a filter over them takes about a second."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    with RecordingWriter(path) as w:
        sw = w.session("big", "synthetic", batch=10_000)
        for i in range(60_000):
            sw.append(Operation(verb="get", kind="ConfigMap", api_version="v1", namespace="default",
                                name=f"obj-{i % 100}", status=200, ts_ns=1 + i))
        sw.append(Operation(verb="update", kind="ConfigMap", api_version="v1", namespace="default",
                            name="needle", status=409, ts_ns=70_000))
        sw.close()
    return path


async def _cancel_after(coro: Any, delay: float) -> float:
    """Start ``coro``, cancel it after ``delay`` s; how long the cancellation took."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(delay)
    assert not task.done(), "the query finished before it could be cancelled: make it slower"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    return time.monotonic() - started


async def _still_usable(rec: Recording) -> None:
    started = time.monotonic()
    assert await asyncio.wait_for(rec.fetchone("SELECT 1"), 10) == (1,)
    assert time.monotonic() - started < PROMPT_S, "the cancelled query still runs"
    session = await rec.session()
    assert await filters.find(session, 0, filters.parse("name=needle")) == session.last


async def test_cancelling_a_slow_query_interrupts_it(big_recording: Path) -> None:
    async with await Recording.open(big_recording) as rec:
        assert await _cancel_after(rec.fetchone(SLOW_SQL), 0.2) < PROMPT_S
        await _still_usable(rec)


async def test_cancelling_a_stream_interrupts_it(big_recording: Path) -> None:
    async def consume() -> None:
        async for _ in rec.stream(SLOW_SQL):
            pass

    async with await Recording.open(big_recording) as rec:
        assert await _cancel_after(consume(), 0.2) < PROMPT_S
        await _still_usable(rec)


async def test_cancelling_a_long_find(big_recording: Path) -> None:
    # Every term matches all ops but the last, which matches none: a full scan, slowly.
    slow = filters.parse(" ".join(["obj"] * 120 + ["no-such-thing"]))
    async with await Recording.open(big_recording) as rec:
        session = await rec.session()
        assert await _cancel_after(filters.find(session, 0, slow), 0.15) < PROMPT_S
        assert await _cancel_after(filters.find(session, session.last, slow, forward=False),
                                   0.15) < PROMPT_S
        await _still_usable(rec)


# --- a writer that meets a lock ---------------------------------------------------------------

async def test_a_flush_that_meets_a_lock_loses_nothing(tmp_path: Path) -> None:
    import sqlite3

    from replay_tui.engine.schema import RecordingError
    from tests.conftest import k8s_object, op_for

    path = tmp_path / "locked.db"
    with RecordingWriter(path) as writer:
        sw = writer.session("s", "synthetic", batch=1000)
        cms = [k8s_object("ConfigMap", f"cm-{i}") for i in range(4)]
        sw.append(op_for("create", cms[0], status=201, response=cms[0]))
        sw.flush()
        writer.conn.execute("PRAGMA busy_timeout = 50")
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the timeout
        sw.append(op_for("create", cms[1], status=201, response=cms[1]))
        sw.append(op_for("create", cms[2], status=201, response=cms[2]))
        with pytest.raises(RecordingError, match="locked"):
            sw.flush()
        blocker.execute("ROLLBACK")
        blocker.close()
        sw.append(op_for("create", cms[3], status=201, response=cms[3]))
        sw.close()
    async with await Recording.open(path) as rec:
        session = await rec.session()
        rows = await session.rows(1, session.last)
        assert [r.seq for r in rows] == list(range(1, session.last + 1)), "a gap in the seqs"
        assert [r.name for r in rows] == ["cm-0", "cm-1", "cm-2", "cm-3"]


async def test_cancelling_one_query_does_not_interrupt_another_tasks_query(tmp_path: Path) -> None:
    """Two tasks share a connection; cancelling the queued one leaves the running one intact."""
    import asyncio

    from tests.conftest import simple_ops, write_session

    path = tmp_path / "two.db"
    write_session(path, simple_ops(50))
    async with await Recording.open(path) as rec:
        slow_sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)"
                    " SELECT COUNT(*) FROM n")
        running = asyncio.create_task(rec.fetchone(slow_sql))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(rec.fetchone("SELECT COUNT(*) FROM operations"))
        await asyncio.sleep(0.05)
        queued.cancel()
        assert (await running) == (3000000,)
        assert (await rec.fetchone("SELECT COUNT(*) FROM operations")) == (50,)
