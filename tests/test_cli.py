"""The real ``replay-tui`` command, run as a user runs it, on real recording files."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from replay_tui.engine.format import Operation
from replay_tui.engine.writer import RecordingWriter

EXE = Path(sys.executable).parent / "replay-tui"
T0 = 1_700_000_000_000_000_000


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "replay_tui"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def deployment(rv: int, replicas: int, generation: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": str(rv),
                         "generation": generation, "managedFields": [{"manager": f"m{rv}"}]},
            "spec": {"replicas": replicas}}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "rec.db"
    with RecordingWriter(path) as w:
        s = w.session("web-operator", "synthetic", actor="web-operator")
        rid = s.begin_reconcile("webapp", kind="Deployment", namespace="default", name="web", ts_ns=T0)
        s.append(Operation(verb="create", ts_ns=T0, duration_ns=3_000_000, api_version="apps/v1",
                           resource="deployments", status=201, request=deployment(0, 1, 1),
                           response=deployment(1, 1, 1), reconcile=rid))
        s.end_reconcile(rid, ts_ns=T0 + 4_000_000)
        s.append(Operation(verb="added", ts_ns=T0 + 5_000_000, response=deployment(1, 1, 1)))
        s.append(Operation(verb="update", ts_ns=T0 + 6_000_000, duration_ns=2_000_000, status=409,
                           reason="Conflict", message="the object has been modified",
                           request=deployment(0, 3, 1)))
        s.append(Operation(verb="update", ts_ns=T0 + 9_000_000, duration_ns=1_500_000_000, status=200,
                           request=deployment(1, 3, 2), response=deployment(2, 3, 2)))
        s.append(Operation(verb="delete", ts_ns=T0 + 20_000_000_000, api_version="v1", kind="Pod",
                           namespace="default", name="web-1", resource="pods", status=404,
                           reason="NotFound"))
        s.mark("scaled", 4, "replicas went to 3")
        s.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sessions_json_lists_the_session(recording: Path) -> None:
    out = json.loads(run("sessions", str(recording), "--json", check=True).stdout)
    assert [(s["id"], s["name"], s["source"], s["operations"]) for s in out] == [
        (1, "web-operator", "synthetic", 5)]
    assert out[0]["live"] is False


def test_sessions_text_is_a_table(recording: Path) -> None:
    text = run("sessions", str(recording), check=True).stdout
    assert text.splitlines()[0].split()[:4] == ["ID", "NAME", "SOURCE", "OPS"]
    assert "web-operator" in text and "closed" in text


def test_show_json_gives_op_and_state(recording: Path) -> None:
    out = json.loads(run("show", str(recording), "--at", "4", "--json", check=True).stdout)
    assert out["seq"] == 4 and out["operations"] == 5
    assert out["op"]["verb"] == "update" and out["op"]["status"] == 200
    assert out["resource"] == "Deployment.apps/default/web"
    assert out["object"]["spec"]["replicas"] == 3 and out["version_seq"] == 4


def test_show_a_failed_write_shows_the_object_as_it_still_is(recording: Path) -> None:
    out = json.loads(run("show", str(recording), "--at", "3", "--json", check=True).stdout)
    assert out["op"]["error"] is True and out["op"]["reason"] == "Conflict"
    assert out["object"]["spec"]["replicas"] == 1  # the 409 changed nothing
    assert out["version_seq"] == 1


def test_show_text_reads_well(recording: Path) -> None:
    text = run("show", str(recording), "--at", "1", check=True).stdout
    assert "op 1 of 5" in text
    assert "create Deployment.apps/default/web" in text
    assert "reconcile  #1 webapp" in text
    assert "replicas: 1" in text


def test_show_other_resource_and_positions_by_mark_percent_and_time(recording: Path) -> None:
    out = json.loads(run("show", str(recording), "--at", "scaled", "-r", "deployment/default/web",
                         "--json", check=True).stdout)
    assert out["seq"] == 4
    assert json.loads(run("show", str(recording), "--at", "100%", "--json", check=True).stdout)["seq"] == 5
    assert json.loads(run("show", str(recording), "--at", "+10s", "--json", check=True).stdout)["seq"] == 5
    assert json.loads(run("show", str(recording), "--at", "+0.006s", "--json", check=True).stdout)["seq"] == 3


def test_diff_one_object_ignores_noise_by_default(recording: Path) -> None:
    out = json.loads(run("diff", str(recording), "--from", "1", "--to", "5", "-r",
                         "Deployment/default/web", "--json", check=True).stdout)
    paths = {c["path"]: c for c in out["changes"]}
    assert set(paths) == {".metadata.generation", ".spec.replicas"}
    assert paths[".spec.replicas"] == {"path": ".spec.replicas", "op": "changed", "old": 1, "new": 3}
    everything = json.loads(run("diff", str(recording), "--from", "1", "--to", "5", "-r",
                                "Deployment/default/web", "--all-fields", "--json", check=True).stdout)
    assert ".metadata.resourceVersion" in {c["path"] for c in everything["changes"]}


def test_diff_whole_state_from_the_start(recording: Path) -> None:
    out = json.loads(run("diff", str(recording), "--from", "0", "--to", "5", "--json", check=True).stdout)
    assert out["added"] == ["Deployment.apps/default/web"]
    assert out["removed"] == [] and out["changed"] == {}
    text = run("diff", str(recording), "--from", "2", "--to", "4", check=True).stdout
    assert "~ Deployment.apps/default/web" in text and ".spec.replicas: 1 -> 3" in text


def test_stats_json(recording: Path) -> None:
    out = json.loads(run("stats", str(recording), "--json", check=True).stdout)
    assert out["operations"] == 5
    assert out["by_verb"]["update"] == 2 and out["by_verb"]["create"] == 1
    assert out["errors"] == 2 and out["reconciles"] == 1
    assert set(out["latency_ms"]) >= {"p50", "p95", "p99"}
    assert run("stats", str(recording), check=True).stdout.startswith("session web-operator")


def test_analyze_json_has_every_section(recording: Path) -> None:
    out = json.loads(run("analyze", str(recording), "--json", "--slow-ms", "1000", check=True).stdout)
    assert set(out) >= {"hot_loops", "slow_operations", "error_patterns", "access_patterns"}
    assert "HOT LOOPS" in run("analyze", str(recording), check=True).stdout


def test_reading_never_modifies_the_recording(recording: Path) -> None:
    before = digest(recording)
    for args in (["sessions"], ["show", "--at", "3"], ["diff", "--from", "0", "--to", "5"],
                 ["stats"], ["analyze"]):
        run(args[0], str(recording), *args[1:], check=True)
    assert digest(recording) == before


# --- bad input: one line on stderr, exit 1, never a traceback -------------------------

def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("replay-tui: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run("stats", str(tmp_path / "nope.db")), "no such file")


def test_not_sqlite(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("hello, not a database\n" * 100)
    assert_one_line_error(run("sessions", str(bad)), "not an SQLite database")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert_one_line_error(run("sessions", str(empty)), "empty file")
    assert_one_line_error(run("sessions", str(tmp_path)), "directory")


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    assert_one_line_error(run("stats", str(other)), "not a replay-tui recording")


def test_newer_schema_is_refused(recording: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    shutil.copy(recording, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert_one_line_error(run("sessions", str(newer)), "newer", "upgrade")


def test_truncated_recording(recording: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.db"
    data = recording.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    proc = run("show", str(cut), "--at", "1")
    assert_one_line_error(proc)


def test_unknown_session_and_bad_positions(recording: Path) -> None:
    assert_one_line_error(run("stats", str(recording), "--session", "nope"), "no session 'nope'")
    assert_one_line_error(run("show", str(recording), "--at", "99"), "out of range", "1..5")
    assert_one_line_error(run("show", str(recording), "--at", "0"), "out of range")
    assert_one_line_error(run("show", str(recording), "--at", "150%"), "between 0% and 100%")
    assert_one_line_error(run("show", str(recording), "--at", "banana"), "cannot jump to 'banana'")
    assert_one_line_error(run("show", str(recording), "--at", "1", "-r", "Pod/x"), "no object")
    assert_one_line_error(run("show", str(recording), "--at", "1", "-r", "justaname"), "bad resource")
    assert_one_line_error(run("diff", str(recording), "--from", "1", "--to", "2", "--ignore", ".a[["),
                          "bad field path")


def test_a_time_outside_the_session_is_an_error_giving_its_time_range() -> None:
    """As a seq out of range is: never the first or last op silently (the demo's buggy run lasts 8 s)."""
    demo = str(Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db")
    span = ("its ops run from 2026-11-22 20:27:12.279364Z to 2026-11-22 20:27:20.272137Z (+0s to +7.993s)")
    for at in ("12:00:00", "+1m", "2019-01-01", "2026-11-22T20:27:21Z"):
        assert_one_line_error(run("show", demo, "-s", "2", "--at", at), f"{at!r} is outside the session's time", span)
    assert_one_line_error(run("diff", demo, "-s", "2", "--from", "1", "--to", "+9s"), "outside", span)
    assert_one_line_error(run("serve", demo, "-s", "2", "--at", "+1m", "--", "true"), "outside", span)
    assert "op 1 of 487" in run("show", demo, "-s", "2", "--at", "20:27:12", check=True).stdout  # that second
    assert "op 487 of 487" in run("show", demo, "-s", "2", "--at", "+7.993s", check=True).stdout


def test_several_sessions_need_a_choice(recording: Path, tmp_path: Path) -> None:
    two = tmp_path / "two.db"
    shutil.copy(recording, two)
    with RecordingWriter(two) as w:
        s = w.session("second", "synthetic")
        s.append(Operation(verb="get", kind="ConfigMap", namespace="a", name="b", status=404))
        s.close()
    assert_one_line_error(run("stats", str(two)), "2 sessions", "--session")
    assert json.loads(run("stats", str(two), "--session", "second", "--json", check=True).stdout)[
        "operations"] == 1
    assert json.loads(run("stats", str(two), "--session", "1", "--json", check=True).stdout)[
        "operations"] == 5


@pytest.mark.parametrize("args, message", [
    (["show", "DB"], "replay-tui show: error: the following arguments are required: --at"
                     " (see 'replay-tui show --help')"),
    (["record", "--sample", "2", "--", "true"], "replay-tui record: error: argument --sample: '2' is outside 0 to 1"
                                                " (see 'replay-tui record --help')"),
    (["stats", "DB", "--nope"], "replay-tui: error: unrecognized arguments: --nope (see 'replay-tui --help')"),
    (["import", "sieve"], "replay-tui import sieve: error: the following arguments are required: LOG, --db"
                          " (see 'replay-tui import sieve --help')"),
])
def test_usage_errors_are_one_line_and_exit_2(recording: Path, args: list[str], message: str) -> None:
    proc = run(*[str(recording) if a == "DB" else a for a in args])
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == message + "\n"


def test_demo_takes_a_session() -> None:
    """``demo -s S`` opens that session (as ``replay-tui DB -s S`` does); an unknown one is one line."""
    proc = run("demo", "-s", "nope")
    assert_one_line_error(proc, "no session 'nope'")
    proc = run("demo", "--session", "nope")
    assert_one_line_error(proc, "no session 'nope'")


def test_no_arguments_prints_help() -> None:
    proc = run()
    assert proc.returncode == 2 and "usage: replay-tui" in proc.stdout


def test_stats_text_says_watch_events_have_no_status_rather_than_status_0() -> None:
    demo = str(Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db")
    text = run("stats", demo, "-s", "buggy-operator", check=True).stdout
    line = next(line for line in text.splitlines() if line.startswith("  status "))
    assert line.split() == ["status", "-:212", "200:225", "201:2", "409:48"]  # 212: the watch events
