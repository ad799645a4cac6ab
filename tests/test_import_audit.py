"""The audit-log importer against a real log (tests/data) and a constructed one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import state
from replay_tui.engine.schema import RecordingError
from replay_tui.recorder.importers import cli
from replay_tui.recorder.importers.audit import import_audit
from replay_tui.recorder.importers.common import ImportFormatError
from tests.conftest import file_digest, simple_ops, write_session

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "audit2rbac-demo.log"
SIEVE = DATA / "cassandra-operator-recreate.sieve-server.log"

CM = {"kind": "ConfigMap", "apiVersion": "v1",
      "metadata": {"name": "cm1", "namespace": "default", "uid": "u-cm1", "resourceVersion": "10"},
      "data": {"a": "1"}}
CM2 = {**CM, "metadata": {**CM["metadata"], "resourceVersion": "11"}, "data": {"a": "2"}}
CDC = {"kind": "CassandraDataCenter", "apiVersion": "db.example.com/v1",
       "metadata": {"name": "dc1", "namespace": "default", "uid": "u-dc1", "resourceVersion": "20"},
       "status": {"phase": "Running"}}


def event(audit_id: str, stage: str, verb: str, *, uri: str, ref: dict[str, str] | None,
          level: str = "Metadata", code: int | None = 200, reason: str = "", user: str = "operator",
          impersonated: str | None = None, agent: str = "my-operator/v1.0", received: str = "",
          at: str = "", version: str = "v1", **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"kind": "Event", "apiVersion": f"audit.k8s.io/{version}", "level": level,
                          "auditID": audit_id, "stage": stage, "requestURI": uri, "verb": verb,
                          "user": {"username": user, "groups": ["system:authenticated"]},
                          "sourceIPs": ["10.0.0.1"], "userAgent": agent}
    if impersonated:
        ev["impersonatedUser"] = {"username": impersonated}
    if ref is not None:
        ev["objectRef"] = ref
    if code is not None:
        ev["responseStatus"] = {"metadata": {}, "code": code}
        if reason:
            ev["responseStatus"].update(status="Failure", reason=reason, message=f"{reason} happened")
    if version == "v1beta1":
        ev["timestamp"] = at
        ev["metadata"] = {"creationTimestamp": at}
    else:
        ev["requestReceivedTimestamp"] = received
        ev["stageTimestamp"] = at
    ev.update(extra)
    return ev


def cm_ref(name: str = "cm1", **more: str) -> dict[str, str]:
    return {"resource": "configmaps", "namespace": "default", "name": name, "apiVersion": "v1", **more}


def cdc_ref(**more: str) -> dict[str, str]:
    return {"resource": "cassandradatacenters", "namespace": "default", "name": "dc1",
            "apiGroup": "db.example.com", "apiVersion": "v1", **more}


def constructed_log() -> list[dict[str, Any]]:
    t = "2024-05-01T10:00:0"
    return [
        # A Metadata-level get of a custom resource, before any body says its kind.
        event("a0", "ResponseComplete", "get", uri="/apis/db.example.com/v1/namespaces/default/"
              "cassandradatacenters/dc1", ref=cdc_ref(), received=f"{t}0.000000Z", at=f"{t}0.002000Z"),
        # A watch: started now, completed at the end.
        event("w1", "ResponseStarted", "watch", uri="/api/v1/namespaces/default/configmaps?watch=true"
              "&resourceVersion=5", ref={"resource": "configmaps", "namespace": "default",
                                         "apiVersion": "v1"},
              received=f"{t}0.100000Z", at=f"{t}0.100500Z"),
        # A create in two stages, with bodies (RequestResponse).
        event("c1", "RequestReceived", "create", uri="/api/v1/namespaces/default/configmaps",
              ref=cm_ref(""), level="RequestResponse", code=None, received=f"{t}1.000000Z",
              at=f"{t}1.000000Z", requestObject={k: v for k, v in CM.items() if k != "metadata"}),
        event("c1", "ResponseComplete", "create", uri="/api/v1/namespaces/default/configmaps",
              ref=cm_ref(""), level="RequestResponse", code=201, received=f"{t}1.000000Z",
              at=f"{t}1.012345Z", responseObject=CM),
        # A v1beta1 get with the object.
        event("g1", "ResponseComplete", "get", uri="/api/v1/namespaces/default/configmaps/cm1",
              ref=cm_ref(), level="RequestResponse", version="v1beta1", at=f"{t}2Z",
              responseObject=CM),
        # An update that conflicts, then one that works.
        event("u1", "ResponseComplete", "update", uri="/api/v1/namespaces/default/configmaps/cm1",
              ref=cm_ref(), level="Request", code=409, reason="Conflict", received=f"{t}3Z",
              at=f"{t}3.001Z", requestObject=CM2),
        event("u2", "ResponseComplete", "update", uri="/api/v1/namespaces/default/configmaps/cm1",
              ref=cm_ref(), level="RequestResponse", received=f"{t}3.5Z", at=f"{t}3.502Z",
              requestObject=CM2, responseObject=CM2),
        # A status patch of the custom resource: the body names its kind.
        event("p1", "ResponseComplete", "patch", uri="/apis/db.example.com/v1/namespaces/default/"
              "cassandradatacenters/dc1/status", ref=cdc_ref(subresource="status"),
              level="RequestResponse", received=f"{t}4Z", at=f"{t}4.003Z",
              requestObject={"status": {"phase": "Running"}}, responseObject=CDC),
        event("g2", "ResponseComplete", "get", uri="/apis/db.example.com/v1/namespaces/default/"
              "cassandradatacenters/dc1", ref=cdc_ref(), level="RequestResponse", received=f"{t}4.5Z",
              at=f"{t}4.501Z", responseObject=CDC),
        # Not found, by another user impersonating someone.
        event("g3", "ResponseComplete", "get", uri="/api/v1/namespaces/default/secrets/nope",
              ref={"resource": "secrets", "namespace": "default", "name": "nope", "apiVersion": "v1"},
              code=404, reason="NotFound", user="system:admin", impersonated="alice",
              agent="kubectl/v1.29", received=f"{t}5Z", at=f"{t}5.001Z"),
        # Discovery and a verb replay-tui does not model: skipped.
        event("d1", "ResponseComplete", "get", uri="/apis", ref=None, received=f"{t}5Z", at=f"{t}5Z"),
        event("i1", "ResponseComplete", "impersonate", uri="/api/v1/users/bob",
              ref={"resource": "users", "name": "bob", "apiVersion": "v1"}, received=f"{t}5Z",
              at=f"{t}5Z"),
        # A namespace (cluster-scoped, though audit repeats its name as namespace).
        event("n1", "ResponseComplete", "get", uri="/api/v1/namespaces/default",
              ref={"resource": "namespaces", "namespace": "default", "name": "default",
                   "apiVersion": "v1"}, received=f"{t}6Z", at=f"{t}6Z"),
        # The delete, Metadata level, then the watch completes.
        event("x1", "ResponseComplete", "delete", uri="/api/v1/namespaces/default/configmaps/cm1",
              ref=cm_ref(), received=f"{t}7Z", at=f"{t}7.004Z"),
        event("w1", "ResponseComplete", "watch", uri="/api/v1/namespaces/default/configmaps?watch=true"
              "&resourceVersion=5", ref={"resource": "configmaps", "namespace": "default",
                                         "apiVersion": "v1"},
              received=f"{t}0.100000Z", at=f"{t}8.000000Z"),
    ]


def write_log(path: Path, events: list[dict[str, Any]], extra_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(e) for e in events]
    for index, text in sorted((extra_lines or {}).items()):
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_real_sample_counts(tmp_path: Path, open_recording: Any) -> None:
    db = tmp_path / "rec.db"
    result = import_audit(str(SAMPLE), str(db), progress=False)
    assert (result.ops, result.reads, result.writes, result.watch_events) == (14, 14, 0, 0)
    assert result.verbs == {"list": 14} and result.errors == 11 and result.malformed == 0
    assert result.skipped == {"non-resource requests": 23}
    assert result.summary() == (f"imported 14 ops (0 watch events, 14 reads, 0 writes), 0 reconciles, "
                                f"0 malformed lines into {db} session audit2rbac-demo "
                                "(skipped: 23 non-resource requests)")
    rec = await open_recording(db)
    session = await rec.session()
    assert session.info.source == "audit"
    rows = await rec.fetchall(
        "SELECT kind, status, reason, actor, COUNT(*) FROM operations WHERE session_id = ?"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 4", (session.id,))
    assert rows == [
        ("ConfigMap", 403, "Forbidden", "alice", 1),
        ("Node", 403, "Forbidden", "bob", 1),
        ("Node", 403, "Forbidden", "system:serviceaccount:ns1:sa1", 1),
        ("Pod", 200, "", "bob", 2),
        ("Pod", 200, "", "system:serviceaccount:ns1:sa1", 1),
        ("Pod", 403, "Forbidden", "alice", 1),
        ("Pod", 403, "Forbidden", "bob", 3),
        ("Pod", 403, "Forbidden", "system:serviceaccount:ns1:sa1", 3),
        ("Secret", 403, "Forbidden", "alice", 1),
    ]
    op = await session.op(2)
    assert op.query == {"includeUninitialized": "true"}
    assert op.message == 'pods is forbidden: User "bob" cannot list pods in the namespace "default"'
    assert op.ts_ns == 1505159734 * 10**9  # v1 events of 2017 carry only 'timestamp'
    attrs = session.info.attributes
    assert attrs["audit_events"] == 37 and attrs["non_resource_requests"] == 23
    assert attrs["source_file"] == str(SAMPLE.resolve())


async def test_constructed_log(tmp_path: Path, open_recording: Any) -> None:
    log = write_log(tmp_path / "audit.log", constructed_log())
    db = tmp_path / "rec.db"
    result = import_audit(str(log), str(db), progress=False)
    assert result.verbs == {"get": 5, "watch": 1, "create": 1, "update": 2, "patch": 1, "delete": 1}
    assert result.errors == 2
    assert result.skipped == {"non-resource requests": 1, "requests with other verbs": 1}
    rec = await open_recording(db)
    session = await rec.session()
    ops = [await session.op(seq) for seq in range(1, session.last + 1)]
    verbs = [op.verb for op in ops]
    # Completion order: the watch is last though it started second.
    assert verbs == ["get", "create", "get", "update", "update", "patch", "get", "get", "get",
                     "delete", "watch"]
    first, create, watch = ops[0], ops[1], ops[-1]
    # The first op names the kind a later body says, not a guess from the plural.
    assert (first.kind, first.api_version, first.resource) == (
        "CassandraDataCenter", "db.example.com/v1", "cassandradatacenters")
    assert first.duration_ns == 2_000_000
    # Stages merged: the request from RequestReceived, the response and status from ResponseComplete.
    assert create.status == 201 and create.duration_ns == 12_345_000
    assert create.request == {"kind": "ConfigMap", "apiVersion": "v1", "data": {"a": "1"}}
    assert create.response == CM and create.name == "cm1"
    assert watch.query == {"watch": "true", "resourceVersion": "5"}
    assert watch.duration_ns == 7_900_000_000
    conflict = ops[3]
    assert (conflict.status, conflict.reason, conflict.message) == (409, "Conflict", "Conflict happened")
    assert conflict.request == CM2 and conflict.response is None  # level Request: no response body
    not_found = ops[7]
    assert (not_found.status, not_found.reason, not_found.actor) == (404, "NotFound", "alice")
    namespace = ops[8]
    assert (namespace.kind, namespace.namespace, namespace.name) == ("Namespace", "", "default")
    assert ops[5].subresource == "status" and ops[5].kind == "CassandraDataCenter"
    assert ops[2].ts_ns == 1714557602 * 10**9  # v1beta1 'timestamp'
    # State follows the bodies: created, updated, then deleted.
    cm_id, _ = await session.resolve_object("ConfigMap/default/cm1")
    assert await state.object_at(session, cm_id, 2) == CM
    assert await state.object_at(session, cm_id, 4) == CM  # the conflict changed nothing
    assert await state.object_at(session, cm_id, 5) == CM2
    assert await state.object_at(session, cm_id, 10) is None
    dc_id, key = await session.resolve_object("CassandraDataCenter/default/dc1")
    assert key.group == "db.example.com"
    assert await state.object_at(session, dc_id, 7) == CDC


async def test_filters(tmp_path: Path, open_recording: Any) -> None:
    log = write_log(tmp_path / "audit.log", constructed_log())
    by_alice = import_audit(str(log), str(tmp_path / "a.db"), user="alice", progress=False)
    assert by_alice.ops == 1 and by_alice.skipped == {"filtered out": 12}
    by_agent = import_audit(str(log), str(tmp_path / "b.db"), user_agent="MY-OPERATOR", progress=False)
    assert by_agent.ops == 10  # all but alice's kubectl get (discovery/impersonate skipped anyway)
    by_admin = import_audit(str(log), str(tmp_path / "c.db"), user="system:admin", progress=False)
    assert by_admin.ops == 1  # the authenticated user matches too
    rec = await open_recording(tmp_path / "a.db")
    session = await rec.session()
    assert session.info.attributes["filter_user"] == "alice"
    with pytest.raises(ImportFormatError, match=r"none kept \(13 filtered out\)"):
        import_audit(str(log), str(tmp_path / "d.db"), user="nobody", progress=False)
    assert not (tmp_path / "d.db").exists()


def test_malformed_lines_are_counted(tmp_path: Path) -> None:
    events = constructed_log()
    good = json.dumps(events[3])
    log = write_log(tmp_path / "audit.log", events, {
        2: good[: len(good) // 2],  # line 3: truncated
        5: "this is not json",  # line 6
        7: json.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"}}),  # line 8
        9: "",  # a blank line: ignored
        10: '{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "responseStatus": {"code": "x"}}',
    })
    result = import_audit(str(log), str(tmp_path / "rec.db"), progress=False)
    assert result.malformed == 4
    assert [m["line"] for m in result.malformed_lines] == [3, 6, 8, 11]
    reasons = [m["reason"] for m in result.malformed_lines]
    assert "truncated" in reasons[0] and "invalid JSON" in reasons[1]
    assert "not an audit.k8s.io Event (kind 'Pod'" in reasons[2]
    assert "Expected `int`, got `str`" in reasons[3]
    assert result.ops == 11


def test_empty_and_foreign_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    db = tmp_path / "rec.db"
    with pytest.raises(ImportFormatError, match="empty file, nothing to import"):
        import_audit(str(empty), str(db), progress=False)
    with pytest.raises(ImportFormatError) as info:
        import_audit(str(SIEVE), str(db), progress=False)
    assert str(info.value) == (f"{SIEVE}: not a Kubernetes audit log (expected JSON lines of "
                               "audit.k8s.io/v1 or v1beta1 Events)")
    assert not db.exists()
    write_session(db, simple_ops(4), name="before")
    digest = file_digest(db)
    kube_objects = tmp_path / "objects.jsonl"
    kube_objects.write_text(json.dumps(CM) + "\n" + json.dumps(CDC) + "\n")
    with pytest.raises(ImportFormatError, match="not a Kubernetes audit log"):
        import_audit(str(kube_objects), str(db), progress=False)
    assert file_digest(db) == digest
    with pytest.raises(ImportFormatError, match="not a Kubernetes audit log"):  # a database, binary
        import_audit(str(db), str(tmp_path / "other.db"), progress=False)
    assert not (tmp_path / "other.db").exists()


async def test_failure_mid_import_leaves_no_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    open_recording: Any) -> None:
    from replay_tui.engine.writer import SessionWriter

    db = tmp_path / "rec.db"
    write_session(db, simple_ops(2), name="before")
    original = SessionWriter.append

    def failing(self: SessionWriter, op: Any) -> int:
        if self.seq == 5:
            raise KeyboardInterrupt
        return original(self, op)

    monkeypatch.setattr(SessionWriter, "append", failing)
    log = write_log(tmp_path / "audit.log", constructed_log())
    with pytest.raises(KeyboardInterrupt):
        import_audit(str(log), str(db), progress=False)
    rec = await open_recording(db)
    assert [s.name for s in await rec.sessions()] == ["before"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="replay-tui")
    cli.register(parser.add_subparsers(dest="command"))
    db = tmp_path / "rec.db"
    args = parser.parse_args(["import", "audit", str(SAMPLE), "--db", str(db), "--session", "rbac",
                              "--user", "bob", "--user-agent", ""])
    assert args.func(args) == 0
    assert capsys.readouterr().out == (
        f"imported 6 ops (0 watch events, 6 reads, 0 writes), 0 reconciles, 0 malformed lines into "
        f"{db} session rbac (skipped: 23 non-resource requests, 8 filtered out)\n")
    args = parser.parse_args(["import", "audit", str(SIEVE), "--db", str(db)])
    with pytest.raises(RecordingError, match="not a Kubernetes audit log"):
        args.func(args)
