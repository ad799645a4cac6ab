"""Bad input at the engine level: every problem is a RecordingError with one clear line.

Files that are not recordings, damaged recordings, foreign or newer schemas,
sessions and positions that do not exist, and damaged stored bodies.  Damage
is done with plain sqlite3 or byte writes on a copy made by the real writer.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import state
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import PositionError, Recording, SessionNotFound
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import k8s_object, op_for, read_everything, simple_ops, write_session


def one_line(exc: BaseException, pattern: str) -> str:
    """The message is a single non-empty line that says what is wrong."""
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert "Traceback" not in text
    assert re.search(pattern, text), f"{text!r} does not match {pattern!r}"
    return text


async def open_and_read(path: Path) -> None:
    rec = await Recording.open(path)
    try:
        await read_everything(rec)
    finally:
        await rec.close()


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A real recording of 150 ops with bodies big enough to be compressed."""
    path = tmp_path / "good.db"
    ops = simple_ops(150, error_every=9)
    for op in ops:
        if op.response and op.response.get("kind") != "Status":
            op.response = dict(op.response, padding=[f"item-{i}-{op.name}" for i in range(40)])
    write_session(path, ops, keyframe_interval=8, batch=40)
    return path


# --- not a recording -----------------------------------------------------------------------

async def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RecordingError) as info:
        await Recording.open(tmp_path / "nope.db")
    one_line(info.value, r"nope\.db: no such file")


async def test_directory(tmp_path: Path) -> None:
    with pytest.raises(RecordingError) as info:
        await Recording.open(tmp_path)
    one_line(info.value, "is a directory")


async def test_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(RecordingError) as info:
        await Recording.open(fifo)
    one_line(info.value, "not a regular file")


@pytest.mark.parametrize("content, pattern", [
    (b"", "empty file"),
    (b"kind: Pod\nmetadata:\n  name: web\n", "not an SQLite database"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "not an SQLite database"),
    (b"SQLite format 3", "not an SQLite database"),  # one byte short of the magic
])
async def test_files_that_are_not_databases(tmp_path: Path, content: bytes, pattern: str) -> None:
    path = tmp_path / "file.db"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as info:
        await Recording.open(path)
    one_line(info.value, pattern)


async def test_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.com')")
    with pytest.raises(RecordingError) as info:
        await Recording.open(path)
    one_line(info.value, "not a replay-tui recording")


