"""``replay-tui report``: the session report a team shares, on real recordings."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from replay_tui.engine import report as reportmod
from replay_tui.engine.store import Recording
from replay_tui.recorder.importers.sieve import import_sieve

ROOT = Path(__file__).resolve().parent.parent
SIEVE = ROOT / "tests" / "data" / "cassandra-operator-recreate.sieve-server.log"
DEMO = ROOT / "fixtures" / "demo" / "demo.db"
EXE = Path(sys.executable).parent / "replay-tui"
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "replay_tui"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)


def build(db: Path, session: str | None = None, **kw: float) -> reportmod.Report:
    async def go() -> reportmod.Report:
        async with await Recording.open(db) as rec:
            return await reportmod.build(await rec.session(session), **kw)
    return asyncio.run(go())


@pytest.fixture(scope="module")
def sieve(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    db = tmp_path_factory.mktemp("report") / "sieve.db"
    result = import_sieve(str(SIEVE), str(db), progress=False)
    return db, dict(result.verbs)


def test_sieve_endpoint_table_counts_every_op_of_the_trace(sieve: tuple[Path, dict[str, int]]) -> None:
    db, verbs = sieve
    r = build(db)
    assert sum(e.count for e in r.endpoints) == 175 == r.summary.operations
    per_verb: dict[str, int] = {}
    for e in r.endpoints:
        per_verb[e.verb] = per_verb.get(e.verb, 0) + e.count
    assert per_verb == verbs
    assert {"LIST pods", "GET configmaps", "UPDATE services"} <= {e.endpoint for e in r.endpoints}
    assert sum(e.errors for e in r.endpoints) == r.summary.errors == 15
    assert r.reconcilers and r.reconcilers[0].reconciles == 16


def test_buggy_operator_flags_its_hot_loop_and_409_storm() -> None:
    proc = run("report", str(DEMO), "--session", "buggy-operator", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"metadata", "summary", "endpoints", "reconcilers", "findings", "security", "graph",
            "timeline"} <= set(data)
    loops = [f for f in data["findings"] if f["kind"] == "hot loop"]
    storms = [f for f in data["findings"] if f["kind"] == "409 storm"]
    assert loops and all(f["target"].startswith("Report") for f in loops)
    assert all(f["seq"] >= 1 for f in loops + storms)
    assert {f["target"] for f in storms} == {"ConfigMap/default/daily-summary", "ConfigMap/default/weekly-summary"}
    assert data["security"]["redaction"] is True
    assert data["metadata"]["namespaces"] == ["default"]
    # the reconciler profile: its slowest op is the slowest op inside its reconciles
    prof = data["reconcilers"][0]
    assert prof["reconciler"] == "reports.example.com"
    with sqlite3.connect(DEMO) as conn:
        slowest = conn.execute(
            "SELECT MAX(o.duration_ns) FROM operations o JOIN sessions s ON s.id = o.session_id"
            " JOIN reconciles r ON r.session_id = o.session_id AND r.id = o.reconcile"
            " WHERE s.name = 'buggy-operator' AND r.reconciler = 'reports.example.com'").fetchone()[0]
        at = conn.execute(
            "SELECT o.duration_ns FROM operations o JOIN sessions s ON s.id = o.session_id"
            " WHERE s.name = 'buggy-operator' AND o.seq = ?", (prof["slowest_op"]["seq"],)).fetchone()[0]
    assert at == slowest
    assert abs(sum(prof["time_by_verb"].values()) - 1) < 1e-9 and prof["bottleneck"] == "patch"


def test_healthy_operator_has_no_findings() -> None:
    assert build(DEMO, "healthy-operator").findings == []


def test_slow_endpoints_are_flagged_against_the_threshold() -> None:
    requests = [e for e in build(DEMO, "buggy-operator").endpoints
                if e.verb not in ("modified", "added", "deleted", "bookmark", "error", "watch")]
    # a threshold between the fastest and the slowest endpoint's p95
    p95s = sorted(e.p95_ms for e in requests)
    threshold = (p95s[0] + p95s[-1]) / 2
    r = build(DEMO, "buggy-operator", slow_ms=threshold)
    slow = {e.endpoint for e in r.endpoints if e.slow}
    expected = {e.endpoint for e in requests if e.p95_ms >= threshold}
    assert slow == expected and 0 < len(slow) < len(requests)
    assert not any(e.slow for e in r.endpoints if e.verb in ("modified", "added", "watch"))
    assert not any(e.slow for e in build(DEMO, "buggy-operator").endpoints)  # 1 s: nothing is slow


def test_markdown_to_stdout_has_tables_and_a_mermaid_graph() -> None:
    proc = run("report", str(DEMO), "-s", "buggy-operator")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    patch = next(e for e in build(DEMO, "buggy-operator").endpoints if e.endpoint == "PATCH reports/status")
    assert f"| PATCH reports/status | {patch.count} |" in out
    assert "```mermaid\ngraph LR" in out
    # ownerReferences from the latest state: each Report owns its summary ConfigMap
    graph = build(DEMO, "buggy-operator").graph
    owns = {(e.source, e.target) for e in graph.edges if e.label == "owns"}
    assert ("Report.example.com/default/daily", "ConfigMap/default/daily-summary") in owns
    with sqlite3.connect(DEMO) as conn:
        writes = dict(conn.execute(
            "SELECT o.kind, COUNT(*) FROM operations o JOIN sessions s ON s.id = o.session_id"
            " JOIN reconciles r ON r.session_id = o.session_id AND r.id = o.reconcile"
            " WHERE s.name = 'buggy-operator' AND r.reconciler = 'reports.example.com'"
            " AND o.verb IN ('create', 'update', 'patch', 'delete') GROUP BY o.kind").fetchall())
    assert graph.writes_by_kind["reports.example.com"] == writes


class _Checker(HTMLParser):
    """Collects tags and URLs in attributes; fails on unbalanced markup."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v for _, v in attrs if v and ("http:" in v or "https:" in v or "//" in v)]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_html_is_one_offline_file_with_a_chart(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run("report", str(DEMO), "-s", "buggy-operator", "--format", "html", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and str(out) in proc.stderr
    text = out.read_text()
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    assert checker.urls == []  # the cluster URL appears only as text
    assert not {"link", "script", "img", "iframe"} & checker.tags
    assert {"style", "svg", "rect", "polyline", "table"} <= checker.tags
    assert "PATCH reports/status" in text and "graph LR" in text


