"""The kubestep importer, against databases built here with kubestep's schema."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import state
from replay_tui.engine.schema import RecordingError
from replay_tui.recorder.importers import cli
from replay_tui.recorder.importers.common import ImportFormatError
from replay_tui.recorder.importers.kubestep import import_kubestep
from tests.conftest import file_digest, simple_ops, write_session

DATA = Path(__file__).parent / "data"

#: kubestep's tables (as its Go storage package creates them).
KUBESTEP_DDL = """
CREATE TABLE operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    sequence_number INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    operation_type TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    namespace TEXT,
    name TEXT,
    resource_data TEXT,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    actor_id TEXT,
    uid TEXT,
    resource_version TEXT,
    generation INTEGER,
    verb TEXT
);
CREATE INDEX idx_session_sequence ON operations(session_id, sequence_number);
CREATE TABLE reconcile_spans (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    start_ts INTEGER NOT NULL,
    end_ts INTEGER,
    duration_ms INTEGER,
    kind TEXT NOT NULL,
    namespace TEXT,
    name TEXT,
    trigger_uid TEXT,
    trigger_resource_version TEXT,
    trigger_reason TEXT,
    error TEXT
);
CREATE INDEX idx_reconcile_session ON reconcile_spans(session_id, start_ts);
"""

T = 1_700_000_000  # kubestep stores Unix seconds
CTRL = "memcached-controller"
MC = {"kind": "Memcached", "apiVersion": "cache.example.com/v1alpha1",
      "metadata": {"name": "mc", "namespace": "default", "uid": "mc-uid", "resourceVersion": "100",
                   "generation": 1},
      "spec": {"size": 3}}
MC_STATUS = {**MC, "metadata": {**MC["metadata"], "resourceVersion": "102"}, "status": {"nodes": []}}
DEPLOY = {"metadata": {"name": "mc", "namespace": "default", "uid": "dep-uid", "resourceVersion": "200",
                       "generation": 1},
          "spec": {"replicas": 3}}  # typed clients drop kind/apiVersion
DEPLOY_SEEN = {"kind": "Deployment", "apiVersion": "apps/v1",
               **DEPLOY, "metadata": {**DEPLOY["metadata"], "resourceVersion": "201"},
               "status": {"readyReplicas": 1}}
POD = {"kind": "Pod", "apiVersion": "v1",
       "metadata": {"name": "mc-1", "namespace": "default", "uid": "pod-uid", "resourceVersion": "300"}}
CONFLICT = ('Operation cannot be fulfilled on deployments.apps "mc": the object has been modified; '
            "please apply your changes to the latest version and try again")


def op_row(session: str, seq: int, ts: int, otype: str, kind: str, name: str, data: Any = None, *,
           error: str = "", ms: int = 1, actor: str = CTRL, verb: str | None = None,
           namespace: str = "default", uid: str = "", rv: str = "", generation: int = 0) -> tuple:
    text = data if isinstance(data, str) or data is None else json.dumps(data)
    return (session, seq, ts, otype, kind, namespace, name, text, error, ms, actor, uid, rv, generation,
            verb if verb is not None else otype.lower())


def realistic_rows() -> tuple[list[tuple], list[tuple]]:
    a = "sess-a"
    ops = [
        op_row(a, 1, T, "WATCH", "Memcached", "mc", MC, actor="", verb="ADDED", uid="mc-uid", rv="100"),
        op_row(a, 2, T + 1, "GET", "Memcached", "mc", MC, ms=2),
        op_row(a, 3, T + 1, "GET", "Deployment", "mc", None, ms=3,
               error='deployments.apps "mc" not found'),
        op_row(a, 4, T + 1, "CREATE", "Deployment", "mc", DEPLOY, ms=12),
        op_row(a, 5, T + 2, "UPDATE", "Memcached", "mc", MC_STATUS, ms=5),
        op_row(a, 6, T + 3, "WATCH", "Deployment", "mc", {"type": "MODIFIED", "object": DEPLOY_SEEN},
               actor=CTRL, verb="watch"),
        op_row(a, 7, T + 4, "GET", "Memcached", "mc", MC_STATUS),
        op_row(a, 8, T + 4, "UPDATE", "Deployment", "mc", DEPLOY, error=CONFLICT, ms=4),
        op_row(a, 9, T + 5, "LIST", "Pod", "", [POD], ms=7),
        op_row(a, 10, T + 5, "DELETE", "Pod", "mc-1", None, ms=6),
        op_row(a, 11, T + 6, "GET", "Memcached", "mc", MC_STATUS),
        op_row(a, 12, T + 6, "GET", "ConfigMap", "cfg", None, actor="other-controller",
               error="configmaps \"cfg\" is forbidden: User cannot get"),
        op_row("sess-b", 1, T + 100, "LIST", "Memcached", "", {"kind": "MemcachedList",
               "apiVersion": "cache.example.com/v1alpha1", "metadata": {}, "items": [MC]}),
        op_row("sess-b", 2, T + 101, "PATCH", "Memcached", "mc", MC_STATUS),
    ]
    spans = [
        ("span-1", a, CTRL, T + 1, T + 2, 1500, "Memcached", "default", "mc", "mc-uid", "100",
         "watch event ADDED", None),
        ("span-2", a, CTRL, T + 4, T + 5, 1200, "Memcached", "default", "mc", "dep-uid", "201",
         "owned Deployment changed", "Operation cannot be fulfilled: conflict"),
        ("span-3", a, CTRL, T + 6, None, None, "Memcached", "default", "mc", None, None, "requeue", None),
    ]
    return ops, spans


def make_kubestep(path: Path, ops: list[tuple], spans: list[tuple] = ()) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(KUBESTEP_DDL)
    conn.executemany(
        "INSERT INTO operations (session_id, sequence_number, timestamp, operation_type, resource_kind,"
        " namespace, name, resource_data, error, duration_ms, actor_id, uid, resource_version,"
        " generation, verb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ops)
    conn.executemany("INSERT INTO reconcile_spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", spans)
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_kubestep(tmp_path / "kubestep.db", *realistic_rows())


async def test_every_session_is_imported(source: Path, tmp_path: Path, open_recording: Any) -> None:
    db = tmp_path / "rec.db"
    results = import_kubestep(str(source), str(db), progress=False)
    assert [r.session for r in results] == ["sess-a", "sess-b"]
    a, b = results
    assert a.verbs == {"added": 1, "get": 5, "create": 1, "update": 2, "modified": 1, "list": 1,
                       "delete": 1}
    assert (a.ops, a.watch_events, a.reads, a.writes, a.reconciles, a.errors, a.malformed) == (
        12, 2, 6, 4, 3, 3, 0)
    assert (b.ops, b.reconciles) == (2, 0)
    rec = await open_recording(db)
    infos = await rec.sessions()
    assert [(i.name, i.source, i.operations) for i in infos] == [
        ("sess-a", "kubestep", 12), ("sess-b", "kubestep", 2)]
    assert infos[0].attributes["kubestep_session"] == "sess-a"
    assert infos[0].attributes["source_file"] == str(source.resolve())
    # Sessions are independent: the same object in both, its own history in each.
    sb = await rec.session("sess-b")
    mc_b, _ = await sb.resolve_object("Memcached/default/mc")
    assert await state.object_at(sb, mc_b, 1) == MC
    assert await state.object_at(sb, mc_b, 2) == MC_STATUS


async def test_ops_verbs_errors_times(source: Path, tmp_path: Path, open_recording: Any) -> None:
    db = tmp_path / "rec.db"
    import_kubestep(str(source), str(db), session="sess-a", progress=False)
    rec = await open_recording(db)
    session = await rec.session()
    ops = [await session.op(seq) for seq in range(1, session.last + 1)]
    assert [op.verb for op in ops] == ["added", "get", "get", "create", "update", "modified", "get",
                                       "update", "list", "delete", "get", "get"]
    added, get_mc, missing, create = ops[0], ops[1], ops[2], ops[3]
    assert added.ts_ns == T * 10**9 and get_mc.duration_ns == 2_000_000
    assert (added.kind, added.api_version, added.resource) == (
        "Memcached", "cache.example.com/v1alpha1", "memcacheds")
    assert (missing.status, missing.reason, missing.message) == (
        404, "NotFound", 'deployments.apps "mc" not found')
    assert missing.error and missing.response["reason"] == "NotFound"
    assert (create.status, create.kind, create.api_version, create.resource) == (
        201, "Deployment", "apps/v1", "deployments")
    assert create.response == {"kind": "Deployment", "apiVersion": "apps/v1", **DEPLOY}
    conflict = ops[7]
    assert (conflict.status, conflict.reason, conflict.message) == (409, "Conflict", CONFLICT)
    assert conflict.request == {"kind": "Deployment", "apiVersion": "apps/v1", **DEPLOY}
    forbidden = ops[11]
    assert (forbidden.status, forbidden.reason, forbidden.actor) == (403, "Forbidden", "other-controller")
    assert ops[5].response == DEPLOY_SEEN  # the object of a watch event row, unwrapped
    assert get_mc.generation == 1 and get_mc.actor == CTRL
    # State: created, seen modified, unchanged by the conflict; the pod listed, then deleted.
    dep, _ = await session.resolve_object("Deployment/default/mc")
    assert await state.object_at(session, dep, 4) == create.response
    assert await state.object_at(session, dep, 8) == DEPLOY_SEEN
    pod, _ = await session.resolve_object("Pod/default/mc-1")
    assert await state.object_at(session, pod, 9) == POD
    assert await state.object_at(session, pod, 10) is None


async def test_reconcile_spans(source: Path, tmp_path: Path, open_recording: Any) -> None:
    db = tmp_path / "rec.db"
    import_kubestep(str(source), str(db), session="sess-a", progress=False)
    rec = await open_recording(db)
    session = await rec.session()
    spans = [await session.reconcile(i) for i in (1, 2, 3)]
    assert [s.source_id for s in spans] == ["span-1", "span-2", "span-3"]
    assert all(s.reconciler == CTRL and (s.kind, s.namespace, s.name) == ("Memcached", "default", "mc")
               for s in spans)
    one, two, three = spans
    assert (one.start_seq, one.end_seq, one.trigger_seq, one.error) == (2, 5, 1, "")
    assert one.start_ns == (T + 1) * 10**9 and one.end_ns == (T + 2) * 10**9
    assert (two.start_seq, two.end_seq, two.trigger_seq) == (7, 10, 6)
    assert two.error == "Operation cannot be fulfilled: conflict"
    assert (three.start_seq, three.end_seq) == (11, None)  # never ended in kubestep
    rows = await rec.fetchall("SELECT seq, reconcile FROM operations WHERE session_id = ? ORDER BY seq",
                              (session.id,))
    assert [r[1] for r in rows] == [None, 1, 1, 1, 1, None, 2, 2, 2, 2, 3, None]


def test_malformed_rows_are_counted(tmp_path: Path) -> None:
    ops = [
        op_row("s", 1, T, "GET", "ConfigMap", "a", {"kind": "ConfigMap", "apiVersion": "v1",
                                                    "metadata": {"name": "a", "namespace": "default"}}),
        op_row("s", 2, T, "FROB", "ConfigMap", "a", None, verb="frob"),
        op_row("s", 3, T, "GET", "ConfigMap", "a", '{"kind": "ConfigMap", "metad'),
        op_row("s", 4, T, "GET", "ConfigMap", "a", None, verb="get"),
    ]
    ops[3] = ops[3][:2] + ("yesterday",) + ops[3][3:]
    src = make_kubestep(tmp_path / "k.db", ops)
    (result,) = import_kubestep(str(src), str(tmp_path / "rec.db"), progress=False)
    assert result.malformed == 3
    assert [(m["line"], m["reason"].split(" (")[0]) for m in result.malformed_lines] == [
        (2, "unknown operation_type 'FROB'"), (3, "resource_data is not valid JSON"),
        (4, "bad timestamp 'yesterday'")]
    assert result.ops == 3  # the unreadable body and time are dropped, the ops kept


def test_not_a_kubestep_database(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    text = DATA / "audit2rbac-demo.log"
    with pytest.raises(ImportFormatError) as info:
        import_kubestep(str(text), str(db), progress=False)
    assert str(info.value) == (f"{text}: not a kubestep database (expected an SQLite file with an "
                               "operations table)")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ImportFormatError, match="not a kubestep database"):
        import_kubestep(str(other), str(db), progress=False)
    ours = tmp_path / "ours.db"
    write_session(ours, simple_ops(3))
    with pytest.raises(ImportFormatError, match="a replay-tui recording, not a kubestep database"):
        import_kubestep(str(ours), str(db), progress=False)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(ImportFormatError, match="empty file, nothing to import"):
        import_kubestep(str(empty), str(db), progress=False)
    no_rows = make_kubestep(tmp_path / "none.db", [])
    with pytest.raises(ImportFormatError, match="holds no operations"):
        import_kubestep(str(no_rows), str(db), progress=False)
    assert not db.exists()


def test_unknown_session_and_unchanged_target(source: Path, tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    write_session(db, simple_ops(3), name="before")
    digest = file_digest(db)
    with pytest.raises(ImportFormatError, match=r"no kubestep session 'nope' \(sessions: sess-a, sess-b\)"):
        import_kubestep(str(source), str(db), session="nope", progress=False)
    assert file_digest(db) == digest


async def test_failure_in_a_session_rolls_back_that_session(source: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            open_recording: Any) -> None:
    from replay_tui.engine.writer import SessionWriter

    original = SessionWriter.append

    def failing(self: SessionWriter, op: Any) -> int:
        if self.name == "sess-b":
            raise RuntimeError("boom")
        return original(self, op)

    monkeypatch.setattr(SessionWriter, "append", failing)
    db = tmp_path / "rec.db"
    with pytest.raises(RuntimeError, match="boom"):
        import_kubestep(str(source), str(db), progress=False)
    rec = await open_recording(db)
    assert [s.name for s in await rec.sessions()] == ["sess-a"]  # atomic per session
    assert await rec.fetchone("SELECT COUNT(*) FROM operations WHERE session_id = 2") == (0,)


def test_cli(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="replay-tui")
    cli.register(parser.add_subparsers(dest="command"))
    db = tmp_path / "rec.db"
    args = parser.parse_args(["import", "kubestep", str(source), "--db", str(db)])
    assert args.func(args) == 0
    assert capsys.readouterr().out == (
        f"imported 12 ops (2 watch events, 6 reads, 4 writes), 3 reconciles, 0 malformed lines into "
        f"{db} session sess-a\n"
        f"imported 2 ops (0 watch events, 1 reads, 1 writes), 0 reconciles, 0 malformed lines into "
        f"{db} session sess-b\n")
    args = parser.parse_args(["import", "kubestep", str(DATA / "audit2rbac-demo.log"), "--db", str(db)])
    with pytest.raises(RecordingError, match="not a kubestep database"):
        args.func(args)
