"""The recorder's pure parts: API paths, redaction, capture conversion, inferred spans."""

from __future__ import annotations

import base64
import json
import sqlite3

import msgspec
import pytest

from replay_tui.engine.format import (
    ADDED,
    CREATE,
    DELETE,
    DELETECOLLECTION,
    EVENT_ERROR,
    GET,
    LIST,
    MODIFIED,
    PATCH,
    UPDATE,
    WATCH,
    Operation,
)
from replay_tui.engine.writer import RecordingWriter
from replay_tui.recorder.capture import Capture, Converter, split_lines
from replay_tui.recorder.paths import parse_path, verb_for
from replay_tui.recorder.redact import MARKER_PREFIX, Redactor
from replay_tui.recorder.spans import SpanInferrer

# --- paths -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("/api/v1/namespaces/ns1/pods/p1", ("", "v1", "pods", "ns1", "p1", "")),
    ("/api/v1/namespaces/ns1/pods/p1/status", ("", "v1", "pods", "ns1", "p1", "status")),
    ("/api/v1/namespaces", ("", "v1", "namespaces", "", "", "")),
    ("/api/v1/namespaces/ns1", ("", "v1", "namespaces", "", "ns1", "")),
    ("/api/v1/namespaces/ns1/status", ("", "v1", "namespaces", "", "ns1", "status")),
    ("/api/v1/namespaces/ns1/configmaps", ("", "v1", "configmaps", "ns1", "", "")),
    ("/apis/apps/v1/deployments", ("apps", "v1", "deployments", "", "", "")),
    ("/apis/apps/v1/namespaces/x/deployments/d/scale", ("apps", "v1", "deployments", "x", "d", "scale")),
    ("/api/v1/nodes/n1", ("", "v1", "nodes", "", "n1", "")),
    ("/apis/example.com/v1/watch/namespaces/x/widgets", ("example.com", "v1", "widgets", "x", "", "")),
])
def test_parse_path(path: str, expected: tuple[str, ...]) -> None:
    api = parse_path(path)
    assert (api.group, api.version, api.resource, api.namespace, api.name, api.subresource) == expected
    assert api.is_resource


@pytest.mark.parametrize("path", ["/api", "/apis", "/apis/apps/v1", "/api/v1", "/version", "/openapi/v2"])
def test_non_resource_paths(path: str) -> None:
    assert not parse_path(path).is_resource


@pytest.mark.parametrize("method, path, query, verb", [
    ("GET", "/api/v1/namespaces/a/pods/p", {}, GET),
    ("GET", "/api/v1/namespaces/a/pods", {}, LIST),
    ("GET", "/api/v1/namespaces/a/pods", {"watch": "true"}, WATCH),
    ("GET", "/api/v1/namespaces/a/pods", {"watch": "1"}, WATCH),
    ("GET", "/api/v1/watch/namespaces/a/pods", {}, WATCH),
    ("POST", "/api/v1/namespaces/a/pods", {}, CREATE),
    ("PUT", "/api/v1/namespaces/a/pods/p", {}, UPDATE),
    ("PATCH", "/api/v1/namespaces/a/pods/p/status", {}, PATCH),
    ("DELETE", "/api/v1/namespaces/a/pods/p", {}, DELETE),
    ("DELETE", "/api/v1/namespaces/a/pods", {}, DELETECOLLECTION),
])
def test_verbs(method: str, path: str, query: dict[str, str], verb: str) -> None:
    assert verb_for(method, parse_path(path), query) == verb


# --- redaction --------------------------------------------------------------------------

SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {
    "name": "db", "namespace": "default", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"password":"hunter2"}}'}},
    "data": {"password": base64.b64encode(b"hunter2").decode(), "user": "YWRtaW4="},
    "stringData": {"token": "s3cr3t-token"}, "type": "Opaque"}
PLAINTEXTS = ("hunter2", base64.b64encode(b"hunter2").decode(), "YWRtaW4=", "s3cr3t-token")


def _leaks(value: object) -> list[str]:
    text = json.dumps(value)
    return [p for p in PLAINTEXTS if p in text]


def test_secret_values_become_markers_and_the_rest_stays() -> None:
    out = Redactor().secret_body(SECRET)
    assert _leaks(out) == []
    assert all(v.startswith(MARKER_PREFIX) for v in out["data"].values())
    assert out["stringData"]["token"].startswith(MARKER_PREFIX)
    assert out["metadata"]["name"] == "db" and out["type"] == "Opaque"
    assert SECRET["data"]["user"] == "YWRtaW4="  # the input is not modified


def test_markers_are_stable_within_a_recording_and_differ_across_recordings() -> None:
    a, b = Redactor(), Redactor()
    assert a.marker("hunter2") == a.marker("hunter2")  # a diff shows "unchanged"
    assert a.marker("hunter2") != a.marker("hunter3")  # ... or "changed"
    assert a.marker("hunter2") != b.marker("hunter2")  # keyed: not a plain hash, not linkable
    import hashlib
    assert hashlib.sha256(b"hunter2").hexdigest()[:16] not in a.marker("hunter2")


