"""The synthetic traffic generator and the benchmark harness.

The generator feeds demos and the benchmarks, so these tests check the traffic
looks like an operator's (what a user browsing it would notice) and is the
same for the same seed.  Sessions are read back with plain sqlite3 (read-only).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks.generator import HOT, write_session
from replay_tui.engine import codec
from replay_tui.engine.format import EVENT_VERBS
from replay_tui.engine.writer import RecordingWriter

ROOT = Path(__file__).resolve().parent.parent
OPS = 3000


def _write(path: Path, ops: int = OPS, seed: int = 0, name: str = "synthetic") -> int:
    with RecordingWriter(path) as writer:
        return write_session(writer, ops, name=name, seed=seed)


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = tmp_path_factory.mktemp("synth") / "synth.db"
    _write(path)
    conn = _ro(path)
    yield conn
    conn.close()


def _body(conn: sqlite3.Connection, blob_id: int) -> bytes:
    row = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    return codec.unpack(row[0], row[1], codec.Dictionaries.of(conn))


def test_exactly_the_requested_ops_with_contiguous_seqs(db: sqlite3.Connection) -> None:
    count, low, high = db.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM operations").fetchone()
    assert (count, low, high) == (OPS, 1, OPS)
    source, op_count, ended = db.execute("SELECT source, op_count, ended_ns FROM sessions").fetchone()
    assert source == "synthetic" and op_count == OPS and ended is not None


def test_verb_mix_of_an_operator(db: sqlite3.Connection) -> None:
    verbs = dict(db.execute("SELECT verb, COUNT(*) FROM operations GROUP BY verb").fetchall())
    for verb in ("get", "list", "create", "update", "patch", "delete", "added", "modified", "deleted"):
        assert verbs.get(verb, 0) > 0, f"no {verb} ops"
    assert verbs["get"] > verbs["update"] > verbs["create"]  # reads dominate, creates are rare
    patch_types = {r[0] for r in db.execute("SELECT DISTINCT patch_type FROM operations WHERE verb = 'patch'")}
    assert "" not in patch_types and "application/merge-patch+json" in patch_types
    status_updates = db.execute(
        "SELECT COUNT(*) FROM operations WHERE verb = 'update' AND subresource = 'status'").fetchone()[0]
    assert status_updates > 50
    lists = db.execute("SELECT query FROM operations WHERE verb = 'list' AND status = 200").fetchall()
    assert any("labelSelector" in (q or "") for (q,) in lists)


def test_errors_conflicts_not_found_and_server_errors(db: sqlite3.Connection) -> None:
    reasons = dict(db.execute(
        "SELECT reason, COUNT(*) FROM operations WHERE status >= 400 GROUP BY reason").fetchall())
    assert reasons.get("Conflict", 0) >= 5
    assert reasons.get("NotFound", 0) >= 5
    assert db.execute("SELECT COUNT(*) FROM operations WHERE status >= 500").fetchone()[0] >= 1
    # A 409 is retried: the same object is written successfully later in the same reconcile.
    conflicts = db.execute(
        "SELECT seq, reconcile, obj_id FROM operations WHERE status = 409").fetchall()
    retried = sum(1 for seq, rid, obj in conflicts if db.execute(
        "SELECT 1 FROM operations WHERE reconcile = ? AND obj_id = ? AND seq > ? AND status = 200"
        " AND verb = 'update'", (rid, obj, seq)).fetchone())
    assert retried == len(conflicts)


def test_watch_events_repeat_the_written_object_byte_for_byte(db: sqlite3.Connection) -> None:
    writes = db.execute(
        "SELECT seq, obj_id, response_blob FROM operations WHERE verb IN ('update', 'create', 'patch')"
        " AND status < 300").fetchall()
    echoed = sum(1 for seq, obj, blob in writes if db.execute(
        "SELECT 1 FROM operations WHERE verb IN ('added', 'modified', 'deleted') AND obj_id = ?"
        " AND seq > ? AND response_blob = ?", (obj, seq, blob)).fetchone())
    assert echoed >= 0.9 * len(writes)  # the last few may fall past the end of the session


def test_reads_and_list_items_repeat_current_versions_exactly(db: sqlite3.Connection) -> None:
    # GETs and list items carry the bytes of the version already recorded, so they never
    # add a state version; only writes and watch events do.
    verbs = dict(db.execute(
        "SELECT o.verb, COUNT(*) FROM states s JOIN operations o ON o.seq = s.seq GROUP BY o.verb").fetchall())
    assert verbs.get("modified", 0) > 0 and verbs.get("update", 0) > 0
    assert verbs.get("get", 0) == 0 and verbs.get("list", 0) == 0
    listed = db.execute("SELECT COUNT(*) FROM operations WHERE verb = 'list' AND status = 200").fetchone()[0]
    assert listed > 20


def test_reconciles_are_triggered_by_watch_events(db: sqlite3.Connection) -> None:
    spans = db.execute("SELECT id, start_seq, end_seq, trigger_seq FROM reconciles").fetchall()
    assert len(spans) > 100
    triggered = [s for s in spans if s[3] is not None]
    assert len(triggered) > 0.9 * len(spans)
    for _rid, start, _end, trigger in triggered[:300]:
        verb = db.execute("SELECT verb FROM operations WHERE seq = ?", (trigger,)).fetchone()[0]
        assert verb in EVENT_VERBS and trigger < start
    outside = db.execute(
        "SELECT COUNT(*) FROM operations o JOIN reconciles r ON r.id = o.reconcile"
        " WHERE o.seq < r.start_seq OR o.seq > r.end_seq").fetchone()[0]
    assert outside == 0
    requests = db.execute(
        "SELECT COUNT(*), COUNT(reconcile) FROM operations WHERE verb NOT IN ('added', 'modified', 'deleted')"
        " AND verb != 'list'").fetchone()
    assert requests[1] == requests[0]  # every get/write of the operator belongs to a reconcile


def test_hot_loop_rewrites_one_status_without_generation_change(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT seq, generation, resource_version FROM operations WHERE namespace = ? AND name = ?"
        " AND kind = 'WebApp' AND verb = 'update' AND subresource = 'status' AND status = 200"
        " ORDER BY seq", HOT).fetchall()
    assert len(rows) >= 100
    assert len({g for _, g, _ in rows}) == 1  # the spec never changes
    versions = [int(rv) for _, _, rv in rows]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    # Its reconciles are triggered by its own MODIFIED events.
    own = db.execute(
        "SELECT COUNT(*) FROM reconciles r JOIN operations t ON t.seq = r.trigger_seq"
        " WHERE r.namespace = ? AND r.name = ? AND t.verb = 'modified' AND t.name = r.name",
        HOT).fetchone()[0]
    assert own >= 0.9 * len(rows)


def test_objects_are_2_to_10_kb_with_realistic_metadata(db: sqlite3.Connection) -> None:
    blobs = db.execute(
        "SELECT kind, response_blob FROM operations WHERE verb = 'get' AND status = 200").fetchall()
    sizes = defaultdict(list)
    for kind, blob in blobs:
        body = _body(db, blob)
        sizes[kind].append(len(body))
        assert b'"managedFields"' in body and b'"resourceVersion"' in body
    assert {"WebApp", "Deployment", "Service", "ConfigMap"} <= set(sizes)
    every = [n for values in sizes.values() for n in values]
    assert min(every) >= 2000 and max(every) <= 10 * 1024


def test_resource_versions_increase_and_generations_bump_only_on_spec_change(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT obj_id, seq, verb, subresource, resource_version, generation, uid FROM operations"
        " WHERE kind = 'Deployment' AND status < 300 AND verb IN ('create', 'update', 'added', 'modified')"
        " ORDER BY obj_id, seq").fetchall()
    last: dict[int, tuple[int, int, str]] = {}
    spec_changes = 0
    for obj, _seq, verb, _sub, rv, gen, uid in rows:
        if obj in last:
            prev_rv, prev_gen, prev_uid = last[obj]
            if uid == prev_uid:
                assert int(rv) >= prev_rv
                if gen != prev_gen:
                    assert verb in ("update", "modified") and gen == prev_gen + 1
                    spec_changes += verb == "update"
        last[obj] = (int(rv), gen, uid)
    assert spec_changes > 0
    # Status-only writes of WebApps never move the generation.
    bumped = db.execute(
        "SELECT COUNT(*) FROM operations a JOIN operations b ON b.obj_id = a.obj_id AND b.seq = ("
        " SELECT MAX(seq) FROM operations c WHERE c.obj_id = a.obj_id AND c.seq < a.seq AND c.status = 200)"
        " WHERE a.kind = 'WebApp' AND a.subresource = 'status' AND a.status = 200"
        " AND a.generation != b.generation").fetchone()[0]
    assert bumped == 0


def test_latencies_are_log_normal_with_a_slow_tail(tmp_path: Path) -> None:
    path = tmp_path / "lat.db"
    _write(path, 20000, seed=5)
    with _ro(path) as conn:
        gets = [r[0] for r in conn.execute(
            "SELECT duration_ns FROM operations WHERE verb = 'get' AND status = 200 ORDER BY duration_ns")]
        slow = conn.execute("SELECT COUNT(*) FROM operations WHERE duration_ns > 1000000000").fetchone()[0]
        events = conn.execute(
            "SELECT MAX(duration_ns) FROM operations WHERE verb IN ('added', 'modified', 'deleted')").fetchone()[0]
    median = gets[len(gets) // 2] / 1e6
    assert 1.0 < median < 10.0
    assert gets[int(len(gets) * 0.99)] > 3 * gets[len(gets) // 2]  # a long tail
    assert 3 <= slow <= 200
    assert events == 0


def test_same_seed_same_session_other_seed_other_session(tmp_path: Path) -> None:
    def dump(path: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
        with _ro(path) as conn:
            ops = conn.execute("SELECT * FROM operations ORDER BY seq").fetchall()
            spans = conn.execute("SELECT * FROM reconciles ORDER BY id").fetchall()
            dicts = codec.Dictionaries.of(conn)
            bodies = [(i, codec.unpack(c, d, dicts)) for i, c, d in conn.execute("SELECT * FROM blobs ORDER BY id")]
        return ops, spans, bodies

    _write(tmp_path / "a.db", 1500, seed=7)
    _write(tmp_path / "b.db", 1500, seed=7)
    _write(tmp_path / "c.db", 1500, seed=8)
    a, b, c = dump(tmp_path / "a.db"), dump(tmp_path / "b.db"), dump(tmp_path / "c.db")
    assert a == b
    assert a[0] != c[0]


def test_zero_ops_is_an_empty_closed_session(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    _write(path, 0)
    with _ro(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM sessions WHERE ended_ns IS NOT NULL").fetchone()[0] == 1


def test_batch_compression_stores_what_pack_stores() -> None:
    bodies = [b"{}", b'{"a":"' + b"x" * 300 + b'"}', bytes(range(256)) * 2, b'{"k":1}' * 200]
    big = [b for b in bodies if len(b) >= codec.MIN_COMPRESS]
    packed = codec.pack_many(bodies, codec.compress_many(big, codec.new_compressor()))
    assert packed == [codec.pack(b) for b in bodies]
    assert [codec.unpack(c, d) for c, d in packed] == bodies
    assert {c for c, _ in packed} == {codec.RAW, codec.ZSTD}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_synth_cli_writes_one_session(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    proc = _run("-m", "benchmarks.synth", "--ops", "700", "--db", str(path), "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "700 ops" in proc.stdout
    with _ro(path) as conn:
        assert conn.execute("SELECT COUNT(*), MAX(seq) FROM operations").fetchone() == (700, 700)


def test_synth_cli_bad_path_is_one_line_error(tmp_path: Path) -> None:
    proc = _run("-m", "benchmarks.synth", "--ops", "10", "--db", str(tmp_path / "missing" / "x.db"))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


BENCH_KEYS = ("ops", "ingest_ops_per_s", "db_mb", "open_s", "step_ms_p50", "step_ms_p95",
              "jump_state_ms_p50", "jump_state_ms_p95", "diff_ms_p50", "diff_ms_p95", "stats_s",
              "rss_mb", "ingest_rss_mb", "sqlite_floor_s", "stats_vs_floor", "gen_us_per_op")


def test_benchmark_runs_end_to_end_and_cleans_up(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _run("-m", "benchmarks", "--ops", "2000", "--json", "--samples", "20", "--stats-runs", "1",
                env={"TMPDIR": str(scratch)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in BENCH_KEYS:
        assert isinstance(result[key], (int, float)) and result[key] > 0, key
    assert result["ops"] == 2000
    assert "snapshot" in result["jump_state_definition"]
    assert list(scratch.iterdir()) == []  # the temporary recording is gone


def test_benchmark_table_without_json(tmp_path: Path) -> None:
    path = tmp_path / "keep.db"
    _write(path, 1000)
    proc = _run("-m", "benchmarks", "--db", str(path), "--samples", "5", "--stats-runs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "stats, cold connection" in proc.stdout and "target" in proc.stdout
    assert path.exists()  # a recording passed with --db is kept
