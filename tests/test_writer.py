"""Writer behaviour a user notices: what becomes an object, span ends, identities."""

from __future__ import annotations

from pathlib import Path

from replay_tui.engine import state
from replay_tui.engine.format import Operation
from replay_tui.engine.store import Recording
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import k8s_object, op_for, status_body


async def test_discovery_documents_are_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        s.append(Operation(verb="get", resource="/apis", status=200,
                           response={"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))
        s.append(Operation(verb="get", resource="/api/v1", status=200,
                           response={"kind": "APIResourceList", "groupVersion": "v1", "resources": []}))
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        rows = await ses.rows(1, 2)
        assert [(r.kind, r.name) for r in rows] == [("", ""), ("", "")]
        assert len(await state.snapshot(ses, 2)) == 0


async def test_delete_options_do_not_name_the_object(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        s.append(Operation(verb="delete", resource="pods", namespace="default", name="p", status=500,
                           request={"kind": "DeleteOptions", "apiVersion": "v1",
                                    "propagationPolicy": "Foreground"},
                           response=status_body(500, "InternalError")))
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        (row,) = await ses.rows(1, 1)
        assert row.kind != "DeleteOptions"


async def test_interleaved_spans_end_at_their_own_last_op(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    a, b = k8s_object("ConfigMap", "a"), k8s_object("ConfigMap", "b")
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        ra = s.begin_reconcile("cm", name="a")
        s.append(op_for("get", a, response=a, reconcile=ra))
        rb = s.begin_reconcile("cm", name="b")
        last_a = s.append(op_for("update", a, response=a, reconcile=ra))
        s.append(op_for("get", b, response=b, reconcile=rb))
        s.end_reconcile(ra, end_seq=last_a)
        s.end_reconcile(rb)
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        span_a, span_b = await ses.reconcile(ra), await ses.reconcile(rb)
        assert (span_a.start_seq, span_a.end_seq) == (1, 2)
        assert (span_b.start_seq, span_b.end_seq) == (2, 3)


async def test_later_bodies_use_the_sessions_dictionary_and_read_back(tmp_path: Path) -> None:
    """Once 4 MB of bodies were seen, a dictionary is trained on them; later bodies use it,
    are much smaller, and every reader (a Recording, its clones, plain sqlite3) reads them."""
    import sqlite3

    from benchmarks import generator
    from replay_tui.engine import codec

    path = tmp_path / "dict.db"
    with RecordingWriter(path) as w:
        generator.write_session(w, 4000, seed=3, batch=500)
    conn = sqlite3.connect(path)
    try:
        sizes = dict(conn.execute("SELECT codec, AVG(LENGTH(data)) FROM blobs GROUP BY codec").fetchall())
        assert set(sizes) >= {codec.ZSTD, codec.ZSTD_DICT} and sizes[codec.ZSTD_DICT] < sizes[codec.ZSTD] / 1.8
        (dict_id, session_id), = conn.execute("SELECT id, session_id FROM dictionaries").fetchall()
        assert dict_id == codec.DICT_BASE + session_id
        dicts = codec.Dictionaries.of(conn)
        rows = conn.execute("SELECT id, codec, data FROM blobs WHERE codec = ? LIMIT 20", (codec.ZSTD_DICT,)).fetchall()
        plain = {i: codec.unpack(c, d, dicts) for i, c, d in rows}
    finally:
        conn.close()
    async with await Recording.open(path) as rec:
        await rec.session()
        other = await rec.clone()
        try:
            for blob_id, data in plain.items():
                assert await rec.body(blob_id) == await other.body(blob_id) == codec.from_json(data)
        finally:
            await other.close()


async def test_a_missing_dictionary_is_a_one_line_error(tmp_path: Path) -> None:
    import sqlite3

    from benchmarks import generator
    from replay_tui.engine import codec
    from replay_tui.engine.schema import RecordingError

    path = tmp_path / "dict.db"
    with RecordingWriter(path) as w:
        generator.write_session(w, 4000, seed=3)
    conn = sqlite3.connect(path)
    blob_id = conn.execute("SELECT id FROM blobs WHERE codec = ? LIMIT 1", (codec.ZSTD_DICT,)).fetchone()[0]
    conn.execute("DELETE FROM dictionaries")
    conn.commit()
    conn.close()
    async with await Recording.open(path) as rec:
        await rec.session()
        try:
            await rec.body(blob_id)
        except RecordingError as exc:
            assert "corrupted" in str(exc) and "dictionary" in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError("a body whose dictionary is gone was read")
