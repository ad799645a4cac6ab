"""Pilot tests of the hunting keys (issue 17): each drives the keys and asserts what the screen shows.

Jump history (ctrl+o / ctrl+n and the bar), an object's own timeline (t, its header, Esc), a
causality cycle's rounds in the Why tab, yank (y / Y / #) and the pager (v), search in a pane
(ctrl+f, n / N), a diff between any two points (D; side by side when wide), the marks list (M)
and marks on the scrollbar, field columns (+, -, T) and the field's trend in the bar, e / E
under a filter and the expected-errors setting (!), pane zoom (Z), the user's keymap file, and
an interrupted followed session's badge.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Input, SelectionList

from replay_tui.engine import liveness
from replay_tui.engine.store import Recording
from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.pickers import ColumnsScreen, MarksScreen
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.diffpane import DiffPane
from replay_tui.tui.widgets.keybar import KeyBar
from replay_tui.tui.widgets.objectheader import ObjectHeader
from replay_tui.tui.widgets.statepane import StatePane
from replay_tui.tui.widgets.timeline import Timeline
from replay_tui.tui.widgets.whypanel import WhyPanel
from tests.conftest import k8s_object, op_for, simple_ops, status_body, write_session
from tests.test_causality import Script, healthy, widget_loop
from tests.test_tui_app import SIZE, bar, notices, pane, ready, rows, until
from tests.test_tui_fixture import CONFLICT_SEQ, OPS, SCALE_SEQ, SERVER_ERROR_SEQ, make_fixture

WEB_OPS = [2, 3, 4, 5, 6, 7, 8, 9, 12]  # the ops of Deployment/shop/web in the fixture


async def answer(pilot: Any, app: ReplayApp, text: str) -> None:
    """Type ``text`` into the prompt that opens, and accept it."""
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="a prompt")
    app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(app.screen, PromptScreen), what="the prompt to close")


async def at_the_scale(pilot: Any, app: ReplayApp) -> None:
    """Wait for the first paint, then jump to the fixture's scale of Deployment/shop/web."""
    await ready(pilot, app, 1)
    app.debugger.jump_to(str(SCALE_SEQ))
    await ready(pilot, app, SCALE_SEQ)


def seqs_shown(app: ReplayApp) -> list[int]:
    """The seqs of the timeline's rows on screen (after the mark and the reconcile bracket)."""
    out = []
    for line in rows(app)[1:]:
        seq = next((t for t in line[:14].split() if t.isdigit()), None)
        if seq is not None:
            out.append(int(seq))
    return out


# --- jump history ------------------------------------------------------------------------------------

