"""What the recording proxy costs an operator: added latency per request and per watch event.

Three processes on loopback, as in real use: a minimal upstream API server
(constant answers, so its own cost is small and steady), the recorder
(``replay-tui record`` with no command, recording into a temporary file), and
this process as the client (``http.client``, keep-alive, one request at a
time).  TLS on both sides, as in real use: the upstream serves HTTPS with a CA
of its own (given to the recorder in its kubeconfig), the proxy serves HTTPS
with its per-run CA (trusted from the kubeconfig it writes); connections are
reused on both legs, so a request pays no handshake.  The handshake itself is
measured apart: new connections, connect to first answer, direct and proxied.
Requests alternate between the upstream directly and the proxy, so drift on a
shared machine hits both alike; the added latency is the
difference of the two distributions' percentiles.  Watch events carry the
time the upstream wrote them; the client reads the same stream directly and
through the proxy, and the added latency per event is again a difference.

    python -m benchmarks.proxy --json
    python -m benchmarks.proxy --observe --json   # with --metrics and --log-format json on
    python -m benchmarks.proxy --plain --json     # plain HTTP on both sides (record --plain-http)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import percentile

OBJECT = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "bench", "namespace": "default", "uid": "0f0e5b6c-1b4a-4c1e-9d57-6a3c9d6f0a11",
                       "resourceVersion": "1001", "creationTimestamp": "2024-01-01T00:00:00Z",
                       "labels": {"app": "bench", "tier": "backend"},
                       "annotations": {"note": "x" * 200}},
          "data": {f"key{i}": "value " * 20 for i in range(8)}}



# --- the upstream ---------------------------------------------------------------------------

async def _serve_upstream(port_file: str, events: int, interval_ms: float, tls: bool) -> None:
    import aiohttp.web

    from replay_tui.recorder.tls import ProxyCertificate  # the recorder's CA maker serves here too

    body = json.dumps(OBJECT).encode()

    async def handle(request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if request.query.get("watch") == "true":
            resp = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            for i in range(events):
                obj = dict(OBJECT, metadata=dict(OBJECT["metadata"], resourceVersion=str(2000 + i),
                                                 annotations={"sent_ns": str(time.time_ns())}))
                await resp.write(json.dumps({"type": "MODIFIED", "object": obj}).encode() + b"\n")
                await asyncio.sleep(interval_ms / 1000)
            await resp.write_eof()
            return resp
        if request.path == "/version":
            return aiohttp.web.json_response({"major": "1", "minor": "30", "gitVersion": "v1.30.0-bench"})
        return aiohttp.web.Response(body=body, content_type="application/json")

    runner = aiohttp.web.ServerRunner(aiohttp.web.Server(handle, access_log=None), handle_signals=True)
    await runner.setup()
    cert = ProxyCertificate(["127.0.0.1"]) if tls else None
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=cert.server_context() if cert else None)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if cert is not None:
        Path(port_file + ".ca").write_bytes(cert.ca_pem)
    Path(port_file).write_text(str(port))
    await asyncio.Event().wait()


# --- the client -----------------------------------------------------------------------------

def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter_ns()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter_ns() - start
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status}")
    return elapsed / 1000


def _connection(host: str, port: int, ca: bytes | None) -> http.client.HTTPConnection:
    if ca is None:
        return http.client.HTTPConnection(host, port, timeout=60)
    return http.client.HTTPSConnection(host, port, timeout=60, context=ssl.create_default_context(cadata=ca.decode()))


def _handshakes(host: str, port: int, ca: bytes | None, headers: dict[str, str], n: int) -> list[float]:
    """Microseconds from connect to the first answer on a new connection (TCP + TLS handshake + one request)."""
    out = []
    for _ in range(n):
        conn = _connection(host, port, ca)
        start = time.perf_counter_ns()
        conn.request("GET", "/version", headers=headers)
        conn.getresponse().read()
        out.append((time.perf_counter_ns() - start) / 1000)
        conn.close()
    return out


def _watch(host: str, port: int, headers: dict[str, str], ca: bytes | None) -> list[float]:
    conn = _connection(host, port, ca)
    conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=true", headers=headers)
    resp = conn.getresponse()
    delays = []
    while True:
        line = resp.readline()
        if not line:
            break
        now = time.time_ns()
        sent = int(json.loads(line)["object"]["metadata"]["annotations"]["sent_ns"])
        delays.append((now - sent) / 1000)
    conn.close()
    return delays


def _wait_file(path: Path, proc: subprocess.Popen[bytes], what: str) -> str:
    for _ in range(300):
        if path.exists() and path.read_text().strip():
            return path.read_text()
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


OBSERVE_ARGS = ["--metrics", "127.0.0.1:0", "--log-format", "json"]


def run(requests: int, events: int, interval_ms: float, observe: bool = False, tls: bool = True,
        handshakes: int = 100) -> dict[str, Any]:
    import base64

    import yaml

    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    port_file = tmp / "port"
    upstream = subprocess.Popen([sys.executable, "-m", "benchmarks.proxy", "--serve-upstream", str(port_file),
                                 "--events", str(events), "--interval-ms", str(interval_ms),
                                 *([] if tls else ["--plain"])])
    recorder = None
    try:
        port = int(_wait_file(port_file, upstream, "the upstream"))
        upstream_ca = Path(str(port_file) + ".ca").read_bytes() if tls else None
        cluster: dict[str, str] = {"server": f"{'https' if tls else 'http'}://127.0.0.1:{port}"}
        if upstream_ca is not None:
            cluster["certificate-authority-data"] = base64.b64encode(upstream_ca).decode()
        kc = tmp / "upstream.kubeconfig"
        kc.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "bench",
            "clusters": [{"name": "bench", "cluster": cluster}],
            "users": [{"name": "bench", "user": {"token": "upstream-token"}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}]}))
        db = tmp / "bench.db"
        proxy_kc = tmp / "proxy.kubeconfig"
        recorder = subprocess.Popen([sys.executable, "-m", "replay_tui", "record", "--db", str(db),
                                     "--kubeconfig", str(kc),
                                           "--kubeconfig-out", str(proxy_kc), "--session", "bench",
                                     *(OBSERVE_ARGS if observe else []), *([] if tls else ["--plain-http"])],
                                    stderr=subprocess.DEVNULL)
        config = yaml.safe_load(_wait_file(proxy_kc, recorder, "the recorder"))
        proxy_cluster = config["clusters"][0]["cluster"]
        url = proxy_cluster["server"]
        proxy_ca = base64.b64decode(proxy_cluster["certificate-authority-data"]) if tls else None
        token = config["users"][0]["user"]["token"]
        phost, pport = url.split("://", 1)[1].rsplit(":", 1)
        auth = {"Authorization": f"Bearer {token}"}
        direct = _connection("127.0.0.1", port, upstream_ca)
        proxied = _connection(phost, int(pport), proxy_ca)
        path = "/api/v1/namespaces/default/configmaps/bench"
        for _ in range(200):  # warm up both paths
            _get(direct, path, {})
            _get(proxied, path, auth)
        d_times, p_times = [], []
        for _ in range(requests):
            d_times.append(_get(direct, path, {}))
            p_times.append(_get(proxied, path, auth))
        w_direct = _watch("127.0.0.1", port, {}, upstream_ca)
        w_proxy = _watch(phost, int(pport), auth, proxy_ca)
        h_direct = _handshakes("127.0.0.1", port, upstream_ca, {}, handshakes)
        h_proxy = _handshakes(phost, int(pport), proxy_ca, auth, handshakes)
        recorder.terminate()
        recorder.wait(30)
        with sqlite3.connect(db) as conn:
            attrs = json.loads(conn.execute("SELECT attributes FROM sessions").fetchone()[0])
            ops = conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0]
        result: dict[str, Any] = {
            "requests": requests, "events": events, "event_interval_ms": interval_ms,
            "recorder_args": OBSERVE_ARGS if observe else [], "tls": tls,
            "request_us": {"direct_p50": percentile(d_times, 50), "proxy_p50": percentile(p_times, 50),
                           "direct_p95": percentile(d_times, 95), "proxy_p95": percentile(p_times, 95),
                           "direct_p99": percentile(d_times, 99), "proxy_p99": percentile(p_times, 99)},
            "event_us": {"direct_p50": percentile(w_direct, 50), "proxy_p50": percentile(w_proxy, 50),
                         "direct_p95": percentile(w_direct, 95), "proxy_p95": percentile(w_proxy, 95)},
            "new_connection_us": {"direct_p50": percentile(h_direct, 50), "proxy_p50": percentile(h_proxy, 50),
                                  "direct_p95": percentile(h_direct, 95), "proxy_p95": percentile(h_proxy, 95),
                                  "connections": handshakes},
            "recorded_ops": ops, "recorded": attrs.get("recorded"), "dropped": attrs.get("dropped"),
        }
        # A new connection to the proxy: its TLS handshake plus one proxied request; less the
        # request's own keep-alive cost, what the handshake adds (paid once per connection).
        result["proxy_handshake_p50_us"] = result["new_connection_us"]["proxy_p50"] - result["request_us"]["proxy_p50"]
        result["added_request_p50_us"] = result["request_us"]["proxy_p50"] - result["request_us"]["direct_p50"]
        result["added_request_p95_us"] = result["request_us"]["proxy_p95"] - result["request_us"]["direct_p95"]
        result["added_event_p50_us"] = result["event_us"]["proxy_p50"] - result["event_us"]["direct_p50"]
        result["added_event_p95_us"] = result["event_us"]["proxy_p95"] - result["event_us"]["direct_p95"]
        result["pass"] = result["added_request_p50_us"] < 1000 and result["added_event_p50_us"] < 1000
        return result
    finally:
        for proc in (recorder, upstream):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        for f in tmp.iterdir():
            f.unlink()
        os.rmdir(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--interval-ms", type=float, default=2.0, help="pause between watch events upstream")
    parser.add_argument("--observe", action="store_true",
                        help="record with the latency histogram and a JSON log line per request")
    parser.add_argument("--plain", action="store_true", help="plain HTTP on both sides (record --plain-http)")
    parser.add_argument("--handshakes", type=int, default=100, help="new connections timed, direct and proxied")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-upstream", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        asyncio.run(_serve_upstream(args.serve_upstream, args.events, args.interval_ms, not args.plain))
        return 0
    result = run(args.requests, args.events, args.interval_ms, args.observe, tls=not args.plain,
                 handshakes=args.handshakes)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"added latency per request: p50 {result['added_request_p50_us']:.0f} us, "
              f"p95 {result['added_request_p95_us']:.0f} us ({args.requests} requests)")
        print(f"added latency per watch event: p50 {result['added_event_p50_us']:.0f} us, "
              f"p95 {result['added_event_p95_us']:.0f} us ({args.events} events)")
        fresh = result["new_connection_us"]
        print(f"a new connection (TCP + TLS handshake + one request): p50 {fresh['proxy_p50']:.0f} us through "
              f"the proxy, {fresh['direct_p50']:.0f} us direct")
        print(f"recorded {result['recorded_ops']} operations, {result['dropped']} dropped")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
