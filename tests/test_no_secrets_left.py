"""No credential is left on disk: not the cluster's client key, not the run's token, however the recorder ends.

The cluster here wants a client certificate (its key given inline, ``client-key-data``, which
the ``kubernetes`` config loader writes to a file) and a bearer token.  The recorder runs with
its own ``TMPDIR``; after SIGTERM, after two SIGTERMs, and after ``kill -9`` followed by a new
run, no file under it holds the key, the cluster's token or the run's token.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import replay_tui
from tests.test_proxy_tls import TLSServer, _b64, _kubeconfig, pki  # noqa: F401 - pki is a fixture

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

UPSTREAM_TOKEN = "static-token-4f1c9e"

# The operator: the kubeconfig the recorder gave it, a request every few milliseconds through the proxy.
OPERATOR = textwrap.dedent("""
    import base64, http.client, json, os, signal, ssl, sys, time, yaml
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))  # (quietly: the recorder's stderr is checked)
    config = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    cluster, token = config["clusters"][0]["cluster"], config["users"][0]["user"]["token"]
    with open(sys.argv[1], "w") as out:
        out.write(json.dumps({"kubeconfig": os.environ["KUBECONFIG"], "token": token, "pid": os.getpid()}) + "\\n")
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    host, port = cluster["server"].split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    n = 0
    while True:
        conn.request("GET", "/api/v1/namespaces/default", headers={"Authorization": f"Bearer {token}"})
        conn.getresponse().read()
        n += 1
        with open(sys.argv[2] + ".new", "w") as count:
            count.write(str(n))
        os.replace(sys.argv[2] + ".new", sys.argv[2])  # never seen half written
        time.sleep(0.01)
""")


@pytest.fixture()
def server(pki: Path) -> Iterator[TLSServer]:  # noqa: F811 - the imported fixture
    with TLSServer(pki) as srv:
        yield srv


class Run:
    """``replay-tui record`` with a TMPDIR of its own, running OPERATOR."""

    def __init__(self, tmp_path: Path, kubeconfig: Path, name: str):
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.out, self.count = tmp_path / f"{name}.json", tmp_path / f"{name}.count"
        self.stderr = tmp_path / f"{name}.stderr"
        with open(self.stderr, "w") as stderr:
            self.proc = subprocess.Popen(
                [*replay_tui(), "record", "--db", str(tmp_path / f"{name}.db"), "--kubeconfig", str(kubeconfig),
                 "--", sys.executable, "-c", OPERATOR, str(self.out), str(self.count)],
                env=dict(os.environ, TMPDIR=str(self.tmpdir)), stderr=stderr, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.requests() < 5:
            assert self.proc.poll() is None, self.stderr.read_text()
            time.sleep(0.05)
        assert self.requests() >= 5
        self.seen: dict[str, Any] = json.loads(self.out.read_text())

    def requests(self) -> int:
        try:
            return int(self.count.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def end(self, *signals: int) -> int:
        for i, signum in enumerate(signals):
            if i:
                time.sleep(0.1)
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._kill_operator()

    def _kill_operator(self) -> None:
        try:
            os.kill(self.seen["pid"], signal.SIGKILL)  # orphaned by a kill -9 of the recorder
        except ProcessLookupError:
            pass


def _secrets(pki: Path, run: Run) -> dict[str, bytes]:  # noqa: F811
    key = (pki / "client.key").read_bytes()
    body = b"".join(key.splitlines()[1:-1])  # the key's base64 body, wherever a line break falls
    return {"client key": body[40:100], "client key, as in the kubeconfig": _b64(pki / "client.key")[40:100].encode(),
            "cluster token": UPSTREAM_TOKEN.encode(), "run token": run.seen["token"].encode()}


def _holding(tmpdir: Path, secrets: dict[str, bytes]) -> list[str]:
    found = []
    for path in tmpdir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            flat = data.replace(b"\n", b"")
            found += [f"{path.relative_to(tmpdir)} holds the {what}" for what, secret in secrets.items()
                      if secret in data or secret in flat or base64.b64encode(secret) in data]
    return found


@pytest.fixture()
def kubeconfig(server: TLSServer, pki: Path, tmp_path: Path) -> Path:  # noqa: F811
    return _kubeconfig(tmp_path / "kc", pki, server.port, {
        "client-certificate-data": _b64(pki / "client.crt"), "client-key-data": _b64(pki / "client.key"),
        "token": UPSTREAM_TOKEN})


def test_while_recording_the_clusters_key_is_in_memory_only_and_the_token_in_a_private_dir(
        kubeconfig: Path, pki: Path, tmp_path: Path) -> None:  # noqa: F811
    run = Run(tmp_path, kubeconfig, "live")
    try:
        secrets = _secrets(pki, run)
        holding = _holding(run.tmpdir, secrets)
        private = Path(run.seen["kubeconfig"]).parent
        assert private.parent == run.tmpdir and private.name.startswith(f"replay-tui-{run.proc.pid}-")
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert holding == [f"{private.name}/kubeconfig holds the run token"]  # what the operator needs, no more
    finally:
        assert run.end(signal.SIGTERM) == 128 + signal.SIGTERM


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGTERM, signal.SIGTERM), (signal.SIGINT,)],
                         ids=["sigterm", "double-sigterm", "ctrl-c"])
def test_nothing_is_left_after_the_recorder_is_stopped(kubeconfig: Path, pki: Path, tmp_path: Path,  # noqa: F811
                                                       signals: tuple[int, ...]) -> None:
    run = Run(tmp_path, kubeconfig, "stopped")
    run.end(*signals)
    assert _holding(run.tmpdir, _secrets(pki, run)) == []
    assert list(run.tmpdir.iterdir()) == []
    assert "Traceback" not in run.stderr.read_text()


def test_after_kill_9_the_next_run_removes_what_was_left(kubeconfig: Path, pki: Path, tmp_path: Path) -> None:  # noqa: F811
    first = Run(tmp_path, kubeconfig, "killed")
    first.end(signal.SIGKILL)
    secrets = _secrets(pki, first)
    left = Path(first.seen["kubeconfig"]).parent
    assert left.exists() and _holding(first.tmpdir, secrets), "kill -9 gives no chance to clean up"
    second = Run(tmp_path, kubeconfig, "next")
    try:
        assert not left.exists(), "a new run removes the private directory of a dead one as it starts"
        assert _holding(second.tmpdir, secrets) == []
    finally:
        second.end(signal.SIGTERM)
    assert _holding(second.tmpdir, {**secrets, **_secrets(pki, second)}) == []
    assert list(second.tmpdir.iterdir()) == []


def test_the_directory_of_a_living_recorder_is_left_alone(kubeconfig: Path, pki: Path, tmp_path: Path) -> None:  # noqa: F811
    first = Run(tmp_path, kubeconfig, "first")
    try:
        second = Run(tmp_path, kubeconfig, "second")
        second.end(signal.SIGTERM)
        assert Path(first.seen["kubeconfig"]).exists()
        assert first.proc.poll() is None and first.requests() > 5
    finally:
        first.end(signal.SIGTERM)
    assert list(first.tmpdir.iterdir()) == []
