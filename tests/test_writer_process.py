"""Committing in a process of its own (``RecordingWriter(path, process=True)``): the same file as
committing in the writer's process; a failed batch is kept and retried; either process
dying leaves a recording that reads, and no process behind."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import generator
from replay_tui.engine import codec
from replay_tui.engine.committer import ProcessCommitter
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import k8s_object, op_for

TABLES = ("operations", "states", "objects", "paths", "keyframes", "reconciles", "marks", "rollup_ops",
          "rollup_time", "rollup_objects", "rollup_slowest", "rollup_counts", "rollup_reconcilers")


def _dump(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in TABLES}
        dicts = codec.Dictionaries.of(conn)
        out["blobs"] = [(i, codec.unpack(c, d, dicts)) for i, c, d in
                        conn.execute("SELECT id, codec, data FROM blobs ORDER BY id")]
        out["sessions"] = conn.execute("SELECT name, source, op_count, attributes, format FROM sessions").fetchall()
    finally:
        conn.close()
    return out


def test_a_writer_process_writes_what_the_writer_writes_itself(tmp_path: Path) -> None:
    files = []
    for process in (False, True):
        path = tmp_path / f"{process}.db"
        with RecordingWriter(path, process=process) as w:
            generator.write_session(w, 6000, seed=3, batch=700)
        files.append(_dump(path))
    here, there = files
    assert here["operations"] and here["states"] and here["rollup_ops"] and here["paths"]
    for table in here:
        assert here[table] == there[table], table


def _cm(i: int, pad: int = 0) -> dict[str, Any]:
    return k8s_object("ConfigMap", f"c{i}", rv=i, data={"x": "y" * pad, "i": str(i)})


def test_a_batch_the_writer_process_could_not_commit_is_kept_and_retried(tmp_path: Path) -> None:
    """The writer process hits a file-size limit: the failure comes back as a one-line error,
    nothing is lost, and once there is room the same batch goes in whole."""
    path = tmp_path / "r.db"
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (inherited: a write past the limit fails)
    try:
        with RecordingWriter(path, process=True) as w:
            committer = w.committer
            assert isinstance(committer, ProcessCommitter)
            s = w.session("s", "proxy", batch=50)
            for i in range(1, 101):
                s.append(op_for("get", _cm(i), response=_cm(i)))
            s.flush()
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.prlimit(committer.pid, resource.RLIMIT_FSIZE, (os.path.getsize(str(path) + "-wal") + 1, hard))
            failed = None
            for i in range(101, 401):
                try:
                    s.append(op_for("update", _cm(i, 3000), response=_cm(i, 3000)))
                except RecordingError as exc:  # (a full batch handed over: the one before it failed)
                    failed = exc
            try:
                s.flush()
            except RecordingError as exc:
                failed = exc
            assert failed is not None and "I/O error writing" in str(failed) and "\n" not in str(failed)
            resource.prlimit(committer.pid, resource.RLIMIT_FSIZE, (soft, hard))
            s.flush()
            s.close()
    finally:
        signal.signal(signal.SIGXFSZ, old)
    conn = sqlite3.connect(path)
    seqs = [r[0] for r in conn.execute("SELECT seq FROM operations ORDER BY seq")]
    versions = conn.execute("SELECT COUNT(*) FROM states").fetchone()[0]
    conn.close()
    assert seqs == list(range(1, 401)) and versions == 400


def test_a_writer_process_that_died_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with RecordingWriter(path, process=True) as w:
        committer = w.committer
        assert isinstance(committer, ProcessCommitter)
        s = w.session("s", "proxy")
        s.append(op_for("get", _cm(1), response=_cm(1)))
        s.flush()
        os.kill(committer.pid, signal.SIGKILL)
        s.append(op_for("get", _cm(2), response=_cm(2)))
        with pytest.raises(RecordingError, match="writer process ended unexpectedly"):
            s.flush()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT seq FROM operations").fetchall() == [(1,)]
    conn.close()


_ORPHAN = """
import os, sys
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import k8s_object, op_for
w = RecordingWriter(sys.argv[1], process=True)
s = w.session("s", "proxy")
for i in range(1, 11):
    cm = k8s_object("ConfigMap", f"c{i}", rv=i)
    s.append(op_for("get", cm, response=cm))
s.flush()
print(w.committer.pid, flush=True)
os._exit(0)  # no close: what a killed recorder leaves
"""


def test_when_the_writer_dies_its_process_ends_and_the_session_is_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", _ORPHAN, str(path)], capture_output=True, text=True, cwd=root,
                         timeout=60, check=True).stdout
    pid = int(out.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the writer process outlived its writer")

    async def check() -> None:
        async with await Recording.open(path) as rec:
            (info,) = await rec.sessions()
            assert info.interrupted and info.operations == 10

    asyncio.run(check())
