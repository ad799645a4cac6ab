"""One Pilot test per defect of issue 14, each driven by the keys a user presses.

Every test here failed on the debugger before its fix (the numbers are the issue's):
what the test asserts is what the user saw go wrong.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from rich.color import Color as RichColor
from textual.geometry import Region
from textual.widgets import Input, Static

from replay_tui.engine.filters import FilterError, parse
from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.pickers import MarkPicker
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.position import PositionBar
from replay_tui.tui.widgets.timeline import Timeline
from tests.conftest import T0, k8s_object, op_for, write_session
from tests.test_tui_app import SIZE, notices, type_text, until
from tests.test_tui_fixture import CONFLICT_SEQ, OPS, SCALE_SEQ, make_fixture

ROOT = Path(__file__).resolve().parent.parent


def dbg(app: ReplayApp) -> Any:
    """The debugger: the screen that owns the cursor."""
    return getattr(app, "debugger", app)


async def settled(pilot: Any, app: ReplayApp, seq: int | None = None) -> None:
    await until(pilot, lambda: dbg(app).detail is not None and dbg(app).detail.seq == dbg(app).seq
                and (seq is None or dbg(app).seq == seq), what=f"the panes at op {seq}")
    await pilot.pause()


def screen_lines(app: ReplayApp) -> list[str]:
    """The characters on the screen, line by line (what a user reads)."""
    svg = app.export_screenshot()
    lines: dict[str, list[str]] = {}
    for y, chunk in re.findall(r'<text[^>]*y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        lines.setdefault(y, []).append(chunk.replace("&#160;", " ").replace("&amp;", "&")
                                       .replace("&lt;", "<").replace("&gt;", ">"))
    return ["".join(parts) for _, parts in sorted(lines.items(), key=lambda kv: float(kv[0]))]


def screen(app: ReplayApp) -> str:
    return "\n".join(screen_lines(app))


def cursor_row(app: ReplayApp) -> str:
    """The timeline row drawn as the cursor's (highlighted)."""
    tl = app.query_one(Timeline)
    y = tl.selected - round(tl.scroll_y) + 1
    assert 1 <= y < tl.size.height, "the cursor row is off screen"
    return tl.render_line(y).text


def visible_rows(app: ReplayApp) -> list[str]:
    tl = app.query_one(Timeline)
    return [tl.render_line(y).text for y in range(1, tl.size.height)]


async def jump(pilot: Any, app: ReplayApp, where: str) -> None:
    await pilot.press("colon")
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the jump prompt")
    await type_text(pilot, where)
    await pilot.press("enter")


async def filter_by(pilot: Any, app: ReplayApp, text: str) -> None:
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the filter prompt")
    app.screen.query_one(Input).value = text
    await pilot.press("enter")


# --- 1: NO_COLOR ---------------------------------------------------------------------------

