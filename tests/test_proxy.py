"""The recording proxy, run as ``replay-tui record`` against the emulator, used by the official client.

One emulator and one recorder serve the whole module (starting them costs a
second); each test works in its own namespace and reads the recording while
it is being written, as ``replay-tui --follow`` would.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

kubernetes = pytest.importorskip("kubernetes")

from kubernetes import client, config, watch  # noqa: E402

from replay_tui.engine import codec  # noqa: E402
from replay_tui.engine.writer import RecordingWriter  # noqa: E402
from replay_tui.recorder.capture import Converter  # noqa: E402
from replay_tui.recorder.cli import bind  # noqa: E402
from replay_tui.recorder.kubeconfig import load_upstream  # noqa: E402
from replay_tui.recorder.proxy import RecordingProxy  # noqa: E402
from replay_tui.recorder.queue import CaptureQueue  # noqa: E402
from tests.support.emulator import EmulatorThread, KubernetesAPIEmulator  # noqa: E402
from tests.support.harness import RecorderProcess  # noqa: E402
from tests.test_recorder_queue import SlowWriter  # noqa: E402

UPSTREAM_TOKEN = "upstream-" + secrets.token_hex(8)


class Env:
    def __init__(self, emu: EmulatorThread, rec: RecorderProcess, db: Path, kubeconfig: Path):
        self.emu, self.rec, self.db, self.kubeconfig = emu, rec, db, kubeconfig
        self.api = config.new_client_from_config(str(rec.proxy_kubeconfig))
        self.core = client.CoreV1Api(self.api)

    def raw_get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = self.rec.connection()
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.rec.token}", **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body

    def ops(self, where: str = "1", params: tuple[Any, ...] = (), settle: int = 0) -> list[sqlite3.Row]:
        """Operations recorded so far; waits until at least ``settle`` match (commits are periodic)."""
        deadline = time.monotonic() + 10
        while True:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(f"SELECT * FROM operations WHERE {where} ORDER BY seq", params).fetchall()
            finally:
                conn.close()
            if len(rows) >= settle or time.monotonic() > deadline:
                return rows

    def body(self, blob_id: int | None) -> Any:
        if blob_id is None:
            return None
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            codec_id, data = conn.execute("SELECT codec, data FROM blobs WHERE id = ?", (blob_id,)).fetchone()
            dicts = codec.Dictionaries.of(conn)
        finally:
            conn.close()
        return codec.decode(codec_id, data, dicts)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("proxy")
    emulator = KubernetesAPIEmulator()
    with EmulatorThread(emulator) as emu:
        kubeconfig = emu.write_kubeconfig(tmp / "emulator.kubeconfig", token=UPSTREAM_TOKEN)
        db = tmp / "rec.db"
        with RecorderProcess(db, kubeconfig, session="proxy-tests",
                             extra=["--metrics", "127.0.0.1:0"]) as rec:
            yield Env(emu, rec, db, kubeconfig)


def _namespace(env: Env, name: str) -> str:
    env.core.create_namespace({"metadata": {"name": name}})
    return name


def test_official_client_calls_are_recorded_as_sent_and_answered(env: Env) -> None:
    ns = _namespace(env, "crud")
    cm = env.core.create_namespaced_config_map(ns, {"metadata": {"name": "web", "labels": {"app": "web"}},
                                                    "data": {"greeting": "hello"}})
    listed = env.core.list_namespaced_config_map(ns, label_selector="app=web")
    stale = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="web", resource_version="1"), data={"x": "y"})
    with pytest.raises(client.ApiException) as conflict:
        env.core.replace_namespaced_config_map("web", ns, stale)
    patched = env.core.patch_namespaced_config_map("web", ns, {"data": {"greeting": "bye"}})
    env.core.delete_namespaced_config_map("web", ns)
    with pytest.raises(client.ApiException) as missing:
        env.core.read_namespaced_config_map("web", ns)
    assert (conflict.value.status, missing.value.status) == (409, 404)

    rows = env.ops("namespace = ? AND resource = 'configmaps'", (ns,), settle=6)
    got = [(r["verb"], r["kind"], r["name"], r["status"], r["reason"]) for r in rows]
    assert got == [("create", "ConfigMap", "web", 201, ""), ("list", "ConfigMap", "", 200, ""),
                   ("update", "ConfigMap", "web", 409, "Conflict"), ("patch", "ConfigMap", "web", 200, ""),
                   ("delete", "ConfigMap", "web", 200, ""), ("get", "ConfigMap", "web", 404, "NotFound")]
    create, lst, update, patch = rows[:4]
    assert env.body(create["request_blob"])["data"] == {"greeting": "hello"}
    assert env.body(create["response_blob"])["metadata"]["uid"] == cm.metadata.uid
    assert json.loads(lst["query"]) == {"labelSelector": "app=web"}
    assert len(env.body(lst["response_blob"])["items"]) == len(listed.items) == 1
    assert env.body(update["request_blob"])["metadata"]["resourceVersion"] == "1"
    assert patch["patch_type"] == "application/strategic-merge-patch+json"
    assert env.body(patch["response_blob"])["metadata"]["resourceVersion"] == patched.metadata.resource_version
    assert all(r["duration_ns"] > 0 and r["ts_ns"] > 0 for r in rows)


def test_watch_streams_arrive_unchanged_and_every_event_is_recorded_once_in_order(env: Env) -> None:
    ns = _namespace(env, "watched")
    start_rv = env.core.list_namespaced_config_map(ns).metadata.resource_version
    for i in range(30):  # history the watch replays ...
        env.emu.call(env.emu.emulator.put, "", "configmaps",
                     {"metadata": {"name": f"cm-{i}", "namespace": ns}, "data": {"i": str(i)}})

    def more_events() -> None:  # ... and events that happen while it is open
        time.sleep(0.3)
        for i in range(30):
            env.emu.call(env.emu.emulator.put, "", "configmaps",
                         {"metadata": {"name": f"cm-{i}", "namespace": ns}, "data": {"i": f"again {i}"}})

    path = f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={start_rv}&timeoutSeconds=2"
    writer = threading.Thread(target=more_events)
    writer.start()
    status, via_proxy = env.raw_get(path)
    writer.join()
    assert status == 200
    sent = b"".join(line for rv, (_, obj, line) in env.emu.call(
                        lambda: list(env.emu.emulator.history[("", "configmaps")]))
                    if obj["metadata"]["namespace"] == ns)
    assert via_proxy == sent  # the same bytes the emulator wrote, in the same order
    sent_rvs = [json.loads(line)["object"]["metadata"]["resourceVersion"] for line in sent.splitlines()]
    assert len(sent_rvs) == 60
    rows = env.ops("namespace = ? AND verb IN ('added', 'modified')", (ns,), settle=60)
    assert [r["resource_version"] for r in rows] == sent_rvs  # each once, in order
    assert [r["verb"] for r in rows] == ["added"] * 30 + ["modified"] * 30


def test_the_official_watch_helper_works_through_the_proxy(env: Env) -> None:
    ns = _namespace(env, "helper")
    env.core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}})
    seen = [(e["type"], e["object"].metadata.name)
            for e in watch.Watch().stream(env.core.list_namespaced_config_map, ns, timeout_seconds=1)]
    assert seen == [("ADDED", "a")]
    rows = env.ops("namespace = ? AND verb = 'added'", (ns,), settle=1)
    assert [r["name"] for r in rows] == ["a"]


def test_a_client_hanging_up_a_quiet_watch_ends_the_clusters_stream(env: Env) -> None:
    ns = _namespace(env, "hangup")
    conn = env.rec.connection(timeout=10)
    conn.request("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true",
                 headers={"Authorization": f"Bearer {env.rec.token}"})
    assert conn.getresponse().status == 200

    def watching() -> int:
        return env.emu.call(lambda: sum(w.namespace == ns for w in env.emu.emulator.watchers[("", "configmaps")]))

    assert watching() == 1
    conn.close()  # the operator goes away while nothing happens on the stream
    deadline = time.monotonic() + 5
    while watching() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watching() == 0


def _all_bodies(db: Path) -> bytes:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        dicts = codec.Dictionaries.of(conn)
        return b"\n".join(codec.unpack(c, d, dicts) for c, d in conn.execute("SELECT codec, data FROM blobs"))
    finally:
        conn.close()


def test_secret_values_and_credentials_never_reach_the_recording(env: Env) -> None:
    ns = _namespace(env, "secrets")
    env.core.create_namespaced_secret(ns, {"metadata": {"name": "db"}, "stringData": {"password": "hunter2"}})
    env.core.read_namespaced_secret("db", ns)
    env.core.patch_namespaced_secret("db", ns, {"data": {"token": base64.b64encode(b"t0ps3cret").decode()}})
    env.core.list_namespaced_secret(ns)
    list(watch.Watch().stream(env.core.list_namespaced_secret, ns, timeout_seconds=1))
    rows = env.ops("namespace = ? AND resource = 'secrets'", (ns,), settle=6)
    assert [r["verb"] for r in rows] == ["create", "get", "patch", "list", "watch", "added"]
    stored = env.body(rows[1]["response_blob"])
    assert stored["data"]["password"].startswith("redacted:hmac-sha256:")
    everything = _all_bodies(env.db) + b"".join(
        p.read_bytes() for p in env.db.parent.iterdir() if p.name.startswith(env.db.name))
    for plaintext in (b"hunter2", base64.b64encode(b"hunter2"), b"t0ps3cret", base64.b64encode(b"t0ps3cret"),
                      UPSTREAM_TOKEN.encode(), env.rec.token.encode(), b"Bearer"):
        assert plaintext not in everything


def test_the_recording_files_are_private(env: Env) -> None:
    env.ops(settle=1)
    for path in env.db.parent.iterdir():
        if path.name.startswith(env.db.name):
            assert path.stat().st_mode & 0o777 == 0o600, path.name


def test_clients_without_the_recorders_token_are_refused_and_not_recorded(env: Env) -> None:
    before = len(env.ops())
    conn = env.rec.connection(timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/configmaps?marker=unauthorized")
    resp = conn.getresponse()
    assert resp.status == 401 and json.loads(resp.read())["reason"] == "Unauthorized"
    time.sleep(0.3)
    assert len(env.ops()) == before


def test_metadata_only_clients_record_named_objects(env: Env) -> None:
    """controller-runtime's metadata-only watches ask for PartialObjectMetadata(List)."""
    ns = _namespace(env, "metaonly")
    env.core.create_namespaced_config_map(ns, {"metadata": {"name": "m", "labels": {"a": "1"}}, "data": {"k": "v"}})
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    status, body = env.raw_get(f"/api/v1/namespaces/{ns}/configmaps", {"Accept": accept})
    assert status == 200 and json.loads(body)["kind"] == "PartialObjectMetadataList"
    rv = json.loads(body)["metadata"]["resourceVersion"]
    env.core.patch_namespaced_config_map("m", ns, {"metadata": {"labels": {"a": "2"}}})
    status, body = env.raw_get(f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}"
                               "&timeoutSeconds=1", {"Accept": "application/json;as=PartialObjectMetadata;"
                                                               "g=meta.k8s.io;v=v1"})
    assert json.loads(body.splitlines()[0])["object"]["kind"] == "PartialObjectMetadata"
    rows = env.ops("namespace = ? AND verb IN ('list', 'modified')", (ns,), settle=2)
    assert [(r["verb"], r["kind"], r["name"]) for r in rows] == [("list", "ConfigMap", ""),
                                                                 ("modified", "ConfigMap", "m")]
    conn = sqlite3.connect(f"file:{env.db}?mode=ro", uri=True)
    try:
        (blob,) = conn.execute("SELECT s.blob_id FROM states s JOIN objects o ON o.id = s.obj_id WHERE o.name = 'm'"
                               " AND o.namespace = ? ORDER BY s.seq DESC LIMIT 1", (ns,)).fetchone()
    finally:
        conn.close()
    latest = env.body(blob)
    assert latest["metadata"]["labels"] == {"a": "2"} and latest["data"] == {"k": "v"}  # data from the patch


