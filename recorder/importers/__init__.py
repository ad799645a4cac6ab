"""Importers: turn traces recorded by other tools into replay-tui sessions.

* ``sieve``: Sieve learn traces (``sieve-server.log``);
* ``audit``: Kubernetes API server audit logs (JSON lines);
* ``kubestep``: databases of kubestep, the Go record/replay tool.

Each streams its input, writes one atomic session per trace, and counts
malformed input instead of failing on it (see ``common``).
"""
