"""Where the conformance suite finds the clients it records, and which ones ran.

``tests/conformance/fetch-clients`` (run by ``.ci/run``) puts them in place:

* kubectl: Debian's ``kubernetes-client``, downloaded with ``apt-get download`` and unpacked
  with ``dpkg-deb -x`` into the clients cache, used by its full path.  It is never installed:
  ``apt-get install`` would replace the machine's own ``kubectl``.
* @kubernetes/client-node: ``npm ci`` in ``tests/conformance/node`` against the committed
  lockfile.
* the official Python client and kopf: Python dependencies of the test extra.

A client that is not there makes its tests skip, with the reason; the session's summary
lists each client with its version and whether it ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"


def cache_dir() -> Path:
    """``$REPLAY_TUI_CLIENTS``, else ``$XDG_CACHE_HOME/replay-tui/clients`` (``~/.cache/...``)."""
    explicit = os.environ.get("REPLAY_TUI_CLIENTS")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "replay-tui" / "clients"


# client -> version text, filled by the fixtures that found the client
VERSIONS: dict[str, str] = {}
# client -> the test module(s) that record it (the summary reports their outcomes)
MODULES = {
    "kubectl": ("tests/conformance/test_kubectl.py",),
    "@kubernetes/client-node": ("tests/conformance/test_client_node.py",),
    "kubernetes (Python)": ("tests/conformance/test_python_client.py",),
    "kopf": ("tests/test_kopf_e2e.py",),
}


def kubectl() -> tuple[Path | None, str]:
    """The unpacked kubectl and its version, or None and why it is missing."""
    path = cache_dir() / "kubernetes-client" / "usr" / "bin" / "kubectl"
    if not path.is_file():
        return None, (f"kubectl from Debian's kubernetes-client is not unpacked at {path} "
                      "(tests/conformance/fetch-clients puts it there)")
    try:
        out = subprocess.run([str(path), "version", "--client", "--short"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{path} does not run: {exc}"
    package = (cache_dir() / "kubernetes-client" / "VERSION").read_text().strip() \
        if (cache_dir() / "kubernetes-client" / "VERSION").exists() else "?"
    VERSIONS["kubectl"] = f"{out.removeprefix('Client Version: ')} (Debian kubernetes-client {package})"
    return path, ""


def client_node() -> tuple[str | None, str]:
    """The node binary when @kubernetes/client-node is installed, or None and why not."""
    node = shutil.which("node")
    if node is None:
        return None, "Node.js is not installed"
    package = NODE_DIR / "node_modules" / "@kubernetes" / "client-node" / "package.json"
    if not package.exists():
        return None, f"@kubernetes/client-node is not installed: run npm ci in {NODE_DIR}"
    import json

    version = json.loads(package.read_text())["version"]
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    VERSIONS["@kubernetes/client-node"] = f"{version} (Node.js {node_version})"
    return node, ""