def test_a_gzipped_answer_is_recorded_as_json_and_relayed_whole(env: Env) -> None:
    """kube-apiserver (and the emulator) gzip answers over 128 KiB for clients that accept it."""
    ns = _namespace(env, "big")
    for i in range(40):
        env.emu.call(env.emu.emulator.put, "", "configmaps",
                     {"metadata": {"name": f"big-{i}", "namespace": ns}, "data": {"blob": "x" * 4096}})
    path = f"/api/v1/namespaces/{ns}/configmaps"
    direct = http.client.HTTPConnection(env.emu.host, env.emu.port, timeout=30)
    direct.request("GET", path, headers={"Accept-Encoding": "gzip"})
    answer = direct.getresponse()
    assert answer.getheader("Content-Encoding") == "gzip" and len(answer.read()) < 128 * 1024
    status, body = env.raw_get(path, {"Accept-Encoding": "gzip"})
    assert status == 200 and len(json.loads(body)["items"]) == 40
    (row,) = env.ops("namespace = ? AND verb = 'list'", (ns,), settle=1)
    assert len(env.body(row["response_blob"])["items"]) == 40


def test_protobuf_is_negotiated_away_so_every_answer_is_json(env: Env) -> None:
    status, body = env.raw_get("/api/v1/namespaces/default", {
        "Accept": "application/vnd.kubernetes.protobuf, application/json"})
    assert status == 200 and json.loads(body)["kind"] == "Namespace"
    seen = env.emu.call(lambda: [headers.get("Accept") for _, path, headers in env.emu.emulator.requests
                                 if path == "/api/v1/namespaces/default"])
    assert seen[-1] == "application/json"


