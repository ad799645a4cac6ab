"""Importers meet input as it exists: every audit shape collectors write, and hostile bytes.

* Audit logs: the real sample (tests/data, from ../shared/samples/audit) rewritten into each
  shape real tools produce (no apiVersion as 1.11-1.13 webhooks send, EventList batches,
  pretty-printed events, concatenated objects, a JSON array, a BOM, gzip) imports to exactly
  the ops the JSON-lines original gives.
* Bad bytes (invalid UTF-8 inside a string, JSON nested 100,000 deep, integers above 2**63,
  corrupt gzip, a BOM): a counted malformed line with its reason, or one line of error for the
  whole file; never exit 70 ("internal error") or a traceback.
* A bounded-time fuzz test (hypothesis) over the three importers, run through the CLI.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.recorder.importers.audit import import_audit
from tests.conftest import run_cli

DATA = Path(__file__).parent / "data"
AUDIT = DATA / "audit2rbac-demo.log"
SIEVE = DATA / "cassandra-operator-recreate.sieve-server.log"
# ../shared/samples beside the checkout (or beside the worktrees' folder), where it exists.
SHARED_AUDIT = next((p for p in (Path(__file__).resolve().parents[n] / "shared" / "samples" / "audit"
                                 / "audit2rbac-demo.log" for n in (2, 3)) if p.exists()),
                    Path(__file__).resolve().parents[2] / "shared" / "samples" / "audit" / "audit2rbac-demo.log")



def ops_of(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT seq, ts_ns, duration_ns, verb, kind, namespace, name, status, reason, actor"
                            " FROM operations ORDER BY seq").fetchall()
    finally:
        conn.close()


def sample_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in AUDIT.read_text().splitlines() if line.strip()]


# --- audit shapes as they exist -----------------------------------------------------------

def _without_api_version(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "apiVersion"} for e in events]


SHAPES = {
    "no apiVersion (1.11-1.13 webhook)": lambda ev: "".join(
        json.dumps(e) + "\n" for e in _without_api_version(ev)),
    "EventList batches (webhook payloads)": lambda ev: "".join(
        json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
                    "items": ev[i:i + 5]}) + "\n" for i in range(0, len(ev), 5)),
    "EventList without apiVersion": lambda ev: json.dumps(
        {"kind": "EventList", "items": _without_api_version(ev)}) + "\n",
    "pretty-printed": lambda ev: "".join(json.dumps(e, indent=2) + "\n" for e in ev),
    "pretty-printed, no apiVersion, no newline between": lambda ev: "".join(
        json.dumps(e, indent=4) for e in _without_api_version(ev)),
    "concatenated on one line": lambda ev: "".join(json.dumps(e) for e in ev) + "\n",
    "concatenated with spaces": lambda ev: " ".join(json.dumps(e) for e in ev),
    "a JSON array": lambda ev: json.dumps(ev, indent=1),
    "BOM then JSON lines": lambda ev: "\ufeff" + "".join(json.dumps(e) + "\n" for e in ev),
    "CRLF JSON lines": lambda ev: "".join(json.dumps(e) + "\r\n" for e in ev),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_audit_shape_imports_like_json_lines(tmp_path: Path, shape: str) -> None:
    code, _, err = run_cli("import", "audit", str(AUDIT), "--db", str(tmp_path / "lines.db"))
    assert code == 0, err
    expected = ops_of(tmp_path / "lines.db")
    assert len(expected) == 14  # the sample's 14 lists (23 discovery requests are skipped)
    log = tmp_path / "audit.log"
    log.write_text(SHAPES[shape](sample_events()), encoding="utf-8")
    code, out, err = run_cli("import", "audit", str(log), "--db", str(tmp_path / "shape.db"))
    assert code == 0 and err == "", err
    assert "14 ops" in out and "0 malformed" in out, out
    assert ops_of(tmp_path / "shape.db") == expected


def test_gzip_compressed_pretty_printed_events(tmp_path: Path) -> None:
    log = tmp_path / "audit.log.gz"
    log.write_bytes(gzip.compress(SHAPES["pretty-printed"](sample_events()).encode()))
    code, out, _ = run_cli("import", "audit", str(log), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and "14 ops" in out


def test_the_shared_sample_is_the_copy_in_tests_data() -> None:
    if not SHARED_AUDIT.exists():
        pytest.skip(f"{SHARED_AUDIT} is not on this machine (the copy in tests/data is what tests use)")
    assert SHARED_AUDIT.read_bytes() == AUDIT.read_bytes()


def test_a_core_event_without_audit_fields_is_no_audit_event(tmp_path: Path) -> None:
    core = {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "web.17a"}, "reason": "Scheduled"}
    older = {"kind": "Event", "metadata": {"name": "x"}, "reason": "Pulled"}  # no auditID, no stage
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(core) + "\n" + json.dumps(older) + "\n" + AUDIT.read_text())
    code, out, _ = run_cli("import", "audit", str(log), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and "14 ops" in out and "2 malformed lines" in out


def test_a_truncated_line_does_not_swallow_the_lines_after_it(tmp_path: Path) -> None:
    lines = AUDIT.read_text().splitlines()
    log = tmp_path / "audit.log"
    log.write_text("\n".join([lines[0][:80], *lines[1:]]) + "\n")
    code, out, _ = run_cli("import", "audit", str(log), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and "13 ops" in out and "1 malformed line " in out


# --- bad bytes ----------------------------------------------------------------------------------

def audit_line(**change: Any) -> bytes:
    event = {**sample_events()[0], **change}
    return json.dumps(event).encode()


DEEP = b"[" * 100_000 + b"]" * 100_000

BAD_AUDIT = {
    "invalid UTF-8 in a string": audit_line(verb="__VERB__").replace(b"__VERB__", b"li\xffst"),
    "a lone surrogate escape": audit_line(verb="__VERB__").replace(b'"__VERB__"', b'"\\ud800"'),
    "nested 100,000 deep": audit_line(requestObject="__DEEP__").replace(b'"__DEEP__"', DEEP),
    "a whole line nested 100,000 deep": DEEP,
    "responseStatus.code above 2**63": audit_line(
        responseStatus={"code": 2**64 + 5, "metadata": {}}),
    "a timestamp in the year 9999": audit_line(timestamp="9999-12-31T23:59:59Z",
                                               metadata={"creationTimestamp": "9999-12-31T23:59:59Z"}),
    "an integer above 2**63 in a body": audit_line(
        level="RequestResponse", objectRef={"resource": "configmaps", "namespace": "d", "name": "c"},
        responseObject={"kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": {"name": "c", "namespace": "d", "generation": 2**70}}),
    "a body with invalid UTF-8": audit_line(
        level="RequestResponse", objectRef={"resource": "configmaps", "namespace": "d", "name": "c"},
        responseObject={"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "__V__"}},
    ).replace(b"__V__", b"\xc3\x28"),
}


@pytest.mark.parametrize("what", sorted(BAD_AUDIT))
def test_bad_bytes_in_an_audit_log_are_one_malformed_line(tmp_path: Path, what: str) -> None:
    good = AUDIT.read_bytes()
    log = tmp_path / "audit.log"
    log.write_bytes(b"\xef\xbb\xbf" + good + BAD_AUDIT[what] + b"\n" + good.splitlines()[0] + b"\n")
    code, out, err = run_cli("import", "audit", str(log), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and err == "", err
    code, listed, _ = run_cli("sessions", str(tmp_path / "rec.db"), "--json")
    reasons = [m["reason"] for m in json.loads(listed)[0]["attributes"]["malformed_lines"]]
    if what == "an integer above 2**63 in a body":
        assert "0 malformed lines" in out  # JSON allows any integer: kept in the body, read back as is
    else:
        assert "1 malformed line " in out, out
        (reason,) = reasons
        assert reason and "\n" not in reason
    # What was imported reads back: every command on it works.
    for argv in (["stats"], ["show", "--at", "100%"], ["analyze"], ["query", "verb=list"]):
        code, _, err = run_cli(argv[0], str(tmp_path / "rec.db"), *argv[1:])
        assert code == 0, (argv, err)


def test_a_corrupt_gzip_file_is_one_line_of_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(SIEVE.read_bytes()))
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    for fmt, name in (("sieve", "trace.log.gz"), ("audit", "audit.log.gz")):
        path = tmp_path / name
        path.write_bytes(bytes(data))
        code, out, err = run_cli("import", fmt, str(path), "--db", str(tmp_path / f"{fmt}.db"))
        assert code == 1 and out == "", err
        assert err.count("\n") == 1 and "corrupt compressed data" in err, err
        assert not (tmp_path / f"{fmt}.db").exists()  # nothing half-imported


def test_bad_bytes_in_a_sieve_trace(tmp_path: Path) -> None:
    head = SIEVE.read_bytes().splitlines(keepends=True)[:60]
    tag = b"2022/03/21 01:35:29 learn_server.go:279: [SIEVE-BEFORE-HEAR]\t99\tUpdated\tpod\t"
    bad = [tag + b'{"metadata":{"name":"p\xff"}}\n', tag + DEEP + b"\n",
           tag + b'{"metadata":{"name":"p","generation":' + str(2**65).encode() + b"}}\n",
           b"9999/12/31 23:59:59 learn_server.go:279: [SIEVE-BEFORE-HEAR]\t1\tAdded\tpod\t{\"metadata\":{}}\n"]
    trace = tmp_path / "trace.log"
    trace.write_bytes(b"\xef\xbb\xbf" + b"".join(head) + b"".join(bad))
    code, out, err = run_cli("import", "sieve", str(trace), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and err == "", err
    assert "4 malformed lines" in out, out


def test_bad_bytes_in_a_kubestep_database(tmp_path: Path) -> None:
    src = tmp_path / "ks.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE operations (session_id TEXT, sequence_number INTEGER, timestamp, "
                 "operation_type TEXT, resource_kind TEXT, namespace TEXT, name TEXT, resource_data TEXT,"
                 " error TEXT, duration_ms REAL, actor_id TEXT, generation INTEGER)")
    good = json.dumps({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "namespace": "d"}})
    rows = [
        (1, 1_700_000_000, "GET", "ConfigMap", "c", good, None),
        (2, 1_700_000_001, "GET", "ConfigMap", "c", DEEP.decode(), None),
        (3, 1_700_000_002, "GET", "ConfigMap", "c", "__BAD__", None),  # invalid UTF-8 below
        (4, "99999999999999999999999", "GET", "ConfigMap", "c", good, None),  # beyond 64 bits
        (8, 1e30, "GET", "ConfigMap", "c", good, None),
        (5, 1_700_000_004, "GET", "ConfigMap", "c", good, 2**63 - 1),
        (6, "9999-12-31T23:59:59Z", "GET", "ConfigMap", "c", good, None),
        (7, 1_700_000_006, "GET", "ConfigMap", "c\udcff".encode("utf-8", "surrogateescape"), good, None),
    ]
    conn.executemany("INSERT INTO operations VALUES ('s', ?, ?, ?, ?, 'd', ?, ?, '', 1, 'op', ?)", rows)
    conn.execute("UPDATE operations SET resource_data = CAST(X'7B226B223A2280FF227D' AS TEXT)"
                 " WHERE sequence_number = 3")
    conn.commit()
    conn.close()
    code, out, err = run_cli("import", "kubestep", str(src), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and err == "", err
    assert "malformed" in out and "internal" not in out
    for argv in (["stats"], ["show", "--at", "1"], ["query", "kind=ConfigMap"]):
        assert run_cli(argv[0], str(tmp_path / "rec.db"), *argv[1:])[0] == 0, argv


# --- fuzzing the three importers, bounded -------------------------------------------------------

HOSTILE = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\\ud800", b"\x00", b"\x1b]0;pwned\x07", b"\xef\xbb\xbf",
           b"[" * 5000, b"{" * 3000, b"99999999999999999999999", b"-1e999", b"\t", b"\n", b'"', b"}{",
           b"\\", b"\r", "\u202e".encode()]


#: A damage plan: (seed, how many edits, gzip it?, then flip a byte of the gzip?).  Drawn small, so
#: hypothesis shows and shrinks the plan, not kilobytes of input.
plans = st.tuples(st.integers(0, 2**32), st.integers(1, 12), st.booleans(), st.booleans())


def mutated(base: bytes, plan: tuple[int, int, bool, bool]) -> bytes:
    """A real input with random damage: bytes flipped, hostile snippets spliced in, cuts."""
    seed, edits, compress, damage_gzip = plan
    data = bytearray(base)
    rng = random.Random(seed)
    for _ in range(edits):
        pos = rng.randrange(len(data) + 1)
        action = rng.randrange(4)
        if action == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif action == 1:
            data[pos:pos] = rng.choice(HOSTILE)
        elif action == 2:
            del data[pos:pos + rng.randrange(1, 200)]
        else:
            data[pos:pos] = data[rng.randrange(len(data) + 1):][:rng.randrange(1, 300)]
    if compress and seed % 4 == 0:
        data = bytearray(gzip.compress(bytes(data)))
        if damage_gzip:
            data[len(data) // 2] ^= 0xFF
    return bytes(data)


def _fuzz_once(tmp: Path, fmt: str, data: bytes, name: str) -> None:
    src = tmp / name
    src.write_bytes(data)
    db = tmp / "rec.db"
    code, out, err = run_cli("import", fmt, str(src), "--db", str(db))
    assert code in (0, 1), (code, err)
    assert "internal error" not in err and "Traceback" not in err, err
    if code == 1:
        assert err.count("\n") == 1 and err.startswith("replay-tui: error: "), err
    else:
        assert "imported" in out
        for argv in (["stats"], ["show", "--at", "100%"]):
            c, _, e = run_cli(argv[0], str(db), "-s", "1", *argv[1:])
            assert c in (0, 1) and "internal error" not in e, e
    for path in tmp.iterdir():
        path.unlink()


# A few seconds per importer in CI; REPLAY_TUI_FUZZ_EXAMPLES=5000 for a long run.
FUZZ = settings(max_examples=int(os.environ.get("REPLAY_TUI_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=list(HealthCheck), print_blob=True)
AUDIT_BASE = b"".join(AUDIT.read_bytes().splitlines(keepends=True)[:12]) + json.dumps(
    {**sample_events()[0], "level": "RequestResponse",
     "objectRef": {"resource": "secrets", "namespace": "d", "name": "s", "apiVersion": "v1"},
     "responseObject": {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "d"},
                        "data": {"k": "c2VjcmV0"}}}, indent=1).encode() + b"\n"
SIEVE_BASE = b"".join(SIEVE.read_bytes().splitlines(keepends=True)[:80])


@FUZZ
@given(plan=plans)
def test_fuzzed_audit_logs_never_crash_the_importer(tmp_path_factory: pytest.TempPathFactory,
                                                    plan: tuple[int, int, bool, bool]) -> None:
    _fuzz_once(tmp_path_factory.mktemp("fuzz"), "audit", mutated(AUDIT_BASE, plan), "audit.log")


@FUZZ
@given(plan=plans)
def test_fuzzed_sieve_traces_never_crash_the_importer(tmp_path_factory: pytest.TempPathFactory,
                                                      plan: tuple[int, int, bool, bool]) -> None:
    _fuzz_once(tmp_path_factory.mktemp("fuzz"), "sieve", mutated(SIEVE_BASE, plan), "sieve-server.log")


def _kubestep_base(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE operations (session_id TEXT, sequence_number INTEGER, timestamp,"
                 " operation_type TEXT, resource_kind TEXT, namespace TEXT, name TEXT, resource_data TEXT,"
                 " error TEXT, duration_ms REAL, actor_id TEXT, uid TEXT, resource_version TEXT,"
                 " generation INTEGER, verb TEXT)")
    conn.execute("CREATE TABLE reconcile_spans (id TEXT, session_id TEXT, actor_id TEXT, start_ts, end_ts,"
                 " duration_ms REAL, kind TEXT, namespace TEXT, name TEXT, trigger_uid TEXT,"
                 " trigger_resource_version TEXT, trigger_reason TEXT, error TEXT)")
    for i in range(30):
        obj = {"kind": "ConfigMap", "apiVersion": "v1",
               "metadata": {"name": f"c{i % 4}", "namespace": "d", "uid": f"u{i % 4}", "resourceVersion": str(i)},
               "data": {"i": str(i)}}
        conn.execute("INSERT INTO operations VALUES ('s', ?, ?, ?, 'ConfigMap', 'd', ?, ?, ?, 1.5, 'op', ?, ?,"
                     " NULL, '')", (i, 1_700_000_000 + i, ["GET", "UPDATE", "WATCH"][i % 3], f"c{i % 4}",
                                    json.dumps(obj), "conflict" if i % 7 == 0 else "", f"u{i % 4}", str(i)))
    conn.execute("INSERT INTO reconcile_spans VALUES ('r1', 's', 'op', 1700000001, 1700000009, 8000, "
                 "'ConfigMap', 'd', 'c1', 'u1', '1', 'changed', '')")
    conn.commit()
    conn.close()
    return path.read_bytes()


KUBESTEP_BASE = _kubestep_base(Path(os.environ.get("TMPDIR", "/tmp")) / f"ks-base-{os.getpid()}.db")


def mutated_db(seed: int, flips: int) -> bytes:
    """A kubestep database with bytes flipped in its pages (the header kept, so SQLite opens it)."""
    data = bytearray(KUBESTEP_BASE)
    rng = random.Random(seed)
    for _ in range(flips):
        data[rng.randrange(100, len(data))] = rng.randrange(256)
    return bytes(data)


@FUZZ
@given(seed=st.integers(0, 2**32), flips=st.integers(1, 30))
def test_fuzzed_kubestep_databases_never_crash_the_importer(tmp_path_factory: pytest.TempPathFactory,
                                                            seed: int, flips: int) -> None:
    _fuzz_once(tmp_path_factory.mktemp("fuzz"), "kubestep", mutated_db(seed, flips), "kubestep.db")


def test_a_kubestep_duration_of_infinity_is_a_bad_duration(tmp_path: Path) -> None:
    """Found by the fuzz test: a REAL column holding infinity (int(inf) raises OverflowError)."""
    src = tmp_path / "ks.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE operations (session_id TEXT, sequence_number INTEGER, timestamp INTEGER,"
                 " operation_type TEXT, resource_kind TEXT, namespace TEXT, name TEXT, duration_ms REAL)")
    conn.execute("INSERT INTO operations VALUES ('s', 1, 1700000000, 'GET', 'ConfigMap', 'd', 'c', 9e999)")
    conn.commit()
    conn.close()
    code, out, err = run_cli("import", "kubestep", str(src), "--db", str(tmp_path / "rec.db"))
    assert code == 0 and "1 malformed line" in out, err


def test_import_audit_api_reports_malformed_reasons(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(AUDIT.read_bytes() + BAD_AUDIT["nested 100,000 deep"] + b"\n")
    result = import_audit(str(log), str(tmp_path / "rec.db"), progress=False)
    assert result.malformed == 1 and "nested too deeply" in result.malformed_lines[0]["reason"]


def test_importing_into_another_applications_database_is_refused_by_name(tmp_path: Path) -> None:
    """``import --db`` onto a file that is not a recording: one line naming it, the file left byte for byte."""
    foreign = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(foreign)) as conn, conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    before = foreign.read_bytes()
    code, out, err = run_cli("import", "audit", str(AUDIT), "--db", str(foreign))
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [f"replay-tui: error: {foreign}: an SQLite database but not a replay-tui"
                                        " recording"]
    assert foreign.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
