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
