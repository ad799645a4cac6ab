"""The HTML report in a real browser: headless Chromium renders it, offline, as a user sees it.

``test_report.py`` checks the HTML's text; this checks what only a browser can
show: that the page lays out, that the inline SVG chart is actually drawn, and
that nothing spills past the window.  Chromium runs with the network blocked
(every host name fails to resolve, the proxy is a closed port), so a page that
needed a CDN, a font or a script would come out wrong.  Chromium comes from
Debian's ``chromium`` package (``.ci/run`` installs it); where no Chromium is
found the tests skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests.test_report import DEMO, build, run

SESSION = "buggy-operator"
WIDTH, HEIGHT = 1280, 2400
WHITE = (255, 255, 255)
# The chart's colours in tui/report.py's latency_svg: ops bars, error bars, the p95 line.
BAR, ERR, LINE = (0x54, 0xAE, 0xFF), (0xCF, 0x22, 0x2E), (0xBC, 0x4C, 0x00)
TIMEOUT_S = 60


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium not installed (apt-get install chromium): HTML screenshot test skipped")
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The buggy-operator report written by the real command, as a user makes it."""
    out = tmp_path_factory.mktemp("html") / "report.html"
    proc = run("report", str(DEMO), "-s", SESSION, "--format", "html", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def headless(browser: str, page: Path, work: Path, *args: str) -> str:
    """Run Chromium once on ``page`` with no network; return its stdout, fail with its stderr tail."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-extensions", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={work / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--proxy-server=http://127.0.0.1:{closed_port()}",
           *args, page.as_uri()]
    # Its own process group, so a hung browser is killed with all its helpers.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"Chromium did not finish in {TIMEOUT_S}s: {' '.join(cmd)}\n{err[-2000:]}")
    assert proc.returncode == 0, f"Chromium exited {proc.returncode}: {' '.join(cmd)}\n{err[-2000:]}"
    return out


@pytest.fixture(scope="module")
def screenshot(chromium: str, page: Path, tmp_path_factory: pytest.TempPathFactory) -> Image.Image:
    work = tmp_path_factory.mktemp("shot")
    png = work / "report.png"
    headless(chromium, page, work, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}")
    assert png.is_file() and png.stat().st_size > 0, f"Chromium wrote no screenshot to {png}"
    return Image.open(png).convert("RGB")


class _Sections(HTMLParser):
    """The rendered DOM as a user reads it: each <h2> heading with its table rows' cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.svg_tags: list[str] = []
        self._heading: str | None = None
        self._in_h2 = False
        self._in_svg = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self._in_h2, self._heading = True, ""
        elif tag == "svg":
            self._in_svg = True
        elif self._in_svg:
            self.svg_tags.append(tag)
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False
            self.rows.setdefault(self._heading or "", [])
        elif tag == "svg":
            self._in_svg = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._heading is not None:
            self.rows[self._heading].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self._heading = (self._heading or "") + data
        elif self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def dom(chromium: str, page: Path, tmp_path_factory: pytest.TempPathFactory) -> _Sections:
    text = headless(chromium, page, tmp_path_factory.mktemp("dom"), "--dump-dom")
    parsed = _Sections()
    parsed.feed(text)
    parsed.close()
    return parsed


def test_screenshot_is_the_requested_size_and_full_of_content(screenshot: Image.Image) -> None:
    assert screenshot.size == (WIDTH, HEIGHT)
    colours = screenshot.getcolors(WIDTH * HEIGHT) or []
    assert len(colours) >= 200, f"only {len(colours)} colours: the page rendered (nearly) blank"
    px = screenshot.load()
    inked = [y for y in range(0, HEIGHT, 4) if any(px[x, y] != WHITE for x in range(0, WIDTH, 2))]
    # Tables and headings all the way down, not one line at the top.
    assert len(inked) >= HEIGHT // 4 // 3, f"only {len(inked)} of {HEIGHT // 4} sampled rows have any ink"
    for band in range(4):
        lo, hi = band * HEIGHT // 4, (band + 1) * HEIGHT // 4
        assert any(lo <= y < hi for y in inked), f"rows {lo}-{hi} of the page are blank"
    # Nothing spills to the window's right edge (the body keeps a 2rem margin).
    edge = [(x, y) for y in range(HEIGHT) for x in range(WIDTH - 16, WIDTH) if px[x, y] != WHITE]
    assert not edge, f"content reaches the right edge of the window, e.g. at {edge[:3]}"


def test_latency_chart_is_drawn_with_its_bars_errors_and_p95_line(screenshot: Image.Image) -> None:
    where: dict[tuple[int, int, int], list[tuple[int, int]]] = {BAR: [], ERR: [], LINE: []}
    raw = screenshot.tobytes()
    for i, c in enumerate(zip(raw[0::3], raw[1::3], raw[2::3])):
        if c in where:
            where[c].append((i % WIDTH, i // WIDTH))
    bars = where[BAR]
    assert len(bars) > 5000, f"{len(bars)} pixels of the ops-bar colour #54aeff: the SVG chart did not render"
    x0, x1 = min(x for x, _ in bars), max(x for x, _ in bars)
    y0, y1 = min(y for _, y in bars), max(y for _, y in bars)
    assert x1 - x0 >= 300 and y1 - y0 >= 80, f"the bars fill only {x1 - x0}x{y1 - y0} px"
    # Bars of different heights: the counts per interval were drawn, not one flat box.  A level
    # counts when at least 4 pixel columns top out there (the p95 line crossing a bar does not).
    top_of: dict[int, int] = {}
    for x, y in bars:
        top_of[x] = min(y, top_of.get(x, y))
    levels = [y for y, n in Counter(top_of.values()).items() if n >= 4]
    assert len(levels) >= 3, f"the ops bars have only {len(levels)} distinct heights (tops at {sorted(levels)})"
    # The buggy operator's 409s show as red error bars and its p95 as an orange line, inside the chart.
    for name, colour in (("error bars #cf222e", ERR), ("p95 line #bc4c00", LINE)):
        inside = [(x, y) for x, y in where[colour] if x0 - 10 <= x <= x1 + 200 and y0 - 10 <= y <= y1 + 10]
        assert len(inside) >= 50, f"the chart shows no {name} ({len(inside)} pixels)"


def test_rendered_dom_has_every_endpoint_row_and_the_hot_loops(dom: _Sections) -> None:
    report = build(DEMO, SESSION)
    endpoints = dom.rows.get("Endpoints")
    assert endpoints, f"no Endpoints table in the rendered page (sections: {list(dom.rows)})"
    assert endpoints[0][:2] == ["Endpoint", "Count"]
    shown = {(row[0], row[1]) for row in endpoints[1:]}
    assert shown == {(e.endpoint, f"{e.count:,}") for e in report.endpoints}
    assert ("PATCH reports/status", "212") in shown
    findings = dom.rows.get("Hot loops, 409 storms and cycles")
    assert findings, f"no hot-loop section in the rendered page (sections: {list(dom.rows)})"
    loops = [row for row in findings[1:] if row[0] == "hot loop"]
    expected = [f for f in report.findings if f.kind == "hot loop"]
    assert expected, "the buggy operator's hot loop is missing from the report data"
    assert sorted((r[1], r[3]) for r in loops) == sorted((f.target, str(f.seq)) for f in expected)
    assert all("writes" in r[2] for r in loops)
    # The chart is in the live DOM with one bar per non-empty interval and the p95 line.
    assert "polyline" in dom.svg_tags
    assert dom.svg_tags.count("rect") >= sum(1 for c in report.timeline.counts if c)