async def test_foreign_database_with_a_meta_table(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('application', 'something-else')")
    with pytest.raises(RecordingError) as info:
        await Recording.open(path)
    one_line(info.value, "not a replay-tui recording")


async def test_empty_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")  # writes the header page, no tables
    with pytest.raises(RecordingError) as info:
        await Recording.open(path)
    one_line(info.value, "not a replay-tui recording")


@pytest.mark.parametrize("version, pattern", [
    ("99", r"schema version 99, newer .*upgrade"),
    ("abc", "unknown recording schema version 'abc'"),
    ("0", "unknown recording schema version 0"),
])
async def test_schema_versions(recording: Path, version: str, pattern: str) -> None:
    with sqlite3.connect(recording) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    with pytest.raises(RecordingError) as info:
        await Recording.open(recording)
    one_line(info.value, pattern)


async def test_incomplete_schema(recording: Path) -> None:
    with sqlite3.connect(recording) as conn:
        conn.execute("DROP TABLE keyframes")
    with pytest.raises(RecordingError) as info:
        await Recording.open(recording)
    one_line(info.value, r"incomplete recording \(missing keyframes\)")


async def test_odd_file_names_open(tmp_path: Path) -> None:
    path = tmp_path / "rec ?#%20 ü.db"
    write_session(path, simple_ops(3))
    async with await Recording.open(path) as rec:
        assert (await rec.session()).last == 3


# --- damaged recordings -------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.5, 0.9])
async def test_truncated_recording(recording: Path, fraction: float) -> None:
    size = recording.stat().st_size
    os.truncate(recording, int(size * fraction))
    with pytest.raises(RecordingError) as info:
        await open_and_read(recording)
    one_line(info.value, "corrupted")


@pytest.mark.parametrize("cut", [16, 50, 100, 4096])
async def test_truncated_to_its_first_bytes(recording: Path, cut: int) -> None:
    os.truncate(recording, cut)
    with pytest.raises(RecordingError) as info:
        await open_and_read(recording)
    one_line(info.value, "not an SQLite database|corrupted")


async def test_garbage_over_the_middle_pages(recording: Path) -> None:
    size = recording.stat().st_size
    pages = size // 4096
    rnd = random.Random(1)
    with open(recording, "r+b") as fh:
        fh.seek((pages // 4) * 4096)
        fh.write(rnd.randbytes((pages // 2) * 4096))
    with pytest.raises(RecordingError) as info:
        await open_and_read(recording)
    one_line(info.value, "corrupted")


@pytest.mark.parametrize("seed", range(24))
async def test_random_damage_fails_cleanly_or_reads(recording: Path, tmp_path: Path, seed: int) -> None:
    """Small random damage anywhere past the header: reading succeeds or raises one
    RecordingError line; never an sqlite3, decoding or Python error."""
    rnd = random.Random(seed)
    size = recording.stat().st_size
    with open(recording, "r+b") as fh:
        for _ in range(rnd.randint(1, 3)):
            page = rnd.randrange(1, size // 4096)
            mode = rnd.choice(["page", "cell", "zeros"])
            if mode == "page":
                fh.seek(page * 4096)
                fh.write(rnd.randbytes(4096))
            elif mode == "cell":
                fh.seek(page * 4096 + rnd.randrange(8, 4000))
                fh.write(rnd.randbytes(rnd.randint(1, 48)))
            else:
                fh.seek(page * 4096)
                fh.write(bytes(4096))
    try:
        await open_and_read(recording)
    except RecordingError as exc:
        one_line(exc, ".")


# --- damaged contents -----------------------------------------------------------------------

def _response_blob(path: Path, seq: int = 1) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT response_blob FROM operations WHERE seq = ?", (seq,)).fetchone()[0]


@pytest.mark.parametrize("codec, data, pattern", [
    (0, b"{not json", r"corrupted at op 2 \(body \d+: .*\)"),
    (0, b'{"a": "\xff\xfe"}', r"corrupted at op 2 \(body \d+"),           # invalid UTF-8
    (1, b"\x28\xb5\x2f\xfd garbage", r"corrupted at op 2 \(body \d+"),      # a broken zstd frame
    (9, b"{}", r"at op 2 \(body \d+: unknown body codec 9"),
    (0, "text, not a blob", r"corrupted at op 2 \(body \d+"),
    (0, 42, r"corrupted at op 2 \(body \d+"),
])
async def test_malformed_stored_body(recording: Path, codec: int, data: Any, pattern: str) -> None:
    blob = _response_blob(recording, 2)
    with sqlite3.connect(recording) as conn:
        conn.execute("UPDATE blobs SET codec = ?, data = ? WHERE id = ?", (codec, data, blob))
    async with await Recording.open(recording) as rec:
        session = await rec.session()
        await session.op(1)  # other ops still read
        with pytest.raises(RecordingError) as info:
            await session.op(2)
        text = one_line(info.value, pattern)
        assert text.startswith(str(recording))
        with pytest.raises(RecordingError):
            snap = await state.snapshot(session, 2)
            for obj_id in snap.versions:
                await snap.get(obj_id)


async def test_missing_body_row(recording: Path) -> None:
    blob = _response_blob(recording, 3)
    with sqlite3.connect(recording) as conn:
        conn.execute("DELETE FROM blobs WHERE id = ?", (blob,))
    async with await Recording.open(recording) as rec:
        with pytest.raises(RecordingError) as info:
            await (await rec.session()).op(3)
        one_line(info.value, f"body {blob} is missing")


@pytest.mark.parametrize("data", [b"garbage", b"", None])
async def test_corrupted_keyframe(recording: Path, data: bytes | None) -> None:
    from replay_tui.engine import codec

    with sqlite3.connect(recording) as conn:
        seq = conn.execute("SELECT MIN(seq) FROM keyframes").fetchone()[0]
        value = codec.encode_msgpack([["not", "a", "keyframe"]]) if data is None else data
        conn.execute("UPDATE keyframes SET data = ? WHERE seq = ?", (value, seq))
    async with await Recording.open(recording) as rec:
        session = await rec.session()
        assert len(await state.snapshot(session, seq - 1)) >= 0  # before it: fine
        with pytest.raises(RecordingError) as info:
            await state.snapshot(session, seq)
        one_line(info.value, f"corrupted \\(keyframe at {seq}")


async def test_corrupted_session_attributes_and_query_are_tolerated(recording: Path) -> None:
    with sqlite3.connect(recording) as conn:
        conn.execute("UPDATE sessions SET attributes = '{broken'")
        conn.execute("UPDATE operations SET query = '[' WHERE seq = 1")
    async with await Recording.open(recording) as rec:
        (info,) = await rec.sessions()
        assert info.attributes == {}
        assert (await (await rec.session()).op(1)).query is None


# --- sessions and positions -------------------------------------------------------------------

async def test_unknown_session_by_name_and_id(recording: Path) -> None:
    async with await Recording.open(recording) as rec:
        for ref in ("nope", 99, "99"):
            with pytest.raises(SessionNotFound) as info:
                await rec.session(ref)
            one_line(info.value, f"no session '{ref}'")


async def test_several_sessions_and_none_chosen(recording: Path) -> None:
    write_session(recording, simple_ops(2), name="second")
    async with await Recording.open(recording) as rec:
        with pytest.raises(SessionNotFound) as info:
            await rec.session()
        one_line(info.value, r"2 sessions, pick one .*1:test, 2:second")
        with pytest.raises(SessionNotFound):
            await rec.session("")


async def test_recording_without_sessions(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    RecordingWriter(path).close()
    async with await Recording.open(path) as rec:
        assert await rec.sessions() == []
        with pytest.raises(SessionNotFound) as info:
            await rec.session()
        one_line(info.value, "holds no sessions")


async def test_positions_out_of_range(recording: Path) -> None:
    async with await Recording.open(recording) as rec:
        session = await rec.session()
        last = session.last
        for seq in (0, -1, last + 1):
            with pytest.raises(PositionError) as info:
                await session.op(seq)
            one_line(info.value, f"position {seq} is out of range .*1\\.\\.{last}")
        for seq in (-1, last + 1):
            with pytest.raises(PositionError) as info:
                await state.snapshot(session, seq)
            one_line(info.value, f"position {seq} is out of range")
            with pytest.raises(PositionError):
                await state.object_at(session, 1, seq)
        assert len(await state.snapshot(session, 0)) == 0


async def test_positions_in_an_empty_session(tmp_path: Path,
                                              open_recording: Callable[[Path], Awaitable[Recording]]) -> None:
    path = tmp_path / "empty.db"
    write_session(path, [])
    session = await (await open_recording(path)).session()
    assert session.last == 0
    with pytest.raises(PositionError) as info:
        await session.op(1)
    one_line(info.value, "has no operations")
    assert len(await state.snapshot(session, 0)) == 0  # "before the first op" still exists


async def test_closed_recording_raises_recording_error(recording: Path) -> None:
    rec = await Recording.open(recording)
    session = await rec.session()
    await rec.close()
    with pytest.raises(RecordingError) as info:
        await session.op(1)
    one_line(info.value, ".")


async def test_bad_object_specs(recording: Path) -> None:
    async with await Recording.open(recording) as rec:
        session = await rec.session()
        with pytest.raises(RecordingError) as info:
            await session.resolve_object("ConfigMap/default/missing")
        one_line(info.value, "no object 'ConfigMap/default/missing' in session 'test'")
        with pytest.raises(RecordingError) as info:
            await session.resolve_object("just-a-name")
        one_line(info.value, "expected KIND/NAMESPACE/NAME")


async def test_write_of_a_list_without_items_is_harmless(tmp_path: Path) -> None:
    """Odd but valid bodies (a list with null items, a non-object response) do not break reading."""
    path = tmp_path / "odd.db"
    write_session(path, [
        op_for("list", None, kind="ConfigMap", api_version="v1",
               response={"kind": "ConfigMapList", "apiVersion": "v1", "items": None}),
        op_for("get", k8s_object("ConfigMap", "x"), response=["not", "an", "object"]),
        op_for("get", k8s_object("ConfigMap", "y"), response="just a string"),
        op_for("list", None, kind="ConfigMap", api_version="v1",
               response={"kind": "ConfigMapList", "apiVersion": "v1", "items": [1, None, {}]}),
    ])
    async with await Recording.open(path) as rec:
        assert await read_everything(rec) == 4
        session = await rec.session()
        assert len(await state.snapshot(session, 4)) == 0
