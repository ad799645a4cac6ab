"""The in-process hook: every call of the official client recorded, reconcile spans marked by the operator."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from kubernetes import client, config, watch

from replay_tui import recorder
from replay_tui.engine import codec
from replay_tui.engine.schema import RecordingError
from tests.conftest import run_cli
from tests.support.emulator import EmulatorThread


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.CoreV1Api]:
    with EmulatorThread() as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path_factory.mktemp("hook") / "kubeconfig")
        yield client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))


def _rows(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _body(db: Path, blob: int) -> Any:
    conn = sqlite3.connect(db)
    try:
        c, data = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (blob,)).fetchone()
        return codec.decode(c, data, codec.Dictionaries.of(conn))
    finally:
        conn.close()


def test_every_call_is_recorded_with_marked_reconcile_spans(core: client.CoreV1Api, tmp_path: Path) -> None:
    db = tmp_path / "hook.db"
    core.create_namespace({"metadata": {"name": "hooked"}})
    with recorder.recording(str(db), session="operator") as rec:
        owner = {"kind": "ConfigMap", "metadata": {"name": "web", "namespace": "hooked"}}
        with rec.reconcile(owner, "webs"):
            core.create_namespaced_config_map("hooked", {"metadata": {"name": "web"}, "data": {"a": "1"}})
            core.patch_namespaced_config_map("web", "hooked", {"data": {"a": "2"}})
        with pytest.raises(client.ApiException):
            core.read_namespaced_config_map("gone", "hooked")
        with pytest.raises(RuntimeError), rec.reconcile(owner, "webs"):
            core.read_namespaced_config_map("web", "hooked")
            raise RuntimeError("the reconciler crashed")
        events = [e["type"] for e in watch.Watch().stream(core.list_namespaced_config_map, "hooked",
                                                          timeout_seconds=1)]
        rec.mark("done", "after the watch")
    assert events == ["ADDED"]
    assert rec.counters is not None and rec.counters.recorded == 6 and rec.counters.dropped == 0
    ops = [(r["seq"], r["verb"], r["kind"], r["name"], r["status"], r["reconcile"])
           for r in _rows(db, "SELECT * FROM operations ORDER BY seq")]
    assert ops == [(1, "create", "ConfigMap", "web", 201, 1), (2, "patch", "ConfigMap", "web", 200, 1),
                   (3, "get", "ConfigMap", "gone", 404, None), (4, "get", "ConfigMap", "web", 200, 2),
                   (5, "watch", "ConfigMap", "", 200, None), (6, "added", "ConfigMap", "web", 0, None)]
    spans = [(r["id"], r["reconciler"], r["name"], r["start_seq"], r["end_seq"], r["inferred"], r["error"])
             for r in _rows(db, "SELECT * FROM reconciles ORDER BY id")]
    assert spans == [(1, "webs", "web", 1, 2, 0, ""),
                     (2, "webs", "web", 4, 4, 0, "RuntimeError: the reconciler crashed")]
    assert [(r["name"], r["seq"]) for r in _rows(db, "SELECT * FROM marks")] == [("done", 6)]
    session = _rows(db, "SELECT * FROM sessions")[0]
    assert session["source"] == "client" and session["ended_ns"] is not None
    assert json.loads(session["attributes"])["recorded"] == 6


def test_spans_follow_the_thread_that_opened_them(core: client.CoreV1Api, tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    with recorder.recording(str(db)) as rec:
        inside = threading.Event()
        other_done = threading.Event()

        def other() -> None:
            inside.wait(10)
            core.read_namespace("default")  # concurrent, but not part of the reconcile
            other_done.set()

        t = threading.Thread(target=other)
        t.start()
        with rec.reconcile(("Namespace", "", "default")):
            inside.set()
            other_done.wait(10)
            core.read_namespace("default")
        t.join()
    rows = [(r["seq"], r["reconcile"]) for r in _rows(db, "SELECT * FROM operations ORDER BY seq")]
    assert rows == [(1, None), (2, 1)]


def test_secrets_are_redacted_unless_asked_not_to(core: client.CoreV1Api, tmp_path: Path) -> None:
    core.create_namespaced_secret("default", {"metadata": {"name": "pw"}, "stringData": {"pw": "hunter2"}})
    for redact, db in ((True, tmp_path / "redacted.db"), (False, tmp_path / "plain.db")):
        with recorder.recording(str(db), redact=redact):
            core.read_namespaced_secret("pw", "default")
        stored = _body(db, _rows(db, "SELECT response_blob FROM operations")[0][0])["data"]["pw"]
        if redact:
            assert stored.startswith("redacted:hmac-sha256:")
        else:
            assert base64.b64decode(stored) == b"hunter2"


def test_only_one_recording_at_a_time_and_nothing_after_it_ends(core: client.CoreV1Api, tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    with recorder.recording(str(db)):
        with pytest.raises(RecordingError, match="already active"), recorder.recording(str(tmp_path / "two.db")):
            pass
        core.read_namespace("default")
    core.read_namespace("default")  # after the context: not recorded, and the client still works
    assert len(_rows(db, "SELECT * FROM operations")) == 1


def test_a_bad_recording_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_text("hello")
    with pytest.raises(RecordingError, match="not an SQLite database"):
        recorder.recording(str(bad))


def test_a_sampled_hook_keeps_watches_and_counts_what_it_left_out(core: client.CoreV1Api, tmp_path: Path) -> None:
    db = tmp_path / "sampled.db"
    core.create_namespace({"metadata": {"name": "sampled"}})
    core.create_namespaced_config_map("sampled", {"metadata": {"name": "cm"}})
    with recorder.recording(str(db), session="sampled", sample=0.0) as rec:
        for _ in range(20):
            core.read_namespaced_config_map("cm", "sampled")
        with pytest.raises(client.ApiException):
            core.read_namespaced_config_map("gone", "sampled")
        events = list(watch.Watch().stream(core.list_namespaced_config_map, "sampled", timeout_seconds=1))
    assert len(events) == 1
    assert rec.counters is not None and rec.counters.sampled_out == 21
    assert [r["verb"] for r in _rows(db, "SELECT verb FROM operations ORDER BY seq")] == ["watch", "added"]
    attrs = json.loads(_rows(db, "SELECT attributes FROM sessions")[0]["attributes"])
    assert attrs["sample_rate"] == 0.0 and attrs["sampled_out"] == 21
    # The hook counted every call: stats and the report give the exact totals (the watch and the 21 left out).
    code, out, err = run_cli("stats", str(db), "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert (stats["requests_exact"], stats["requests"], stats["operations"]) == (True, 22, 23)
    code, out, _ = run_cli("stats", str(db))
    assert out.startswith("session sampled: 23 operations over ")
    code, md, _ = run_cli("report", str(db))
    assert "| Requests | 22 |" in md and "| Operations | 23 |" in md


def test_a_sample_rate_outside_0_to_1_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="expected a fraction from 0 to 1"):
        recorder.recording(str(tmp_path / "x.db"), sample=1.5)
    assert not (tmp_path / "x.db").exists()


def test_the_hook_leaves_the_operators_garbage_collector_alone(core: client.CoreV1Api, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk writers pause the cyclic collector over a batch; in the operator's own process the
    hook's writer never touches it (an operator may manage gc itself)."""
    import gc

    from replay_tui.engine.format import Operation
    from replay_tui.engine.writer import RecordingWriter

    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    with recorder.recording(str(tmp_path / "hook.db"), session="operator"):
        core.list_namespaced_config_map("default")
    assert calls == []
    with RecordingWriter(tmp_path / "bulk.db") as w:  # an importer's writer does pause it
        s = w.session("s", "import")
        s.append(Operation(verb="get", api_version="v1", resource="configmaps", kind="ConfigMap", name="a"))
        s.close()
    assert calls
