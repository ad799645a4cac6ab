"""The recorder's private directory: the one place it puts credential-like files, and takes them back.

``replay-tui record`` must write a few such files: the kubeconfig the operator uses (the run's
token and the proxy's CA), the cluster's client key, certificate and CA that the ``kubernetes``
client's config loader writes out of a kubeconfig's ``*-data`` fields, and the proxy's serving
key for the instant Python's ``ssl`` reads it.  All of them go into one directory,
``$TMPDIR/replay-tui-<pid>-<random>``, mode 0700:

* the loader's files (``upstream/``) are removed as soon as the TLS context holding them is
  built, and again after each credential refresh (an exec plugin may hand out new ones), so
  the cluster's key lives in memory only;
* the directory is removed when the recorder ends, however it ends short of ``kill -9``
  (normal exit, an error, Ctrl-C, SIGTERM, a second signal);
* after a ``kill -9`` it stays, so every start first removes the directories of processes that
  are gone (the pid in the name; a living pid's directory is left alone, even if that pid was
  reused: a stale directory kept is safer than a live one removed).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "replay-tui-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-[A-Za-z0-9_]+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def clean_stale(parent: str | None = None) -> list[Path]:
    """Remove the private directories that recorders killed without a chance to clean left behind."""
    parent = parent or tempfile.gettempdir()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        pid = int(match[1])
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


class RunDir:
    """This run's private directory (created 0700); ``remove`` takes it and everything in it away."""

    def __init__(self, parent: str | None = None):
        clean_stale(parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))

    @property
    def upstream(self) -> Path:
        """Where the ``kubernetes`` config loader may write the cluster's credentials (see ``scrub``)."""
        return self.path / "upstream"

    @property
    def kubeconfig(self) -> Path:
        return self.path / "kubeconfig"

    def scrub(self) -> None:
        """Remove the cluster's credential files once they are loaded into memory."""
        shutil.rmtree(self.upstream, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
