"""The Sieve importer against a real learn trace (tests/data), and against damaged input."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import state
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.writer import SessionWriter
from replay_tui.recorder.importers import cli
from replay_tui.recorder.importers.common import ImportFormatError, Progress
from replay_tui.recorder.importers.sieve import import_sieve
from tests.conftest import file_digest, simple_ops, write_session

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "cassandra-operator-recreate.sieve-server.log"
AUDIT = DATA / "audit2rbac-demo.log"
RECONCILER = ("github.com/instaclustr/cassandra-operator/pkg/controller/cassandradatacenter."
              "(*ReconcileCassandraDataCenter)")
OP_TAGS = ("[SIEVE-AFTER-READ]", "[SIEVE-AFTER-WRITE]", "[SIEVE-BEFORE-HEAR]")


def trace_records(path: Path) -> list[tuple[int, str, list[str]]]:
    """(seq the line becomes, tag, fields) of every op line, read independently of the importer."""
    out = []
    seq = 0
    for line in path.read_text().splitlines():
        if "[SIEVE-" not in line:
            continue
        tag_and_fields = line[line.index("[SIEVE-"):].split("\t")
        tag, fields = tag_and_fields[0], tag_and_fields[1:]
        if tag in OP_TAGS:
            seq += 1
            out.append((seq, tag, fields))
    return out


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, Any]:
    db = tmp_path / "rec.db"
    return db, import_sieve(str(SAMPLE), str(db), progress=False)


async def test_sample_counts_are_exact(imported: tuple[Path, Any], open_recording: Any) -> None:
    db, result = imported
    assert (result.ops, result.watch_events, result.reads, result.writes) == (175, 41, 110, 24)
    assert result.reconciles == 16 and result.malformed == 0 and result.errors == 15
    assert result.verbs == {"get": 52, "list": 58, "create": 12, "update": 11, "delete": 1,
                            "added": 14, "modified": 20, "deleted": 7}
    rec = await open_recording(db)
    session = await rec.session()
    assert session.info.source == "sieve"
    assert session.info.name == "cassandra-operator-recreate.sieve-server"
    assert session.last == 175
    verbs = dict(await rec.fetchall(
        "SELECT verb, COUNT(*) FROM operations WHERE session_id = ? GROUP BY verb", (session.id,)))
    assert verbs == result.verbs
    assert await session.reconcile_count() == 16
    errors = await rec.fetchone("SELECT COUNT(*) FROM operations WHERE session_id = ? AND error = 1",
                                (session.id,))
    assert errors == (15,)
    attrs = session.info.attributes
    assert attrs["source_file"] == str(SAMPLE.resolve())
    assert attrs["source_bytes"] == SAMPLE.stat().st_size
    assert (attrs["ops"], attrs["watch_events"], attrs["reads"], attrs["writes"]) == (175, 41, 110, 24)
    assert attrs["reconciles"] == 16 and attrs["malformed"] == 0 and attrs["malformed_lines"] == []
    assert attrs["untagged_lines"] == 6  # the server's own start-up log


async def test_ops_follow_the_trace_line_by_line(imported: tuple[Path, Any], open_recording: Any) -> None:
    db, _ = imported
    session = await (await open_recording(db)).session()
    for seq, tag, fields in trace_records(SAMPLE):
        op = await session.op(seq)
        if tag == "[SIEVE-BEFORE-HEAR]":
            assert op.verb == {"Added": "added", "Updated": "modified", "Deleted": "deleted"}[fields[1]]
            assert op.name == json.loads(fields[3])["metadata"]["name"]
        elif tag == "[SIEVE-AFTER-READ]":
            assert op.verb == fields[0].lower()
            assert op.query == {"fromCache": fields[1]}
            if fields[0] == "Get":
                assert (op.kind.lower(), op.namespace, op.name) == (fields[2], fields[3], fields[4])
        else:
            assert op.verb == fields[1].lower()
            assert op.kind.lower() == fields[2]
    first = await session.op(1)
    assert first.ts_ns == 1647826526 * 10**9  # 2022/03/21 01:35:26, UTC, to the second
    assert first.duration_ns == 0


async def test_reconcile_spans_carry_reconciler_and_sieve_id(imported: tuple[Path, Any],
                                                             open_recording: Any) -> None:
    db, _ = imported
    rec = await open_recording(db)
    session = await rec.session()
    spans = []
    seq = 0
    while (span := await session.next_reconcile(seq)) is not None:
        spans.append(span)
        seq = span.start_seq
    assert [s.source_id for s in spans] == [str(i) for i in range(16)]
    assert all(s.reconciler == RECONCILER for s in spans)
    assert all(s.end_seq is not None and s.end_seq >= s.start_seq and not s.error for s in spans)
    assert all((s.kind, s.namespace, s.name) == ("CassandraDataCenter", "default", "cassandra-datacenter")
               for s in spans)
    # The first span: triggered by the CassandraDataCenter being added (the 5th op),
    # starts with its Get (op 7), ends with the StatefulSet create (op 31).
    first = spans[0]
    trigger = await session.op(first.trigger_seq)
    assert (trigger.verb, trigger.kind) == ("added", "CassandraDataCenter")
    assert (first.start_seq, first.end_seq) == (7, 31)
    # Ops inside a span carry it exactly when the trace tagged them with its reconciler.
    for span in spans:
        rows = await rec.fetchall(
            "SELECT seq, reconcile, actor, verb FROM operations WHERE session_id = ? AND seq BETWEEN ? AND ?",
            (session.id, span.start_seq, span.end_seq))
        for _seq, rid, actor, verb in rows:
            if verb in ("added", "modified", "deleted"):
                assert rid is None and actor == ""
            else:
                assert rid == span.id and actor == RECONCILER
    outside = await rec.fetchall(
        "SELECT seq FROM operations WHERE session_id = ? AND reconcile IS NULL AND verb IN ('get', 'list')",
        (session.id,))
    assert [r[0] for r in outside] == [1, 2, 4]  # the leader-election reads, 'unknown' reconciler


async def test_not_found_reads_are_error_ops_with_their_reason(imported: tuple[Path, Any],
                                                              open_recording: Any) -> None:
    db, _ = imported
    rec = await open_recording(db)
    session = await rec.session()
    seq = await session.next_error(0)
    op = await session.op(seq)
    assert (op.verb, op.kind, op.name, op.status, op.reason) == (
        "get", "ConfigMap", "myoperator-lock", 404, "NotFound")
    assert op.error and op.message == 'configmaps "myoperator-lock" not found'
    assert op.response["kind"] == "Status" and op.response["reason"] == "NotFound"
    reasons = await rec.fetchall(
        "SELECT reason, status, COUNT(*) FROM operations WHERE session_id = ? AND error = 1 GROUP BY 1, 2",
        (session.id,))
    assert reasons == [("NotFound", 404, 15)]


async def test_state_after_each_last_write_is_that_write(imported: tuple[Path, Any],
                                                        open_recording: Any) -> None:
    db, _ = imported
    session = await (await open_recording(db)).session()
    last_write: dict[tuple[str, str, str], tuple[int, str, dict[str, Any]]] = {}
    for seq, tag, fields in trace_records(SAMPLE):
        if tag == "[SIEVE-AFTER-WRITE]" and fields[4] == "NoError":
            obj = json.loads(fields[5])
            key = (fields[2], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            last_write[key] = (seq, fields[1], obj)
    assert len(last_write) == 9
    checked = 0
    for (rtype, namespace, name), (seq, wtype, obj) in last_write.items():
        obj_id, key = await session.resolve_object(f"{rtype}/{namespace}/{name}")
        got = await state.object_at(session, obj_id, seq)
        if wtype == "Delete":
            assert got is None, key
            continue
        assert got is not None, key
        assert got.pop("kind") == key.kind and got.pop("apiVersion")
        obj.pop("kind", None), obj.pop("apiVersion", None)
        assert got == obj, key
        checked += 1
    assert checked == 8
    # The kinds come back the way the API server names them, with their groups.
    _, key = await session.resolve_object("cassandradatacenter/default/cassandra-datacenter")
    assert (key.group, key.kind) == ("cassandraoperator.instaclustr.com", "CassandraDataCenter")
    _, key = await session.resolve_object("StatefulSet/default/cassandra-test-cluster-dc1-rack1")
    assert key.group == "apps"


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines))


def test_corrupted_lines_are_counted_with_line_numbers(tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    lines[16] = lines[16][:-300] + "\n"  # line 17: Get cut short in its JSON
    lines[20] = lines[20].replace('{"metadata"', '{"metadata" garbage', 1)  # line 21: bad JSON
    lines[29] = lines[29].split("\t")[0] + "\tAdded\n"  # line 30: a watch event missing fields
    lines[35] = lines[35].replace("\tGet\ttrue", "\tFetch\ttrue")  # line 36: unknown read
    bad = tmp_path / "bad.log"
    _write_lines(bad, lines)
    result = import_sieve(str(bad), str(tmp_path / "rec.db"), progress=False)
    assert result.malformed == 4
    assert [m["line"] for m in result.malformed_lines] == [17, 21, 30, 36]
    reasons = [m["reason"] for m in result.malformed_lines]
    assert "not valid JSON" in reasons[0] and "truncated" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert "expected 4" in reasons[2]
    assert "unknown read 'Fetch'" in reasons[3]
    assert result.ops == 171 and result.reconciles == 16
    assert "4 malformed lines" in result.summary()


async def test_trace_cut_off_mid_line(tmp_path: Path, open_recording: Any) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.log"
    _write_lines(cut, lines[:270] + [lines[270][:150]])  # line 271 ends mid-JSON, no newline
    db = tmp_path / "rec.db"
    result = import_sieve(str(cut), str(db), progress=False)
    assert result.malformed == 1 and result.malformed_lines[0]["line"] == 271
    session = await (await open_recording(db)).session()
    last = await session.next_reconcile(session.last, forward=False)
    assert last is not None and last.source_id == "15" and last.end_seq is None  # still open
    assert session.info.attributes["open_reconciles"] == 1


def test_empty_file_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    db = tmp_path / "rec.db"
    with pytest.raises(ImportFormatError, match="empty file, nothing to import"):
        import_sieve(str(empty), str(db), progress=False)
    assert not db.exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such file"):
        import_sieve(str(tmp_path / "nope.log"), str(tmp_path / "rec.db"), progress=False)


def test_other_format_is_refused_naming_the_expected_one(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    write_session(db, simple_ops(5), name="before")
    digest = file_digest(db)
    with pytest.raises(ImportFormatError) as info:
        import_sieve(str(AUDIT), str(db), progress=False)
    assert str(info.value) == (f"{AUDIT}: not a Sieve learn trace (expected lines tagged [SIEVE-...])")
    assert file_digest(db) == digest
    fresh = tmp_path / "fresh.db"
    with pytest.raises(ImportFormatError):
        import_sieve(str(AUDIT), str(fresh), progress=False)
    assert not fresh.exists()
    with pytest.raises(ImportFormatError, match="not a Sieve learn trace"):  # a database, binary
        import_sieve(str(db), str(fresh), progress=False)
    assert not fresh.exists() and file_digest(db) == digest


def test_only_broken_records_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.log"
    broken.write_text("2022/03/21 01:35:26 learn_server.go:291: [SIEVE-AFTER-READ]\tGet\tfalse\n")
    with pytest.raises(ImportFormatError, match=r"no valid Sieve record \(1 malformed lines; first: line 1"):
        import_sieve(str(broken), str(tmp_path / "rec.db"), progress=False)
    assert not (tmp_path / "rec.db").exists()


async def test_failure_mid_import_leaves_no_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    open_recording: Any) -> None:
    db = tmp_path / "rec.db"
    write_session(db, simple_ops(3), name="before")
    original = SessionWriter.append
    calls = {"n": 0}

    def failing(self: SessionWriter, op: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 120:
            raise RuntimeError("disk on fire")
        return original(self, op)

    monkeypatch.setattr(SessionWriter, "append", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_sieve(str(SAMPLE), str(db), progress=False, session="doomed")
    rec = await open_recording(db)
    assert [s.name for s in await rec.sessions()] == ["before"]
    assert await rec.fetchone("SELECT COUNT(*) FROM reconciles") == (0,)
    calls["n"] = 0
    fresh = tmp_path / "fresh.db"
    with pytest.raises(RuntimeError):
        import_sieve(str(SAMPLE), str(fresh), progress=False)
    assert not fresh.exists()


async def test_gzip_input_and_session_names(tmp_path: Path, open_recording: Any) -> None:
    packed = tmp_path / "trace.log.gz"
    with open(SAMPLE, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    db = tmp_path / "rec.db"
    first = import_sieve(str(packed), str(db), progress=False)
    second = import_sieve(str(SAMPLE), str(db), session="trace", progress=False)
    assert (first.session, second.session) == ("trace", "trace-2")
    assert first.ops == second.ops == 175
    rec = await open_recording(db)
    assert [s.operations for s in await rec.sessions()] == [175, 175]


def test_older_trace_layout_without_cache_flag_and_reconciler(tmp_path: Path) -> None:
    pod = '{"metadata":{"name":"p","namespace":"ns","uid":"u1","resourceVersion":"5"}}'
    old = tmp_path / "old.log"
    old.write_text("".join(f"2021/01/01 00:00:0{i} x.go:1: {text}\n" for i, text in enumerate([
        "[SIEVE-BEFORE-RECONCILE]\tmy.(*Reconciler)",
        f"[SIEVE-AFTER-READ]\tGet\tpod\tns\tp\tNoError\t{pod}",
        '[SIEVE-AFTER-READ]\tList\tpodlist\tNoError\t{"metadata":{},"items":[]}',
        f"[SIEVE-AFTER-WRITE]\t0\tUpdate\tpod\tConflict\t{pod}",
        f"[SIEVE-AFTER-WRITE]\t1\tStatusUpdate\tpod\tNoError\t{pod}",
        "[SIEVE-AFTER-RECONCILE]\tmy.(*Reconciler)",
        "[SIEVE-SOMETHING-NEW]\t1",
    ])))
    result = import_sieve(str(old), str(tmp_path / "rec.db"), progress=False)
    assert result.verbs == {"get": 1, "list": 1, "update": 2}
    assert result.errors == 1 and result.malformed == 0
    # Without reconciler columns nothing is attributed to the span, but the span is there.
    assert result.reconciles == 1


def test_cli_prints_one_summary_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="replay-tui")
    cli.register(parser.add_subparsers(dest="command"))
    db = tmp_path / "rec.db"
    args = parser.parse_args(["import", "sieve", str(SAMPLE), "--db", str(db)])
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert out.out == (f"imported 175 ops (41 watch events, 110 reads, 24 writes), 16 reconciles, "
                       f"0 malformed lines into {db} session cassandra-operator-recreate.sieve-server\n")
    assert out.err == ""  # not a terminal: no progress
    args = parser.parse_args(["import", "sieve", str(AUDIT), "--db", str(db), "--session", "x"])
    with pytest.raises(RecordingError, match="not a Sieve learn trace"):
        args.func(args)


def test_replay_tui_import_end_to_end(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "replay-tui"
    if not exe.exists():
        pytest.skip("replay-tui is not installed in this environment")
    db = tmp_path / "rec.db"
    done = subprocess.run([str(exe), "import", "sieve", str(SAMPLE), "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    if "invalid choice: 'import'" in done.stderr:
        pytest.skip("this replay-tui does not register the import command yet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 175 ops (41 watch events, 110 reads, 24 writes), 16 reconciles")
    bad = subprocess.run([str(exe), "import", "sieve", str(AUDIT), "--db", str(db)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "not a Sieve learn trace" in bad.stderr
    shown = subprocess.run([str(exe), "show", str(db), "--at", "31", "--resource",
                            "statefulset/default/cassandra-test-cluster-dc1-rack1", "--json"],
                           capture_output=True, text=True, timeout=120)
    if shown.returncode == 0:
        assert "cassandra-test-cluster-dc1-rack1" in shown.stdout


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _Tty()
    bar = Progress("importing x", 2_000_000, stream=tty)
    bar.update(1_000_000, 10)
    bar.update(1_500_000, 20)  # within 0.1 s of the previous update: not drawn
    bar.update(2_000_000, 30, force=True)
    bar.done()
    text = tty.getvalue()
    assert text.startswith("\rimporting x: 1.0 MB / 2.0 MB (50%), 10 ops")
    assert "20 ops" not in text and "2.0 MB / 2.0 MB (100%), 30 ops" in text
    assert text.endswith("\r")
    plain = io.StringIO()
    quiet = Progress("importing x", 100, stream=plain)
    quiet.update(50, 1, force=True)
    quiet.done()
    assert plain.getvalue() == ""


def test_import_draws_progress_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    import_sieve(str(SAMPLE), str(tmp_path / "rec.db"))
    assert "scanning cassandra-operator-recreate.sieve-server.log: " in tty.getvalue()
    assert "importing cassandra-operator-recreate.sieve-server.log: " in tty.getvalue()
    assert "175 ops" in tty.getvalue()
    assert os.path.exists(tmp_path / "rec.db")


async def test_interleaved_reconcilers(tmp_path: Path, open_recording: Any) -> None:
    cm = '{"metadata":{"name":"c","namespace":"ns","uid":"u1","resourceVersion":"5"}}'
    cr = '{"kind":"Widget","apiVersion":"ex.com/v1","metadata":{"name":"w","namespace":"ns"}}'
    lines = [
        "[SIEVE-BEFORE-HEAR]\t0\tAdded\twidget\t" + cr,
        "[SIEVE-BEFORE-RECONCILE]\tA\t0",
        "[SIEVE-BEFORE-RECONCILE]\tB\t0",
        f"[SIEVE-AFTER-READ]\tGet\ttrue\twidget\tns\tw\tA\tNoError\t{cr}",
        f"[SIEVE-AFTER-READ]\tGet\ttrue\tconfigmap\tns\tc\tB\tNotFound\t{cm}",
        "[SIEVE-BEFORE-HEAR]\t1\tUpdated\twidget\t" + cr,
        "[SIEVE-AFTER-RECONCILE]\tA\t0",
        f"[SIEVE-AFTER-WRITE]\t0\tCreate\tconfigmap\tB\tAlreadyExists\t{cm}",
        "[SIEVE-AFTER-RECONCILE]\tB\t0",
        "[SIEVE-BEFORE-RECONCILE]\tA\t1",
        f"[SIEVE-AFTER-READ]\tGet\ttrue\twidget\tns\tw\tA\tNoError\t{cr}",
        "[SIEVE-AFTER-RECONCILE]\tA\t1",
    ]
    trace = tmp_path / "two.log"
    trace.write_text("".join(f"2024/01/01 00:00:0{i % 10} learn_server.go:1: {text}\n"
                             for i, text in enumerate(lines)))
    db = tmp_path / "rec.db"
    result = import_sieve(str(trace), str(db), progress=False)
    assert result.ops == 6 and result.reconciles == 3 and result.errors == 2
    rec = await open_recording(db)
    session = await rec.session()
    rows = await rec.fetchall("SELECT seq, verb, reconcile, status, reason FROM operations ORDER BY seq")
    assert rows == [(1, "added", None, 0, ""), (2, "get", 1, 200, ""), (3, "get", 2, 404, "NotFound"),
                    (4, "modified", None, 0, ""), (5, "create", 2, 409, "AlreadyExists"),
                    (6, "get", 3, 200, "")]
    a0, b0, a1 = [await session.reconcile(i) for i in (1, 2, 3)]
    assert (a0.reconciler, a0.source_id, a0.start_seq, a0.end_seq, a0.trigger_seq) == ("A", "0", 2, 4, 1)
    assert (a0.kind, a0.name) == ("Widget", "w")
    assert (b0.reconciler, b0.source_id, b0.start_seq, b0.end_seq, b0.trigger_seq) == ("B", "0", 3, 5, 1)
    assert (b0.kind, b0.name) == ("ConfigMap", "c")
    # A's second run was triggered by the update heard during its first.
    assert (a1.source_id, a1.start_seq, a1.end_seq, a1.trigger_seq) == ("1", 6, 6, 4)
    failed = await session.op(5)
    assert failed.request["kind"] == "ConfigMap" and failed.response["reason"] == "AlreadyExists"
    assert failed.message == 'configmaps "c" already exists'


def test_a_trace_without_latency_reads_dash_never_0ns(tmp_path: Path) -> None:
    """Sieve's one-second timestamps time no request: every output says so ('-', "no timing data")
    instead of printing 0 ns, and the JSON carries null, not 0."""
    from tests.conftest import run_cli

    db = tmp_path / "rec.db"
    import_sieve(str(SAMPLE), str(db), progress=False)
    outputs = {}
    for argv in (["stats"], ["report"], ["report", "--format", "html"], ["query", "verb=get,update,list"],
                 ["show", "--at", "5"], ["show", "--at", "3"], ["analyze"], ["compare", str(db)]):
        code, out, err = run_cli(argv[0], str(db), *argv[1:])
        assert code == 0, (argv, err)
        outputs[argv[0] + " ".join(argv[1:2])] = out
        assert "0ns" not in out and "0.0ms" not in out and ">0ms<" not in out, argv
    assert "latency    no timing data" in outputs["stats"]
    assert "get          52    -    -    -" in outputs["stats"]
    report = outputs["report"]
    assert "| Latency | no timing data (the source recorded no latency for its requests) |" in report
    assert "No timing data (the source recorded no latency for its requests)." in report  # endpoints
    assert "| LIST pods | 46 | - | - | 0 |  |" in report
    assert "(4 of 16 timed)" in report  # cycles of a whole second: 12 spans began and ended in one second
    assert "no latency line: no timing data" in outputs["report--format"]
    assert "latency    -  (not recorded by this source)" in outputs["show--at"]
    rows = [line for line in outputs["queryverb=get,update,list"].splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 52 + 58 + 11 and all(re.search(r" -(  #\d+)?$", line) for line in rows)
    assert "  A           134    -    -    -    -" in outputs["compare" + str(db)]
    code, out, _ = run_cli("report", str(db), "--format", "json")
    data = json.loads(out)
    assert data["summary"]["latency_ms"] == {"count": 0, "p50": None, "p95": None, "p99": None, "mean": None,
                                             "max": None}
    assert all(e["avg_ms"] is None and e["p95_ms"] is None for e in data["endpoints"])
    assert data["reconcilers"][0]["slowest_op"] is None
    code, out, _ = run_cli("stats", str(db), "--json")
    assert json.loads(out)["latency_by_verb"]["get"]["p95"] is None