@pytest.mark.parametrize("body", [
    {"kind": "SecretList", "apiVersion": "v1", "items": [SECRET, SECRET]},
    # list items of built-in kinds come without kind/apiVersion
    {"kind": "SecretList", "apiVersion": "v1", "items": [
        {k: v for k, v in SECRET.items() if k not in ("kind", "apiVersion")}]},
    {"type": "MODIFIED", "object": SECRET},
    {"data": {"password": base64.b64encode(b"hunter2").decode()}, "stringData": {"token": "s3cr3t-token"}},
    [{"op": "replace", "path": "/data/password", "value": base64.b64encode(b"hunter2").decode()},
     {"op": "add", "path": "/stringData", "value": {"token": "s3cr3t-token"}}],
    {"kind": "Table", "rows": [{"cells": ["db"], "object": SECRET}]},
])
def test_every_shape_of_secret_body_is_redacted(body: object) -> None:
    assert _leaks(body)
    assert _leaks(Redactor().secret_body(body)) == []


# --- conversion ------------------------------------------------------------------------------

def test_capture_becomes_an_operation_with_query_and_status_reason() -> None:
    conv = Converter(Redactor())
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
              "message": "the object has been modified", "code": 409}
    op = conv.operation(Capture("PUT", "/api/v1/namespaces/a/configmaps/c",
                                "fieldManager=x&labelSelector=app%3Dweb", 409, 1, 2,
                                b'{"kind":"ConfigMap"}', "", json.dumps(status).encode(), "application/json"))
    assert (op.verb, op.kind, op.namespace, op.name, op.status) == (UPDATE, "ConfigMap", "a", "c", 409)
    assert (op.reason, op.message) == ("Conflict", "the object has been modified")
    assert op.query == {"labelSelector": "app=web"}


def test_raw_json_is_kept_byte_for_byte_and_garbage_becomes_a_marker() -> None:
    conv = Converter(Redactor())
    raw = b'{"kind": "ConfigMap",  "metadata": {"name": "c"}}'
    op = conv.operation(Capture("GET", "/api/v1/namespaces/a/configmaps/c", status=200, response=raw))
    assert op.response == raw
    bad = conv.operation(Capture("GET", "/api/v1/namespaces/a/configmaps/c", status=502,
                                 response=b"<html>Bad Gateway</html>", response_type="text/html"))
    assert msgspec.json.decode(bad.response) == {"$opaque": "text/html", "bytes": 24,
                                                 "text": "<html>Bad Gateway</html>"}
    proto = conv.operation(Capture("POST", "/api/v1/namespaces/a/pods", request=b"k8s\x00\x01",
                                   request_type="application/vnd.kubernetes.protobuf", status=201))
    assert msgspec.json.decode(proto.request)["$opaque"] == "application/vnd.kubernetes.protobuf"


def test_watch_lines_become_events_and_malformed_lines_error_events() -> None:
    conv = Converter(None)
    ctx = conv.watch_context(Capture("GET", "/api/v1/namespaces/a/configmaps", "watch=true"))
    ok = conv.event(ctx, b'{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"c"}}}', 5)
    assert (ok.verb, ok.ts_ns, ok.resource) == (ADDED, 5, "configmaps")
    gone = conv.event(ctx, b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired",'
                           b'"message":"too old"}}', 6)
    assert (gone.verb, gone.status, gone.reason) == (EVENT_ERROR, 410, "Expired")
    junk = conv.event(ctx, b'{"type": "MODIFIED", "object": {"kind"', 7)
    assert junk.verb == EVENT_ERROR and junk.reason == "MalformedEvent"