async def test_ctrl_o_goes_back_along_the_jumps_and_ctrl_n_forward(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("l", "l")  # steps are not jumps
        await ready(pilot, app, 3)
        assert "^o" not in bar(app)
        await pilot.press("e")  # a jump: 3 -> 6
        await ready(pilot, app, CONFLICT_SEQ)
        assert "^o ← op 3" in bar(app)
        app.debugger.jump_to("100")  # a jump: 6 -> 100
        await ready(pilot, app, 100)
        await pilot.press("G")  # a jump: 100 -> the end
        await ready(pilot, app, OPS)
        assert "^o ← op 100" in bar(app)
        for back in (100, CONFLICT_SEQ, 3):
            await pilot.press("ctrl+o")
            await ready(pilot, app, back)
        assert "^n → op 6" in bar(app) and "^o" not in bar(app).split("│")[2]
        await pilot.press("ctrl+o")
        await until(pilot, lambda: "no jump to go back from" in notices(app))
        assert app.debugger.seq == 3
        for forward in (CONFLICT_SEQ, 100, OPS):
            await pilot.press("ctrl+n")
            await ready(pilot, app, forward)
        await pilot.press("ctrl+o")
        await ready(pilot, app, 100)
        assert "^n → op 260" in bar(app)
        app.debugger.jump_to("50")  # a new jump clears what was forward
        await ready(pilot, app, 50)
        assert "^n" not in bar(app) and "^o ← op 100" in bar(app)


# --- an object's own timeline ------------------------------------------------------------------------

async def test_t_narrows_to_the_object_with_a_header_and_esc_returns_at_the_same_op(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await at_the_scale(pilot, app)
        await pilot.press("t")
        header = app.query_one(ObjectHeader)
        await until(pilot, lambda: app.debugger.summary is not None and app.debugger.summary.complete
                    and not app.debugger.nav.source.scanning,
                    what="the object's ops and header")
        await pilot.pause()
        assert seqs_shown(app) == WEB_OPS  # its requests, its watch events; not the ConfigMap, not the list
        text = header.text
        assert "OBJECT  Deployment.apps/shop/web" in text
        assert "3 versions, ops 2..8" in text and "2 by reconciler web" in text
        assert "1 first seen in a watch event or read" in text
        assert ".spec.replicas ×1" in text and ".status.readyReplicas ×1" in text
        assert "resourceVersion" not in text  # bookkeeping is left out
        assert "object Deployment.apps/shop/web: 9 ops" in bar(app)
        assert app.debugger.seq == SCALE_SEQ
        await pilot.press("j", "j")
        await ready(pilot, app, CONFLICT_SEQ)  # row by row: the object's next ops
        await pilot.press("escape")
        await until(pilot, lambda: app.debugger.scope is None)
        await ready(pilot, app, CONFLICT_SEQ)
        assert header.text == "" and "object " not in bar(app)
        assert seqs_shown(app)[:3] == [1, 2, 3]  # every op again, the cursor on the same op
        await pilot.press("j")
        await ready(pilot, app, CONFLICT_SEQ + 1)


async def test_t_shows_the_objects_versions_at_once_while_its_writers_and_fields_are_read(
        fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header's index-read part comes first; the writers and fields (which read every version's
    row: seconds at ten million ops) follow without holding it back."""
    import asyncio

    from replay_tui.tui.control import objectview

    release = asyncio.Event()
    summarize = objectview.summarize

    async def slow(ses: Any, obj_id: int, *first: Any) -> Any:
        await release.wait()
        return await summarize(ses, obj_id, *first)

    monkeypatch.setattr(objectview, "summarize", slow)
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await at_the_scale(pilot, app)
        await pilot.press("t")
        header = app.query_one(ObjectHeader)
        await until(pilot, lambda: "3 versions" in header.text, what="the overview")
        assert "ops 2..8" in header.text and "reading who wrote them" in header.text
        assert "fields changed counting..." in header.text and "by reconciler" not in header.text
        release.set()
        await until(pilot, lambda: "2 by reconciler web" in header.text, what="the whole header")
        assert "counting" not in header.text and ".spec.replicas ×1" in header.text


async def test_t_on_an_op_with_no_object_says_so(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)  # a list
        await pilot.press("t")
        await until(pilot, lambda: "no object at the cursor" in notices(app))
        assert app.debugger.scope is None


async def test_e_under_the_object_timeline_finds_its_errors_only(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("10")  # the ConfigMap
        await ready(pilot, app, 10)
        await pilot.press("t")
        await until(pilot, lambda: app.debugger.scope is not None)
        await pilot.press("e")
        await ready(pilot, app, SERVER_ERROR_SEQ)  # its 500, not the Deployment's 409 before it
        await pilot.press("E")
        await until(pilot, lambda: "no error before op 15 among the ops shown" in notices(app))


# --- a causality cycle's rounds ------------------------------------------------------------------------

@pytest.fixture
def loop_db(tmp_path: Path) -> Path:
    """A healthy operator beside a widget whose status write re-triggers its reconcile, 30 times."""
    s = Script()
    healthy(s)
    widget_loop(s, 30)
    path = tmp_path / "loop.db"
    write_session(path, s.steps)
    return path


async def test_enter_on_a_cycle_lists_its_rounds_in_the_why_tab(loop_db: Path) -> None:
    app = ReplayApp(str(loop_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("4")
        await until(pilot, lambda: app.debugger.jobs["cycles"].data is not None, timeout=20, what="cycles")
        await pilot.pause()
        from replay_tui.tui.widgets.analysispanel import AnalysisPanel

        panel = app.query_one(AnalysisPanel)
        oid = next(iter(panel.cycles))
        panel.focus()
        panel.highlighted = panel.get_option_index(oid)
        await pilot.press("enter")
        why = app.query_one(WhyPanel)
        await until(pilot, lambda: app.debugger._tab() == "why" and why.mode == "cycle", what="the Why tab")
        cycle = app.debugger.jobs["cycles"].data[0]
        first = cycle["rounds_sample"][0]
        await ready(pilot, app, first["write_seq"])
        assert "CAUSALITY CYCLE widgets Widget/default/w" in why.text
        assert f"▶ round 1   write op {first['write_seq']}" in why.text
        third = cycle["rounds_sample"][2]
        assert app.focused is why
        why.highlighted = why.get_option_index("round-2")
        await pilot.press("enter")
        await ready(pilot, app, third["write_seq"])
        assert f"▶ round 3   write op {third['write_seq']}" in why.text
        await pilot.press("ctrl+o")  # back to the first round
        await ready(pilot, app, first["write_seq"])


async def test_the_why_chain_reads_further_back_past_its_last_link(loop_db: Path) -> None:
    """A long chain is read 16 links at a time: Enter on its last row (or p past the last link) reads more."""
    app = ReplayApp(str(loop_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("G")
        last = app.debugger.last
        await ready(pilot, app, last)
        await pilot.press("p")
        why = app.query_one(WhyPanel)
        await until(pilot, lambda: app.debugger.walk is not None and why.mode == "provenance", what="the chain")
        assert "the chain goes on: Enter (or p past the last link) reads further back" in why.text
        first = len(app.debugger.walk.chain.links)
        why.focus()
        why.highlighted = why.get_option_index("extend")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.debugger.walk.chain.links) > first, what="a longer chain")
        await until(pilot, lambda: f" {first + 1} " in why.text)
        assert f"{len(app.debugger.walk.chain.links)} links, newest first" in why.text


# --- copy and hand off ----------------------------------------------------------------------------------

async def test_y_Y_and_hash_copy_the_object_the_op_and_its_reference(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await at_the_scale(pilot, app)
        await pilot.press("y")
        await until(pilot, lambda: "copied Deployment.apps/shop/web at op 4 as YAML" in notices(app))
        copied = yaml.safe_load(app.clipboard)
        assert copied["spec"]["replicas"] == 3 and copied["kind"] == "Deployment"
        assert app.debugger.detail is not None and copied == app.debugger.detail.obj  # whole, nothing folded
        await pilot.press("Y")
        await until(pilot, lambda: "copied op 4 (update) as JSON" in notices(app))
        op = json.loads(app.clipboard)
        assert op["verb"] == "update" and op["request"]["spec"]["replicas"] == 3 and op["response"]["kind"]
        await pilot.press("number_sign")
        await until(pilot, lambda: app.clipboard == "4 Deployment.apps/shop/web")
        app.debugger.jump_to("1")  # a list: no object to copy
        await ready(pilot, app, 1)
        await pilot.press("y")
        await until(pilot, lambda: "no object at op 1: Y copies the operation" in notices(app))


async def test_v_opens_the_object_in_the_pager_with_the_app_suspended(fixture_db: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen.yaml"
    pager = tmp_path / "pager.sh"
    pager.write_text(f"#!/bin/sh\ncp \"$1\" {seen}\n")
    pager.chmod(0o755)
    monkeypatch.setenv("PAGER", str(pager))
    app = ReplayApp(str(fixture_db), persist_marks=False)
    suspended: list[bool] = []

    @contextlib.contextmanager
    def suspend() -> Any:  # a headless test has no terminal to give the pager; the tmux test does it for real
        suspended.append(True)
        yield

    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(app, "suspend", suspend)
        await at_the_scale(pilot, app)
        await pilot.press("v")
        await until(pilot, lambda: "shown in" in notices(app))
        assert suspended and yaml.safe_load(seen.read_text())["spec"]["replicas"] == 3
        assert not [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("replay-tui-*.yaml")
                    if p.stat().st_mtime > seen.stat().st_mtime - 5]  # the temporary file is gone
        monkeypatch.setenv("PAGER", str(tmp_path / "missing-pager"))
        await pilot.press("V")
        await until(pilot, lambda: "cannot open op 4 (update) as JSON in" in notices(app))


# --- search in a pane --------------------------------------------------------------------------------

async def test_ctrl_f_finds_in_the_state_pane_and_n_N_move_between_matches(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await at_the_scale(pilot, app)
        state = app.query_one(StatePane)
        await pilot.press("ctrl+f")
        await answer(pilot, app, "web")
        n = len(state.matches)
        assert n >= 3 and state.current == 0  # name, label, ...
        assert f"find 'web' in State: 1/{n} (n / N)" in bar(app)
        row = state.match_row
        assert row is not None and "web" in state.lines[row]
        strip = state.render_line(row - round(state.scroll_y))
        lit = app.console.get_style("replay.search.current")
        assert any(seg.style is not None and seg.style.bgcolor == lit.bgcolor and "web" in seg.text.lower()
                   for seg in strip)  # the current match is highlighted
        await pilot.press("n")
        assert state.current == 1 and f"2/{n}" in bar(app)
        await pilot.press("N", "N")
        assert state.current == n - 1  # wraps around
        await pilot.press("l")  # a new op: the search stays, on the new text
        await ready(pilot, app, SCALE_SEQ + 1)
        assert state.search_query == "web" and state.matches
        await pilot.press("escape")
        assert not state.search_query and "find" not in bar(app)
        await pilot.press("ctrl+f")
        await answer(pilot, app, "no-such-text")
        await until(pilot, lambda: "no match for 'no-such-text'" in notices(app))


async def test_search_finds_in_the_focused_operation_pane(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to(str(CONFLICT_SEQ))
        await ready(pilot, app, CONFLICT_SEQ)
        await pilot.press("tab")  # the operation pane
        await pilot.press("ctrl+f")
        await answer(pilot, app, "Conflict")
        assert "find 'Conflict' in Operation: 1/" in bar(app)


# --- a diff between any two points ----------------------------------------------------------------------

async def test_D_diffs_between_two_ops_side_by_side_when_wide_unified_otherwise(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("9")
        await ready(pilot, app, 9)
        await pilot.press("D")
        await answer(pilot, app, "2 .")  # op 2 and the cursor
        await until(pilot, lambda: "whole state, op 2 → op 9" in pane(app, "diff"), what="the state diff")
        text = pane(app, "diff")
        assert "op 2 → op 9   (from op 2 to the cursor, earlier to later)" in text
        assert "~ .spec.replicas: 1 → 3" in text and "~ .status.readyReplicas: 0 → 3" in text
        assert "--- op 2" in text and "+++ op 9 (the cursor)" in text  # unified: the pane is < 100 columns
        assert "-   replicas: 1\n+   replicas: 3" in text and "@@ lines 4-15 → 4-15 @@" in text
        assert "~ Deployment.apps/shop/web  (3 fields)" in text  # the whole state, each entry expanded
        assert "diff vs op 2" in bar(app)
        # zoomed, the pane is wide: the object side by side
        app.query_one(DiffPane).focus()
        await pilot.press("Z")
        await until(pilot, lambda: "│ op 9 (the cursor)" in pane(app, "diff"), what="side by side")
        lines = app.query_one(DiffPane).lines
        assert any("replicas: 1" in line and "┃" in line and line.rstrip().endswith("replicas: 3") for line in lines)
        await pilot.press("Z")
        # the cursor end follows the cursor; a fixed end does not
        await pilot.press("escape")
        app.debugger.timeline.focus()
        app.debugger.jump_to("5")
        await until(pilot, lambda: "op 2 → op 5" in pane(app, "diff"))
        await pilot.press("D")
        await answer(pilot, app, "conflict 12")  # a recorded mark and an op
        await until(pilot, lambda: "op 6 → op 12   (from mark 'conflict' to op 12" in pane(app, "diff"))
        await pilot.press("D")
        await answer(pilot, app, "")  # back to each op's own diff
        await until(pilot, lambda: "before → after" in pane(app, "diff"))


# --- marks ------------------------------------------------------------------------------------------

async def test_M_lists_marks_to_jump_rename_and_delete_and_the_scrollbar_draws_them(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.set_mark("mine", 200)
        timeline = app.query_one(Timeline)
        size = timeline.vertical_scrollbar.size.height
        ticks = {row: glyph for row, glyph, _ in timeline.ticks(size)}
        assert ticks.get(199 * size // OPS) == "◆" and ticks.get(0) == "◆"  # 'mine', and 'start' at op 1
        drawn = "".join(seg.text for line in timeline.vertical_scrollbar.render_lines(
            timeline.vertical_scrollbar.region.reset_offset) for seg in line)
        assert drawn.count("◆") == len(ticks)  # on the scrollbar itself
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MarksScreen))
        screen = app.screen
        names = [str(o.id) for o in screen.options()]
        assert names == ["start", "conflict", "mine"]
        from replay_tui.tui.screens.pickers import PickList

        ol = screen.query_one(PickList)
        ol.highlighted = 0
        await pilot.press("x")  # the recording's own cannot be deleted
        assert "in the recording: it cannot be deleted" in str(screen.query_one(".picker-error").render())
        ol.highlighted = 2
        await pilot.press("r")
        await answer(pilot, app, "found-it")
        await until(pilot, lambda: isinstance(app.screen, MarksScreen) and "found-it" in
                    [str(o.id) for o in app.screen.options()])
        assert app.debugger.marks.get("found-it").seq == 200 and app.debugger.marks.get("mine") is None
        ol = app.screen.query_one(PickList)
        ol.highlighted = ol.get_option_index("found-it")
        await pilot.press("enter")
        await ready(pilot, app, 200)  # Enter jumps (a jump: ctrl+o comes back)
        assert "◆ found-it" in bar(app)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MarksScreen))
        ol = app.screen.query_one(PickList)
        ol.highlighted = ol.get_option_index("found-it")
        await pilot.press("x")
        await until(pilot, lambda: "found-it" not in [str(o.id) for o in app.screen.options()])
        await pilot.press("escape")
        assert 200 not in timeline.marked and "◆" not in bar(app)


# --- field columns ------------------------------------------------------------------------------------

async def test_a_field_column_shows_the_path_of_each_rows_object_and_the_bar_its_trend(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await at_the_scale(pilot, app)
        await pilot.press("plus")
        await answer(pilot, app, ".spec.replicas")
        timeline = app.query_one(Timeline)
        await until(pilot, lambda: ".spec.replicas" in rows(app)[0] and "…" not in rows(app)[3], what="values")
        lines = rows(app)
        at = lines[0].index(".spec.replicas")

        def value(seq: int) -> str:
            return lines[seq][at:at + 12].strip()

        assert [value(s) for s in (2, 3, 4, 5, 8)] == ["1", "1", "3", "3", "3"]  # right after each op
        assert value(1) == ""  # a list has no object: no value
        extra = timeline.source.extras.rows
        assert extra[4].changed == (True,) and extra[5].changed == (False,) and extra[3].changed == (False,)
        assert set(extra) <= set(range(1, 201))  # read for the page on screen only
        await until(pilot, lambda: ".spec.replicas=3" in bar(app), what="the trend in the bar")
        assert "2 changes" in bar(app)
        await pilot.press("minus")
        await until(pilot, lambda: ".spec.replicas" not in rows(app)[0])
        assert ".spec.replicas=" not in bar(app)


async def test_T_chooses_columns_the_actor_on_the_time_off(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        assert "TIME (UTC)" in rows(app)[0] and "ACTOR" not in rows(app)[0]
        await pilot.press("T")
        await until(pilot, lambda: isinstance(app.screen, ColumnsScreen))
        sl = app.screen.query_one(SelectionList)

        def prompt(value: str) -> str:
            return next(str(sl.get_option_at_index(i).prompt) for i in range(sl.option_count)
                        if sl.get_option_at_index(i).value == value)  # type: ignore[attr-defined]

        assert prompt("actor").startswith("hidden ACTOR") and prompt("time").startswith("shown  TIME")  # in words
        sl.toggle("actor")
        sl.toggle("time")
        await until(pilot, lambda: prompt("actor").startswith("shown  ACTOR"))  # not by colour alone (NO_COLOR)
        await pilot.press("escape")
        await until(pilot, lambda: "ACTOR" in rows(app)[0])
        assert "TIME (UTC)" not in rows(app)[0] and "22:13:20" not in rows(app)[1]


async def test_field_values_are_read_for_the_visible_page_only(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    write_session(db, simple_ops(3000))
    app = ReplayApp(str(db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.add_column(".data.k")
        timeline = app.query_one(Timeline)
        await until(pilot, lambda: 1 in timeline.source.extras.rows, what="values")
        assert max(timeline.source.extras.rows) <= 400  # one or two pages, never the session
        app.debugger.jump_to("2500")
        await ready(pilot, app, 2500)
        await until(pilot, lambda: 2500 in timeline.source.extras.rows, what="values at op 2500")
        assert len(timeline.source.extras.rows) <= 800


# --- errors that matter ---------------------------------------------------------------------------------

@pytest.fixture
def errors_db(tmp_path: Path) -> Path:
    """A 404 get before a create, a 409 retried successfully, and two errors that are not expected."""
    cm = k8s_object("ConfigMap", "cfg", data={"a": "1"})
    cm2 = k8s_object("ConfigMap", "cfg", rv=2, data={"a": "2"})
    other = k8s_object("ConfigMap", "other", data={"a": "1"})
    path = tmp_path / "errors.db"
    write_session(path, [
        op_for("get", cm, status=404, reason="NotFound", response=status_body(404, "NotFound")),           # 1
        op_for("create", cm, status=201, request=cm, response=cm),                                          # 2
        op_for("update", cm2, status=409, reason="Conflict", request=cm2, response=status_body(409, "Conflict")),  # 3
        op_for("get", cm, response=cm),                                                                     # 4
        op_for("update", cm2, request=cm2, response=cm2),                                                   # 5
        op_for("get", other, status=404, reason="NotFound", response=status_body(404, "NotFound")),        # 6
        op_for("update", cm2, status=409, reason="Conflict", request=cm2, response=status_body(409, "Conflict")),  # 7
        op_for("get", cm2, response=cm2),                                                                   # 8
    ])
    return path


async def test_bang_hides_expected_errors_from_e_and_the_count_with_the_rule(errors_db: Path) -> None:
    app = ReplayApp(str(errors_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("e")
        await ready(pilot, app, 3)  # every error, at first
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: "errors 2 of 4 (hiding 2 expected: 404 get before a create · 409 retried OK)"
                    in bar(app), what="the count and the rule")
        timeline = app.query_one(Timeline)
        assert timeline.expected == {1, 3}
        app.debugger.jump_to("1")
        await ready(pilot, app, 1)
        await pilot.press("e")
        await ready(pilot, app, 6)  # a 404 nothing creates after
        await pilot.press("e")
        await ready(pilot, app, 7)  # a 409 never retried
        await pilot.press("e")
        await until(pilot, lambda: "no unexpected error after op 7" in notices(app))
        await pilot.press("E", "E")
        await ready(pilot, app, 6)
        await pilot.press("E")
        await until(pilot, lambda: "no unexpected error before op 6" in notices(app))
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: "errors" not in bar(app))
        await pilot.press("E")
        await ready(pilot, app, 3)


async def test_e_respects_the_filter(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.apply_filter("kind:ConfigMap")
        await until(pilot, lambda: not app.debugger.nav.source.scanning)
        await pilot.press("e")
        await ready(pilot, app, SERVER_ERROR_SEQ)  # the ConfigMap's 500; the Deployment's 409 is filtered out


# --- pane zoom ------------------------------------------------------------------------------------------

async def test_Z_zooms_the_focused_pane_and_back(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        details = app.query_one("#details")
        timeline = app.query_one(Timeline)
        normal = timeline.size.height
        await pilot.press("Z")
        await pilot.pause()
        assert not details.display and timeline.size.height > normal + 15
        await pilot.press("Z")
        await pilot.pause()
        assert details.display and timeline.size.height == normal
        await pilot.press("tab")  # the operation pane
        await pilot.press("Z")
        await pilot.pause()
        op = app.query_one("#op-box")
        assert not app.query_one("#timelines").display and op.size.width > 150
        await pilot.press("escape")  # Esc backs out of a zoom too
        await pilot.pause()
        assert app.query_one("#timelines").display


# --- the keymap -----------------------------------------------------------------------------------------

async def test_a_keymap_file_rebinds_keys_by_id_everywhere_they_are_shown(fixture_db: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text("'replay.jump-back' = 'b'\n'replay.next-error' = ['x', 'ctrl+e']\n'replay.nope' = 'q'\n")
    monkeypatch.setenv("REPLAY_TUI_KEYMAP", str(keymap))
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        assert "no key has the id 'replay.nope'" in notices(app)
        await pilot.press("x")  # next error now
        await ready(pilot, app, CONFLICT_SEQ)
        await pilot.press("b")  # back
        await ready(pilot, app, 1)
        await pilot.press("e")  # e is no longer bound
        await pilot.pause(0.2)
        assert app.debugger.seq == 1
        assert "b Jump back" in app.query_one(KeyBar).text and "x Next error" in app.query_one(KeyBar).text
        titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert titles["Next error"].startswith("key: x")
        await pilot.press("question_mark")
        assert "x, ^e / E" in dict(app.screen.bindings)  # type: ignore[attr-defined]


def test_a_keymap_that_is_not_toml_is_one_line(tmp_path: Path) -> None:
    from replay_tui.tui.control.keymap import load_keymap

    bad = tmp_path / "keymap.toml"
    bad.write_text("replay.step = \n")
    keymap, problems = load_keymap({"replay.step"}, bad)
    assert keymap == {} and len(problems) == 1 and "not TOML" in problems[0]
    good = tmp_path / "good.toml"
    good.write_text("replay.step = 'l, right'\n")  # unquoted, the dotted key is the same id
    assert load_keymap({"replay.step"}, good) == ({"replay.step": "l,right"}, [])


# --- a followed session whose writer died -------------------------------------------------------------

@pytest.mark.skipif(not liveness.supported(), reason="needs Linux open file description locks")
async def test_a_followed_session_whose_writer_died_is_shown_interrupted_not_live(tmp_path: Path) -> None:
    from tests.test_interrupted import start_writer

    db = tmp_path / "live.db"
    proc = start_writer(db, "crashing")
    try:
        app = ReplayApp(str(db), follow=True, persist_marks=False)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app, 7)
            assert "● LIVE" in bar(app)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            await until(pilot, lambda: "INTERRUPTED" in bar(app), timeout=10, what="the interrupted badge")
            assert "● LIVE" not in bar(app)
            assert "recorder died; last op 2023-11-14 22:13:26" in bar(app)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    async with await Recording.open(db) as rec:
        assert (await rec.sessions())[0].interrupted


# --- serving the open session to a real client ------------------------------------------------------

async def test_K_serves_the_session_at_the_cursor_to_the_official_client(fixture_db: Path) -> None:
    from kubernetes import client, config

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("2")
        await ready(pilot, app, 2)
        await pilot.press("K")
        await until(pilot, lambda: "serving https://127.0.0.1:" in bar(app), timeout=30, what="serving")
        serving = app.debugger.serving
        assert serving is not None and serving.served is not None
        kubeconfig = serving.served.kubeconfig
        assert f"KUBECONFIG={kubeconfig} kubectl" in notices(app)
        assert f"serving https://127.0.0.1:{serving.served.url.rsplit(':', 1)[1]} KUBECONFIG={kubeconfig}" in bar(app)
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"

        def read() -> tuple[int, list[str]]:  # raw JSON: the fixture's Deployment has no selector for the models
            api = config.new_client_from_config(str(kubeconfig))
            deployment = json.loads(client.AppsV1Api(api).read_namespaced_deployment(
                "web", "shop", _preload_content=False).data)
            maps = json.loads(client.CoreV1Api(api).list_namespaced_config_map("shop", _preload_content=False).data)
            return deployment["spec"]["replicas"], [c["metadata"]["name"] for c in maps["items"]]

        import asyncio

        assert await asyncio.to_thread(read) == (1, [])  # op 2: web added with 1 replica, no ConfigMap yet
        app.debugger.jump_to("12")
        await ready(pilot, app, 12)
        await until(pilot, lambda: serving.caught_up, what="the served position at the cursor")
        assert serving.position == 12
        assert await asyncio.to_thread(read) == (3, ["web-config"])  # scaled to 3; the ConfigMap created
        assert any("K again stops" in n.message for n in app._notifications)
        await pilot.press("K")
        await until(pilot, lambda: app.debugger.serving is None)
        assert "serving" not in bar(app) and not kubeconfig.exists() and not kubeconfig.parent.exists()
        await pilot.pause()
        assert not any("K again stops" in n.message for n in app._notifications)  # no longer true: gone


# --- a compared run beside this one -----------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "demo.db"


async def test_S_c_compares_a_second_run_beside_and_marks_where_they_diverge(tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "demo.db"
    shutil.copy(DEMO, db)
    async with await Recording.open(db) as rec:
        infos = await rec.sessions()
    from replay_tui.engine.compare import compare

    async with await Recording.open(db) as rec_a, await Recording.open(db) as rec_b:
        expected = await compare(await rec_a.session("buggy-operator"), await rec_b.session("healthy-operator"))
    app = ReplayApp(str(db), "buggy-operator", sessions=infos, persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("S")
        from replay_tui.tui.screens.pickers import PickList, SessionPicker

        await until(pilot, lambda: isinstance(app.screen, SessionPicker))
        ol = app.screen.query_one(PickList)
        ol.highlighted = ol.get_option_index("1")  # healthy-operator
        await pilot.press("c")
        await until(pilot, lambda: app.debugger.compared is not None, timeout=30, what="the comparison")
        other = app.query_one("#timeline-b", Timeline)
        assert other.display and other.source is not None and other.source.session.info.name == "healthy-operator"
        n = len(expected.divergences)
        assert f"compared with healthy-operator: {n} divergences (> next)" in bar(app)
        assert other.diverged == {d.seq_b for d in expected.divergences if d.seq_b is not None}
        assert app.debugger.timeline.diverged  # run A too, where B did what A did not
        for timeline in (app.debugger.timeline, other):  # ≠ on both scrollbars too
            assert "≠" in {glyph for _, glyph, _ in timeline.ticks(timeline.vertical_scrollbar.size.height)}
        first = expected.divergences[0]
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: f"≠ 1/{n} vs healthy-operator" in bar(app))
        await until(pilot, lambda: other.source.seq_at(other.selected) == first.seq_b, what="run B at the divergence")
        b_rows = [other.render_line(y).text for y in range(other.size.height)]
        assert any(line.startswith("≠") and f" {first.seq_b} " in line for line in b_rows)  # drawn on B's row
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: f"≠ 2/{n}" in bar(app))
        await pilot.press("less_than_sign")
        await until(pilot, lambda: f"≠ 1/{n}" in bar(app))
        # S again: the picker offers to close the comparison
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, SessionPicker))
        ol = app.screen.query_one(PickList)
        ol.highlighted = ol.get_option_index("close")
        await pilot.press("enter")
        await until(pilot, lambda: app.debugger.compared is None)
        assert not other.display and "compared" not in bar(app)


async def test_a_run_from_another_recording_is_compared_too(fixture_db: Path, tmp_path: Path) -> None:
    other_db = make_fixture(tmp_path / "other.db")
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("S")
        from replay_tui.tui.screens.pickers import PickList, SessionPicker

        await until(pilot, lambda: isinstance(app.screen, SessionPicker))
        ol = app.screen.query_one(PickList)
        ol.highlighted = ol.get_option_index("file")
        await pilot.press("enter")
        await answer(pilot, app, str(other_db))
        await until(pilot, lambda: app.debugger.compared is not None, timeout=30, what="the comparison")
        assert f"compared with {other_db}:operator: 0 divergences" in bar(app)  # the same run twice
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: "no divergence after this one (0 in all)" in notices(app))


# --- the hunt, end to end: the real command in a real terminal --------------------------------------------

PAGER_SCRIPT = """#!/bin/sh
cp "$1" {seen}
echo "PAGER SHOWS $(grep -c . "$1") LINES; press Enter"
read answer
"""


def test_hunting_the_demos_hot_loop_with_the_keyboard_in_tmux(tmp_path: Path) -> None:
    """analysis → a cycle's rounds → the provenance panel → back with ctrl+o → the object's own
    timeline → yank (OSC 52, which tmux keeps as a paste buffer) → the pager, each screen read off tmux."""
    import shutil
    import subprocess

    from tests.test_tui_e2e import TMUX, Terminal, replay_tui

    if TMUX is None:
        pytest.skip("tmux is not installed (.ci/run installs it on CI)")
    db = tmp_path / "demo.db"
    shutil.copy(DEMO, db)
    seen = tmp_path / "seen.yaml"
    pager = tmp_path / "pager.sh"
    pager.write_text(PAGER_SCRIPT.format(seen=seen))
    pager.chmod(0o755)
    term = Terminal([*replay_tui(), "open", str(db), "-s", "buggy-operator"],
                    {"REPLAY_TUI_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color",
                     "REPLAY_TUI_KEYMAP": str(tmp_path / "none.toml"), "PAGER": str(pager)})
    try:
        subprocess.run([*term.tmux, "set-option", "-g", "set-clipboard", "on"], check=True)  # keep OSC 52
        term.wait_for("op 1 of 487")
        term.wait_for("Report/default/weekly")
        term.keys("4")  # the Analysis tab: the hot loops, then the causality cycles
        term.wait_for("CAUSALITY CYCLES  (2)", timeout=30)
        term.keys("Tab", "Tab")  # the focus: the operation pane, then the tab's content (its first finding lit)
        term.keys("Home", "Down", "Down", "Enter")  # from the first finding, past the two hot loops: the first cycle
        term.wait_for("CAUSALITY CYCLE reports.example.com Report/default/weekly")
        screen = term.wait_for("103 rounds in 9 run(s)")  # the rounds are read in the background
        assert "round 2   write op 16" in screen
        term.wait_for("op 12 of 487")  # its first round's write
        term.keys("Down", "Down", "Enter")  # round 2
        screen = term.wait_for("op 16 of 487")
        assert "^o ← op 12" in screen
        term.keys("p")  # why does the object look like this: the chain, as a list
        term.wait_for("WHY Report.example.com/default/weekly LOOKS LIKE THIS AT OP 16")
        screen = term.wait_for("end of the chain")  # the chain is read in the background
        assert "op 13 modified Report/default/weekly started reconcile #3" in screen
        assert "end of the chain: observed" in screen and "another" in screen
        term.keys("Down", "Down", "Down", "Enter")  # the trigger: the watch event that started the reconcile
        screen = term.wait_for("op 13 of 487")
        assert "^o ← op 16" in screen
        term.keys("C-o")  # back where the jump came from
        screen = term.wait_for("^n → op 13")
        assert "op 16 of 487" in screen
        term.keys("t")  # the object's own timeline, with its header
        term.wait_for("OBJECT  Report.example.com/default/weekly")  # "reading its versions..." at first
        term.wait_for("108 versions", timeout=30)
        screen = term.wait_for("object Report.example.com/default/weekly: 213 ops", timeout=30)
        assert "108 versions" in screen and ".status.lastSync ×106" in screen
        rows_shown = [line for line in screen.splitlines() if re.match(r"^\W*\s\d+ \d\d:\d\d:\d\d", line)]
        assert rows_shown and all("Report/default/weekly" in line for line in rows_shown)  # no daily, no lists
        term.keys("y")
        term.wait_for("copied Report.example.com/default/weekly at op 16 as YAML")
        copied = subprocess.run([*term.tmux, "show-buffer"], capture_output=True, text=True).stdout
        assert yaml.safe_load(copied)["metadata"]["name"] == "weekly"  # the terminal got it (OSC 52)
        term.keys("v")  # the same YAML in $PAGER, the app suspended
        screen = term.wait_for("PAGER SHOWS")
        assert "OBJECT  Report" not in screen  # the pager has the terminal
        term.keys("Enter")
        term.wait_for("OBJECT  Report.example.com/default/weekly")  # the app is back as it was
        assert yaml.safe_load(seen.read_text()) == yaml.safe_load(copied)
        term.keys("Escape")
        term.wait_gone("OBJECT  Report")
        term.keys("q")
        term.wait_gone("of 487")
    finally:
        term.close()


def test_yanked_and_paged_yaml_carries_no_raw_control_or_bidi_character() -> None:
    """What `y` copies and `v` pages reaches a terminal: a hostile name's ESC/BEL/C1 and bidi
    overrides arrive as escapes, the rest of the object as the YAML it is."""
    import yaml

    from replay_tui.engine.textsafe import _LINE
    from replay_tui.tui.screens.debugger_tools import object_yaml

    obj = {"kind": "ConfigMap", "metadata": {"name": "a\x1b]0;pwned\x07b\u202ec\u2066d", "namespace": "shop"},
           "data": {"k": "\x9b31m", "plain": "fine"}}
    text = object_yaml(obj)
    assert not _LINE.search(text.replace("\n", ""))
    assert yaml.safe_load(text)["data"]["plain"] == "fine" and yaml.safe_load(text)["metadata"]["namespace"] == "shop"


async def test_the_empty_why_tab_wraps_its_hint_as_prose_not_under_the_link_gutter(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("6")
        why = app.query_one(WhyPanel)
        await until(pilot, lambda: app.debugger._tab() == "why", what="the Why tab")
        lines = why.text.splitlines()
        assert lines[0].startswith("nothing to explain yet") and len(lines) >= 2
        assert all(not line.startswith(" " * 3) for line in lines[1:])  # (the links' gutter is 16 wide)
