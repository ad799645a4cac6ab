"""A request on no resource (discovery, /openapi/v2) is shown by its path wherever ops are shown:
``show``, ``query``, ``analyze``'s slow and failed operations, the report's endpoints (the TUI's
timeline reads the same ``OpRow.target``: see tests/test_filters.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from replay_tui.engine.format import Operation
from replay_tui.engine.writer import RecordingWriter
from tests.support.harness import replay_tui

MS = 1_000_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("paths") / "r.db"
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        s.append(Operation(verb="get", resource="/api", status=200, duration_ns=2 * MS,
                           response={"kind": "APIVersions", "versions": ["v1"]}))
        s.append(Operation(verb="get", resource="/openapi/v2", status=200, duration_ns=1500 * MS,
                           response={"$opaque": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                                     "bytes": 123}))
        s.append(Operation(verb="get", api_version="metrics.k8s.io/v1beta1", resource="/apis/metrics.k8s.io/v1beta1",
                           status=503, reason="ServiceUnavailable", duration_ns=3 * MS))
        s.append(Operation(verb="list", api_version="v1", resource="pods", kind="Pod", namespace="default",
                           status=200, duration_ns=4 * MS, response={"kind": "PodList", "items": []}))
        s.close()
    return path


def _run(*args: str) -> str:
    done = subprocess.run([*replay_tui(), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_show_names_the_path(db: Path) -> None:
    assert "  verb       get /openapi/v2\n" in _run("show", str(db), "--at", "2")
    assert json.loads(_run("show", str(db), "--at", "2", "--json"))["op"]["target"] == "/openapi/v2"
    assert "  verb       list Pod/default (pods)\n" in _run("show", str(db), "--at", "4")


def test_query_lists_paths_and_selects_by_them(db: Path) -> None:
    out = _run("query", str(db), "discovery")
    assert [line.split()[2:4] for line in out.splitlines()[:-1]] == [
        ["get", "/api"], ["get", "/openapi/v2"], ["get", "/apis/metrics.k8s.io/v1beta1"]]
    assert "-- 1 match(es)" in _run("query", str(db), "discovery=false")


def test_analyze_and_report_name_slow_and_failed_discovery_by_path(db: Path) -> None:
    found = json.loads(_run("analyze", str(db), "--slow-ms", "1000", "--json"))
    assert [s["target"] for s in found["slow_operations"]["slowest"]] == [
        "/openapi/v2", "Pod/default", "/apis/metrics.k8s.io/v1beta1", "/api"]
    assert [e["key"] for e in found["error_patterns"]["by_object"]] == ["/apis/metrics.k8s.io/v1beta1"]
    report = _run("report", str(db), "--format", "md", "--slow-ms", "1000")
    assert "GET /openapi/v2" in report and "GET /apis/metrics.k8s.io/v1beta1" in report


async def test_the_debuggers_timeline_shows_the_path(db: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("REPLAY_TUI_STATE_DIR", str(tmp_path / "state"))  # never the user's

    from replay_tui.tui.app import ReplayApp
    from replay_tui.tui.widgets.timeline import Timeline

    app = ReplayApp(str(db))
    async with app.run_test(size=(120, 30)) as pilot:
        def lines() -> list[str]:
            tl = app.query_one(Timeline)
            return [tl.render_line(y).text for y in range(tl.size.height)]

        deadline = time.monotonic() + 10
        while not any("Pod/default" in line for line in lines()):
            assert time.monotonic() < deadline, lines()
            await pilot.pause(0.02)
        shown = lines()
    assert [line.split()[2:4] for line in shown[1:5]] == [
        ["get", "/api"], ["get", "/openapi/v2"], ["get", "/apis/metrics.k8s.io/v1beta1"], ["list", "Pod/default"]]
