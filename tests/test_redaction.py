"""No Secret value reaches a recording, from any source, in any container shape.

Property tests generate Secret-carrying bodies (objects, lists, Tables, watch events, bodies
with extra top-level keys, merge/strategic/JSON patches, YAML) and push each through every
path that stores bodies: the proxy's conversion (``Converter`` behind the capture queue), the
client hook (the real ``RESTClientObject.request`` wrapper, its transport faked), and the
three importers.  Then the whole file is searched, raw pages and every decoded body: no value
and no base64 of one may be there.  Real-shaped tests do the same with a Sieve trace and audit
events as the tools write them, through the CLI, and ``replay-tui show`` must print no value.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.engine import codec
from replay_tui.engine.writer import RecordingWriter
from replay_tui.recorder.capture import Capture, Converter
from replay_tui.recorder.importers.audit import import_audit
from replay_tui.recorder.importers.kubestep import import_kubestep
from replay_tui.recorder.importers.sieve import import_sieve
from replay_tui.recorder.queue import CaptureQueue
from replay_tui.recorder.redact import LAST_APPLIED, MARKER_PREFIX, Redactor
from tests.conftest import run_cli

DATA = Path(__file__).parent / "data"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


# --- finding a value anywhere in a file ---------------------------------------------------

def _forms(value: str) -> list[bytes]:
    """How a value could appear: as is, JSON-escaped, base64 (data holds base64 of the value)."""
    raw = value.encode()
    return [raw, json.dumps(value)[1:-1].encode(), base64.b64encode(raw)]


def stored_ops(db: Path) -> list[tuple[str, str, bool, bool]]:
    """(verb, resource, has a request body, has a response body) of every op: what the file holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(v, r, q is not None, a is not None) for v, r, q, a in conn.execute(
            "SELECT verb, resource, request_blob, response_blob FROM operations ORDER BY session_id, seq")]
    finally:
        conn.close()


def leaks(db: Path, values: list[str]) -> list[str]:
    """The values found in the file: its raw pages (with -wal), every decoded body, every text cell."""
    found: list[bytes] = []
    for path in db.parent.iterdir():
        if path.name.startswith(db.name):
            found.append(path.read_bytes())
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.text_factory = bytes
    try:
        found += [codec.unpack(c, d) for c, d in conn.execute("SELECT codec, data FROM blobs")]
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f"SELECT * FROM {table.decode()}"):
                found += [c if isinstance(c, bytes) else str(c).encode() for c in row]
    finally:
        conn.close()
    haystack = b"\n".join(found)
    return [v for v in values if any(form in haystack for form in _forms(v))]


# --- Secret-carrying bodies ---------------------------------------------------------------

_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.:/+=@ "
values_st = st.lists(st.text(_ALPHABET, min_size=6, max_size=24).map(lambda s: "Zq" + s.strip() + "Xv"),
                     min_size=1, max_size=4, unique=True)


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret(values: list[str], *, kind: bool = True, name: str = "db") -> dict[str, Any]:
    """A Secret holding the values in data (base64), stringData and its last-applied annotation."""
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": "default", "annotations": {
        LAST_APPLIED: json.dumps({"apiVersion": "v1", "kind": "Secret", "stringData": {"v": values[0]}})}},
        "data": {f"k{i}": b64(v) for i, v in enumerate(values)},
        "stringData": {"plain": values[-1]}, "type": "Opaque"}
    return {"kind": "Secret", "apiVersion": "v1", **body} if kind else body


