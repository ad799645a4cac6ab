"""A step's repaint: what it renders is what the user must see, however it is made cheaper.

The step's budget (``benchmarks.tui``: p95 < 50 ms at a million ops beside a busy core) is
measured there; these tests hold the shortcuts to showing the same thing: a long body cut at
its line budget counts the rest without rendering it, and a burst of steps (a held key) ends
with every pane showing the op the cursor stopped on.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual import events

from replay_tui.engine.store import Recording
from replay_tui.tui import yamltext
from replay_tui.tui.app import ReplayApp
from replay_tui.tui.control import heap
from replay_tui.tui.control.detail import compute_detail
from replay_tui.tui.screens.pickers import SessionPicker
from replay_tui.tui.widgets.oppane import OpPane, render_op
from replay_tui.tui.widgets.pane import Pane
from replay_tui.tui.widgets.statepane import StatePane, render_state
from tests.test_tui_app import SIZE, bar, ready, until
from tests.test_tui_app import pane as pane_text
from tests.test_tui_fixture import OPS, make_fixture

_KEYS = st.sampled_from(["a", "b", "name", "metadata", "managedFields", "type", "x y", "k:", ""])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                     st.sampled_from(["l1\nl2\nl3", "\n".join("abcdefghijkl"), "x" * 250, "\n"]),
                     st.just({}), st.just([]))
_OBJECTS = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(_KEYS, inner, max_size=5),
    st.lists(st.fixed_dictionaries({"name": st.sampled_from(["p", "q"]), "v": inner}), max_size=3)),
    max_leaves=40)
_HIDDEN = st.sampled_from([(), (".metadata",), (".a.b", ".name[0]", ".a[name=p]", "[1].v")])


def _shown(lines: list[Any]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    return [(line.plain, [(s.start, s.end, str(s.style)) for s in line.spans if s.end > s.start]) for line in lines]


@settings(max_examples=400, deadline=None)
@given(_OBJECTS, st.integers(1, 30), st.booleans(), _HIDDEN)
def test_a_body_cut_at_its_budget_is_the_whole_bodys_first_lines_and_counts_the_rest(
        obj: Any, budget: int, fold: bool, hidden: tuple[str, ...]) -> None:
    """The Operation pane shows 400 lines of a body: the lines past them are counted, not drawn
    (a 6,000-line list cost 40 ms a step), and the count is the one the whole rendering gives."""
    whole, _ = yamltext.render_lines(obj, {}, hidden=hidden, fold=fold, max_lines=10**9)
    cut, _ = yamltext.render_lines(obj, {}, hidden=hidden, fold=fold, max_lines=budget)
    if len(whole) <= budget:
        assert _shown(cut) == _shown(whole)
        return
    assert _shown(cut[:budget]) == _shown(whole[:budget])
    assert [line.plain for line in cut[budget:]] == [f"  ... {len(whole) - budget:,} more lines"]


# --- a held key --------------------------------------------------------------------------------

async def _expected_panes(db: Path, seq: int) -> tuple[str, str]:
    """The Operation and State panes' text for ``seq``, computed afresh from the file."""
    rec = await Recording.open(db)
    try:
        ses = await rec.session(None)
        start_ns = (await ses.rows(1, 1))[0].ts_ns
        d = await compute_detail(ses, seq, None, None)
        op = "\n".join((line[0] if isinstance(line, tuple) else line).plain for line in render_op(d, start_ns))
        state = "\n".join((line[0] if isinstance(line, tuple) else line).plain
                          for line in render_state(d, unfold=False))
        return op, state
    finally:
        await rec.close()


def _drawn(pane: Pane) -> list[str]:
    """The pane's rows as drawn on the screen (not its source: a stale drawing shows here)."""
    return [pane.render_line(y).text.rstrip()[1:] for y in range(pane.scrollable_content_region.height)]


@pytest.mark.parametrize(("walked", "burst"), [(0, "l" * 9), (0, "l" * 16), (17, "h" * 7), (12, "hhhhhlllh")],
                         ids=["ahead", "ahead-far", "back-over-read-ops", "to-and-fro"])
async def test_a_burst_of_steps_ends_with_every_pane_drawing_the_op_the_cursor_stopped_on(
        fixture_db: Path, walked: int, burst: str) -> None:
    """Keys sent together (a held key, a terminal's burst): the panes may skip the ops passed on
    the way, never the last one; what they draw is the op at the cursor, not one before it.
    Ahead, the ops are read as the cursor lands; back over ops stepped through one at a time
    (``walked``), they are already read and the panes draw them without a read."""
    app = ReplayApp(str(fixture_db), persist_marks=False)
    start = max(walked, 1)
    target = start + burst.count("l") - burst.count("h")
    op_text, state_text = await _expected_panes(fixture_db, target)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        for seq in range(2, walked + 1):
            await pilot.press("l")
            await ready(pilot, app, seq)
        last_seen = (pane_text(app, "op"), pane_text(app, "state"))
        assert last_seen != (op_text, state_text)  # a stale pane would show
        for key in burst:
            app.post_message(events.Key(key, key))  # queued at once
        op_pane, state_pane = app.query_one(OpPane), app.query_one(StatePane)
        await until(pilot, lambda: op_pane.body_text == op_text and state_pane.body_text == state_text,
                    what=f"the panes showing op {target}")
        await pilot.pause(0.3)  # and nothing read on the way paints over them afterwards
        assert app.debugger.seq == target and f"op {target} of {OPS}" in bar(app)
        assert op_pane.body_text == op_text
        assert state_pane.body_text == state_text
        for pane, text in ((op_pane, op_text), (state_pane, state_text)):
            top = [line.rstrip() for line in text.splitlines()[:3]]
            assert _drawn(pane)[:len(top)] == top


# --- the collector ------------------------------------------------------------------------------

async def test_the_collector_leaves_the_live_heap_alone_while_the_app_runs_and_is_restored_after(
        fixture_db: Path) -> None:
    """A full collection walked the whole heap (30-130 ms beside a busy core, every few steps):
    what the first screen and the whole-session jobs leave is frozen, the young generation is
    larger; on leaving, the process's collector is as it was."""
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        assert gc.get_threshold() == heap.THRESHOLD
        assert gc.get_freeze_count() > frozen_before
        await until(pilot, lambda: app.debugger.jobs["stats"].data is not None, what="statistics")
        await pilot.press("l")
        await ready(pilot, app, 2)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


async def test_what_a_closed_session_held_is_collected_not_kept_frozen(tmp_path: Path) -> None:
    db = make_fixture(tmp_path / "two.db", second=True)
    app = ReplayApp(str(db), "operator", persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await until(pilot, lambda: not app.debugger.jobs.running() and app.debugger.jobs["cycles"].state == "done",
                    what="the whole-session jobs")
        nav = app.debugger.nav
        old = weakref.ref(nav)
        cycle: list[Any] = [nav]  # the session's objects, held in a cycle only the cyclic collector frees
        cycle.append(cycle)
        heap.settle()  # ... and frozen with the rest
        del cycle, nav
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, SessionPicker), what="the session picker")
        await pilot.press("down", "enter")
        await until(pilot, lambda: "session second" in bar(app), what="the second session")
        await ready(pilot, app, 1)
        assert old() is None  # the first session's navigator is gone, cycles and all
