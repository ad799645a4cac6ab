"""Running ``replay-tui record`` and ``replay-tui serve`` as real subprocesses, for tests and the demo script."""

from __future__ import annotations

import base64
import http.client
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


def replay_tui() -> list[str]:
    """The command line that runs ``replay-tui`` with this interpreter."""
    return [sys.executable, "-m", "replay_tui"]


class RecorderProcess:
    """``replay-tui record`` in the background; ready once the proxy's kubeconfig is written."""

    def __init__(self, db: str | Path, kubeconfig: str | Path, *, command: Sequence[str] = (),
                 session: str | None = None, extra: Sequence[str] = (), env: dict[str, str] | None = None,
                 cwd: str | Path | None = None):
        self.db = Path(db)
        self._dir = tempfile.mkdtemp(prefix="recorder-proc-")
        self.proxy_kubeconfig = Path(self._dir) / "proxy.kubeconfig"
        self.argv = [*replay_tui(), "record", "--db", str(db), "--kubeconfig", str(kubeconfig),
                     "--kubeconfig-out", str(self.proxy_kubeconfig), *extra]
        if session:
            self.argv += ["--session", session]
        if command:
            self.argv += ["--", *command]
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self._log: Any = None
        self.stderr = ""
        self.proxy_url = ""  # known once started
        self.token = ""
        self.ca_pem = b""  # the proxy's per-run CA (empty with --plain-http)

    def start(self, timeout: float = 30.0) -> RecorderProcess:
        # Output goes to a file, not a pipe: a chatty operator must never block on a full pipe.
        self._log = open(Path(self._dir) / "output.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stderr = self._output()
                raise RuntimeError(f"replay-tui record exited with {self.proc.returncode}: {self.stderr}")
            if self.proxy_kubeconfig.exists():
                try:
                    config = yaml.safe_load(self.proxy_kubeconfig.read_text())
                except yaml.YAMLError:
                    config = None
                if config:
                    cluster = config["clusters"][0]["cluster"]
                    self.proxy_url = str(cluster["server"])
                    self.token = str(config["users"][0]["user"]["token"])
                    self.ca_pem = base64.b64decode(cluster.get("certificate-authority-data", ""))
                    return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("replay-tui record did not start its proxy in time")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the proxy's per-run CA, as the written kubeconfig does."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        """A connection to the proxy as a client of the written kubeconfig makes it (HTTPS, its CA)."""
        scheme, _, hostport = self.proxy_url.partition("://")
        host, port = hostport.rsplit(":", 1)
        host = host.strip("[]")
        if scheme == "https":
            return http.client.HTTPSConnection(host, int(port), timeout=timeout, context=self.ssl_context())
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the recorder and wait for it; returns its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            self.stderr = self._output()
        return self.proc.returncode

    def _output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> RecorderProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        if self._log is not None:
            self._log.close()
        try:
            for f in Path(self._dir).iterdir():
                f.unlink()
            os.rmdir(self._dir)
        except OSError:
            pass


class ServeProcess(RecorderProcess):
    """``replay-tui serve DB ARGS...`` in the background; ready once its kubeconfig is written."""

    def __init__(self, db: str | Path, *args: str, command: Sequence[str] = (), env: dict[str, str] | None = None,
                 cwd: str | Path | None = None):
        super().__init__(db, "", env=env, cwd=cwd)
        self.proxy_kubeconfig = Path(self._dir) / "serve.kubeconfig"
        self.argv = [*replay_tui(), "serve", str(db), *args, "--kubeconfig-out", str(self.proxy_kubeconfig)]
        if command:
            self.argv += ["--", *command]

    def output(self) -> str:
        """What it has printed so far (read through another handle: the process shares the log's offset)."""
        return (Path(self._dir) / "output.log").read_text(errors="replace")
