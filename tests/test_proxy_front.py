"""The proxy's front door: HTTPS with a per-run CA carried by the kubeconfig, and refusals that are seen.

Real ``replay-tui record`` processes against the emulator, reached the way clients reach
them: through the kubeconfig the recorder writes (its server URL, CA and token).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import sqlite3
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from kubernetes import client, config

from replay_tui.recorder.tls import ProxyCertificate, serving_hosts
from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread() as server:
        yield server


def _attributes(db: Path) -> dict[str, object]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return json.loads(conn.execute("SELECT attributes FROM sessions").fetchone()[0])
    finally:
        conn.close()


def _served_certificate(rec: RecorderProcess) -> x509.Certificate:
    host, port = rec.proxy_url.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock, \
            rec.ssl_context().wrap_socket(sock, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_the_written_kubeconfig_carries_the_ca_of_an_https_proxy(emu: EmulatorThread, tmp_path: Path) -> None:
    kc = emu.write_kubeconfig(tmp_path / "kc")
    with RecorderProcess(tmp_path / "r.db", kc) as rec:
        written = yaml.safe_load(rec.proxy_kubeconfig.read_text())
        cluster = written["clusters"][0]["cluster"]
        assert cluster["server"].startswith("https://127.0.0.1:")
        ca = x509.load_pem_x509_certificate(base64.b64decode(cluster["certificate-authority-data"]))
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert rec.proxy_kubeconfig.stat().st_mode & 0o777 == 0o600
        served = _served_certificate(rec)  # the handshake verified it against that CA and 127.0.0.1
        assert served.issuer == ca.subject
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        # the official client with nothing but that kubeconfig
        core = client.CoreV1Api(config.new_client_from_config(str(rec.proxy_kubeconfig)))
        assert core.read_namespace("default").metadata.name == "default"
        assert rec.stop() == 0
    assert "refused" not in rec.stderr


def test_a_client_that_does_not_trust_the_ca_fails_the_handshake(emu: EmulatorThread, tmp_path: Path) -> None:
    with RecorderProcess(tmp_path / "r.db", emu.write_kubeconfig(tmp_path / "kc")) as rec:
        host, port = rec.proxy_url.removeprefix("https://").rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), timeout=10, context=ssl.create_default_context())
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.request("GET", "/api", headers={"Authorization": f"Bearer {rec.token}"})
        rec.stop()


def test_the_listen_host_is_in_the_certificate(emu: EmulatorThread, tmp_path: Path) -> None:
    with RecorderProcess(tmp_path / "r.db", emu.write_kubeconfig(tmp_path / "kc"),
                         extra=["--listen", "127.0.0.2:0"]) as rec:
        assert rec.proxy_url.startswith("https://127.0.0.2:")
        names = _served_certificate(rec).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.2") in names.get_values_for_type(x509.IPAddress)
        rec.stop()


def test_wildcard_listen_addresses_add_this_machines_name() -> None:
    assert serving_hosts("0.0.0.0") == ["127.0.0.1", "::1", "localhost", socket.gethostname()]
    assert serving_hosts("proxy.example") == ["127.0.0.1", "::1", "localhost", "proxy.example"]


def test_the_serving_key_never_stays_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ctx = ProxyCertificate(serving_hosts("127.0.0.1")).server_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert list(tmp_path.iterdir()) == []  # written encrypted, loaded, removed at once


def test_plain_http_is_an_explicit_choice(emu: EmulatorThread, tmp_path: Path) -> None:
    with RecorderProcess(tmp_path / "r.db", emu.write_kubeconfig(tmp_path / "kc"), extra=["--plain-http"]) as rec:
        cluster = yaml.safe_load(rec.proxy_kubeconfig.read_text())["clusters"][0]["cluster"]
        assert cluster["server"].startswith("http://") and "certificate-authority-data" not in cluster
        conn = rec.connection()
        conn.request("GET", "/api/v1/namespaces/default", headers={"Authorization": f"Bearer {rec.token}"})
        assert conn.getresponse().status == 200
        rec.stop()


def test_refused_requests_are_counted_logged_once_and_summarised(emu: EmulatorThread, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RecorderProcess(db, emu.write_kubeconfig(tmp_path / "kc"), extra=["--metrics", "127.0.0.1:0"]) as rec:
        statuses = []
        for auth in ({}, {"Authorization": "Bearer not-this-runs-token"}, {}):
            conn = rec.connection()
            conn.request("GET", "/api/v1/namespaces/default/configmaps/some-name", headers=auth)
            resp = conn.getresponse()
            statuses.append((resp.status, json.loads(resp.read())["reason"]))
        assert statuses == [(401, "Unauthorized")] * 3
        mport = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", rec._output())
        assert mport is not None
        metrics = http.client.HTTPConnection("127.0.0.1", int(mport.group(1)), timeout=10)
        metrics.request("GET", "/metrics")
        text = metrics.getresponse().read().decode()
        assert re.search(r"^replay_refused_total 3$", text, re.M)
        assert re.search(r"^replay_requests_total 0$", text, re.M)
        assert rec.stop() == 0
    warnings = [line for line in rec.stderr.splitlines() if "refused GET" in line]
    assert warnings == ["replay-tui: warning: refused GET /api/v1/namespaces/{ns}/configmaps/{name}: the client did "
                        "not present the recorder's token (it sent no token); run it with KUBECONFIG set to the "
                        "kubeconfig the recorder wrote (further refusals are counted, not logged)"]
    assert "some-name" not in rec.stderr  # names stay out of the log
    assert "replay-tui: warning: 3 requests refused: the client did not present the recorder's token" in rec.stderr
    assert _attributes(db)["refused"] == 3
    assert "recorded 0 operations" in rec.stderr


def test_a_run_with_no_refusal_says_nothing_about_refusals(emu: EmulatorThread, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RecorderProcess(db, emu.write_kubeconfig(tmp_path / "kc")) as rec:
        conn = rec.connection()
        conn.request("GET", "/api/v1/namespaces/default", headers={"Authorization": f"Bearer {rec.token}"})
        assert conn.getresponse().status == 200
        rec.stop()
    assert "refused" not in rec.stderr and _attributes(db)["refused"] == 0
