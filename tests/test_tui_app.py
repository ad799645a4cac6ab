"""Pilot tests of the debugger: every key and flow a user relies on, on a real recording.

Each test drives ``ReplayApp`` headless at 160x45 and checks what a user would
see: the position bar, the rows of the timeline, the panes, notifications.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine.schema import RecordingError
from replay_tui.tui.app import ReplayApp, run_app
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.pickers import MarkPicker, ObjectPicker, SessionPicker
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.position import PositionBar
from replay_tui.tui.widgets.timeline import Timeline
from tests.conftest import T0, file_digest, k8s_object, op_for, write_session
from tests.test_tui_fixture import (
    CONFLICT_SEQ,
    OPS,
    SCALE_SEQ,
    SERVER_ERROR_SEQ,
    SLOW_SEQ,
    make_fixture,
)

SIZE = (160, 45)
ROOT = Path(__file__).resolve().parent.parent


async def until(pilot: Any, cond: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)


def bar(app: ReplayApp) -> str:
    return app.query_one(PositionBar).text


def rows(app: ReplayApp) -> list[str]:
    """The timeline as the user sees it, header first."""
    tl = app.query_one(Timeline)
    return [tl.render_line(y).text for y in range(tl.size.height)]


def pane(app: ReplayApp, name: str) -> str:
    return app.query_one(f"#{name}").body_text  # type: ignore[attr-defined]


async def ready(pilot: Any, app: ReplayApp, seq: int | None = None) -> None:
    """The cursor is at ``seq`` (any, when None) and every pane shows it."""
    await until(pilot, lambda: app.debugger.detail is not None and app.debugger.detail.seq == app.debugger.seq
                and (seq is None or app.debugger.seq == seq), what=f"detail at {seq}")
    await pilot.pause()


def notices(app: ReplayApp) -> str:
    return "\n".join(text for _, text in app.notices)


async def type_text(pilot: Any, text: str) -> None:
    for ch in text:
        await pilot.press(ch if ch != " " else "space")


# --- opening ------------------------------------------------------------------------

async def test_opens_the_only_session_at_the_first_op(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        assert f"op 1 of {OPS}" in bar(app)
        assert "session operator" in bar(app)
        assert "22:13:20" in bar(app)  # the first op's time, UTC
        lines = rows(app)
        assert "SEQ" in lines[0] and "VERB" in lines[0] and "LATENCY" in lines[0]
        assert "list" in lines[1] and "Deployment/shop" in lines[1]
        assert "409 Conflict" in lines[CONFLICT_SEQ]
        assert "LIST" in pane(app, "op")


async def test_a_file_with_several_sessions_opens_the_picker(tmp_path: Path) -> None:
    db = make_fixture(tmp_path / "two.db", second=True)
    from replay_tui.engine.store import Recording
    rec = await Recording.open(db)
    infos = await rec.sessions()
    await rec.close()
    app = ReplayApp(str(db), sessions=infos)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionPicker), what="session picker")
        await pilot.press("down", "enter")
        await ready(pilot, app, 1)
        assert "session second" in bar(app)
        assert "op 1 of 2" in bar(app)
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, SessionPicker))
        await pilot.press("up", "enter")
        await until(pilot, lambda: "session operator" in bar(app))


async def test_session_option_opens_that_session(tmp_path: Path) -> None:
    db = make_fixture(tmp_path / "two.db", second=True)
    app = ReplayApp(str(db), "second")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        assert "session second" in bar(app)


def test_bad_path_or_session_is_a_one_line_error_before_any_screen(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such file"):
        run_app(str(tmp_path / "missing.db"), None, follow=False)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all, not even close")
    with pytest.raises(RecordingError, match="not an SQLite database"):
        run_app(str(junk), None, follow=False)
    db = make_fixture(tmp_path / "fx.db")
    with pytest.raises(RecordingError, match="no session 'nope'"):
        run_app(str(db), "nope", follow=False)


def test_cli_reports_a_bad_path_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "replay_tui", str(tmp_path / "missing.db")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "no such file" in proc.stderr


# --- stepping and moving --------------------------------------------------------------------

async def test_step_keys_move_one_op_and_repaint(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("l", "right", "l")
        await ready(pilot, app, SCALE_SEQ)
        assert f"op {SCALE_SEQ} of {OPS}" in bar(app)
        assert "UPDATE" in pane(app, "op") and "Deployment.apps/shop/web" in pane(app, "op")
        await pilot.press("h", "left")
        await ready(pilot, app, 2)
        await pilot.press("j", "down", "j")
        await ready(pilot, app, 5)
        await pilot.press("k", "up")
        await ready(pilot, app, 3)
        await pilot.press("h", "h", "h", "h")  # clamps at the first op
        await ready(pilot, app, 1)
        await pilot.press("pagedown")
        await until(pilot, lambda: app.debugger.seq > 10)
        await pilot.press("pageup")
        await ready(pilot, app, 1)


async def test_first_and_last(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("G")
        await ready(pilot, app, OPS)
        assert f"op {OPS} of {OPS}" in bar(app)
        assert any(f" {OPS} " in line for line in rows(app))  # the last row is on screen
        await pilot.press("l")  # clamps at the last op
        await ready(pilot, app, OPS)
        await pilot.press("g")
        await ready(pilot, app, 1)
        await pilot.press("end")
        await ready(pilot, app, OPS)
        await pilot.press("home")
        await ready(pilot, app, 1)


async def test_holding_a_step_key_ends_on_the_last_position(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        for _ in range(40):
            await pilot.press("l")
        await ready(pilot, app, 41)
        await pilot.pause(0.2)
        assert app.debugger.detail is not None and app.debugger.detail.seq == 41
        assert "op 41 of" in bar(app)


async def test_clicking_a_row_moves_the_cursor(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        tl = app.query_one(Timeline)
        await pilot.click(Timeline, offset=(20, 7))
        await ready(pilot, app, 7)
        assert tl.selected == 6


# --- jumping ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seq", [
    ("12", 12), ("#15", 15), ("50%", OPS // 2), ("100%", OPS), ("22:13:30", 11), ("+5s", 6),
    ("2023-11-14T22:13:25Z", 6), ("conflict", CONFLICT_SEQ), ("start", 1),
])
async def test_jump_in_every_form(fixture_db: Path, text: str, seq: int) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await type_text(pilot, text)
        await pilot.press("enter")
        await ready(pilot, app, seq)
        assert f"op {seq} of {OPS}" in bar(app)


@pytest.mark.parametrize("text, message", [
    ("nowhere", "cannot jump to 'nowhere'"), ("9999", "out of range"), ("150%", "not between 0% and 100%"),
    ("25:99", "bad time of day"),
    # a time outside the session, as a seq out of range: the notification gives the session's time range
    ("+1h", "'+1h' is outside the session's time: its ops run from 2023-11-14 22:13:20.000000Z to"
            " 2023-11-14 22:17:39.000000Z (+0s to +4m19.000s)"),
    ("12:00:00", "'12:00:00' is outside the session's time"),
])
async def test_bad_jump_is_a_notification_not_a_crash(fixture_db: Path, text: str, message: str) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("l")
        await ready(pilot, app, 2)
        await pilot.press("colon")
        await type_text(pilot, text)
        await pilot.press("enter")
        await until(pilot, lambda: message in notices(app), what=message)
        assert app.debugger.seq == 2
        assert ("error", next(t for _, t in app.notices if message in t)) in app.notices


async def test_escape_cancels_a_jump(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("colon", "5", "escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, PromptScreen)
        assert app.debugger.seq == 1


# --- errors and reconciles ----------------------------------------------------------------------

async def test_next_and_previous_error(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("e")
        await ready(pilot, app, CONFLICT_SEQ)
        assert "409" in pane(app, "op") and "Conflict" in pane(app, "op")
        await pilot.press("e")
        await ready(pilot, app, SERVER_ERROR_SEQ)
        await pilot.press("e")
        await until(pilot, lambda: "no error after" in notices(app))
        assert app.debugger.seq == SERVER_ERROR_SEQ
        await pilot.press("E")
        await ready(pilot, app, CONFLICT_SEQ)


async def test_next_and_previous_reconcile(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("right_square_bracket")
        await ready(pilot, app, 3)
        assert "#1 web" in pane(app, "op")
        await pilot.press("right_square_bracket")
        await ready(pilot, app, 6)
        assert "ops 6..8" in pane(app, "op")
        await pilot.press("left_square_bracket")
        await ready(pilot, app, 3)
        lines = rows(app)
        assert "┌" in lines[3] and "└" in lines[4]  # the span is drawn as a bracket


# --- filter ------------------------------------------------------------------------------------

async def test_filter_narrows_the_timeline_and_esc_clears_it(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await type_text(pilot, "verb:update")
        await pilot.press("enter")
        await until(pilot, lambda: "filter verb:update 3 matches" in bar(app) and "scanning" not in bar(app))
        assert app.debugger.seq == 1  # the cursor stays on its op: a dim row among the matches
        assert "cursor op not in filter" in bar(app)
        body = [line for line in rows(app)[1:] if line.strip()]
        assert len(body) == 4 and " 1 " in body[0] and all("update" in line for line in body[1:])
        await pilot.press("j")  # rows are the matches: j goes to the first
        await ready(pilot, app, SCALE_SEQ)
        body = [line for line in rows(app)[1:] if line.strip()]
        assert len(body) == 3 and all("update" in line for line in body)  # the cursor's own row is gone
        await pilot.press("j")
        await ready(pilot, app, 6)
        await pilot.press("j", "j")  # stays on the last match
        await ready(pilot, app, 8)
        await pilot.press("l")  # a step still moves one op in time, even one the filter hides
        await ready(pilot, app, 9)
        assert "not in filter" in bar(app)
        await pilot.press("k")
        await ready(pilot, app, 8)
        await pilot.press("escape")
        await until(pilot, lambda: app.debugger.nav is not None and not app.debugger.nav.source.filtered)
        assert app.debugger.nav.source.count == OPS and app.debugger.seq == 8
        assert "filter" not in bar(app)


@pytest.mark.parametrize("text, expected", [
    ("status:4xx", [CONFLICT_SEQ]), ("kind:ConfigMap verb:get", [15, 16]),
    ("ns:shop name:web-config verb:delete", [17]),
    ("error", [CONFLICT_SEQ, SERVER_ERROR_SEQ]), ("latency>1s", [SLOW_SEQ]), ("etcdserver", [15]),
])
async def test_filter_language(fixture_db: Path, text: str, expected: list[int]) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.apply_filter(text)
        await until(pilot, lambda: app.debugger.nav is not None and not app.debugger.nav.source.scanning)
        assert list(app.debugger.nav.source.matches) == expected
        await pilot.press("j")  # from the cursor's row (op 1, hidden by the filter) to the first match
        await ready(pilot, app, expected[0])


async def test_changed_filter_lists_exactly_the_ops_that_changed_the_field(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.apply_filter("changed=.spec.replicas")
        await until(pilot, lambda: app.debugger.nav is not None and not app.debugger.nav.source.scanning)
        assert app.debugger.nav is not None
        matches = list(app.debugger.nav.source.matches)
        assert SCALE_SEQ in matches and CONFLICT_SEQ not in matches
        await pilot.press("j")
        await ready(pilot, app, matches[0])  # on a match: every row is one
        tl = app.query_one(Timeline)
        await until(pilot, lambda: all(tl.row_at(i) is not None for i in range(len(matches))))
        assert [tl.row_at(i).seq for i in range(len(matches))] == matches  # type: ignore[union-attr]
        lines = [line for line in rows(app)[1:] if line.strip()]
        assert len(lines) == len(matches)  # the rows are those ops, not the SQL superset
        assert all(f" {seq} " in line for seq, line in zip(matches, lines))


async def test_bad_filter_keeps_the_prompt_open_and_points_at_the_token(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("slash")
        await type_text(pilot, "verb:update colour:red")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, PromptScreen)
        error = app.screen.query_one(".prompt-error").content
        assert "unknown field 'colour'" in str(error)
        assert "^" in str(error)  # under 'colour' (test_tui_defects checks the column on screen)
        await pilot.press("escape")
        assert app.debugger.nav is not None and not app.debugger.nav.source.filtered


async def test_filter_with_no_match_says_so(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.apply_filter("kind:Secret")
        await until(pilot, lambda: "no op matches" in notices(app))
        assert app.debugger.seq == 1


# --- marks and diffs ------------------------------------------------------------------------------

async def test_marks_are_kept_beside_the_state_not_in_the_recording(fixture_db: Path, state_dir: Path) -> None:
    before = file_digest(fixture_db)
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("l", "l", "l", "l")
        await ready(pilot, app, 5)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await type_text(pilot, "here")  # replaces the suggested name, which starts selected
        await pilot.press("enter")
        await until(pilot, lambda: "mark 'here' set at op 5" in notices(app))
        assert "◆ here" in bar(app)
        assert rows(app)[5].startswith("◆")
        await pilot.press("g")
        await ready(pilot, app, 1)
        await pilot.press("apostrophe")
        await until(pilot, lambda: isinstance(app.screen, MarkPicker))
        options = app.screen.query_one("OptionList")
        names = [options.get_option_at_index(i).id for i in range(options.option_count)]  # type: ignore[attr-defined]
        assert names == ["start", "here", "conflict"]  # by position: the recording's and yours
        await pilot.press("down", "enter")
        await ready(pilot, app, 5)
        await pilot.press("g", "colon")
        await type_text(pilot, "here")
        await pilot.press("enter")
        await ready(pilot, app, 5)
    assert file_digest(fixture_db) == before
    saved = list((state_dir / "marks").glob("*.json"))
    assert len(saved) == 1 and '"here"' in saved[0].read_text()
    # the next run finds the mark again
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("here")
        await ready(pilot, app, 5)


async def test_unknown_mark_and_no_marks_are_notifications(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    cm = k8s_object("ConfigMap", "c")
    write_session(db, [op_for("create", cm, status=201, response=cm), op_for("get", cm, response=cm)])
    app = ReplayApp(str(db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("apostrophe")
        await until(pilot, lambda: "no marks yet" in notices(app))
        await pilot.press("d")
        await until(pilot, lambda: notices(app).count("no marks yet") == 2)
        app.debugger.jump_to("ghost")
        await until(pilot, lambda: "cannot jump to 'ghost'" in notices(app))


async def test_diff_against_a_mark_shows_the_object_and_the_whole_state(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("l")
        await ready(pilot, app, 2)  # web added with 1 replica
        app.debugger.set_mark("before", 2)
        app.debugger.jump_to("12")
        await ready(pilot, app, 12)  # a get of web: 3 replicas, 3 ready; a ConfigMap exists since 10
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, MarkPicker))
        await pilot.press("down", "enter")  # start, before, conflict: pick "before"
        await until(pilot, lambda: "whole state, op 2 → op 12" in pane(app, "diff"), what="state diff")
        text = pane(app, "diff")
        assert "op 2 → op 12   (from mark 'before' to the cursor, earlier to later)" in text
        assert "~ .spec.replicas: 1 → 3" in text
        assert "~ .status.readyReplicas: 0 → 3" in text
        assert "1 created" in text and "+ ConfigMap/shop/web-config" in text
        assert "diff vs 'before'" in bar(app)
        assert app.query_one("TabbedContent").active == "tab-diff"  # type: ignore[attr-defined]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, MarkPicker))
        await pilot.press("home", "enter")  # back to this op's own diff
        await until(pilot, lambda: "before → after" in pane(app, "diff"))
        assert "diff vs" not in bar(app)


async def test_state_pane_highlights_what_this_op_changed(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to(str(SCALE_SEQ))
        await ready(pilot, app, SCALE_SEQ)
        state = pane(app, "state")
        assert "Deployment.apps/shop/web" in state
        assert "this op changed 2 fields" in state
        assert "~   replicas: 3" in state
        assert "~   generation: 3" in state
        assert "  kind: Deployment" in state  # unchanged lines are not marked
        await pilot.press("2")
        diff = pane(app, "diff")
        assert "~ .spec.replicas: 1 → 3" in diff
        await pilot.press("1")
        app.debugger.jump_to(str(CONFLICT_SEQ))  # a failed write changes nothing
        await ready(pilot, app, CONFLICT_SEQ)
        assert "unchanged by this op" in pane(app, "state")
        app.debugger.jump_to("18")  # the ConfigMap was deleted at 17
        await ready(pilot, app, 18)
        assert "deleted by op 17" in pane(app, "state")


async def test_object_picker_pins_any_object_that_exists_here(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("12")
        await ready(pilot, app, 12)
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ObjectPicker))
        picker = app.screen
        assert isinstance(picker, ObjectPicker)
        assert sorted(str(k) for k in picker.keys.values()) == ["ConfigMap/shop/web-config",
                                                              "Deployment.apps/shop/web"]
        cm_id = next(i for i, k in picker.keys.items() if k.kind == "ConfigMap")
        picker.dismiss(cm_id)
        dbg = app.debugger
        await until(pilot, lambda: dbg.detail is not None and dbg.detail.pinned and dbg.detail.seq == 12)
        assert "ConfigMap/shop/web-config" in pane(app, "state") and "pinned" in pane(app, "state")
        assert "pinned ConfigMap/shop/web-config" in bar(app)
        await pilot.press("l")  # stepping keeps the pinned object
        await ready(pilot, app, 13)
        assert dbg.detail is not None and dbg.detail.key is not None and dbg.detail.key.kind == "ConfigMap"


async def test_noise_fields_fold_and_unfold(tmp_path: Path) -> None:
    db = tmp_path / "noise.db"
    obj = k8s_object("ConfigMap", "c", data={"a": "1"},
                     managedFields=[{"manager": "kubectl", "operation": "Update"}])
    obj["metadata"]["managedFields"] = obj.pop("managedFields")
    write_session(db, [op_for("create", obj, status=201, response=obj)])
    app = ReplayApp(str(db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        assert "managedFields: (1 entries hidden: z shows them)" in pane(app, "state")
        await pilot.press("z")
        await until(pilot, lambda: "manager: kubectl" in pane(app, "state"))


# --- help and the command palette ------------------------------------------------------------------

async def test_help_lists_every_key(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            listed = dict(app.screen.bindings)  # type: ignore[attr-defined]
            for keys, description in [("e / E", "Next / previous error (among the rows shown)"),
                                      ("] / [", "Next / previous reconcile"), ("/", "Filter"),
                                      ("m / ' / M", "Set a mark / go to one / list them to rename, delete"),
                                      ("d / D", "Diff vs a mark / between any two points"),
                                      ("f", "Follow"), (":", "Jump"), ("q", "Quit"),
                                      ("^o / ^n", "Back to where a jump came from / forward again")]:
                assert listed.get(keys) == description
            assert listed["→, l / ←, h"] == "Step forward / back one op in time"
            assert listed["↓, j / ↑, k"] == "Next / previous row (under a filter: match)"
            assert listed["g, Home / G, End"] == "First / last row"
            # every binding's keys are on some row
            from replay_tui.tui.screens.keys import bindings, keys_of
            rows = " ".join(listed)
            assert all(keys_of(b) in rows for b in bindings() if not b.id.startswith("replay.tab-")), rows
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_command_palette_runs_any_action(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for action in ("Step", "Back", "Jump", "Next error", "Previous error", "Next reconcile",
                       "Previous reconcile", "Filter", "Back out of a search, zoom, object timeline, filter", "Mark",
                       "Go to mark", "Diff vs mark", "Follow", "Pick object",
                       "Switch session, or compare one beside this", "Help", "Quit", "First row", "Last row",
                       "Back to where the last jump came from", "This object's own timeline (Esc: all ops)",
                       "Marks: jump, rename, delete", "Serve the cursor's state to kubectl (again: stop)"):
            assert action in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await type_text(pilot, "Next error")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await ready(pilot, app, CONFLICT_SEQ)


async def test_quit(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("q")
        await pilot.pause(0.1)
    assert app.return_code == 0


# --- statistics and analysis ------------------------------------------------------------------------

async def test_stats_panel_shows_the_session_and_follows_the_cursor(fixture_db: Path) -> None:
    pytest.importorskip("replay_tui.engine.stats")
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("3")
        await until(pilot, lambda: app.debugger.jobs["stats"].data is not None, what="stats")
        await pilot.pause(0.1)
        text = pane(app, "stats")
        assert f"operations {OPS:,}" in text
        assert "errors     2" in text
        assert "p50" in text and "p95" in text and "p99" in text
        assert "verb mix" in text
        before = pane(app, "stats")
        app.debugger.jump_to(str(OPS))
        await ready(pilot, app, OPS)
        await pilot.pause(0.1)
        if app.debugger.jobs["stats"].data and app.debugger.jobs["stats"].data.get("timeline"):
            assert pane(app, "stats") != before  # the cursor moved along the sparkline


async def test_analysis_findings_jump_to_their_op(fixture_db: Path) -> None:
    pytest.importorskip("replay_tui.engine.analysis")
    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("4")
        await until(pilot, lambda: app.debugger.jobs["analysis"].data is not None, what="analysis")
        panel = app.query_one("AnalysisPanel")
        assert panel.option_count > 0  # type: ignore[attr-defined]
        targets = panel.targets  # type: ignore[attr-defined]
        if targets:
            oid, seq = next(iter(targets.items()))
            panel.focus()
            panel.highlighted = panel.get_option_index(oid)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await ready(pilot, app, seq)


# --- follow -------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from replay_tui.engine.format import Operation
    from replay_tui.engine.writer import RecordingWriter
    T0 = %d
    with RecordingWriter(sys.argv[1]) as w:
        s = w.session("live", "proxy")
        def op(i):
            s.append(Operation(verb="get", kind="ConfigMap", api_version="v1", namespace="default",
                               name=f"c{i}", status=200, ts_ns=T0 + i * 1_000_000_000, duration_ns=1_000_000,
                               response={"kind": "ConfigMap", "apiVersion": "v1",
                                         "metadata": {"name": f"c{i}", "namespace": "default"}}))
        for i in range(int(sys.argv[2])):
            op(i)
        s.flush()
        print("ready", flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "add":
                start = s.seq
                for i in range(start, start + int(cmd[1])):
                    op(i)
                s.flush()
                print("added", time.time(), flush=True)
            elif cmd[0] == "close":
                s.close()
                print("closed", flush=True)
                break
""") % T0


