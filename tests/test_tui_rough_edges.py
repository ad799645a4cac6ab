"""The rough edges of issue 14, each driven as a user meets it: wrapped text, long names, huge
values, focus, keys that say what they do, brackets under a filter, a small terminal, the help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.timeline import Timeline
from tests.conftest import k8s_object, op_for, write_session
from tests.test_tui_app import SIZE, notices, until
from tests.test_tui_defects import dbg, screen, settled, visible_rows
from tests.test_tui_fixture import CONFLICT_SEQ

LONG_NAME = "reporter-" + "x" * 90 + "-replica-7f9c"
CERT = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t" * 120  # 4,320 characters of base64


@pytest.fixture
def big_db(tmp_path: Path) -> Path:
    """A Secret-like ConfigMap with a huge value and a long name, and a long status message."""
    path = tmp_path / "big.db"
    cm = k8s_object("ConfigMap", LONG_NAME, data={"tls.crt": CERT, "mode": "a"})
    cm2 = k8s_object("ConfigMap", LONG_NAME, data={"tls.crt": CERT, "mode": "b"}, rv=2)
    message = "admission webhook denied the request: " + "the configuration is not valid because " * 4
    write_session(path, [op_for("create", cm, status=201, request=cm, response=cm, duration_ns=1_000_000),
                         op_for("update", cm2, status=422, reason="Invalid", message=message, request=cm2,
                                duration_ns=1_000_000)], name="big")
    return path


async def test_wrapped_lines_continue_under_their_value_not_at_column_0(big_db: Path) -> None:
    app = ReplayApp(str(big_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("l")
        await settled(pilot, app, 2)
        lines = dbg(app).query_one("#op").lines
        first = next(i for i, line in enumerate(lines) if line.startswith("message"))
        assert lines[first + 1].startswith(" " * 10) and lines[first + 1][10] != " "  # under the message


async def test_long_names_keep_their_end_and_the_object_column_leaves_room(big_db: Path) -> None:
    app = ReplayApp(str(big_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        header = dbg(app).query_one(Timeline).render_line(0).text
        assert header.index("STATUS") - header.index("OBJECT") < 80  # not ~100 columns of one field
        assert "RECONCILE" in header
        row = visible_rows(app)[0]
        assert "-replica-7f9c" in row and "…" in row  # the part that tells objects apart is kept


async def test_huge_values_are_folded_until_z_or_enter(big_db: Path) -> None:
    app = ReplayApp(str(big_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        state = dbg(app).query_one("#state")
        assert "characters folded: z shows them" in state.body_text and CERT not in state.body_text
        await pilot.press("z")
        await until(pilot, lambda: CERT in state.body_text, what="the value unfolded")
        state.focus()
        await pilot.press("enter")  # Enter in the focused State pane folds it back
        await until(pilot, lambda: CERT not in state.body_text, what="the value folded again")


async def test_a_focused_pane_shows_it(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        state = dbg(app).query_one("#state")
        before = next(iter(state.render_line(0))).style.bgcolor
        await pilot.press("tab", "tab")  # timeline -> operation pane -> the tab's content
        await until(pilot, lambda: dbg(app).focused is state, what="the state pane focused")
        await pilot.pause(0.1)
        assert next(iter(state.render_line(0))).style.bgcolor != before  # tinted while it has the focus


async def test_x_outside_the_watches_tab_says_what_it_does(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("x")
        await until(pilot, lambda: "no watched fields" in notices(app), what="a hint")
        await pilot.press("l", "l", "l")
        await settled(pilot, app, 4)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = ".spec.replicas"
        await pilot.press("enter")
        await until(pilot, lambda: dbg(app).watches is not None and len(dbg(app).watches) == 1)
        await pilot.press("x")  # in the State tab: shows where watches are removed
        await until(pilot, lambda: "in the Watches tab" in notices(app), what="the hint")
        assert dbg(app).query_one("TabbedContent").active == "tab-watches"
        await pilot.press("x")  # nothing highlighted yet
        await until(pilot, lambda: "highlight a watch" in notices(app))
        panel = dbg(app).query_one("#watches")
        panel.highlighted = 1
        await pilot.press("x")
        await until(pilot, lambda: len(dbg(app).watches) == 0, what="the watch removed")


async def test_reconcile_brackets_hold_under_a_filter(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        dbg(app).apply_filter("verb:update")  # 4 (span 3..4), 6 and 8 (span 6..8)
        await until(pilot, lambda: "3 matches" in screen(app) and "scanning" not in screen(app))
        await pilot.press("j")
        await settled(pilot, app, 4)
        await pilot.pause(0.2)
        rows = {int(r.split()[1]): r for r in visible_rows(app) if r.strip() and r.split()[1].isdigit()}
        assert rows[4][1] == "╶" and rows[6][1] == "┌" and rows[8][1] == "└", rows


async def test_80x24_shows_every_tab_label_and_the_keys_that_matter(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("e")
        await settled(pilot, app, CONFLICT_SEQ)
        lines = [line.rstrip() for line in screen(app).splitlines()]
        assert any(all(t in line for t in ("State", "Diff", "Stats", "Analysis", "Watches")) for line in lines)
        assert "? Help" in lines[-1] and "q Quit" in lines[-1] and "^p Commands" in lines[-1]
        assert "operator" in lines[0]  # the session name stays on the bar


async def test_help_describes_every_key_and_the_mouse(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_text(app)
        for needle in ("x, Delete", "Tab / shift+Tab", "ctrl+q", "mouse", "click a timeline row", "wheel",
                       "stop watching one", "Unfold/fold", "^o / ^n", "Back to where a jump came from"):
            assert needle in text, needle
        # on a 160x45 terminal the keys, the jump forms and the filter language are on the first screen
        first = screen(app)
        assert "Back to where a jump came from" in first and "jump (:) accepts" in first and "reason:Conflict" in first


def help_text(app: Any) -> str:
    """The help screen's text (it scrolls: all of it), the key table included."""
    from rich.table import Table
    from textual.widgets import Static

    parts = []
    for w in app.screen.query(Static):
        if isinstance(w.content, Table):  # the jump forms and the more-keys: a row per line
            parts += [" ".join(str(c) for c in row) for row in zip(*(col._cells for col in w.content.columns))]
        else:
            parts.append(str(w.content))
    return "\n".join(parts) + "\n" + "\n".join(f"{k} {d}" for k, d in app.screen.bindings)