def test_split_lines_keeps_partial_lines_for_the_next_chunk() -> None:
    buf = bytearray()
    assert split_lines(buf, b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert split_lines(buf, b':2}\n\n{"c":3}\n') == [b'{"b":2}', b'{"c":3}']
    assert buf == b""


# --- inferred spans ---------------------------------------------------------------------------

def _span_session(tmp_path, script) -> tuple[list[tuple], dict[int, int | None]]:
    """Run a script of events and calls through a SpanInferrer; return (spans, op -> span)."""
    with RecordingWriter(tmp_path / "r.db") as w:
        sw = w.session("spans", "proxy")
        inf = SpanInferrer(sw, quiet_s=2)
        for item in script:
            kind, verb, name, ts = item[:4]
            owner = item[4] if len(item) > 4 else None  # a child created with ownerReferences to it
            if kind == "event":
                op = Operation(verb=verb, ts_ns=ts, api_version="example.com/v1", resource="widgets",
                               response=json.dumps({"kind": "Widget", "metadata": {
                                   "name": name, "namespace": "a"}}).encode())
                inf.before_event(op)
                inf.after_event(op, sw.append(op))
            else:
                resource, kind_ = ("widgets", "Widget") if kind == "own" else ("configmaps", "ConfigMap")
                body = json.dumps({"kind": kind_, "metadata": {"name": name, "ownerReferences": [
                    {"apiVersion": "example.com/v1", "kind": "Widget", "name": owner, "uid": "u"}]}}).encode() \
                    if owner else None
                op = Operation(verb=verb, ts_ns=ts, duration_ns=1000, api_version="v1", resource=resource,
                               kind=kind_, namespace="a", name=name, request=body)
                inf.before_call(op)
                sw.append(op)
        inf.finish()
        sw.close()
    conn = sqlite3.connect(tmp_path / "r.db")
    spans = conn.execute("SELECT id, name, start_seq, trigger_seq, inferred FROM reconciles ORDER BY id").fetchall()
    return spans, dict(conn.execute("SELECT seq, reconcile FROM operations").fetchall())


S = 1_000_000_000


def test_spans_are_inferred_from_events_and_the_calls_after_them(tmp_path) -> None:
    spans, tagged = _span_session(tmp_path, [
        ("event", ADDED, "one", 1 * S),            # 1
        ("child", CREATE, "one-cm", 1 * S + 10),   # 2  span 1 (for "one")
        ("own", PATCH, "one", 1 * S + 20),         # 3  span 1
        ("event", MODIFIED, "one", 1 * S + 30),    # 4  (no call follows it: no span)
        ("event", MODIFIED, "two", 1 * S + 40),    # 5
        ("child", WATCH, "", 1 * S + 50),          # 6  plumbing: never in a span
        ("child", GET, "two-cm", 1 * S + 60),      # 7  span 2 (for "two")
        ("child", GET, "x", 9 * S),                # 8  long after: not caused by the event
    ])
    assert spans == [(1, "one", 2, 1, 1), (2, "two", 7, 5, 1)]
    assert tagged == {1: None, 2: 1, 3: 1, 4: None, 5: None, 6: None, 7: 2, 8: None}


def test_concurrent_reconciles_keep_requests_on_their_own_objects(tmp_path) -> None:
    spans, tagged = _span_session(tmp_path, [
        ("event", MODIFIED, "daily", 1 * S),       # 1
        ("event", MODIFIED, "weekly", 1 * S + 5),  # 2
        ("own", PATCH, "daily", 1 * S + 10),       # 3  daily's span, though weekly's event came last
        ("own", PATCH, "weekly", 1 * S + 20),      # 4  weekly's span
        ("event", MODIFIED, "daily", 1 * S + 30),  # 5
        ("own", PATCH, "daily", 1 * S + 40),       # 6  a new span for daily's new event
    ])
    assert [(name, trigger) for _, name, _, trigger, _ in spans] == [("daily", 1), ("weekly", 2), ("daily", 5)]
    assert tagged == {1: None, 2: None, 3: 1, 4: 2, 5: None, 6: 3}


def test_a_child_goes_to_the_span_of_the_owner_its_owner_references_name(tmp_path) -> None:
    # kopf's own patch of "hello" echoes back (event 3) after "world" was added (event 2):
    # "world"'s child must still go to "world", not to the latest event.
    spans, tagged = _span_session(tmp_path, [
        ("event", ADDED, "hello", 1 * S),                       # 1
        ("event", ADDED, "world", 1 * S + 10),                  # 2
        ("event", MODIFIED, "hello", 1 * S + 20),               # 3
        ("child", CREATE, "world-cm", 1 * S + 30, "world"),     # 4  world's span (by its owner)
        ("child", CREATE, "hello-cm", 1 * S + 40, "hello"),     # 5  hello's span
        ("child", GET, "some-secret", 1 * S + 50),              # 6  no owner: the running span
    ])
    assert [(name, trigger) for _, name, _, trigger, _ in spans] == [("world", 2), ("hello", 3)]
    assert tagged == {1: None, 2: None, 3: None, 4: 1, 5: 2, 6: 2}


def test_a_span_ends_at_its_own_last_request_not_at_the_events_after_it(tmp_path) -> None:
    _span_session(tmp_path, [
        ("event", ADDED, "one", 1 * S),            # 1
        ("own", PATCH, "one", 1 * S + 10),         # 2  span 1
        ("event", MODIFIED, "one", 1 * S + 20),    # 3  the echo of its own patch closes span 1
        ("event", MODIFIED, "two", 1 * S + 30),    # 4
        ("child", GET, "two-cm", 1 * S + 40),      # 5  span 2
        ("event", MODIFIED, "x", 1 * S + 50),      # 6
    ])
    conn = sqlite3.connect(tmp_path / "r.db")
    ends = conn.execute("SELECT name, start_seq, end_seq FROM reconciles ORDER BY id").fetchall()
    assert ends == [("one", 2, 2), ("two", 5, 5)]
