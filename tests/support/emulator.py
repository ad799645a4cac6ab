"""The Kubernetes API emulator for tests, benchmarks and the demo recording: the product's API server
(``replay_tui.server``) seeded empty, served over plain HTTP on 127.0.0.1.

No real kube-apiserver runs on the machines this project is built on, so recordings of real
operators are made against this emulator.  Its semantics are the product's (see
``replay_tui.server.apiserver``): the same code answers ``replay-tui serve --fork``, so every
client the conformance suite records (kubectl, client-node, the Python client, kopf) exercises
it.  What this module adds is test support only: its own account of what it served
(``served``: method and path of every request in arrival order; ``requests``: the same with
headers; ``streams``: the event lines each watch stream sent), which the conformance tests
compare recordings with, and a thread to run it from synchronous code.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import yaml

from replay_tui.server.apiserver import ApiServer
from replay_tui.server.http import ApiHandler, ServerThread
from replay_tui.server.resources import ResourceType

__all__ = ["EmulatorThread", "KubernetesAPIEmulator", "ResourceType", "kubeconfig_text"]


class KubernetesAPIEmulator(ApiServer):
    """The API server, empty but for the ``default`` namespace, keeping an account of what it served."""

    def __init__(self) -> None:
        super().__init__()
        self.served: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.streams: list[tuple[str, list[bytes]]] = []


class _Handler(ApiHandler):
    """Serves the emulator and writes its account (independently of any recorder in between)."""

    def __init__(self, emulator: KubernetesAPIEmulator):
        super().__init__(emulator)
        self.emulator = emulator

    def on_request(self, raw: aiohttp.web.BaseRequest, body: bytes) -> None:
        self.emulator.served.append((raw.method, raw.path_qs))
        self.emulator.requests.append((raw.method, raw.path_qs, dict(raw.headers)))

    def on_stream(self, raw: aiohttp.web.BaseRequest) -> Callable[[bytes], None]:
        sent: list[bytes] = []
        self.emulator.streams.append((raw.path_qs, sent))
        return sent.append


def kubeconfig_text(url: str, *, namespace: str = "default", token: str = "emulator") -> str:
    """A kubeconfig for a plain-HTTP server (the emulator, or the recording proxy)."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "emulator", "user": {"token": token}}],
        "contexts": [{"name": "emulator",
                      "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace}}],
    }, sort_keys=False)


class EmulatorThread:
    """An emulator served on 127.0.0.1 by an event loop in a background thread; ``call`` runs a
    function on that loop (the store is not thread-safe)."""

    def __init__(self, emulator: KubernetesAPIEmulator | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self._emulator = emulator
        self._thread = ServerThread(self._make, host=host, port=port, name="emulator")

    def _make(self) -> ApiHandler:
        if self._emulator is None:
            self._emulator = KubernetesAPIEmulator()
        return _Handler(self._emulator)

    @property
    def emulator(self) -> KubernetesAPIEmulator:
        assert self._emulator is not None
        return self._emulator

    @property
    def url(self) -> str:
        return self._thread.url

    @property
    def host(self) -> str:
        return self._thread.host

    @property
    def port(self) -> int:
        return self._thread.port

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._thread.stop()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the emulator's loop and return its result."""
        return self._thread.call(fn, *args, **kwargs)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default", token: str = "emulator") -> Path:
        path = Path(path)
        path.write_text(kubeconfig_text(self.url, namespace=namespace, token=token))
        path.chmod(0o600)
        return path


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.emulator``: serve an emulator until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.emulator",
                                     description="Serve a Kubernetes API emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", metavar="FILE", help="write a kubeconfig pointing at the emulator")
    parser.add_argument("--crd", action="append", default=[], metavar="GROUP/VERSION/PLURAL/KIND",
                        help="serve a custom resource (repeatable), e.g. example.com/v1/widgets/Widget")
    args = parser.parse_args(argv)
    emulator = KubernetesAPIEmulator()
    for spec in args.crd:
        parts = spec.split("/")
        if len(parts) != 4:
            parser.error(f"--crd {spec!r}: expected GROUP/VERSION/PLURAL/KIND")
        emulator.add_crd(*parts)
    with EmulatorThread(emulator, port=args.port) as server:
        if args.kubeconfig:
            server.write_kubeconfig(args.kubeconfig)
        print(f"emulator serving on {server.url}", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
