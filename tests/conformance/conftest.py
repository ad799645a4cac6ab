"""The conformance suite's summary: which clients were recorded, with their versions."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from tests.conformance import clients


def pytest_terminal_summary(terminalreporter: Any) -> None:
    outcomes: dict[str, dict[str, int]] = {}
    reasons: dict[str, str] = {}
    for kind in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(kind, []):
            nodeid = getattr(report, "nodeid", "") or ""
            fspath = getattr(report, "fspath", "") or ""
            for client, modules in clients.MODULES.items():
                if any(nodeid.startswith(m) or str(fspath).endswith(m) for m in modules):
                    if kind == "passed" and getattr(report, "when", "call") != "call":
                        continue
                    outcomes.setdefault(client, {}).setdefault(kind, 0)
                    outcomes[client][kind] += 1
                    if kind == "skipped" and isinstance(report.longrepr, tuple):
                        reasons.setdefault(client, str(report.longrepr[2]).removeprefix("Skipped: "))
    if not outcomes:
        return
    for client, dist in (("kubernetes (Python)", "kubernetes"), ("kopf", "kopf")):
        try:
            clients.VERSIONS.setdefault(client, metadata.version(dist))
        except metadata.PackageNotFoundError:
            pass
    terminalreporter.write_sep("-", "Kubernetes clients recorded through replay-tui record")
    for client in clients.MODULES:
        counts = outcomes.get(client)
        if not counts:
            continue
        version = clients.VERSIONS.get(client, "")
        ran = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("error", 0)
        if ran:
            state = "ran: " + ", ".join(f"{n} {k}" for k, n in counts.items())
        else:
            state = f"SKIPPED: {reasons.get(client, 'no test ran')}"
        terminalreporter.write_line(f"{client:<26} {version or '-':<58} {state}")
