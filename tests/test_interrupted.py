"""A session its writer never closed (kill -9) reads as "interrupted"; readers leave no side files.

How a dead writer is told from a living one is in engine/liveness.py: a writer holds an OFD
lock on one byte of the -wal file per open session, which the kernel drops when the process
dies.  These tests kill real writer processes (``replay-tui record`` through the proxy, and a
plain writer) with SIGKILL and read the file the way a user does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from replay_tui.engine import liveness
from replay_tui.engine.store import Recording
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import SECOND, T0, run_cli, simple_ops, write_session

pytestmark = pytest.mark.skipif(not liveness.supported(), reason="needs Linux open file description locks")

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from replay_tui.engine.writer import RecordingWriter
    from tests.conftest import SECOND, T0, simple_ops
    w = RecordingWriter(sys.argv[1])
    sw = w.session(sys.argv[3], "proxy")
    for i, op in enumerate(simple_ops(7)):
        op.ts_ns = T0 + i * SECOND
        sw.append(op)
    sw.flush()
    print("ready", flush=True)
    time.sleep(600)
""")



def start_writer(db: Path, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(ROOT), name],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def sessions_json(db: Path) -> dict[str, dict[str, object]]:
    code, out, err = run_cli("sessions", str(db), "--json")
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)}


def test_a_killed_writer_leaves_an_interrupted_session_a_living_one_is_recording(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    write_session(db, simple_ops(3), name="finished")
    doomed, alive = start_writer(db, "doomed"), start_writer(db, "alive")
    try:
        states = sessions_json(db)
        assert {n: s["state"] for n, s in states.items()} == {
            "finished": "closed", "doomed": "recording", "alive": "recording"}
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        states = sessions_json(db)
        assert {n: (s["state"], s["live"]) for n, s in states.items()} == {
            "finished": ("closed", False), "doomed": ("interrupted", False), "alive": ("recording", True)}
        assert states["doomed"]["last_op_ns"] == T0 + 6 * SECOND and states["alive"]["last_op_ns"] is None
        code, text, _ = run_cli("sessions", str(db))
        line = next(x for x in text.splitlines() if " doomed " in x)
        assert "interrupted, last op 2023-11-14 22:13:" in line
        assert "recording" in next(x for x in text.splitlines() if " alive " in x)
    finally:
        for proc in (doomed, alive):
            proc.kill()
            proc.wait()
    # Every writer is gone now: the session it left open is interrupted too.
    assert sessions_json(db)["alive"]["state"] == "interrupted"
    code, report, _ = run_cli("report", str(db), "-s", "alive")
    assert code == 0 and "interrupted: not closed; last op at 2023-11-14 22:13:" in report


def test_a_session_in_this_process_is_recording_until_closed(tmp_path: Path) -> None:
    """OFD locks belong to a descriptor, not a process: a reader beside the writer sees it live."""
    db = tmp_path / "rec.db"
    with RecordingWriter(db) as w:
        sw = w.session("here", "client")
        sw.extend(simple_ops(2))
        sw.flush()

        async def read() -> tuple[str, bool]:
            async with await Recording.open(db) as rec:
                (info,) = await rec.sessions()
                return info.state, info.live
        assert asyncio.run(read()) == ("recording", True)
        sw.close()
        assert asyncio.run(read()) == ("closed", False)


def test_a_session_closed_while_a_follower_looks_reads_closed_not_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race a live follow meets: the tail is read (still open), then the writer commits its end
    and drops its lock, then the lock is checked.  The session closed; no writer died."""
    db = tmp_path / "rec.db"
    with RecordingWriter(db) as w:
        sw = w.session("here", "client")
        sw.extend(simple_ops(2))
        sw.flush()

        async def follow_once() -> tuple[str, bool, bool]:
            async with await Recording.open(db) as rec:
                ses = await rec.session()
                assert ses.info.state == "recording"
                real = liveness.live_sessions

                def close_first(path: Path, ids: object) -> object:
                    sw.close()  # between the tail's read and the lock check
                    return real(path, ids)  # type: ignore[arg-type]
                monkeypatch.setattr(liveness, "live_sessions", close_first)
                await ses.refresh()
                return ses.info.state, ses.info.interrupted, ses.info.ended_ns is not None
        assert asyncio.run(follow_once()) == ("closed", False, True)


def test_kill_9_of_the_recorder_leaves_an_interrupted_session(tmp_path: Path) -> None:
    from tests.support.emulator import EmulatorThread, KubernetesAPIEmulator
    from tests.support.harness import RecorderProcess

    db = tmp_path / "rec.db"
    with EmulatorThread(KubernetesAPIEmulator()) as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "emulator.kubeconfig")
        with RecorderProcess(db, kubeconfig, session="operator") as rec:
            for _ in range(5):
                conn = rec.connection(timeout=10)
                conn.request("GET", "/api/v1/namespaces", headers={"Authorization": f"Bearer {rec.token}"})
                assert conn.getresponse().status == 200
                conn.close()
            deadline = time.monotonic() + 10
            while sessions_json(db)["operator"]["operations"] < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sessions_json(db)["operator"]["state"] == "recording"
            rec.kill()  # SIGKILL: no chance to close the session
    info = sessions_json(db)["operator"]
    assert info["state"] == "interrupted" and info["ended_ns"] is None and info["operations"] >= 5
    code, text, _ = run_cli("sessions", str(db))
    assert code == 0 and "interrupted, last op" in text


# --- side files ------------------------------------------------------------------------------

def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


READERS = [["sessions"], ["show", "--at", "3"], ["diff", "--from", "1", "--to", "5"], ["stats"], ["analyze"],
           ["query", "verb=update"], ["when", "--field", "ConfigMap/default/obj-0:.data"], ["why", "--at", "5"],
           ["report", "--format", "html"], ["check"]]


@pytest.mark.parametrize("argv", READERS, ids=lambda a: a[0])
def test_readers_of_a_finished_recording_leave_no_side_files(tmp_path: Path, argv: list[str]) -> None:
    db = tmp_path / "rec.db"
    write_session(db, simple_ops(12))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.db"]
    before = digest(db)
    code, _, err = run_cli(argv[0], str(db), *argv[1:])
    assert code in (0, 1) and "internal error" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.db"]
    assert digest(db) == before


async def test_connections_opened_one_after_another_leave_no_side_files(tmp_path: Path) -> None:
    """A second reader opened while the first holds the file (its -wal is the first's, not a
    writer's) reads the same way, so whichever closes last removes the side files."""
    db = tmp_path / "rec.db"
    write_session(db, simple_ops(12))
    before = digest(db)
    first = await Recording.open(db)
    second = await first.clone()
    third = await Recording.open(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.db", "rec.db-shm", "rec.db-wal"]
    for rec in (first, third, second):  # the first opened is not the last closed
        assert (await (await rec.session(None)).op(3)).seq == 3
        await rec.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.db"]
    assert digest(db) == before


async def test_quitting_the_tui_leaves_no_side_files(tmp_path: Path) -> None:
    """The debugger's four connections, statistics and analysis included, leave the directory as it was."""
    pytest.importorskip("textual")
    from replay_tui.tui.app import ReplayApp

    db = tmp_path / "st.db"
    write_session(db, simple_ops(12), name="operator")
    before = digest(db)
    app = ReplayApp(str(db), persist_marks=False)
    async with app.run_test(size=(160, 45)) as pilot:
        deadline = time.monotonic() + 10
        while app.debugger.ses is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        for key in ("l", "l", "3", "4"):
            await pilot.press(key)
            await pilot.pause(0.1)
        assert (tmp_path / "st.db-wal").exists()
        await pilot.press("q")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st.db"]
    assert digest(db) == before


def test_reading_after_a_crash_reads_the_wal_and_touches_nothing(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    proc = start_writer(db, "crashed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rec.db", "rec.db-shm", "rec.db-wal"]  # the dead writer's: its commits are in -wal
    files = {name: digest(tmp_path / name) for name in ("rec.db", "rec.db-wal")}
    code, out, _ = run_cli("show", str(db), "--at", "7")
    assert code == 0 and "op 7 of 7" in out
    # The recording and its log are untouched (-shm is SQLite's shared-memory index: readers write it).
    assert {name: digest(tmp_path / name) for name in files} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_the_kubestep_source_is_read_without_side_files(tmp_path: Path) -> None:
    import sqlite3

    src = tmp_path / "ks" / "kubestep.db"
    src.parent.mkdir()
    conn = sqlite3.connect(src)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE operations (session_id TEXT, sequence_number INTEGER, timestamp INTEGER,"
                 " operation_type TEXT, resource_kind TEXT, namespace TEXT, name TEXT, resource_data TEXT)")
    conn.execute("INSERT INTO operations VALUES ('s', 1, 1700000000, 'GET', 'ConfigMap', 'd', 'c', NULL)")
    conn.commit()
    conn.close()
    assert sorted(os.listdir(src.parent)) == ["kubestep.db"]
    code, _, err = run_cli("import", "kubestep", str(src), "--db", str(tmp_path / "rec.db"))
    assert code == 0, err
    assert sorted(os.listdir(src.parent)) == ["kubestep.db"]


async def test_the_session_picker_labels_an_interrupted_session(tmp_path: Path) -> None:
    pytest.importorskip("textual")
    from textual.widgets import OptionList

    from replay_tui.tui.app import ReplayApp
    from replay_tui.tui.screens.pickers import SessionPicker

    db = tmp_path / "rec.db"
    write_session(db, simple_ops(3), name="finished")
    proc = start_writer(db, "crashed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    async with await Recording.open(db) as rec:
        infos = await rec.sessions()
    app = ReplayApp(str(db), sessions=infos, persist_marks=False)
    async with app.run_test(size=(160, 45)) as pilot:
        deadline = time.monotonic() + 10
        while not isinstance(app.screen, SessionPicker) and time.monotonic() < deadline:
            await pilot.pause(0.02)
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    assert "interrupted: its recorder died; last op 2023-11-14 22:13:26" in labels[1]
    assert "● recording" not in labels[1]
    assert "interrupted" not in labels[0]


def test_where_the_locks_do_not_exist_an_open_session_reads_recording(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "rec.db"
    proc = start_writer(db, "crashed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert sessions_json(db)["crashed"]["state"] == "interrupted"
    monkeypatch.setattr(liveness, "_GETLK", None)  # as on a system without OFD locks
    assert sessions_json(db)["crashed"]["state"] == "recording"