async def test_1_no_color_draws_every_tab_and_dialog(fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await jump(pilot, app, str(SCALE_SEQ))
        await settled(pilot, app, SCALE_SEQ)
        for tab in "12345":
            await pilot.press(tab)
            await pilot.pause(0.1)
            assert f"op {SCALE_SEQ} of {OPS}" in screen(app)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert "jump (:) accepts" in screen(app)
        await pilot.press("escape")
        assert app.is_running


# --- 2 and 3: the cursor under a filter -----------------------------------------------------

async def test_2_under_a_filter_the_highlighted_row_is_the_cursors_op(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await jump(pilot, app, "5")
        await settled(pilot, app, 5)
        await filter_by(pilot, app, "status=4xx")  # one match: op 6
        await until(pilot, lambda: "1 match" in screen(app) and "scanning" not in screen(app),
                    what="the filter's count")
        await settled(pilot, app)
        here = dbg(app).seq
        await pilot.press("l", "l")  # to ops the filter hides
        await settled(pilot, app, here + 2)
        assert f"op {here + 2} of" in screen(app)
        assert re.search(rf"\b{here + 2} \d\d:", cursor_row(app)), cursor_row(app)  # that op's row, not a match's


async def test_3_the_cursor_never_moves_by_itself_when_a_scan_finishes(
        fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replay_tui.engine import query

    real_scan = query.scan

    async def slow_scan(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.6)  # a million-op scan, in small
        return await real_scan(*args, **kwargs)

    monkeypatch.setattr(query, "scan", slow_scan)
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await filter_by(pilot, app, "verb:update")  # matches 4, 6, 8
        await pilot.press("l", "l")  # while the scan runs
        await settled(pilot, app, 3)
        await until(pilot, lambda: "3 matches" in screen(app) and "scanning" not in screen(app),
                    what="the scan's end")
        await pilot.pause(0.3)
        assert dbg(app).seq == 3
        assert "op 3 of" in screen(app)


# --- 4: resizing -----------------------------------------------------------------------------

async def test_4_shrinking_the_window_keeps_the_cursor_row_on_screen(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        tl = app.query_one(Timeline)
        target = tl.size.height - 2  # the last row on screen
        for _ in range(target - 1):
            await pilot.press("j")
        await settled(pilot, app, target)
        await pilot.resize_terminal(160, 30)
        await pilot.pause(0.3)
        assert any(re.match(rf"\W*{target} \d\d:", row) for row in visible_rows(app)), visible_rows(app)


# --- 5: diff against a mark -----------------------------------------------------------------

async def test_5_a_diff_against_a_mark_reads_earlier_to_later_once(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await jump(pilot, app, "12")
        await settled(pilot, app, 12)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "later"
        await pilot.press("enter")
        await jump(pilot, app, "2")  # the cursor before the mark
        await settled(pilot, app, 2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, MarkPicker), what="the mark picker")
        await pilot.press("end", "enter")  # by position: start, conflict, later
        await until(pilot, lambda: "whole state" in dbg(app).query_one("#diff").body_text
                    and "computing" not in dbg(app).query_one("#diff").body_text, what="the whole-state diff")
        text = dbg(app).query_one("#diff").body_text
        assert "op 2 → op 12" in text
        assert "~ .spec.replicas: 1 → 3" in text  # earlier to later, like the whole state below it
        assert "+ ConfigMap/shop/web-config" in text  # created between op 2 and op 12
        assert "3 → 1" not in text
        assert "to the cursor" not in text


# --- 6: Home/End in a focused pane -------------------------------------------------------------

async def test_6_end_and_home_scroll_a_focused_state_pane(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await settled(pilot, app, 1)
        await jump(pilot, app, str(SCALE_SEQ))
        await settled(pilot, app, SCALE_SEQ)
        state = dbg(app).query_one("#state")
        await until(pilot, lambda: state.max_scroll_y > 0, what="a state pane longer than the screen")
        state.focus()
        await pilot.press("end")
        await until(pilot, lambda: state.scroll_y == state.max_scroll_y or dbg(app).seq != SCALE_SEQ)
        assert dbg(app).seq == SCALE_SEQ
        await pilot.press("home")
        await until(pilot, lambda: state.scroll_y == 0 or dbg(app).seq != SCALE_SEQ)
        assert dbg(app).seq == SCALE_SEQ


# --- 7: the filter error caret ------------------------------------------------------------------

@pytest.mark.parametrize("text", ["status>>4", "bogus=1", "kind=Pod latency>abc"])
async def test_7_the_filter_error_caret_sits_under_the_bad_token(fixture_db: Path, text: str) -> None:
    with pytest.raises(FilterError) as err:
        parse(text)
    column = err.value.column
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await filter_by(pilot, app, text)
        await pilot.pause(0.1)
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        typed = prompt.query_one(Input).content_region.x  # where the first character of the text is drawn
        error = prompt.query_one(".prompt-error", Static)
        line = str(error.render())
        assert "^" in line
        assert error.content_region.x + line.index("^") == typed + column - 1


# --- 8: ctrl+c -----------------------------------------------------------------------------------

async def test_8_ctrl_c_says_how_to_quit_without_markup(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("ctrl+c")
        await until(pilot, lambda: "to quit" in screen(app), timeout=3, what="the hint on screen")
        assert "[b]" not in screen(app) and "[/b]" not in screen(app)


# --- 9: a read is not a create ---------------------------------------------------------------------

async def test_9_a_read_or_watch_event_that_first_shows_an_object_is_not_a_create(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("l")  # op 2: the watch event that first shows Deployment web
        await settled(pilot, app, 2)
        state = dbg(app).query_one("#state").body_text
        assert "first seen at this op" in state and "created" not in state
        await pilot.press("2")
        await pilot.pause(0.1)
        diff = dbg(app).query_one("#diff").body_text
        assert "first seen at this op" in diff and "created" not in diff
        await jump(pilot, app, "10")  # the create of the ConfigMap
        await settled(pilot, app, 10)
        assert "created by this op" in dbg(app).query_one("#diff").body_text


# --- 10: unknown latency ----------------------------------------------------------------------------

@pytest.fixture
def untimed_db(tmp_path: Path) -> Path:
    """A trace without latency, as Sieve imports are (one-second timestamps, no durations)."""
    path = tmp_path / "sieve.db"
    cm = k8s_object("ConfigMap", "c", data={"a": "1"})
    cm2 = k8s_object("ConfigMap", "c", data={"a": "2"}, rv=2)
    ops = [op_for("create", cm, status=201, request=cm, response=cm), op_for("added", cm, response=cm),
           op_for("get", cm, response=cm), op_for("update", cm2, request=cm2, response=cm2),
           op_for("modified", cm2, response=cm2), op_for("get", cm2, response=cm2)]
    for i, op in enumerate(ops):
        op.duration_ns = 0
        op.ts_ns = T0 + i * 1_000_000_000
    write_session(path, ops, name="sieve", source="sieve")
    return path


async def test_10_unknown_latency_is_shown_as_unknown(untimed_db: Path) -> None:
    app = ReplayApp(str(untimed_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        text = screen(app)
        assert "0ns" not in text
        assert re.search(r"\b1 \S+ create .* 201 .*\s-\s*$", visible_rows(app)[0]), visible_rows(app)[0]
        op = dbg(app).query_one("#op").body_text
        assert re.search(r"latency\s+- ", op) and "not recorded" in op
        await pilot.press("l")
        await settled(pilot, app, 2)
        assert "watch events have no latency" in dbg(app).query_one("#op").body_text
        await pilot.press("3")
        await until(pilot, lambda: "operations 6" in dbg(app).query_one("#stats").body_text, what="statistics")
        stats = dbg(app).query_one("#stats").body_text
        assert "0ns" not in stats and "no timing data" in stats
        await pilot.press("4")
        await until(pilot, lambda: "SLOW OPERATIONS" in screen(app), what="the analysis")
        text = screen(app)
        assert "0ns" not in text
        assert "no timing data" in text.split("SLOW OPERATIONS")[1]


# --- 11: the session picker ----------------------------------------------------------------------------

async def test_11_the_session_picker_moves_with_j_and_k(tmp_path: Path) -> None:
    from replay_tui.engine.store import Recording
    from replay_tui.tui.screens.pickers import SessionPicker

    db = make_fixture(tmp_path / "two.db", second=True)
    rec = await Recording.open(db)
    infos = await rec.sessions()
    await rec.close()
    app = ReplayApp(str(db), sessions=infos, persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionPicker), what="the session picker")
        await pilot.pause(0.1)
        await pilot.press("j", "k", "j", "enter")  # down, up, down: the second session
        await settled(pilot, app, 1)
        assert "session second" in screen(app)


# --- 12: themes ---------------------------------------------------------------------------------------

def _luminance(c: RichColor) -> float:
    r, g, b = c.get_truecolor()

    def ch(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)


def contrast(fg: RichColor, bg: RichColor) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def unreadable(widget: Any, minimum: float = 3.0) -> list[str]:
    """Text drawn on screen with too little contrast to its background."""
    width, height = widget.size
    bad = []
    for strip in widget.render_lines(Region(0, 0, width, height)):
        for seg in strip:
            style = seg.style
            if not seg.text.strip():
                continue
            if style is None or style.color is None or style.bgcolor is None:  # left to the terminal's
                bad.append(f"{seg.text.strip()!r} has no theme colour")
                continue
            fg, bg = (style.bgcolor, style.color) if style.reverse else (style.color, style.bgcolor)
            ratio = contrast(fg, bg)
            if ratio < minimum:
                bad.append(f"{seg.text.strip()!r} {ratio:.1f}:1")
    return bad


async def test_12_a_light_theme_chosen_at_run_time_recolours_the_bar_and_the_timeline(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await jump(pilot, app, str(CONFLICT_SEQ))
        await settled(pilot, app, CONFLICT_SEQ)
        app.theme = "textual-light"
        await pilot.pause(0.3)
        bar, timeline = dbg(app).query_one(PositionBar), dbg(app).query_one(Timeline)
        problems = unreadable(bar) + unreadable(timeline)
        assert problems == [], "; ".join(problems)


def test_12_no_hex_colours_in_widgets_screens_or_yamltext() -> None:
    hexes = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")
    found = []
    for path in [*sorted((ROOT / "tui" / "widgets").glob("*.py")), *sorted((ROOT / "tui" / "screens").glob("*.py")),
                 ROOT / "tui" / "yamltext.py"]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if hexes.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}")
    assert found == []


# --- 13: the report never overwrites silently ----------------------------------------------------------

async def test_13_R_asks_before_overwriting_a_file(fixture_db: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the report prompt")
        name = app.screen.query_one(Input).value
        target = tmp_path / name
        target.write_text("keep me")
        await pilot.press("enter")
        await pilot.pause(1.0)
        assert target.read_text() == "keep me"
        assert "already exists" in screen(app)
        await pilot.press("n")
        await pilot.pause(0.5)
        assert target.read_text() == "keep me"


# --- 14: the screenshot command ------------------------------------------------------------------------

async def test_14_the_screenshot_command_saves_where_it_says(fixture_db: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()  # no Downloads folder in it
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await type_text(pilot, "Screenshot")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: list(work.glob("*.svg")), timeout=5, what="a screenshot file")
        saved = next(work.glob("*.svg"))
        await until(pilot, lambda: str(saved) in notices(app) or saved.name in notices(app),
                    what="a notice naming the file")


# --- issue 13, in the debugger: hostile text, and errors that end "computing..." ------------------------

HOSTILE_NAME = "web\x1b]0;pwned\x07[b]x[/b]\u202eevil"


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    """Names, a user, a status message and a value carrying terminal escapes, markup and a bidi override."""
    path = tmp_path / "hostile.db"
    cm = k8s_object("ConfigMap", HOSTILE_NAME, data={"k\x1b[2J": "v\x07\x1b[31mred", "note": "[red]x[/red]"})
    cm2 = k8s_object("ConfigMap", HOSTILE_NAME, data={"k\x1b[2J": "w\x07", "note": "[red]x[/red]"}, rv=2)
    ops = [op_for("create", cm, status=201, request=cm, response=cm, actor="user\x07[i]me[/i]",
                  duration_ns=2_000_000),
           op_for("update", cm2, status=409, reason="Conflict\x1b[5m", message="bad\x1b]0;title\x07 [b]msg[/b]",
                  request=cm2, duration_ns=3_000_000),
           op_for("update", cm2, request=cm2, response=cm2, duration_ns=3_000_000),
           op_for("get", cm2, response=cm2, duration_ns=1_000_000)]
    write_session(path, ops, name="s\x1b[1mhostile")
    return path


def assert_no_raw_controls(text: str) -> None:
    raw = sorted({f"U+{ord(c):04X}" for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0
                  or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"})
    assert raw == [], f"raw control characters on screen: {raw}"


async def test_13_recorded_text_never_reaches_the_terminal_raw_nor_as_markup(hostile_db: Path) -> None:
    app = ReplayApp(str(hostile_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        seen = []
        for key, seq in (("", 1), ("l", 2), ("l", 3)):
            if key:
                await pilot.press(key)
            await settled(pilot, app, seq)
            for tab in "12":
                await pilot.press(tab)
                await pilot.pause(0.1)
                seen.append(screen(app))
        await pilot.press("3")
        await until(pilot, lambda: "operations 4" in screen(app), what="statistics")
        seen.append(screen(app))
        await pilot.press("4")
        await until(pilot, lambda: "ERROR PATTERNS" in screen(app), what="the analysis")
        seen.append(screen(app))
        await pilot.press("o")
        await until(pilot, lambda: "objects at op" in screen(app), what="the object picker")
        await pilot.press("down", "space", "down", "space")
        await pilot.pause(0.2)
        seen.append(screen(app))
        text = "\n".join(seen)
        assert_no_raw_controls(text)
        assert "\\x1b]0;pwned\\x07[b]x[/b]\\u202eevil" in text  # escaped, and the markup shown as typed
        assert "[i]me[/i]" in text and "[b]msg[/b]" in text and "[red]x[/red]" in text
        assert "\\x1b[2J" in text


async def test_13_a_read_error_ends_computing_in_every_tab(fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replay_tui.engine import analysis, stats
    from replay_tui.engine.schema import RecordingError

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecordingError(f"{fixture_db}: the recording is corrupted at op 3")

    monkeypatch.setattr(stats, "compute", broken)
    monkeypatch.setattr(analysis, "analyze", broken)
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("3")
        await until(pilot, lambda: "corrupted at op 3" in screen(app), timeout=8, what="the statistics error")
        assert "computing" not in screen(app)
        await pilot.press("4")
        await until(pilot, lambda: "corrupted at op 3" in screen(app), timeout=8, what="the analysis error")
        assert "computing" not in screen(app)


async def test_13_a_read_error_at_the_cursor_shows_in_the_panes(fixture_db: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from replay_tui.engine.schema import RecordingError
    from replay_tui.engine.store import Session

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)

        async def broken(self: Session, seq: int) -> Any:
            raise RecordingError(f"{fixture_db}: the recording is corrupted at op {seq}")

        monkeypatch.setattr(Session, "op", broken)
        await pilot.press("G")  # the ops beside the cursor may have been read ahead; the last needs a read
        await until(pilot, lambda: f"op {OPS} could not be read" in dbg(app).query_one("#op").body_text,
                    what="the operation pane's error")
        assert f"corrupted at op {OPS}" in dbg(app).query_one("#state").body_text
        assert f"op {OPS} of {OPS}" in screen(app)
