"""The store: reading never modifies a recording, and the basic read paths answer right."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import readonly
from replay_tui.engine.format import Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording, SessionNotFound
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import (
    SECOND,
    T0,
    file_digest,
    k8s_object,
    op_for,
    read_everything,
    simple_ops,
    status_body,
    write_session,
)

ROOT = Path(__file__).resolve().parent.parent


def _rich_recording(path: Path) -> None:
    """Two sessions with reconciles, marks, errors, lists and deletes: every table has rows."""
    def script(sw: Any) -> None:
        rid = sw.begin_reconcile("configmaps", kind="ConfigMap", namespace="default", name="obj-0")
        ops = simple_ops(30, error_every=7)
        ops.append(op_for("get", k8s_object("ConfigMap", "gone"), status=404,
                          response=status_body(404, "NotFound")))
        ops.append(op_for("delete", k8s_object("ConfigMap", "obj-1"), status=200))
        for i, op in enumerate(ops):
            op.ts_ns = T0 + i * SECOND
            if i < 30:
                op.reconcile = rid
            sw.append(op)
            if i == 29:
                sw.end_reconcile(rid)
                sw.mark("after-updates", note="30 ops in")

    write_session(path, [script], name="first", keyframe_interval=4, batch=8)
    write_session(path, simple_ops(12), name="second", keyframe_interval=2)


async def test_reading_everything_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "rec.db"
    _rich_recording(path)
    before = file_digest(path)
    rec = await Recording.open(path)
    assert await read_everything(rec) == 32 + 12
    clone = await rec.clone()
    await read_everything(clone)
    await clone.close()
    await rec.close()
    assert file_digest(path) == before


async def test_reading_a_live_recording_changes_neither_file_nor_wal(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    with RecordingWriter(path) as writer:
        sw = writer.session("live", "synthetic", batch=5, keyframe_interval=3)
        sw.extend(simple_ops(23, error_every=4))
        sw.flush()  # committed, but the session is still open and the WAL holds it
        wal = Path(str(path) + "-wal")
        assert wal.exists()
        before = (file_digest(path), file_digest(wal))
        async with await Recording.open(path) as rec:
            session = await rec.session("live")
            assert session.info.live and session.last == 23
            await read_everything(rec)
        assert (file_digest(path), file_digest(wal)) == before
        sw.close()


async def test_query_only_and_read_only_mode_refuse_writes(tmp_path: Path) -> None:
    path = tmp_path / "rec.db"
    write_session(path, simple_ops(5))
    before = file_digest(path)
    async with await Recording.open(path) as rec:
        assert await rec.fetchone("PRAGMA query_only") == (1,)
        for sql in ("CREATE TABLE intruder (a)", "INSERT INTO meta (key, value) VALUES ('x', 'y')",
                    "DELETE FROM operations", "UPDATE sessions SET name = 'x'", "VACUUM"):
            with pytest.raises(RecordingError) as info:
                await rec.execute(sql)
            assert "\n" not in str(info.value)
        # query_only cannot be switched off, and the authorizer refuses writes on its own.
        with pytest.raises(RecordingError, match="not authorized"):
            await rec.execute("PRAGMA query_only = 0")
        await rec.db.set_authorizer(None)
        await rec.execute("PRAGMA query_only = 0")
        await rec.db.set_authorizer(readonly.authorizer)
        for sql in ("DELETE FROM operations", "CREATE TABLE intruder (a)", "ATTACH ':memory:' AS x"):
            with pytest.raises(RecordingError, match="not authorized"):
                await rec.execute(sql)
        assert (await rec.fetchone("SELECT COUNT(*) FROM operations")) == (5,)
    assert file_digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.db"]  # no -wal/-shm left behind


async def test_a_recording_being_written_is_read_read_only(tmp_path: Path) -> None:
    """While a writer has the file (a -wal exists), readers use mode=ro and never touch its files."""
    path = tmp_path / "rec.db"
    with RecordingWriter(path) as w:
        sw = w.session("live", "proxy")
        sw.extend(simple_ops(3))
        sw.flush()
        async with await Recording.open(path) as rec:
            assert (await rec.fetchone("SELECT COUNT(*) FROM operations")) == (3,)
            uri = readonly.read_uri(str(path))
            assert uri.endswith("?mode=ro")
        sw.close()


_OPEN_IN_CHILD = textwrap.dedent("""
    import asyncio, os, sys
    sys.path.insert(0, sys.argv[2])
    if sys.argv[3] == "lie":  # pretend the directory is writable: exercises the retry path
        os.access = lambda *a, **k: True
    from replay_tui.engine.store import Recording
    from replay_tui.engine import state
    async def main():
        async with await Recording.open(sys.argv[1]) as rec:
            s = await rec.session()
            snap = await state.snapshot(s, s.last)
            print(s.last, len(snap), (await s.op(s.last)).name)
    asyncio.run(main())
