"""The fixture recording the TUI tests open, and a check that it has what they rely on.

One session ("operator") of 260 ops at fixed times (T0 + 1 s per op): a
Deployment created and scaled in reconcile spans, a 409 Conflict, a 500, a
slow (1.5 s) get, watch events, a ConfigMap created, patched and deleted, then
filler gets on Pods; two marks in the recording.  A second tiny session
("second") makes the file a multi-session one when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replay_tui.engine.format import Operation
from replay_tui.engine.writer import SessionWriter
from tests.conftest import SECOND, T0, k8s_object, op_for, status_body, write_session

OPS = 260
CONFLICT_SEQ = 6
SERVER_ERROR_SEQ = 15
SLOW_SEQ = 12
SCALE_SEQ = 4  # the update that scales web from 1 to 3 replicas
CM_DELETE_SEQ = 17


def deployment(replicas: int, rv: int, ready: int = 0) -> dict[str, Any]:
    return k8s_object("Deployment", "web", "shop", api_version="apps/v1", rv=rv, generation=replicas,
                      labels={"app.kubernetes.io/name": "web"},
                      spec={"replicas": replicas, "template": {"spec": {"containers": [
                          {"name": "app", "image": "example/web:1.0", "ports": [{"containerPort": 8080}]}]}}},
                      status={"readyReplicas": ready, "conditions": [{"type": "Available", "status": "True"}]})


def configmap(rv: int, **data: str) -> dict[str, Any]:
    return k8s_object("ConfigMap", "web-config", "shop", rv=rv, data=dict(data))


def pod(i: int) -> dict[str, Any]:
    return k8s_object("Pod", f"web-{i}", "shop", rv=100 + i, spec={"nodeName": f"node-{i % 3}"},
                      status={"phase": "Running"})


def steps() -> list[Any]:
    d1, d3, d3s = deployment(1, 10), deployment(3, 11), deployment(3, 13, ready=3)
    cm1, cm2 = configmap(20, mode="a"), configmap(21, mode="b", extra="yes")
    out: list[Any] = []

    def begin(name: str) -> Any:
        def go(sw: SessionWriter) -> None:
            sw._tui_rid = sw.begin_reconcile("web", kind="Deployment", namespace="shop", name=name,  # type: ignore[attr-defined]
                                             ts_ns=T0)
        return go

    def end(sw: SessionWriter) -> None:
        sw.end_reconcile(sw._tui_rid, ts_ns=T0)  # type: ignore[attr-defined]

    def rid(op: Operation) -> Any:
        def go(sw: SessionWriter) -> None:
            op.reconcile = sw._tui_rid  # type: ignore[attr-defined]
            sw.append(op)
        return go

    def at(op: Operation, seq: int) -> Operation:
        op.ts_ns = T0 + (seq - 1) * SECOND
        return op

    out.append(at(op_for("list", None, kind="Deployment", api_version="apps/v1", namespace="shop",
                         response={"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": []},
                         duration_ns=3_000_000), 1))                                              # 1
    out.append(at(op_for("added", d1, response=d1), 2))                                           # 2
    out.append(begin("web"))
    out.append(rid(at(op_for("get", d1, response=d1, duration_ns=2_000_000), 3)))                  # 3
    out.append(rid(at(op_for("update", d3, request=d3, response=d3, duration_ns=8_000_000), 4)))  # 4
    out.append(end)
    out.append(at(op_for("modified", d3, response=d3), 5))                                        # 5
    out.append(begin("web"))
    out.append(rid(at(op_for("update", d3s, status=409, reason="Conflict", subresource="status",
                             message="the object has been modified",
                             request=d3s, response=status_body(409, "Conflict"), duration_ns=5_000_000), 6)))  # 6
    out.append(rid(at(op_for("get", d3, response=d3, duration_ns=2_000_000), 7)))                  # 7
    out.append(rid(at(op_for("update", d3s, subresource="status", request=d3s, response=d3s,
                             duration_ns=9_000_000), 8)))                                           # 8
    out.append(end)
    out.append(at(op_for("modified", d3s, response=d3s), 9))                                       # 9
    out.append(begin("web"))
    out.append(rid(at(op_for("create", cm1, status=201, request=cm1, response=cm1, duration_ns=7_000_000), 10)))  # 10
    out.append(rid(at(op_for("patch", cm2, request={"data": {"mode": "b", "extra": "yes"}}, response=cm2,
                             patch_type="application/merge-patch+json", duration_ns=6_000_000), 11)))  # 11
    out.append(rid(at(op_for("get", d3s, response=d3s, duration_ns=1_500_000_000), 12)))          # 12 slow
    out.append(end)
    out.append(at(op_for("added", cm1, response=cm1), 13))                                         # 13
    out.append(at(op_for("modified", cm2, response=cm2), 14))                                      # 14
    out.append(at(op_for("get", cm2, status=500, reason="InternalError", message="etcdserver: request timed out",
                         response=status_body(500, "InternalError"), duration_ns=40_000_000), 15))  # 15
    out.append(at(op_for("get", cm2, response=cm2, duration_ns=300_000_000), 16))                  # 16 slowish
    out.append(at(op_for("delete", cm2, response=status_body(200, "Success"), duration_ns=4_000_000), 17))  # 17
    out.append(at(op_for("deleted", cm2, response=cm2), 18))                                       # 18
    for seq in range(19, OPS + 1):
        p = pod(seq % 7)
        out.append(at(op_for("get", p, response=p, duration_ns=1_000_000 + seq * 1000), seq))
    out.append(lambda sw: sw.mark("start", 1, note="the beginning"))
    out.append(lambda sw: sw.mark("conflict", CONFLICT_SEQ))
    return out


def make_fixture(path: Path, *, second: bool = False) -> Path:
    write_session(path, steps(), name="operator")
    if second:
        cm = configmap(1, only="one")
        write_session(path, [op_for("create", cm, status=201, request=cm, response=cm),
                             op_for("get", cm, response=cm)], name="second")
    return path


async def test_fixture_has_what_the_tui_tests_rely_on(tmp_path: Path) -> None:
    from replay_tui.engine.store import Recording

    db = make_fixture(tmp_path / "fx.db", second=True)
    rec = await Recording.open(db)
    try:
        ses = await rec.session("operator")
        assert ses.last == OPS
        assert (await ses.op(CONFLICT_SEQ)).status == 409
        assert await ses.next_error(0) == CONFLICT_SEQ
        assert await ses.next_error(CONFLICT_SEQ) == SERVER_ERROR_SEQ
        assert (await ses.op(SLOW_SEQ)).duration_ns == 1_500_000_000
        spans = [await ses.reconcile(i) for i in (1, 2, 3)]
        assert [(s.start_seq, s.end_seq) for s in spans if s] == [(3, 4), (6, 8), (10, 12)]
        assert {m.name: m.seq for m in await ses.marks()} == {"start": 1, "conflict": CONFLICT_SEQ}
        assert len(await rec.sessions()) == 2
    finally:
        await rec.close()
