"""Hot loops and the causality graph folded at write time (``engine.loops``) say what the
session's ops say: ``analysis.hot_loops`` and ``causality.graph`` read from the folds equal
the same computed from the op rows (how a session written before them is read), for the
synthetic operator (batches cut anywhere, the writer in its own process or not), the scripted
loops, a Sieve trace (writes logged after the events they caused), and a session whose folds
were given up after a failed write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from benchmarks import generator
from recorder.importers.sieve import import_sieve
from replay_tui.engine import analysis, causality, loops, rollups
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import k8s_object, op_for
from tests.test_causality import Script, healthy, ping_pong, widget_loop

DATA = Path(__file__).parent / "data"
WINDOW = 60 * 10**9


async def both_ways(session: Session) -> tuple[Any, Any]:
    """(hot loops, graph) from the folds, asserted equal to the same from the op rows."""
    assert await rollups.count(session, "loops", "window_ns") == WINDOW
    folded = (await analysis.hot_loops(session, window_ns=WINDOW, hot_min=3),
              await causality.graph(session, min_rounds=3))
    streamed = (await analysis.hot_loops(session, window_ns=WINDOW, hot_min=3, folded=False),
                await causality.graph(session, min_rounds=3, folded=False))
    assert msgspec.to_builtins(folded[0]) == msgspec.to_builtins(streamed[0])
    assert msgspec.to_builtins(folded[1]) == msgspec.to_builtins(streamed[1])
    return folded


@pytest.mark.parametrize(("seed", "batch", "process"), [(0, 97, False), (4, 2000, True), (9, 333, False)])
async def test_the_synthetic_operators_folds_equal_its_ops(tmp_path: Path, open_recording: Any, seed: int,
                                                          batch: int, process: bool) -> None:
    path = tmp_path / "s.db"
    with RecordingWriter(path, process=process) as w:
        generator.write_session(w, 12000, seed=seed, batch=batch)
    session = await (await open_recording(path)).session()
    loops, graph = await both_ways(session)
    assert loops and graph.cycles and graph.caused_by_writes > 0


async def test_folds_mostly_waiting_in_the_file_equal_its_ops(tmp_path: Path, open_recording: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer keeps only the most recently used loop records and edges in memory (a day-long
    recording sees ever new objects); the rest wait in the file and are taken back when used
    again.  With room for a handful, the folds still equal the ops."""
    monkeypatch.setattr(loops, "LOOP_RECORDS", 6)
    monkeypatch.setattr(loops, "EDGES_KEPT", 4)
    monkeypatch.setattr(loops, "NAMES_KEPT", 6)
    monkeypatch.setattr(loops, "RING", 200)
    restored: list[int] = []
    restore, load, find = loops.ObjectLoop.restore, loops._Edge.load, loops.LoopFold._ids

    def record(cls: type, data: bytes) -> loops.ObjectLoop:
        restored.append(1)
        return restore(data)

    def edge(cls: type, fold: loops.EdgeFold) -> Any:
        restored.append(2)
        return load(fold)

    def ids(fold: loops.LoopFold, key: tuple[str, str, str]) -> list[int] | None:
        if key not in fold.by_name and fold.names_evicted:
            restored.append(3)
        return find(fold, key)

    monkeypatch.setattr(loops.ObjectLoop, "restore", classmethod(record))
    monkeypatch.setattr(loops._Edge, "load", classmethod(edge))
    monkeypatch.setattr(loops.LoopFold, "_ids", ids)
    path = tmp_path / "s.db"
    with RecordingWriter(path) as w:
        generator.write_session(w, 12000, seed=2, batch=150)
    assert all(restored.count(n) > 10 for n in (1, 2, 3))  # (records, edges and names evicted, taken back)
    session = await (await open_recording(path)).session()
    found, graph = await both_ways(session)
    assert found and graph.cycles


async def test_scripted_loops_fold_as_their_ops_say(session_of: Any) -> None:
    script = Script()
    healthy(script)
    widget_loop(script, 12)
    ping_pong(script, 8)
    widget_loop(script, 5, start=40, requeue=True)
    loops, graph = await both_ways(await session_of(script.steps))
    assert {c.rounds for c in graph.cycles} and loops


async def test_a_sieve_trace_with_writes_logged_after_their_events(tmp_path: Path, open_recording: Any) -> None:
    db = tmp_path / "sieve.db"
    import_sieve(str(DATA / "cassandra-operator-recreate.sieve-server.log"), str(db), progress=False)
    _, graph = await both_ways(await (await open_recording(db)).session())
    assert graph.reconciles and graph.triggered


async def test_after_a_failed_write_the_folds_are_read_from_the_ops(tmp_path: Path, open_recording: Any) -> None:
    """A batch that fails cannot be taken out of the folds: they are given up for the session, and
    its readers compute hot loops and the graph from its ops, as for a session written before."""
    path = tmp_path / "r.db"
    script = Script()
    widget_loop(script, 15)
    with RecordingWriter(path) as w:
        assert w.conn is not None
        s = w.session("s", "proxy", batch=10)
        for step in script.steps[:8]:
            step(s)
        s.flush()
        pages = w.conn.execute("PRAGMA page_count").fetchone()[0]
        w.conn.execute(f"PRAGMA max_page_count = {pages}")
        failed = 0
        for i in range(30):  # (bodies that need new pages)
            big = k8s_object("ConfigMap", f"big{i}", rv=1, data={"x": os.urandom(10000).hex()})
            try:
                s.append(op_for("get", big, response=big))
            except RecordingError:  # (the batch is kept, as a recorder's queue expects)
                failed += 1
        for step in script.steps[8:]:
            try:
                step(s)
            except RecordingError:
                failed += 1
        assert failed
        w.conn.execute("PRAGMA max_page_count = 1073741823")
        s.flush()
        cm = k8s_object("ConfigMap", "after", rv=1)
        s.append(op_for("get", cm, response=cm))
        s.close()
    session = await (await open_recording(path)).session()
    assert not await rollups.count(session, "loops", "window_ns")
    assert not await rollups.count(session, "causality", "reconciles")
    graph = await causality.graph(session, min_rounds=3)
    assert [c.rounds for c in graph.cycles] == [14]


async def test_a_recording_written_before_the_folds_is_read_from_its_ops(tmp_path: Path) -> None:
    """A schema-2 file without the fold tables: readers compute from the ops; a writer adding a
    session gives it the tables (the old session stays read the old way)."""
    import sqlite3

    path = tmp_path / "old.db"
    script = Script()
    widget_loop(script, 12)
    with RecordingWriter(path) as w:
        s = w.session("old", "proxy")
        for step in script.steps:
            step(s)
        s.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE rollup_loops")
    conn.execute("DROP TABLE rollup_edges")
    conn.execute("DELETE FROM rollup_counts WHERE what IN ('loops', 'causality')")
    conn.commit()
    conn.close()
    async with await Recording.open(path) as rec:
        graph = await causality.graph(await rec.session("old"), min_rounds=3)
        assert [c.rounds for c in graph.cycles] == [11]
    with RecordingWriter(path) as w:
        s = w.session("new", "proxy")
        for step in script.steps:
            step(s)
        s.close()
    async with await Recording.open(path) as rec:
        old, new = await rec.session("old"), await rec.session("new")
        assert not await rollups.count(old, "loops", "window_ns")
        assert [c.rounds for c in (await causality.graph(old, min_rounds=3)).cycles] == [11]
        await both_ways(new)
