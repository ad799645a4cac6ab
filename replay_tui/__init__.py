"""replay-tui: a terminal time-travel debugger for Kubernetes operators.

The installed package is ``replay_tui``; its parts live in the repository's
top-level folders and are linked in here (``replay_tui/engine -> ../engine``,
...), so every tool (setuptools, mypy, import-linter) sees one real package tree:

* ``replay_tui.engine``   the core: format, SQLite store, state, diff, stats, analysis (no UI);
* ``replay_tui.recorder`` the recording proxy, the client hook, the importers;
* ``replay_tui.tui``      the Textual debugger;
* ``replay_tui.cli``      the ``replay-tui`` command line (never loads Textual by itself).

The in-process hook for the official client: ``from replay_tui.recorder import recording``.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("replay-tui")
except metadata.PackageNotFoundError:  # pragma: no cover - a checkout on sys.path, not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
