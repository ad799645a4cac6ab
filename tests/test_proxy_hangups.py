"""Clients that hang up mid-request, mid-body and mid-watch: one line each on stderr, never a traceback.

Raw sockets do what a crashing or impatient client does to the recording proxy (over its TLS, as a
real client talks to it, and below it); with ``--log-format json`` every line on stderr must still be
one JSON object, and the proxy must go on serving.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess

NS = "/api/v1/namespaces/default"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emu:
        yield emu


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a process that dies mid-write does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Client:
    """Raw connections to the recorder's proxy."""

    def __init__(self, rec: RecorderProcess):
        host, port = rec.proxy_url.split("://")[1].rsplit(":", 1)
        self.address = (host, int(port))
        self.context = rec.ssl_context()
        self.auth = f"Authorization: Bearer {rec.token}\r\nHost: {host}\r\n"

    def tcp(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=10)

    def tls(self) -> ssl.SSLSocket:
        return self.context.wrap_socket(self.tcp(), server_hostname=self.address[0])

    def head(self, method: str, path: str, extra: str = "") -> bytes:
        return f"{method} {path} HTTP/1.1\r\n{self.auth}{extra}\r\n".encode()


def _half_headers(c: Client) -> None:
    s = c.tls()
    s.sendall(f"GET {NS} HTTP/1.1\r\nHost: x\r\n".encode())
    s.close()


def _half_body(c: Client) -> None:
    s = c.tls()
    s.sendall(c.head("POST", f"{NS}/configmaps", "Content-Type: application/json\r\nContent-Length: 1000\r\n")
              + b'{"kind": "ConfigMap", "metadata": {"na')
    time.sleep(0.2)
    s.close()


def _half_body_reset(c: Client) -> None:
    s = c.tls()
    s.sendall(c.head("PUT", f"{NS}/configmaps/x", "Content-Length: 5000\r\n") + b"{" * 100)
    time.sleep(0.2)
    _reset(s)


def _half_chunked_body(c: Client) -> None:
    s = c.tls()
    s.sendall(c.head("POST", f"{NS}/configmaps", "Transfer-Encoding: chunked\r\n") + b'40\r\n{"kind":')
    time.sleep(0.2)
    s.close()


def _mid_watch(c: Client) -> None:
    s = c.tls()
    s.sendall(c.head("GET", f"{NS}/configmaps?watch=true"))
    s.recv(100)  # the stream is open
    time.sleep(0.2)
    _reset(s)


def _before_the_answer(c: Client) -> None:
    s = c.tls()
    s.sendall(c.head("GET", f"{NS}/configmaps"))
    s.close()


def _tcp_only(c: Client) -> None:
    c.tcp().close()


def _plain_http_to_tls(c: Client) -> None:
    s = c.tcp()
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    s.close()


def _half_handshake(c: Client) -> None:
    s = c.tcp()
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
    _reset(s)


HANGUPS: list[Callable[[Client], None]] = [_half_headers, _half_body, _half_body_reset, _half_chunked_body,
                                           _mid_watch, _before_the_answer, _tcp_only, _plain_http_to_tls,
                                           _half_handshake]
MID_BODY = 3  # _half_body, _half_body_reset, _half_chunked_body: requests that reached the proxy's handler


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_clients_hanging_up_anywhere_leave_one_line_each_and_never_a_traceback(
        emulator: EmulatorThread, tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "rec.db"
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    with RecorderProcess(db, kubeconfig, extra=["--log-format", fmt]) as rec:
        client = Client(rec)
        for hang_up in HANGUPS:
            hang_up(client)
        conn = rec.connection(timeout=10)  # the proxy still serves
        conn.request("GET", NS, headers={"Authorization": f"Bearer {rec.token}"})
        assert conn.getresponse().status == 200
        time.sleep(1.5)  # the watch notices its client is gone
        assert rec.stop(signal.SIGINT) == 0
    lines = rec.stderr.splitlines()
    assert "Traceback" not in rec.stderr
    if fmt == "json":
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        messages = [r["message"] for r in records]
    else:
        assert all(line.startswith("replay-tui: ") for line in lines), rec.stderr
        messages = lines
    hung_up = [m for m in messages if "a client hung up before its request was complete" in m]
    assert len(hung_up) == MID_BODY, messages
    assert any("POST /api/v1/namespaces/{ns}/configmaps" in m for m in hung_up)  # a template: no names
    assert "recorded" in messages[-1]
    with sqlite3.connect(db) as conn2:
        verbs = [r[0] for r in conn2.execute("SELECT verb FROM operations")]
    assert "create" not in verbs and "update" not in verbs  # an incomplete body is never forwarded
    assert "get" in verbs and "watch" in verbs


def test_what_libraries_log_warn_or_raise_in_a_thread_becomes_one_line_of_ours() -> None:
    import io
    import logging
    import threading
    import warnings

    from replay_tui.recorder.logs import Log

    out = io.StringIO()
    with Log("json", stream=out).capture():
        try:
            raise ConnectionResetError("Connection lost")
        except ConnectionResetError:
            logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1")
        logging.getLogger("asyncio").warning("Fatal error on SSL transport\nprotocol: %r", object)
        warnings.warn("something is deprecated", DeprecationWarning, stacklevel=1)
        thread = threading.Thread(target=lambda: 1 / 0, name="replay-tui-writer")
        thread.start()
        thread.join()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["level"], r["message"].split(":")[0]) for r in records] == [
        ("error", "Error handling request from 127.0.0.1"), ("warning", "Fatal error on SSL transport protocol"),
        ("warning", "DeprecationWarning"), ("error", "internal error in replay-tui-writer")]
    assert records[0]["message"].endswith("ConnectionResetError: Connection lost")
    assert "Traceback" not in out.getvalue()
