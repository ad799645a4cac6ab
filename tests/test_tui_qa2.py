"""What a new user met trying every key of the README's debugger section (QA round 2), each
driven as that user met it: a list focused with Tab, a mark renamed under a diff, a bar with more
to say than the terminal is wide, the help on an 80-column terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from textual.widgets import Static

from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.pickers import MarksScreen, PickList
from replay_tui.tui.widgets.analysispanel import AnalysisPanel
from replay_tui.tui.widgets.watchpanel import WatchPanel
from tests.test_tui_app import SIZE, bar, ready, until
from tests.test_tui_defects import screen_lines
from tests.test_tui_fixture import CONFLICT_SEQ
from tests.test_tui_hunt import WEB_OPS, answer


async def focus(pilot: Any, app: ReplayApp, widget: Any) -> None:
    """Tab until ``widget`` has the focus, as a keyboard user gets there."""
    for _ in range(4):
        if app.focused is widget:
            return
        await pilot.press("tab")
        await pilot.pause()
    assert app.focused is widget


async def test_enter_on_the_analysis_tab_reached_with_tab_jumps_to_the_first_finding(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("4")
        await until(pilot, lambda: app.debugger.jobs["analysis"].data is not None
                    and app.debugger.jobs["cycles"].data is not None, timeout=20, what="analysis")
        await pilot.pause()
        panel = app.query_one(AnalysisPanel)
        await focus(pilot, app, panel)
        assert panel.highlighted is not None  # focused: the first finding is highlighted, not nothing
        target = panel.targets[panel.get_option_at_index(panel.highlighted).id or ""]
        assert target != 1
        await pilot.press("enter")
        await ready(pilot, app, target)


async def test_x_on_the_watches_tab_reached_with_tab_stops_the_watch(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to(str(WEB_OPS[0]))
        await ready(pilot, app, WEB_OPS[0])
        assert app.debugger.detail is not None and app.debugger.detail.obj_id is not None
        app.debugger.add_watch(app.debugger.detail.obj_id, ".spec.replicas")
        await until(pilot, lambda: app.debugger.watches is not None and len(app.debugger.watches) == 1,
                    what="the watch")
        await pilot.press("5")
        panel = app.query_one(WatchPanel)
        await focus(pilot, app, panel)
        await pilot.press("x")
        await until(pilot, lambda: len(app.debugger.watches) == 0, what="the watch removed")


async def test_a_diff_against_a_mark_follows_its_rename_and_ends_when_it_is_deleted(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.set_mark("mine", WEB_OPS[0])
        app.debugger.jump_to(str(CONFLICT_SEQ))
        await ready(pilot, app, CONFLICT_SEQ)
        app.debugger.pick_diff_mark("mine")
        await until(pilot, lambda: "diff vs 'mine'" in bar(app), what="the diff against 'mine'")

        async def marks_list(name: str) -> PickList:
            await pilot.press("M")
            await until(pilot, lambda: isinstance(app.screen, MarksScreen))
            ol = app.screen.query_one(PickList)
            ol.highlighted = ol.get_option_index(name)
            return ol

        await marks_list("mine")
        await pilot.press("r")
        await answer(pilot, app, "found-it")
        await until(pilot, lambda: isinstance(app.screen, MarksScreen) and "found-it" in
                    [str(o.id) for o in app.screen.options()])
        await pilot.press("escape")
        await ready(pilot, app, CONFLICT_SEQ)
        assert "diff vs 'found-it'" in bar(app) and "'mine'" not in bar(app)
        ends = app.debugger.diff_ends
        assert ends is not None and ends[0].name == "found-it"

        await marks_list("found-it")
        await pilot.press("x")
        await until(pilot, lambda: "found-it" not in [str(o.id) for o in app.screen.options()])
        await pilot.press("escape")
        await ready(pilot, app, CONFLICT_SEQ)
        assert app.debugger.diff_ends is None and "diff vs" not in bar(app)  # never a mark that is gone


async def test_a_bar_wider_than_the_terminal_ends_in_an_ellipsis(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app, 1)
        app.debugger.set_mark("a-mark-with-a-name-long-enough-to-run-past-the-edge-of-the-bar", 1)
        await pilot.pause(0.2)
        first = screen_lines(app)[0].rstrip()
        assert first.endswith("…") and "◆ a-mark-with" in first
        assert bar(app).endswith("…") and len(bar(app)) <= 80


async def test_the_help_on_80_columns_wraps_each_text_under_itself(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await pilot.press("end")
        await pilot.pause(0.3)
        lines: list[str] = []
        for static in app.screen.query(Static):
            lines += ["".join(seg.text for seg in strip)
                      for strip in static.render_lines(static.region.reset_offset)]
        # what the keys below do, wrapped at 80 columns: each continuation stays in the text's column
        for start in ("tab: go to a link", "one ", "says how to quit", "bottom: run it"):
            assert not any(line.startswith(start) for line in lines), (start, lines)
        mouse = next(i for i, line in enumerate(lines) if line.lstrip().startswith("mouse "))
        after = lines[mouse + 1]  # the mouse's text, too long for 80 columns, goes on under itself
        assert after.startswith(" " * 10) and after.strip() and not after.strip().startswith(("x,", "ctrl"))


async def test_keys_typed_in_one_burst_after_colon_all_reach_the_jump(fixture_db: Path) -> None:
    """`:` `1` `0` Enter arriving together (a fast typist, a paste, tmux send-keys): the digits were
    sent before the prompt showed, so they went to the timeline and were lost; the jump went nowhere."""
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        for key, char in (("colon", ":"), ("1", "1"), ("0", "0"), ("enter", "\r")):
            app.post_message(events.Key(key, char))  # queued at once, as a terminal delivers a burst
        await ready(pilot, app, 10)
        assert app.debugger._tab() == "state"  # the digit went to the prompt, not to the tab keys


async def test_statistics_that_arrived_while_their_tab_was_hidden_are_drawn_to_the_tabs_width(
        fixture_db: Path) -> None:
    """The bars and sparklines are sized to the pane: figures computed before the Stats tab was
    ever shown (no width yet) are drawn again once it has one, not left at a guessed width."""
    from replay_tui.tui.widgets.statspanel import StatsPanel, render_stats

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await until(pilot, lambda: app.debugger.jobs["stats"].data is not None, what="statistics")
        panel = app.query_one(StatsPanel)
        await pilot.press("3")
        await until(pilot, lambda: panel.size.width > 0, what="the Stats tab laid out")
        await pilot.pause()
        want = render_stats(panel.data or {}, panel.cursor_ts, panel._width() + 1).plain.split("\n")
        assert [line.plain for line in panel._source] == want
        assert all(len(line.plain) <= panel._width() for line in panel._source)  # so none wraps