class Writer:
    """Another process appending to a live session, one command at a time."""

    def __init__(self, db: Path, initial: int):
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(initial)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    async def send(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return (await asyncio.to_thread(self.proc.stdout.readline)).strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


async def test_follow_picks_up_ops_written_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    writer = Writer(db, 5)
    try:
        app = ReplayApp(str(db), follow=True)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app, 5)
            assert "● LIVE" in bar(app) and "op 5 of 5" in bar(app)
            reply = await writer.send("add 3")
            assert reply.startswith("added")
            await ready(pilot, app, 8)  # the cursor stays on the newest op
            assert "op 8 of 8" in bar(app)
            assert any(" 8 " in line and "c7" in line for line in rows(app))
            await pilot.press("h", "h")  # looking back: new ops arrive without moving the cursor
            await ready(pilot, app, 6)
            await writer.send("add 2")
            await until(pilot, lambda: "op 6 of 10" in bar(app), what="growth while looking back")
            assert app.debugger.seq == 6
            await pilot.press("G")
            await ready(pilot, app, 10)
            await pilot.press("f")  # stop following
            await until(pilot, lambda: "LIVE" not in bar(app))
            await writer.send("add 1")
            await pilot.pause(0.4)
            assert "of 10" in bar(app)
            await pilot.press("f")  # follow again: catches up and goes to the end
            await ready(pilot, app, 11)
            assert "● LIVE" in bar(app)
            await writer.send("close")
            await until(pilot, lambda: "FOLLOW" in bar(app), what="ended badge")
    finally:
        writer.stop()


