"""The debugger's plain-Python pieces, tested without a screen: rows and the cursor under a filter,
background-job scheduling, the theme palette, text wrapping, and the layering that keeps them
free of Textual."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.color import Color
from textual.theme import BUILTIN_THEMES

from replay_tui.engine.filters import parse
from replay_tui.engine.store import Recording
from replay_tui.tui import theme
from replay_tui.tui.control.background import STATS_DELAY_S, Background
from replay_tui.tui.control.navigation import Navigator
from replay_tui.tui.control.reportjob import default_path
from replay_tui.tui.widgets.pane import hang_of, wrap
from replay_tui.tui.widgets.timeline import elide, span_glyph
from tests.test_tui_fixture import OPS, make_fixture

ROOT = Path(__file__).resolve().parent.parent


# --- rows and the cursor -----------------------------------------------------------------------

async def test_the_cursor_keeps_a_row_of_its_own_under_a_filter(tmp_path: Path) -> None:
    db = make_fixture(tmp_path / "fx.db")
    rec = await Recording.open(db)
    try:
        nav = Navigator(await rec.session("operator"))
        assert nav.goto(12) == 12 and nav.row() == 11
        src = nav.source
        src.set_filter(parse("kind:ConfigMap"))
        nav.goto(12)
        assert src.count == 1 and src.seq_at(0) == 12  # nothing scanned yet: just the cursor's row
        async for seqs, lo, hi in src.scan_windows(around=12):
            src.add_matches(seqs, lo, hi)
        assert list(src.matches) == [10, 11, 13, 14, 15, 16, 17, 18] and not src.scanning
        rows = [src.seq_at(i) for i in range(src.count)]
        assert rows == [10, 11, 12, 13, 14, 15, 16, 17, 18]  # op 12 stands where it belongs in time
        assert nav.row() == 2 and src.base_of(2) is None and src.base_of(3) == 2
        assert nav.move(1) == 13 and src.count == 8  # on a match: the ghost row is gone
        assert nav.move(-1) == 11 and nav.move(-5) == 10  # clamped at the first row
        assert nav.last_row() == 18 and nav.at_last_row(OPS)
        assert nav.step(1) == 19 and src.ghost == 19 and src.seq_at(src.count - 1) == 19
        assert nav.last_row() == 18  # G goes to the last match, not the cursor's own row
        assert nav.first_row() == 10
        assert nav.goto(10_000) == OPS and nav.goto(-5) == 1  # clamped to the session
        assert await nav.find_error(1, True) == 6 and await nav.resolve("50%") == OPS // 2
    finally:
        await rec.close()


async def test_a_scan_starts_around_the_cursor_then_reaches_back(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The cursor's neighbours are known after the first window; the windows before it come last,
    put before the known rows (the count of rows that moved is returned), and the result is the
    same as a scan from the start."""
    from replay_tui.tui.control import source as source_mod

    monkeypatch.setattr(source_mod, "SCAN_WINDOW", 4)
    db = make_fixture(tmp_path / "fx.db")
    rec = await Recording.open(db)
    try:
        nav = Navigator(await rec.session("operator"))
        src = nav.source
        src.set_filter(parse("verb!=get"))
        nav.goto(15)
        windows, moved = [], []
        first_page: list[Any] = []
        async for seqs, lo, hi in src.scan_windows(around=15):
            windows.append((lo, hi))
            moved.append(src.add_matches(seqs, lo, hi))
            if len(windows) == 1:
                assert src.scanned_from == 13 and src.scanned_to == 17 and src.scanning
                assert all(13 < s <= 17 for s in src.matches)  # the cursor's neighbours first
                first_page = await src.fetch_page(0)
        assert windows[0] == (13, 17) and windows[-1] == (0, 1)
        assert [w for w in windows if w[1] <= 13] == [(9, 13), (5, 9), (1, 5), (0, 1)]  # then back, in order
        assert not src.scanning and src.prepended == sum(moved) > 0
        # Page 0 still holds the rows it held after the first window (a page read is never
        # renumbered by rows put before it); those rows went to pages below 0.
        assert [r.seq for r in await src.fetch_page(0)][:len(first_page)] == [r.seq for r in first_page]
        before = [r for r in await src.fetch_page(-1) if r is not None]
        assert [r.seq for r in before] == list(src.matches[:src.prepended])
        reference = [r[0] for r in await rec.fetchall(
            "SELECT seq FROM operations WHERE session_id = ? AND verb != 'get' ORDER BY seq", (src.session.id,))]
        assert list(src.matches) == reference and sum(moved) == len([s for s in reference if s <= 13])
        assert nav.row() == src.index_of(15)[0] and src.seq_at(nav.row()) == 15
    finally:
        await rec.close()


