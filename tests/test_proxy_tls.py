"""The proxy reaches clusters the way kubectl does: TLS with a private CA, client certificates, exec plugins."""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.harness import RecorderProcess

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}-cn/O=system:masters", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)
    return d


class TLSServer:
    """An HTTPS 'API server' that demands a client certificate and reports what it was sent."""

    def __init__(self, pki: Path):
        self.pki = pki
        self.seen: list[dict[str, Any]] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        import aiohttp.web

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(self.pki / "server.crt", self.pki / "server.key")
        ctx.verify_mode = ssl.CERT_REQUIRED

        async def handle(request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            subject = dict(x[0] for x in peer["subject"]) if peer else {}
            self.seen.append({"path": request.path, "authorization": request.headers.get("Authorization"),
                              "client_cn": subject.get("commonName")})
            return aiohttp.web.json_response({"kind": "Namespace", "apiVersion": "v1",
                                              "metadata": {"name": "default", "resourceVersion": "7"}})

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(handle), handle_signals=False)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> TLSServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture()
def server(pki: Path) -> Iterator[TLSServer]:
    with TLSServer(pki) as srv:
        yield srv


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(path: Path, pki: Path, port: int, user: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "tls",
        "clusters": [{"name": "tls", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                 "certificate-authority-data": _b64(pki / "ca.crt")}}],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "tls", "context": {"cluster": "tls", "user": "me", "namespace": "team-a"}}]}))
    return path


def _get_through(rec: RecorderProcess, path: str) -> int:
    conn = rec.connection(timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {rec.token}"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_client_certificates_and_a_private_ca(server: TLSServer, pki: Path, tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", pki, server.port, {
        "client-certificate-data": _b64(pki / "client.crt"), "client-key-data": _b64(pki / "client.key"),
        "token": "static-token-abc"})
    db = tmp_path / "tls.db"
    with RecorderProcess(db, kc) as rec:
        assert _get_through(rec, "/api/v1/namespaces/default") == 200
        assert yaml.safe_load(rec.proxy_kubeconfig.read_text())["contexts"][0]["context"]["namespace"] == "team-a"
        assert rec.stop() == 0
    forwarded = [s for s in server.seen if s["path"] == "/api/v1/namespaces/default"]
    assert forwarded == [{"path": "/api/v1/namespaces/default", "authorization": "Bearer static-token-abc",
                          "client_cn": "client-cn"}]
    stored = db.read_bytes()
    assert b"static-token-abc" not in stored and rec.token.encode() not in stored
    assert (pki / "client.key").read_bytes()[40:80] not in stored


def test_exec_credential_plugins_supply_the_token(server: TLSServer, pki: Path, tmp_path: Path) -> None:
    plugin = textwrap.dedent("""
        import json
        print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                          "status": {"token": "exec-token-xyz"}}))
    """)
    kc = _kubeconfig(tmp_path / "kc", pki, server.port, {
        "client-certificate-data": _b64(pki / "client.crt"), "client-key-data": _b64(pki / "client.key"),
        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
                 "args": ["-c", plugin], "interactiveMode": "Never"}})
    with RecorderProcess(tmp_path / "exec.db", kc) as rec:
        assert _get_through(rec, "/api/v1/namespaces/default") == 200
        rec.stop()
    assert server.seen[-1]["authorization"] == "Bearer exec-token-xyz"


def test_a_server_certificate_from_another_ca_is_refused_in_one_line(server: TLSServer, pki: Path,
                                                                     tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=other-ca", cwd=other)
    kc = _kubeconfig(tmp_path / "kc", other, server.port, {"token": "t"})
    done = subprocess.run([sys.executable, "-m", "replay_tui", "record", "--db", str(tmp_path / "x.db"),
                           "--kubeconfig", str(kc), "--", "true"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "TLS certificate not accepted" in done.stderr
    assert not (tmp_path / "x.db").exists()
    assert server.seen == []  # the handshake failed: no request, no credentials sent