#: Shapes a Secret can travel in: what a client sends or a server answers on the secrets endpoint.
SHAPES: dict[str, Callable[[list[str]], Any]] = {
    "object": lambda v: secret(v),
    "object without kind": lambda v: secret(v, kind=False),
    "list": lambda v: {"kind": "SecretList", "apiVersion": "v1", "items": [secret(v, kind=False)]},
    "generic List": lambda v: {"kind": "List", "apiVersion": "v1", "items": [secret(v)]},
    "watch event": lambda v: {"type": "MODIFIED", "object": secret(v)},
    "table": lambda v: {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                        "rows": [{"cells": ["db", "Opaque", 2], "object": secret(v)}]},
    "extra items": lambda v: {**secret(v), "items": []},
    "type and extra object": lambda v: {**secret(v), "object": {}},
    "extra rows": lambda v: {**secret(v), "rows": [{"cells": []}]},
    "nested events": lambda v: {"type": "ADDED", "object": {"type": "X", "object": secret(v)}},
    "merge patch": lambda v: {"data": {"k": b64(v[0])}, "stringData": {f"s{i}": x for i, x in enumerate(v)}},
    "strategic patch": lambda v: {"$patch": "merge", "data": {"k": b64(v[0])},
                                  "metadata": {"annotations": {LAST_APPLIED: json.dumps({"data": v})}}},
    "json patch": lambda v: [
        {"op": "add", "path": "/data/k", "value": b64(v[0])},
        {"op": "replace", "path": "data/k2", "value": b64(v[-1])},  # no leading slash (a 422)
        {"op": "add", "path": "/stringData", "value": {"s": v[0]}},
        {"op": "add", "path": "", "value": secret(v)},
        {"op": "test", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
         "value": json.dumps(v)},
        {"op": "add", "path": "/metadata", "value": {"annotations": {LAST_APPLIED: v[0]}}},
        {"op": "add", "path": 42, "value": v[-1]},  # a path that cannot be read
        {"op": "add", "value": {"x": v[0]}},  # no path at all
        {"op": "add", "path": "/Data/k", "value": v[0]},  # unknown field: kept out too
    ],
}
shape_st = st.sampled_from(sorted(SHAPES))


def body_for(shape: str, values: list[str]) -> Any:
    return SHAPES[shape](values)


# --- the paths --------------------------------------------------------------------------

SECRETS_PATH = "/api/v1/namespaces/default/secrets"
PATCH_TYPES = {"json patch": "application/json-patch+json", "merge patch": "application/merge-patch+json",
               "strategic patch": "application/strategic-merge-patch+json"}


def record_captures(db: Path, captures: list[Capture], watch: tuple[Capture, list[bytes]] | None = None) -> None:
    """Through the proxy's pipeline: the capture queue, its Converter with a Redactor, the writer."""
    with RecordingWriter(db) as rec:
        queue = CaptureQueue(rec.session("proxy", "proxy"), Converter(Redactor()))
        queue.start()
        for cap in captures:
            queue.request(cap)
        if watch is not None:
            sid = queue.watch_open(watch[0])
            for line in watch[1]:
                queue.watch_chunk(sid, 1, line + b"\n")
            queue.watch_close(sid, 2)
        queue.close()


@SETTINGS
@given(values=values_st, shape=shape_st, yaml_body=st.booleans())
def test_the_proxy_conversion_keeps_no_secret_value(tmp_path_factory: pytest.TempPathFactory,
                                                   values: list[str], shape: str, yaml_body: bool) -> None:
    body = body_for(shape, values)
    data = yaml.safe_dump(body).encode() if yaml_body else json.dumps(body).encode()
    ctype = "application/yaml" if yaml_body else PATCH_TYPES.get(shape, "application/json")
    method = "PATCH" if shape in PATCH_TYPES else "PUT"
    as_json = json.dumps(body).encode()
    event = json.dumps({"type": "ADDED", "object": body}).encode()
    db = tmp_path_factory.mktemp("proxy") / "rec.db"
    record_captures(db, [
        Capture(method, f"{SECRETS_PATH}/db", status=200, request=data, request_type=ctype,
                response=as_json, response_type="application/json"),
        Capture("PUT", f"{SECRETS_PATH}/db", status=422, request=data, request_type=ctype,
                response=b"not json: " + data, response_type="text/plain"),
        Capture("GET", SECRETS_PATH, status=200, response=as_json, response_type="application/json"),
        Capture("GET", "/api/v1/namespaces/default/%73ecrets/db", status=200, response=as_json,
                response_type="application/json"),  # a percent-encoded path is the same endpoint
        # Another endpoint answering with Secrets inside (any body naming kind: Secret).
        Capture("GET", "/apis/example.com/v1/bundles/b", status=200,
                response=json.dumps({"kind": "Bundle", "spec": {"parts": [secret(values)]}}).encode(),
                response_type="application/json"),
    ], watch=(Capture("GET", SECRETS_PATH, "watch=true", 200), [event, as_json]))
    ops = stored_ops(db)
    assert [(v, r) for v, r, _, _ in ops[:7]] == [
        ("patch" if method == "PATCH" else "update", "secrets"), ("update", "secrets"), ("list", "secrets"),
        ("get", "secrets"), ("get", "bundles"), ("watch", "secrets"), ("added", "secrets")]
    assert len(ops) == 8  # the last line is an event only when the body is one (else an error event)
    assert all(has_request for _, _, has_request, _ in ops[:2]) and all(a for *_, a in ops[:5])
    assert leaks(db, values) == []