async def test_a_flood_of_follow_ticks_is_coalesced(fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A followed session growing faster than the screen repaints costs one repaint per frame, not
    one per poll: at most one tick waits in the queue, and its handler reads the latest end."""
    import asyncio

    from replay_tui.engine import follow
    from replay_tui.tui.screens.debugger_core import DebuggerCore

    async def flood(session: Any, **_: Any) -> Any:
        for _ in range(300):  # 300 polls that each saw a new op, faster than the screen takes them
            yield session.last
        await asyncio.sleep(0.3)

    handled = []
    real = DebuggerCore.on_follow_tick

    def counting(self: Any, message: Any) -> None:
        handled.append(message)
        real(self, message)

    monkeypatch.setattr(follow, "follow", flood)
    monkeypatch.setattr(DebuggerCore, "on_follow_tick", counting)
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        await pilot.press("f")
        await until(pilot, lambda: not dbg(app).running("follow"), what="the flood's end")
        await pilot.pause(0.2)
        assert 1 <= len(handled) < 100, len(handled)


async def test_a_failed_read_of_timeline_rows_is_told_through_the_one_failure_path(
        fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replay_tui.engine.schema import RecordingError
    from replay_tui.tui.control.source import TimelineSource

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)

        async def broken(self: Any, page: int) -> Any:
            raise RecordingError(f"{fixture_db}: the recording is corrupted at op 201")

        monkeypatch.setattr(TimelineSource, "fetch_page", broken)
        await pilot.press("G")  # the last page was never read
        await until(pilot, lambda: "timeline: " in notices(app) and "corrupted at op 201" in notices(app),
                    what="the error, named for the timeline")
        assert app.is_running


async def test_the_mouse_as_the_help_and_readme_describe_it(fixture_db: Path) -> None:
    """A click on a key at the bottom runs it; the wheel scrolls the timeline without moving the
    cursor; a click on a row goes there; a click on a tab opens it."""
    from textual.events import MouseScrollDown
    from textual.widgets import Tab

    from replay_tui.tui.widgets.keybar import KeyBar

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 1)
        bar = dbg(app).query_one(KeyBar)
        x = bar.text.index("e Next error")
        await pilot.click(KeyBar, offset=(x + 1, 0))
        await settled(pilot, app, CONFLICT_SEQ)
        timeline = dbg(app).query_one(Timeline)
        await pilot._post_mouse_events([MouseScrollDown] * 5, Timeline, offset=(20, 5))
        await until(pilot, lambda: timeline.scroll_y > 0, what="the timeline scrolled by the wheel")
        assert dbg(app).seq == CONFLICT_SEQ
        await pilot.click(Timeline, offset=(20, 3))
        await until(pilot, lambda: dbg(app).seq == round(timeline.scroll_y) + 3, what="the clicked row")
        tabs = list(dbg(app).query(Tab))
        await pilot.click(tabs[2])  # Stats
        await until(pilot, lambda: dbg(app).query_one("TabbedContent").active == "tab-stats")


async def test_a_filter_shows_the_cursors_neighbours_first_and_they_stay_put_while_the_scan_reaches_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long session under a filter: the scan starts at the cursor's window, so the rows around
    the cursor are drawn after one window, and the matches found before them later do not move
    what is on screen (the view moves with the rows) or leave it undrawn."""
    import asyncio

    from replay_tui.tui.control import source as source_mod
    from tests.conftest import simple_ops
    from tests.test_tui_app import ready, rows

    monkeypatch.setattr(source_mod, "SCAN_WINDOW", 64)
    back = asyncio.Event()  # the windows before the cursor's wait until the rows after it are checked
    scan = source_mod.TimelineSource.scan

    async def held(self: Any, flt: Any, after: int, upto: int) -> list[int]:
        if upto <= 1500 - 32:
            await back.wait()
        return await scan(self, flt, after, upto)

    monkeypatch.setattr(source_mod.TimelineSource, "scan", held)
    db = tmp_path / "long.db"
    write_session(db, simple_ops(2000, error_every=2), name="long")
    app = ReplayApp(str(db), persist_marks=False)
    async with app.run_test(size=(160, 60)) as pilot:  # the cursor's window does not fill the timeline
        await ready(pilot, app, 1)
        app.debugger.goto(1500, center=True, jump=True)
        await ready(pilot, app, 1500)
        src = app.debugger.nav.source
        app.debugger.apply_filter("status=409")
        await until(pilot, lambda: src.filtered and src.scanned_to >= 2000 and "..." not in "".join(rows(app)),
                    what="the rows after the cursor's window")
        shown = rows(app)
        assert src.scanned_from > 0  # drawn before the scan reached back to the start
        assert any("1500" in line for line in shown)
        back.set()
        await until(pilot, lambda: not src.scanning, what="the scan to the start")
        await pilot.pause()
        assert rows(app) == shown  # the same rows on the same lines: the view moved with them
        assert src.count == 1000 and src.prepended > 0