""")


@pytest.mark.parametrize("mode", ["plain", "lie"])
def test_a_recording_in_a_read_only_directory_opens(mode: str) -> None:
    """A WAL recording in a directory we cannot write (no -shm/-wal can be created)."""
    base = Path(tempfile.mkdtemp(prefix="replay-ro-"))
    try:
        ro = base / "ro"
        ro.mkdir()
        path = ro / "rec.db"
        write_session(path, simple_ops(9))
        before = file_digest(path)
        os.chmod(path, 0o644)
        os.chmod(ro, 0o555)
        os.chmod(base, 0o755)
        cmd = [sys.executable, "-c", _OPEN_IN_CHILD, str(path), str(ROOT), mode]
        if os.geteuid() == 0:  # root writes anywhere: read as an unprivileged user
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot drop privileges")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]
        assert proc.stdout.split() == ["9", "5", "obj-3"]
        assert sorted(os.listdir(ro)) == ["rec.db"]  # nothing left behind
        assert file_digest(path) == before
    finally:
        os.chmod(base / "ro", 0o755)
        shutil.rmtree(base)


# --- basic read paths -------------------------------------------------------------------

async def test_sessions_and_lookup_by_name_and_id(tmp_path: Path, open_recording: Any) -> None:
    path = tmp_path / "rec.db"
    _rich_recording(path)
    write_session(path, simple_ops(3), name="first")  # a taken name gets a suffix
    rec = await open_recording(path)
    infos = await rec.sessions()
    assert [(i.name, i.operations, i.live) for i in infos] == [
        ("first", 32, False), ("second", 12, False), ("first-2", 3, False)]
    assert (await rec.session("second")).id == infos[1].id
    assert (await rec.session(infos[2].id)).info.name == "first-2"
    assert (await rec.session(str(infos[0].id))).info.name == "first"
    with pytest.raises(SessionNotFound, match="3 sessions"):
        await rec.session()


async def test_rows_times_errors_marks_reconciles(tmp_path: Path, open_recording: Any) -> None:
    path = tmp_path / "rec.db"
    _rich_recording(path)
    rec = await open_recording(path)
    s = await rec.session("first")
    rows = await s.rows(5, 4)
    assert [r.seq for r in rows] == [5, 6, 7, 8]
    assert rows[2].error and rows[2].status == 409 and rows[2].target == "ConfigMap/default/obj-1"
    assert await s.rows(31, 10) != [] and len(await s.rows(31, 10)) == 2
    assert await s.seq_at_time(T0 + 10 * SECOND) == 11
    assert await s.seq_at_time(T0 + 10 * SECOND + 1) == 12
    assert await s.seq_at_time(0) == 1
    assert await s.seq_at_time(T0 + 10_000 * SECOND) == 32  # past the end: the last op
    assert await s.time_range() == (T0, T0 + 31 * SECOND)
    errors = [7, 14, 21, 28, 31]
    assert await s.next_error(0) == 7
    assert await s.next_error(7) == 14
    assert await s.next_error(31) is None
    assert await s.next_error(30, forward=False) == 28
    assert await s.next_error(7, forward=False) is None
    assert [r.seq for r in await s.rows(1, 32) if r.error] == errors
    (mark,) = await s.marks()
    assert (mark.name, mark.seq, mark.note) == ("after-updates", 30, "30 ops in")
    span = await s.next_reconcile(0)
    assert span is not None and (span.start_seq, span.end_seq, span.name) == (1, 30, "obj-0")
    assert await s.next_reconcile(1) is None
    assert await s.reconcile_count() == 1
    op = await s.op(7)
    assert op.reconcile == span.id and op.reason == "Conflict"
    assert op.request["metadata"]["name"] == "obj-1" and op.response["kind"] == "Status"


async def test_resolve_object(tmp_path: Path, open_recording: Any) -> None:
    path = tmp_path / "rec.db"
    web = {"default": k8s_object("Deployment", "web", api_version="apps/v1"),
           "other": k8s_object("Deployment", "web", "other", api_version="apps/v1")}
    ops = [op_for("create", obj, status=201, response=obj, resource="deployments") for obj in web.values()]
    ns = k8s_object("Namespace", "other", "")
    ops.append(op_for("create", ns, status=201, response=ns, resource="namespaces"))
    write_session(path, ops)
    s = await (await open_recording(path)).session()
    _, key = await s.resolve_object("deployments/other/web")
    assert str(key) == "Deployment.apps/other/web"
    _, key = await s.resolve_object("Deployment.apps/default/web")
    assert key.namespace == "default"
    _, key = await s.resolve_object("namespace/other")
    assert str(key) == "Namespace/other"
    with pytest.raises(RecordingError, match="ambiguous"):
        await s.resolve_object("deployment/web")
    with pytest.raises(RecordingError, match="no object"):
        await s.resolve_object("Deployment.batch/default/web")
    for bad in ("web", "a/b/c/d", "/default/web", "Deployment/default/"):
        with pytest.raises(RecordingError, match="KIND/NAMESPACE/NAME"):
            await s.resolve_object(bad)


async def test_stream_yields_every_row_in_chunks(tmp_path: Path, open_recording: Any) -> None:
    path = tmp_path / "rec.db"
    write_session(path, simple_ops(25))
    rec = await open_recording(path)
    chunks = [c async for c in rec.stream("SELECT seq FROM operations ORDER BY seq", size=10)]
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [r[0] for c in chunks for r in c] == list(range(1, 26))


async def test_bodies_written_as_raw_bytes_read_back_as_json(tmp_path: Path, open_recording: Any) -> None:
    path = tmp_path / "rec.db"
    big = k8s_object("ConfigMap", "big", data={f"k{i}": "v" * 50 for i in range(40)})  # compressed
    import msgspec
    write_session(path, [Operation(verb="get", kind="ConfigMap", api_version="v1", namespace="default",
                                   name="big", status=200, response=msgspec.json.encode(big))])
    s = await (await open_recording(path)).session()
    assert (await s.op(1)).response == big
    codec_used = await s.rec.fetchone("SELECT codec FROM blobs")
    assert codec_used == (1,)


async def test_a_caller_changing_a_body_does_not_change_later_reads(tmp_path: Path,
                                                                     open_recording: Any) -> None:
    from replay_tui.engine import state

    path = tmp_path / "rec.db"
    write_session(path, simple_ops(6))
    s = await (await open_recording(path)).session()
    obj_id, _ = await s.resolve_object("ConfigMap/default/obj-0")
    first = await state.object_at(s, obj_id, 6)
    first["metadata"].pop("uid")  # e.g. a view stripping noise before display
    first["data"]["i"] = "edited"
    again = await state.object_at(s, obj_id, 6)
    assert again["data"] == {"i": "5"} and "uid" in again["metadata"]
    assert (await s.op(6)).response == again