def test_kubectls_openapi_protobuf_is_asked_for_as_kubectl_asks(env: Env) -> None:
    """The OpenAPI document is no Kubernetes object: kubectl reads it only as protobuf."""
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    status, body = env.raw_get("/openapi/v2", {"Accept": accept})
    assert status == 200 and body.startswith(b"\n\x032.0")  # swagger = "2.0", protobuf field 1
    (row,) = env.ops("resource = '/openapi/v2'", settle=1)
    assert env.body(row["response_blob"]) == {
        "$opaque": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", "bytes": len(body)}


def test_metrics_are_served_on_their_own_address(env: Env) -> None:
    assert env.rec.proc is not None
    log = env.rec._output()
    match = re.search(r"metrics on (http://[0-9.]+:[0-9]+)/metrics", log)
    assert match, log
    host, port = match.group(1).removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    assert re.search(r"^replay_recorded_total [1-9]", text, re.M), text
    assert 'replay_errors_total{category="locked"} 0' in text


# --- in process: a slow disk must not slow the operator --------------------------------------

def test_a_slow_writer_drops_and_counts_instead_of_slowing_requests(env: Env, tmp_path: Path) -> None:
    db = tmp_path / "slow.db"
    writer = RecordingWriter(db)
    session = writer.session("slow", "proxy")
    queue = CaptureQueue(SlowWriter(session, 0.05), Converter(None), maxsize=4).start()  # type: ignore[arg-type]
    upstream = load_upstream(str(env.kubeconfig))
    loop = asyncio.new_event_loop()
    proxy = RecordingProxy(upstream, queue, token=None)
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        host, port = asyncio.run_coroutine_threadsafe(proxy.start(sock), loop).result(10)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        times = []
        for _ in range(60):
            start = time.perf_counter()
            conn.request("GET", "/api/v1/namespaces/default")
            assert conn.getresponse().read()
            times.append(time.perf_counter() - start)
        conn.close()
        asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        sock.close()
    counters = queue.close()
    writer.close()
    times.sort()
    assert times[len(times) // 2] < 0.05, "requests must not wait for the 50 ms writer"
    assert counters.dropped > 0
    assert counters.recorded + counters.dropped == 60
    conn2 = sqlite3.connect(db)
    attrs = json.loads(conn2.execute("SELECT attributes FROM sessions").fetchone()[0])
    assert conn2.execute("SELECT COUNT(*) FROM operations").fetchone()[0] == counters.recorded
    assert attrs["dropped"] == counters.dropped