class _FakeResponse:
    """What urllib3 hands the kubernetes client for a non-streaming call."""

    def __init__(self, status: int, data: bytes):
        self.status, self.data, self.reason = status, data, "OK"

    def getheaders(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def getheader(self, name: str, default: Any = None) -> Any:
        return self.getheaders().get(name, default)


@contextlib.contextmanager
def fake_transport(answer: bytes) -> Iterator[None]:
    """The hook wraps the client's real REST layer; below it, this answers every call."""
    from replay_tui.recorder import hook

    real = hook._original
    hook._original = lambda *args, **kwargs: _FakeResponse(200, answer)
    try:
        yield
    finally:
        hook._original = real


@SETTINGS
@given(values=values_st, shape=shape_st)
def test_the_client_hook_keeps_no_secret_value(tmp_path_factory: pytest.TempPathFactory,
                                              values: list[str], shape: str) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from replay_tui import recorder

    body = body_for(shape, values)
    db = tmp_path_factory.mktemp("hook") / "rec.db"
    rest = kubernetes.client.rest.RESTClientObject(kubernetes.client.Configuration())
    with recorder.recording(str(db), session="hook"), fake_transport(json.dumps(body).encode()):
        rest.request("PATCH", f"http://127.0.0.1:1{SECRETS_PATH}/db", body=body,
                     headers={"Content-Type": PATCH_TYPES.get(shape, "application/merge-patch+json")})
        rest.request("GET", f"http://127.0.0.1:1{SECRETS_PATH}")
    assert stored_ops(db) == [("patch", "secrets", True, True), ("list", "secrets", False, True)]
    assert leaks(db, values) == []


def audit_event(body: Any, *, verb: str = "update", resource: str = "secrets", n: int = 0) -> dict[str, Any]:
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": f"id-{n}", "stage": "ResponseComplete", "verb": verb,
            "requestURI": f"/api/v1/namespaces/default/{resource}/db",
            "user": {"username": "system:serviceaccount:ops:operator"},
            "objectRef": {"resource": resource, "namespace": "default", "name": "db", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": body, "responseObject": body,
            "requestReceivedTimestamp": "2024-05-01T12:00:00.000000Z",
            "stageTimestamp": "2024-05-01T12:00:00.004000Z"}


@SETTINGS
@given(values=values_st, shape=shape_st)
def test_the_audit_importer_keeps_no_secret_value(tmp_path_factory: pytest.TempPathFactory,
                                                 values: list[str], shape: str) -> None:
    tmp = tmp_path_factory.mktemp("audit")
    body = body_for(shape, values)
    events = [audit_event(body, verb="patch" if shape in PATCH_TYPES else "update"),
              audit_event({"kind": "Bundle", "items": [secret(values)]}, resource="bundles", n=1)]
    log = tmp / "audit.log"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = import_audit(str(log), str(tmp / "rec.db"), progress=False)
    assert result.ops == 2 and result.redacted > 0
    assert leaks(tmp / "rec.db", values) == []


def sieve_line(tag: str, *fields: str) -> str:
    return "2022/03/21 01:35:29 learn_server.go:291: [" + tag + "]\t" + "\t".join(fields) + "\n"


@SETTINGS
@given(values=values_st, shape=shape_st)
def test_the_sieve_importer_keeps_no_secret_value(tmp_path_factory: pytest.TempPathFactory,
                                                 values: list[str], shape: str) -> None:
    tmp = tmp_path_factory.mktemp("sieve")
    obj = json.dumps(body_for(shape, values))
    reconciler = "github.com/rabbitmq/cluster-operator/controllers.(*RabbitmqClusterReconciler)"
    trace = tmp / "sieve-server.log"
    trace.write_text("".join([
        sieve_line("SIEVE-BEFORE-RECONCILE", reconciler, "1"),
        sieve_line("SIEVE-AFTER-READ", "Get", "false", "secret", "default", "db", reconciler, "NoError", obj),
        sieve_line("SIEVE-AFTER-READ", "List", "true", "secretlist", reconciler, "NoError", obj),
        sieve_line("SIEVE-AFTER-WRITE", "1", "Update", "secret", reconciler, "NoError", obj),
        sieve_line("SIEVE-AFTER-WRITE", "2", "Create", "secret", reconciler, "AlreadyExists", obj),
        sieve_line("SIEVE-BEFORE-HEAR", "3", "Updated", "secret", obj),
        sieve_line("SIEVE-BEFORE-HEAR", "4", "Updated", "configmap",
                   json.dumps({"kind": "List", "items": [secret(values)]})),
        sieve_line("SIEVE-AFTER-RECONCILE", reconciler, "1"),
    ]))
    result = import_sieve(str(trace), str(tmp / "rec.db"), progress=False)
    # Every shape but a JSON patch (no object: malformed) is a Sieve object.
    assert result.ops == (1 if shape == "json patch" else 6) and result.redacted > 0
    assert leaks(tmp / "rec.db", values) == []


def kubestep_db(path: Path, rows: list[tuple[str, str, Any]]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE operations (session_id TEXT, sequence_number INTEGER, timestamp INTEGER,"
                 " operation_type TEXT, resource_kind TEXT, namespace TEXT, name TEXT, resource_data TEXT,"
                 " error TEXT, duration_ms REAL, actor_id TEXT, verb TEXT)")
    conn.executemany("INSERT INTO operations VALUES ('s1', ?, ?, ?, ?, 'default', 'db', ?, ?, 1.5, 'op', '')",
                     [(i + 1, 1_700_000_000 + i, otype, kind, json.dumps(body), "conflict" if i == 2 else "")
                      for i, (otype, kind, body) in enumerate(rows)])
    conn.commit()
    conn.close()


@SETTINGS
@given(values=values_st, shape=shape_st)
def test_the_kubestep_importer_keeps_no_secret_value(tmp_path_factory: pytest.TempPathFactory,
                                                    values: list[str], shape: str) -> None:
    tmp = tmp_path_factory.mktemp("kubestep")
    body = body_for(shape, values)
    kubestep_db(tmp / "ks.db", [("GET", "Secret", body), ("LIST", "Secret", body), ("UPDATE", "Secret", body),
                                ("WATCH", "Secret", {"type": "MODIFIED", "object": body}),
                                ("GET", "ConfigMap", {"kind": "List", "items": [secret(values)]})])
    (result,) = import_kubestep(str(tmp / "ks.db"), str(tmp / "rec.db"), progress=False)
    assert result.ops == 5 and result.malformed == 0 and result.redacted > 0
    assert leaks(tmp / "rec.db", values) == []


# --- the redactor itself ----------------------------------------------------------------------

def test_markers_and_counts() -> None:
    r = Redactor()
    out = r.secret_body(secret(["Zqpassword1Xv", "Zqtoken2Xv"]))
    assert out["data"]["k0"].startswith(MARKER_PREFIX) and out["metadata"]["annotations"][LAST_APPLIED] \
        .startswith(MARKER_PREFIX)
    assert r.count == 4  # two data values, one stringData value, the annotation
    assert r.secret_body(out) == out and r.count == 4  # a marker is kept as it is, not counted again
    # A JSON patch op whose path cannot be read keeps nothing of its value, whatever it is.
    (op,) = r.secret_body([{"op": "add", "path": None, "value": {"deep": ["Zqx1Xv"]}}])
    assert op["value"].startswith(MARKER_PREFIX) and op["path"] is None
    # Safe fields of a Secret stay readable.
    (typ,) = r.secret_body([{"op": "replace", "path": "/type", "value": "kubernetes.io/tls"}])
    assert typ["value"] == "kubernetes.io/tls"


def test_a_secrets_body_that_is_no_json_becomes_an_opaque_marker() -> None:
    r = Redactor()
    out = json.loads(r.json(b'{"data": {"k": "Zqcut', secret=True))
    assert out == {"$opaque": "unreadable secret body", "bytes": 21}


# --- real-shaped: a Sieve trace and audit events, then `show` ------------------------------------

ERLANG_COOKIE = "dGhpcy1pcy10aGUtZXJsYW5nLWNvb2tpZS0xMjM0NQ=="  # base64 of the cookie, as in .data
BOOTSTRAP_SECRET = "9a0ef1c0e4b62c1d"



def test_a_sieve_trace_with_the_rabbitmq_erlang_cookie(tmp_path: Path) -> None:
    reconciler = "github.com/rabbitmq/cluster-operator/controllers.(*RabbitmqClusterReconciler)"
    cookie = {"metadata": {"name": "hello-world-erlang-cookie", "namespace": "default",
                           "selfLink": "/api/v1/namespaces/default/secrets/hello-world-erlang-cookie",
                           "uid": "6b5b0b1e-2d9e-4a41-9a57-0f3c6f1c2a11", "resourceVersion": "1021",
                           "creationTimestamp": "2022-03-21T01:35:29Z",
                           "labels": {"app.kubernetes.io/name": "hello-world"}},
              "data": {".erlang.cookie": ERLANG_COOKIE}, "type": "Opaque"}
    head = (DATA / "cassandra-operator-recreate.sieve-server.log").read_text().splitlines(keepends=True)[:40]
    trace = tmp_path / "rabbitmq.sieve-server.log"
    trace.write_text("".join([
        *head,
        sieve_line("SIEVE-BEFORE-RECONCILE", reconciler, "7"),
        sieve_line("SIEVE-AFTER-READ", "Get", "false", "secret", "default", "hello-world-erlang-cookie",
                   reconciler, "NotFound", "{}"),
        sieve_line("SIEVE-AFTER-WRITE", "9", "Create", "secret", reconciler, "NoError", json.dumps(cookie)),
        sieve_line("SIEVE-BEFORE-HEAR", "9", "Added", "secret", json.dumps(cookie)),
        sieve_line("SIEVE-AFTER-RECONCILE", reconciler, "7"),
    ]))
    db = tmp_path / "rec.db"
    code, out, err = run_cli("import", "sieve", str(trace), "--db", str(db))
    assert code == 0, err
    assert "Secret values redacted" in out
    code, shown, _ = run_cli("show", str(db), "--at", "100%", "-r", "Secret/default/hello-world-erlang-cookie")
    assert code == 0 and "hello-world-erlang-cookie" in shown and MARKER_PREFIX in shown
    assert ERLANG_COOKIE not in shown and "this-is-the-erlang-cookie" not in shown
    code, listed, _ = run_cli("sessions", str(db), "--json")
    (info,) = json.loads(listed)
    assert info["attributes"]["redacted"] is True and info["attributes"]["redacted_values"] == 2
    assert leaks(db, ["this-is-the-erlang-cookie-12345"]) == []
    # --no-redact keeps the value (a user's explicit choice), and says so in the attributes.
    plain = tmp_path / "plain.db"
    assert run_cli("import", "sieve", str(trace), "--db", str(plain), "--no-redact")[0] == 0
    assert leaks(plain, ["this-is-the-erlang-cookie-12345"]) == ["this-is-the-erlang-cookie-12345"]


def test_audit_events_at_request_response_level_with_a_bootstrap_token(tmp_path: Path) -> None:
    token = {"kind": "Secret", "apiVersion": "v1",
             "metadata": {"name": "bootstrap-token-07401b", "namespace": "kube-system",
                          "uid": "1f4c1a5e-8a0e-4e0a-bb0b-3d2b8f1f6e77", "resourceVersion": "312",
                          "creationTimestamp": "2024-05-01T12:00:00Z"},
             "type": "bootstrap.kubernetes.io/token",
             "data": {"token-id": b64("07401b"), "token-secret": b64(BOOTSTRAP_SECRET),
                      "usage-bootstrap-authentication": b64("true")}}
    base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": "c1d3d1e2-4a8b-4d59-9d36-9a8d7b8a3f10",
            "requestURI": "/api/v1/namespaces/kube-system/secrets", "verb": "create",
            "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "sourceIPs": ["172.18.0.1"], "userAgent": "kubeadm/v1.29.2 (linux/amd64) kubernetes/4b8e819",
            "objectRef": {"resource": "secrets", "namespace": "kube-system", "name": "bootstrap-token-07401b",
                          "apiVersion": "v1"},
            "requestReceivedTimestamp": "2024-05-01T12:00:00.101010Z"}
    received = {**base, "stage": "RequestReceived", "requestObject": token,
                "stageTimestamp": "2024-05-01T12:00:00.101010Z"}
    complete = {**base, "stage": "ResponseComplete", "requestObject": token, "responseObject": token,
                "responseStatus": {"metadata": {}, "code": 201}, "stageTimestamp": "2024-05-01T12:00:00.109999Z"}
    read = {**complete, "auditID": "0b8f6f0e-0f0a-4f55-8d9e-2c1b7a1b9d00", "verb": "get", "requestObject": None,
            "requestURI": "/api/v1/namespaces/kube-system/secrets/bootstrap-token-07401b",
            "responseStatus": {"metadata": {}, "code": 200}}
    log = tmp_path / "audit.log"
    log.write_text("".join(json.dumps(e) + "\n" for e in (received, complete, read)))
    db = tmp_path / "rec.db"
    code, _, err = run_cli("import", "audit", str(log), "--db", str(db))
    assert code == 0, err
    for at in ("1", "2"):
        code, shown, _ = run_cli("show", str(db), "--at", at)
        assert code == 0 and "bootstrap-token-07401b" in shown
        assert BOOTSTRAP_SECRET not in shown and b64(BOOTSTRAP_SECRET) not in shown
    assert leaks(db, [BOOTSTRAP_SECRET]) == []


# --- the real proxy: the bypasses of issue 13 ---------------------------------------------------

def test_the_recording_proxy_stores_no_value_of_the_known_bypasses(tmp_path: Path) -> None:
    from tests.support.emulator import EmulatorThread, KubernetesAPIEmulator
    from tests.support.harness import RecorderProcess

    values = ["ZqItemsBypassXv", "ZqObjectBypassXv", "ZqNoSlashPatchXv"]
    db = tmp_path / "rec.db"
    with EmulatorThread(KubernetesAPIEmulator()) as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "emulator.kubeconfig")
        with RecorderProcess(db, kubeconfig, session="bypass") as rec:
            def send(method: str, path: str, body: Any, ctype: str = "application/json") -> int:
                conn = rec.connection()  # HTTPS with the proxy's per-run CA, as the kubeconfig says
                conn.request(method, path, body=None if body is None else json.dumps(body),
                             headers={"Authorization": f"Bearer {rec.token}", "Content-Type": ctype})
                status = conn.getresponse().status
                conn.close()
                return status

            send("POST", "/api/v1/namespaces", {"metadata": {"name": "bypass"}})
            path = "/api/v1/namespaces/bypass/secrets"
            assert send("POST", path, {**secret([values[0]], name="a"), "items": []}) < 500
            assert send("POST", path, {**secret([values[1]], name="b"), "object": {}}) < 500
            send("PATCH", f"{path}/a", [{"op": "add", "path": "data/k", "value": b64(values[2])}],
                 "application/json-patch+json")
            send("GET", path, None)
            assert rec.stop() == 0
    assert [op for op in stored_ops(db) if op[1] == "secrets"] == [
        ("create", "secrets", True, True), ("create", "secrets", True, True), ("patch", "secrets", True, True),
        ("list", "secrets", False, True)]
    assert leaks(db, values) == []