async def test_follow_with_a_filter_adds_new_matches(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    writer = Writer(db, 5)
    try:
        app = ReplayApp(str(db), follow=True)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app, 5)
            app.debugger.apply_filter("name:c1*")
            await until(pilot, lambda: app.debugger.nav is not None and list(app.debugger.nav.source.matches) == [2])
            await writer.send("add 8")  # c5..c12: c10, c11, c12 match
            await until(pilot, lambda: list(app.debugger.nav.source.matches) == [2, 11, 12, 13], what="new matches")  # type: ignore[union-attr]
    finally:
        writer.stop()


async def test_follow_picks_the_session_being_recorded(tmp_path: Path) -> None:
    db = make_fixture(tmp_path / "mixed.db")  # one closed session
    writer = Writer(db, 3)  # and one still recording
    try:
        from replay_tui.engine.store import Recording
        rec = await Recording.open(db)
        infos = await rec.sessions()
        await rec.close()
        app = ReplayApp(str(db), follow=True, sessions=infos)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app, 3)
            assert "session live" in bar(app) and "● LIVE" in bar(app)
    finally:
        writer.stop()


async def test_empty_live_session_waits_for_its_first_op(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    writer = Writer(db, 0)
    try:
        app = ReplayApp(str(db), follow=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "has no operations" in notices(app))
            for key in ("l", "h", "G", "g", "e", "right_square_bracket", "m", "d", "o"):
                await pilot.press(key)
            await pilot.pause(0.1)
            assert app.debugger.seq == 0 and "op - of 0" in bar(app)
            assert "no operations yet" in rows(app)[2]
            await writer.send("add 2")
            await ready(pilot, app, 2)
            assert "+1.000s" in bar(app)  # elapsed counts from the first op, found on the way
    finally:
        writer.stop()


# --- trouble -------------------------------------------------------------------------------------------

async def test_a_locked_or_lost_recording_is_a_notification(fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replay_tui.engine.store import Session

    app = ReplayApp(str(fixture_db))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)

        async def locked(self: Session, seq: int) -> Any:
            raise RecordingError(f"{fixture_db}: the recording is locked by another process (try again)")

        monkeypatch.setattr(Session, "op", locked)
        await pilot.press("G")  # the ops beside the cursor may have been read ahead; the last needs a read
        await until(pilot, lambda: "locked by another process" in notices(app))
        assert app.debugger.seq == OPS and app.is_running
        monkeypatch.undo()
        await pilot.press("h")
        await ready(pilot, app, OPS - 1)
        # the file vanishes under us: reads that still work keep working, none crashes the app
        os.unlink(fixture_db)
        await pilot.press("l", "e", "G")
        await pilot.pause(0.3)
        assert app.is_running


async def test_what_the_screen_draws_reads_at_4_5_to_1_in_every_builtin_theme(fixture_db: Path) -> None:
    """The README's 4.5:1, measured on the cells drawn: timeline rows plain, failed (tinted), the
    cursor's, the cursor on a failed row, with the timeline focused and not; and the tab labels
    (Textual's own inactive ones are $foreground 50%: 2.0-3.5:1 on light themes)."""
    from textual.color import Color
    from textual.theme import BUILTIN_THEMES
    from textual.widgets import Tab

    from replay_tui.tui import theme
    from tests.test_tui_fixture import CONFLICT_SEQ

    def cells(strip: Any) -> list[tuple[float, str]]:
        out = []
        for seg in strip:
            style = seg.style
            if not seg.text.strip() or style is None or style.color is None or style.bgcolor is None:
                continue
            if style.color.triplet is None or style.bgcolor.triplet is None:
                continue  # a terminal colour (the ansi themes)
            out.append((theme.contrast(Color(*style.color.triplet), Color(*style.bgcolor.triplet)), seg.text))
        return out

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        timeline = app.query_one(Timeline)
        worst: dict[str, tuple[float, str, str]] = {}
        for name in sorted(BUILTIN_THEMES):
            app.theme = name
            for focused in (True, False):
                if focused:
                    timeline.focus()
                else:
                    app.screen.set_focus(None)
                await pilot.pause(0.05)
                drawn = []
                for cursor in (0, CONFLICT_SEQ - 1):  # the cursor on a plain row, then on the failed one
                    timeline.select(cursor)
                    timeline.palette_changed()
                    for y in (1, 3, CONFLICT_SEQ):  # the first row (seq 1), a plain one, the failed op
                        drawn += cells(timeline.render_line(y))
                for tab in app.screen.query(Tab):
                    style = tab.rich_style
                    if style.color is not None and style.color.triplet and style.bgcolor is not None \
                            and style.bgcolor.triplet:
                        drawn.append((theme.contrast(Color(*style.color.triplet), Color(*style.bgcolor.triplet)),
                                      f"tab {tab.label_text}"))
                if drawn:
                    ratio, text = min(drawn)
                    worst[f"{name}{'' if focused else ' (blurred)'}"] = (ratio, text, name)
        assert len(worst) == 2 * (len(BUILTIN_THEMES) - 2)  # all but the two terminal (ansi) themes
        low = {where: (round(ratio, 2), text) for where, (ratio, text, _) in worst.items() if ratio < 4.5}
        assert low == {}