def test_out_writes_json_and_md_files(tmp_path: Path) -> None:
    for fmt in ("json", "md"):
        out = tmp_path / f"r.{fmt}"
        proc = run("report", str(DEMO), "-s", "healthy-operator", "--format", fmt, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""
        assert out.stat().st_size > 0
    assert json.loads((tmp_path / "r.json").read_text())["metadata"]["session"] == "healthy-operator"


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    for args in (("report", str(DEMO), "--session", "nope"),
                 ("report", str(tmp_path / "missing.db")),
                 ("report", str(DEMO), "-s", "buggy-operator", "--out", str(tmp_path / "no" / "dir" / "r.md"))):
        proc = run(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("replay-tui: error:"), proc.stderr


def test_out_without_format_takes_it_from_the_extension(tmp_path: Path) -> None:
    for name, starts in (("r.html", "<!DOCTYPE html>"), ("r.json", "{"), ("r.markdown", "# replay-tui report")):
        proc = run("report", str(DEMO), "-s", "healthy-operator", "-o", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / name).read_text().startswith(starts), name
    # Another extension is refused in one line, never silently written as Markdown; --format says it.
    for name in ("r.txt", "report"):
        proc = run("report", str(DEMO), "-s", "healthy-operator", "-o", str(tmp_path / name))
        assert proc.returncode == 1 and not (tmp_path / name).exists()
        what = "extension '.txt'" if name == "r.txt" else "no extension"
        assert proc.stderr.strip().splitlines() == [
            f"replay-tui: error: {tmp_path / name}: {what} is no report format"
            " (use .html, .htm, .md, .markdown or .json, or say --format md|json|html)"]
    proc = run("report", str(DEMO), "-s", "healthy-operator", "-o", str(tmp_path / "r.txt"), "--format", "md")
    assert proc.returncode == 0 and (tmp_path / "r.txt").read_text().startswith("# replay-tui report")


def test_an_endpoint_with_one_request_has_its_p95_equal_to_its_average(tmp_path: Path) -> None:
    """Percentiles lie within the samples' range: one request's p95 is that request, not its bucket's middle."""
    from replay_tui.engine import rollups
    from tests.conftest import k8s_object, op_for, write_session

    top_of_a_bucket = int(rollups.bucket_floor_ns(rollups.duration_bucket(3_300_000) + 1)) - 1
    cm = k8s_object("ConfigMap", "one")
    db = tmp_path / "one.db"
    write_session(db, [op_for("get", cm, resource="configmaps", response=cm, duration_ns=top_of_a_bucket)])
    (endpoint,) = build(db).endpoints
    assert endpoint.avg_ms == endpoint.p95_ms == endpoint.max_ms == top_of_a_bucket / 1e6
    md = run("report", str(db)).stdout
    assert "| GET configmaps | 1 | 3.3ms | 3.3ms | 0 |  |" in md


def test_the_latency_line_breaks_where_no_request_ran() -> None:
    import re
    from types import SimpleNamespace

    from replay_tui.cli.report import latency_svg
    from replay_tui.engine.stats import Timeline

    timeline = Timeline(start_ns=0, width_ns=10**9, counts=[3, 4, 2, 0, 5, 1, 0], errors=[0] * 7,
                        p95_ms=[1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0])
    svg = latency_svg(SimpleNamespace(timeline=timeline), width=720, height=200)  # type: ignore[arg-type]
    lines = re.findall(r'<polyline points="([^"]*)"', svg)
    assert len(lines) == 2  # buckets 0-1 and 4-5; none through the empty ones
    baseline = 12 + (200 - 12 - 28)
    ys = [float(p.split(",")[1]) for line in lines for p in line.split()]
    assert len(ys) == 4 and all(y < baseline for y in ys)


def _boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    import re

    return {title: (float(x), float(y), float(x) + float(w), float(y) + float(h)) for title, x, y, w, h in
            re.findall(r'<title>([^<]*)</title><rect x="([\d.]+)" y="([\d.]+)" width="(\d+)" height="(\d+)"', svg)}


def test_the_html_object_graph_draws_every_edge_and_no_edge_crosses_a_box() -> None:
    import html
    import re

    from replay_tui.cli.report import graph_svg

    r = build(DEMO, "buggy-operator")
    svg = graph_svg(r.graph)
    boxes = _boxes(svg)
    assert set(boxes) == {html.escape(n) for n in r.graph.nodes}
    paths = re.findall(r'<path d="([^"]*)"', svg)
    assert len(paths) == len(r.graph.edges) == 6
    for e in r.graph.edges:
        assert f">{e.label}</text>" in svg
    for d in paths:
        # Routed edges are straight segments (M, then H/V moves): none may pass through a box.
        if " C" in d:
            continue
        x, y = map(float, d[1:].split(" ")[0].split(","))
        for move in d.split(" ")[1:]:
            nx, ny = (float(move[1:]), y) if move[0] == "H" else (x, float(move[1:]))
            for x0, y0, x1, y1 in boxes.values():
                inside_x = max(min(x, nx), x0 + 1) < min(max(x, nx), x1 - 1)
                inside_y = max(min(y, ny), y0 + 1) < min(max(y, ny), y1 - 1)
                crosses = (inside_x and y0 < y < y1) if y == ny else (inside_y and x0 < x < x1)
                assert not crosses, (d, move, (x0, y0, x1, y1))
            x, y = nx, ny
