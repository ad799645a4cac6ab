"""Real kopf operators recorded end to end: ``replay-tui record -- kopf run --standalone -A op.py``.

Each operator runs once for the whole module (kopf takes seconds to start);
the tests read what it left: a closed proxy session whose operations,
object states and inferred reconcile spans tell what the operator did.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kopf")

from replay_tui.engine import state
from replay_tui.engine.store import Recording
from tests.support.emulator import EmulatorThread
from tests.support.scenarios import buggy_scenario, healthy_scenario, new_emulator, record_operator

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db"


class Run:
    def __init__(self, db: Path, history: list[tuple[int, tuple[str, dict[str, Any], bytes]]] | None = None):
        self.db, self.history = db, history or []

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    db = tmp_path_factory.mktemp("kopf") / "healthy.db"
    with EmulatorThread(new_emulator()) as server:
        record_operator(db, "healthy.py", healthy_scenario, session="healthy", server=server, grace=5)
        history = server.call(lambda: list(server.emulator.history[("example.com", "greetings")]))
    yield Run(db, history)


@pytest.fixture(scope="module")
def buggy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    db = tmp_path_factory.mktemp("kopf") / "buggy.db"
    record_operator(db, "buggy.py", lambda c: buggy_scenario(c, seconds=3.5), session="buggy", grace=1,
                    ok_status=(0, 137))
    yield Run(db)


def test_the_session_is_a_closed_proxy_recording_with_nothing_lost(healthy: Run) -> None:
    (session,) = healthy.rows("SELECT * FROM sessions")
    attrs = json.loads(session["attributes"])
    assert (session["name"], session["source"], session["actor"]) == ("healthy", "proxy", "kopf")
    assert session["ended_ns"] is not None and session["op_count"] == attrs["recorded"] > 20
    assert attrs["exit_status"] == 0 and attrs["dropped"] == 0 and sum(attrs["errors"].values()) == 0
    assert attrs["reconciles"] == "inferred"
    assert attrs["listen"].startswith("127.0.0.1:") and attrs["recorder_version"] == "0.1.0"


def test_the_operators_work_is_recorded_call_by_call(healthy: Run) -> None:
    calls = [(r["verb"], r["kind"], r["name"], r["status"]) for r in healthy.rows(
        "SELECT * FROM operations WHERE kind = 'ConfigMap' ORDER BY seq")]
    assert calls == [("create", "ConfigMap", "hello-greeting", 201), ("create", "ConfigMap", "world-greeting", 201),
                     ("patch", "ConfigMap", "hello-greeting", 200), ("delete", "ConfigMap", "hello-greeting", 200)]
    watches = {r["resource"] for r in healthy.rows("SELECT * FROM operations WHERE verb = 'watch'")}
    assert watches == {"greetings", "customresourcedefinitions"}  # kopf -A: cluster-wide watches
    finalizer_patches = [r for r in healthy.rows(
        "SELECT * FROM operations WHERE verb = 'patch' AND kind = 'Greeting' AND subresource = ''")]
    assert finalizer_patches  # kopf adds its finalizer and its bookkeeping annotations


def test_every_event_the_server_sent_is_recorded_once_in_order(healthy: Run) -> None:
    sent = [(json.loads(line)["type"].lower(), str(rv)) for rv, (_, _, line) in healthy.history]
    recorded = [(r["verb"], r["resource_version"]) for r in healthy.rows(
        "SELECT * FROM operations WHERE kind = 'Greeting' AND verb IN ('added', 'modified', 'deleted')"
        " ORDER BY seq")]
    assert recorded == sent and len(sent) > 5


def test_spans_are_inferred_from_the_events_that_triggered_them(healthy: Run) -> None:
    spans = healthy.rows("SELECT * FROM reconciles ORDER BY id")
    assert spans and all(s["inferred"] == 1 for s in spans)
    for span in spans:
        trigger = healthy.rows("SELECT * FROM operations WHERE seq = ?", (span["trigger_seq"],))[0]
        assert trigger["verb"] in ("added", "modified", "deleted")
        assert (trigger["kind"], trigger["name"]) == (span["kind"], span["name"])
        members = healthy.rows("SELECT reconcile FROM operations WHERE seq BETWEEN ? AND ?"
                               " AND verb NOT IN ('added', 'modified', 'deleted', 'bookmark')",
                               (span["start_seq"], span["end_seq"]))
        assert members and all(m["reconcile"] == span["id"] for m in members)
    creates = healthy.rows("SELECT o.name, r.name AS owner FROM operations o JOIN reconciles r"
                           " ON r.id = o.reconcile WHERE o.verb = 'create' AND o.kind = 'ConfigMap'")
    assert [(c["name"], c["owner"]) for c in creates] == [("hello-greeting", "hello"),
                                                         ("world-greeting", "world")]


async def test_object_states_can_be_replayed_from_the_recording(healthy: Run) -> None:
    rec = await Recording.open(str(healthy.db))
    try:
        ses = await rec.session(None)
        await ses.refresh()
        hello, _ = await ses.resolve_object("ConfigMap/default/hello-greeting")
        world, _ = await ses.resolve_object("ConfigMap/default/world-greeting")
        created = healthy.rows("SELECT seq FROM operations WHERE verb = 'create' AND name = 'hello-greeting'")[0][0]
        assert (await state.object_at(ses, hello, created))["data"] == {"message": "hello, world"}
        assert await state.object_at(ses, hello, ses.last) is None  # deleted with its Greeting
        assert (await state.object_at(ses, world, ses.last))["data"] == {"message": "world, world"}
    finally:
        await rec.close()


def test_the_buggy_operator_shows_its_hot_loop_and_conflict_storm(buggy: Run) -> None:
    status_writes = buggy.rows("SELECT * FROM operations WHERE verb = 'patch' AND kind = 'Report'"
                               " AND subresource = 'status'")
    assert len(status_writes) >= 20  # the status write that re-triggers its own handler
    echoes = buggy.rows("SELECT * FROM operations WHERE verb = 'modified' AND kind = 'Report'")
    assert len(echoes) >= 20
    conflicts = buggy.rows("SELECT * FROM operations WHERE verb = 'update' AND status = 409")
    assert len(conflicts) >= 5
    assert {(c["kind"], c["name"], c["reason"]) for c in conflicts} == {("ConfigMap", "daily-summary", "Conflict")}
    stale = {json.loads(_blob(buggy, c["request_blob"]))["metadata"]["resourceVersion"] for c in conflicts}
    assert len(stale) == 1  # the same stale resourceVersion every time: that is the bug


def _blob(run: Run, blob_id: int) -> bytes:
    from replay_tui.engine import codec

    (row,) = run.rows("SELECT codec, data FROM blobs WHERE id = ?", (blob_id,))
    conn = sqlite3.connect(f"file:{run.db}?mode=ro", uri=True)
    try:
        dicts = codec.Dictionaries.of(conn)
    finally:
        conn.close()
    return codec.unpack(row["codec"], row["data"], dicts)


def test_the_bundled_demo_is_a_real_recording_of_both_operators() -> None:
    if not DEMO.exists():
        pytest.skip("fixtures/demo/demo.db has not been generated (python fixtures/make_demo.py)")
    run = Run(DEMO)
    sessions = {r["name"]: r for r in run.rows("SELECT * FROM sessions")}
    assert set(sessions) == {"healthy-operator", "buggy-operator"}
    for s in sessions.values():
        assert s["source"] == "proxy" and s["actor"] == "kopf" and s["ended_ns"] is not None
    buggy_id = sessions["buggy-operator"]["id"]
    conflicts = run.rows("SELECT COUNT(*) FROM operations WHERE session_id = ? AND status = 409", (buggy_id,))
    assert conflicts[0][0] >= 5
    assert DEMO.stat().st_size < 4 * 1024 * 1024