# --- background jobs ------------------------------------------------------------------------------

def test_background_jobs_wait_for_the_first_paint_then_run_one_at_a_time_in_order() -> None:
    jobs = Background()
    assert jobs.next_job(0.0, 100) is None  # nothing before the first screen
    jobs.painted(10.0)
    assert jobs.next_job(10.0 + STATS_DELAY_S / 2, 100) is None
    assert jobs.next_job(10.0 + 2 * STATS_DELAY_S, 100) == "stats"
    jobs.started("stats", 11.0, 100)
    assert jobs.next_job(11.5, 100) is None  # one at a time
    jobs.finished("stats", 12.0, {"operations": 100})
    assert jobs.next_job(12.0, 100) == "analysis"
    jobs.started("analysis", 12.0, 100)
    jobs.failed("analysis", 13.0, "the recording is corrupted at op 3")
    assert jobs["analysis"].state == "failed" and "corrupted" in jobs["analysis"].error
    assert jobs.next_job(13.0, 100) == "cycles"  # a failure does not stop the next job
    jobs.started("cycles", 13.0, 100)
    jobs.finished("cycles", 13.5, [])
    assert jobs.next_job(14.0, 100) is None  # all done; the session did not grow
    assert jobs.next_job(14.0, 200) is None  # grew, but stats ran 3 s ago (every 2 s, at least 5 x its cost)
    assert jobs.next_job(16.0, 200) == "stats"


def test_a_tab_asking_for_the_analysis_runs_it_next() -> None:
    jobs = Background()
    jobs.painted(0.0)
    jobs.want("analysis")
    assert jobs.next_job(5.0, 10) == "analysis"


# --- the palette ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BUILTIN_THEMES))
def test_every_role_resolves_readable_in_every_builtin_theme(name: str) -> None:
    """4.5:1 (the README's claim) for every role on every background it is drawn on: the panes and
    bars, a focused pane's tinted surface, the tinted rows (a failed op, a changed field), and for
    a role with a background of its own (the cursor row, the header, the LIVE badge), on that."""
    app = App()
    app.theme = name
    variables = app.get_css_variables()
    styles = theme.palette(variables)
    assert set(styles) == set(theme.ROLES)
    if not variables["surface"].startswith("#"):
        return  # a terminal (ANSI) theme: the terminal's own colours
    surface = Color.parse(variables["surface"])
    backgrounds = [bg for bg, _ in theme._backgrounds(variables)]
    assert len(backgrounds) == 6 and surface in backgrounds
    for role, style in styles.items():
        color = style.color
        if color is None or color.triplet is None:
            continue  # a background only (a tint), or a terminal colour
        fg = Color(*color.triplet)
        on = [Color(*style.bgcolor.triplet)] if style.bgcolor is not None and style.bgcolor.triplet else backgrounds
        worst = min(theme.contrast(fg, bg) for bg in on)
        assert worst >= theme.TEXT_CONTRAST - 0.01, f"{role} in {name}: {worst:.2f}:1"


def test_no_color_keeps_the_cursor_and_errors_distinct() -> None:
    app = App()
    styles = theme.palette(app.get_css_variables(), no_color=True)
    assert styles["cursor"].reverse and styles["error.row"].bold


def test_every_role_named_in_the_ui_exists() -> None:
    named = set()
    for path in (ROOT / "tui").rglob("*.py"):
        named |= set(re.findall(r'"replay\.([a-z][a-z0-9.]*)"', path.read_text(encoding="utf-8")))
    named -= {"tui"}  # "replay.tui" ... package names, not roles
    assert named and named - set(theme.ROLES) == set()


# --- text ----------------------------------------------------------------------------------------------

def test_wrapped_lines_continue_under_their_value() -> None:
    from rich.text import Text

    line = Text("message   " + "the object has been modified; please apply your changes " * 2)
    rows = wrap(line, 50, 10)
    assert len(rows) > 1 and all(r.plain.startswith(" " * 10) and r.plain[10] != " " for r in rows[1:])
    assert all(r.cell_len <= 50 for r in rows)
    assert hang_of(Text("    lastSync: 2026-11-22T20:27:12")) == len("    lastSync: ")
    assert hang_of(Text("      - name: web")) == len("      - name: ")


def test_long_object_names_lose_their_middle_not_their_end() -> None:
    name = "Deployment.apps/some-namespace/a-very-long-deployment-name-that-differs-only-at-the-end-7f9c"
    shown = elide(name, 40)
    assert len(shown) == 40 and shown.startswith("Deployment.apps") and shown.endswith("only-at-the-end-7f9c")
    assert "…" in shown
    assert elide("short", 10) == "short     "


def test_reconcile_brackets_follow_the_rows_shown() -> None:
    from replay_tui.engine.format import OpRow, Reconcile

    def row(seq: int, rid: int | None) -> OpRow:
        return OpRow(seq, 0, 0, "get", "Pod", "ns", "p", "", 200, "", rid)

    span = Reconcile(id=1, reconciler="r", kind="", namespace="", name="", start_seq=3, end_seq=9, start_ns=0,
                     end_ns=0, trigger_seq=None, error="", inferred=False, source_id="")
    # unfiltered: the span's own ends
    assert span_glyph(row(3, 1), span, None, row(4, 1), False) == "┌"
    assert span_glyph(row(5, 1), span, row(4, 1), row(6, 1), False) == "│"
    # filtered: ops 5 and 7 of the span are the ones shown, between rows of other reconciles
    assert span_glyph(row(5, 1), span, row(2, None), row(7, 1), True) == "┌"
    assert span_glyph(row(7, 1), span, row(5, 1), row(12, 2), True) == "└"
    assert span_glyph(row(7, 1), span, row(2, 3), row(12, 2), True) == "╶"


def test_the_default_report_name_is_safe_and_says_what_it_holds() -> None:
    assert default_path("/x/rec.db", "buggy operator/\x1b[1m") == "rec-buggy-operator-1m-report.html"


# --- layering ------------------------------------------------------------------------------------------

PROBE = r"""
import pkgutil, sys
import replay_tui.tui.control as control
for m in pkgutil.walk_packages(control.__path__, "replay_tui.tui.control."):
    __import__(m.name)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich")))
"""


def test_the_controllers_never_load_textual() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_every_binding_has_an_id() -> None:
    """So a keymap can rebind any key (Textual's App.set_keymap takes binding ids)."""
    import importlib
    import inspect
    import pkgutil

    from textual.binding import Binding

    import replay_tui.tui as tui

    missing, seen = [], 0
    for info in pkgutil.walk_packages(tui.__path__, "replay_tui.tui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for b in cls.__dict__.get("BINDINGS", []):
                seen += 1
                if not isinstance(b, Binding) or not b.id:
                    missing.append(f"{cls.__name__}: {b}")
    assert seen > 40 and missing == []
