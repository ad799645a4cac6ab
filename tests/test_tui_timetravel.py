"""Pilot tests of the time-travel keys: w watches a field, c / C continue to its changes,
the Watches tab shows its value at the cursor, p walks the provenance chain, and the
analysis tab lists causality cycles whose Enter jumps to the loop's first op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from replay_tui.engine.writer import RecordingWriter
from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.keys import help_rows
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.analysispanel import AnalysisPanel
from replay_tui.tui.widgets.watchpanel import WatchPanel
from replay_tui.tui.widgets.whypanel import WhyPanel
from tests.conftest import T0, k8s_object, op_for, write_session
from tests.test_causality import Script, healthy, widget_loop
from tests.test_tui_app import SIZE, notices, ready, until

#: .spec.replicas of Deployment default/web is set at op 1 and changed at ops 4 and 7
REPLICA_CHANGES = {1: 1, 4: 3, 7: 5}
LAST = 8


def dep(rv: int, replicas: int, **labels: str) -> dict[str, Any]:
    return k8s_object("Deployment", "web", api_version="apps/v1", rv=rv, labels=labels or None,
                      spec={"replicas": replicas})


def cm(rv: int) -> dict[str, Any]:
    return k8s_object("ConfigMap", "other", rv=rv, data={"rv": str(rv)})


@pytest.fixture
def replicas_db(tmp_path: Path) -> Path:
    """Written with the real RecordingWriter: ops on the Deployment that do and do not change replicas."""
    path = tmp_path / "replicas.db"
    bodies = [("create", dep(1, 1)), ("create", cm(2)), ("update", dep(3, 1, tier="web")),
              ("update", dep(4, 3, tier="web")), ("update", cm(5)), ("update", dep(6, 3, tier="front")),
              ("update", dep(7, 5, tier="front")), ("get", dep(7, 5, tier="front"))]
    with RecordingWriter(path) as writer:
        sw = writer.session("replicas", "synthetic")
        for i, (verb, body) in enumerate(bodies):
            sw.append(op_for(verb, body, status=201 if verb == "create" else 200, request=body, response=body,
                             ts_ns=T0 + i * 1_000_000_000))
        sw.close()
    return path


async def watch_replicas(pilot: Any, app: ReplayApp) -> None:
    await pilot.press("w")
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="watch prompt")
    app.screen.query_one(Input).value = ".spec.replicas"
    await pilot.press("enter")
    await until(pilot, lambda: app.debugger.watches is not None and len(app.debugger.watches) == 1, what="watch built")
    await pilot.pause()


async def test_w_watches_a_field_and_c_C_land_on_its_changes(replicas_db: Path) -> None:
    app = ReplayApp(str(replicas_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("c")
        await until(pilot, lambda: "press w" in notices(app), what="hint to press w")
        assert app.debugger.seq == 1
        await watch_replicas(pilot, app)
        assert "watching Deployment.apps/default/web:.spec.replicas: 3 changes" in notices(app)
        for seq in (4, 7):  # continue: exactly the ops that changed replicas, none of the others
            await pilot.press("c")
            await ready(pilot, app, seq)
        assert "web:.spec.replicas: 1 -> 3 at op 4 (update)" in notices(app)
        assert "web:.spec.replicas: 3 -> 5 at op 7 (update)" in notices(app)
        await pilot.press("c")
        await until(pilot, lambda: "no change of a watched field after op 7" in notices(app))
        assert app.debugger.seq == 7
        await pilot.press("G")
        await ready(pilot, app, LAST)
        for seq in (7, 4, 1):  # reverse-continue, from the end back to the creation
            await pilot.press("C")
            await ready(pilot, app, seq)
        await pilot.press("C")
        await until(pilot, lambda: "no change of a watched field before op 1" in notices(app))
        assert app.debugger.seq == 1


async def test_the_watch_prompt_offers_the_field_this_op_changed(replicas_db: Path) -> None:
    app = ReplayApp(str(replicas_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("4")
        await ready(pilot, app, 4)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert app.screen.query_one(Input).value == ".spec.replicas"
        await pilot.press("enter")
        await until(pilot, lambda: app.debugger.watches is not None and len(app.debugger.watches) == 1)
        assert app.debugger.watches.indexes[0].path == ".spec.replicas"


async def test_a_bad_path_names_its_column(replicas_db: Path) -> None:
    app = ReplayApp(str(replicas_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = ".spec[replicas"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)  # stays open, with the problem under the text
        error = str(app.screen.query_one(".prompt-error", Static).render())
        assert "column" in error and "^" in error
        await pilot.press("escape")
        assert app.debugger.watches is not None and len(app.debugger.watches) == 0
        # the same path given without the prompt (the palette, a script) is a notification
        assert app.debugger.detail is not None and app.debugger.detail.obj_id is not None
        app.debugger.add_watch(app.debugger.detail.obj_id, ".spec[replicas")
        await until(pilot, lambda: "bad field path '.spec[replicas' at column" in notices(app))
        assert len(app.debugger.watches) == 0


async def test_the_watches_tab_shows_the_value_at_the_cursor(replicas_db: Path) -> None:
    app = ReplayApp(str(replicas_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        panel = app.query_one(WatchPanel)

        def text() -> str:
            return "\n".join(str(panel.get_option_at_index(i).prompt) for i in range(panel.option_count))

        await pilot.press("5")
        assert "no watched fields" in text()
        await watch_replicas(pilot, app)
        assert "web:.spec.replicas = 1  changed HERE" in text()
        app.debugger.jump_to("5")
        await ready(pilot, app, 5)
        assert "web:.spec.replicas = 3  last changed at op 4 (update" in text()
        await pilot.press("c")
        await ready(pilot, app, 7)
        assert "web:.spec.replicas = 5  changed HERE" in text()
        await pilot.press("G")
        await ready(pilot, app, LAST)
        # Enter on the watch goes to its last change; x stops watching it
        panel.focus()
        panel.highlighted = panel.get_option_index("watch-0")
        await pilot.press("enter")
        await ready(pilot, app, 7)
        panel.focus()
        panel.highlighted = panel.get_option_index("watch-0")
        await pilot.press("x")
        await pilot.pause()
        assert len(app.debugger.watches) == 0 and "no watched fields" in text()
        assert "stopped watching Deployment.apps/default/web:.spec.replicas" in notices(app)


@pytest.fixture
def reconcile_db(tmp_path: Path) -> Path:
    """A watch event starts a reconcile that writes the object's status; its echo follows."""
    w0 = k8s_object("Widget", "w", api_version="example.com/v1", rv=1000, spec={"size": 1})
    w1 = k8s_object("Widget", "w", api_version="example.com/v1", rv=1001, spec={"size": 1}, status={"count": 1})

    def reconcile(sw: Any) -> None:
        rid = sw.begin_reconcile("widgets", kind="Widget", namespace="default", name="w", trigger_seq=1)
        sw.append(op_for("get", w0, response=w0, reconcile=rid, actor="widgets", ts_ns=T0 + 1))
        sw.append(op_for("update", w1, subresource="status", request=w1, response=w1, reconcile=rid,
                         actor="widgets", ts_ns=T0 + 2))
        sw.end_reconcile(rid)
        sw.append(op_for("modified", w1, response=w1, ts_ns=T0 + 3))

    path = tmp_path / "reconcile.db"
    write_session(path, [op_for("added", w0, response=w0), reconcile])
    return path


async def test_p_walks_the_provenance_chain_one_link_back_per_press(reconcile_db: Path) -> None:
    app = ReplayApp(str(reconcile_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("4")  # the echo of the status write
        await ready(pilot, app, 4)
        await pilot.press("p")
        await until(pilot, lambda: app.debugger.walk is not None, what="chain")
        await ready(pilot, app, 3)  # the version at op 4 is the one the write at op 3 made
        panel = app.query_one(WhyPanel)
        assert app.debugger._tab() == "why"  # a panel, not a toast
        assert "WHY Widget.example.com/default/w LOOKS LIKE THIS AT OP 4" in panel.text
        assert "provenance" not in notices(app)

        def current() -> str:
            return next(line for line in panel.text.splitlines() if line.startswith("▶"))

        assert "version" in current() and "op 3" in current()
        # version (3) -> the write (3) -> its reconcile (2) -> the watch event that started it (1)
        for seq, kind in ((3, "write"), (2, "reconcile"), (1, "trigger"), (1, "observed")):
            await pilot.press("p")
            await ready(pilot, app, seq)
            assert kind in current() and f"op {seq}" in current()
        assert "started reconcile #1" in panel.text
        assert "end of the chain: observed" in panel.text
        # Enter on a link goes there: back to the write
        panel.focus()
        panel.highlighted = panel.get_option_index("link-1")
        await pilot.press("enter")
        await ready(pilot, app, 3)
        assert "write" in current()
        # ctrl+o: back along the jumps the walk made
        await pilot.press("ctrl+o")
        await ready(pilot, app, 1)
        # moving elsewhere starts over: the next p explains the new position
        app.debugger.jump_to("4")
        await ready(pilot, app, 4)
        assert app.debugger.walk is None
        await pilot.press("p")
        await until(pilot, lambda: app.debugger.walk is not None and app.debugger.walk.i == 0)
        await ready(pilot, app, 3)


async def test_the_analysis_tab_lists_a_causality_cycle_and_jumps_to_it(tmp_path: Path) -> None:
    pytest.importorskip("replay_tui.engine.analysis")
    s = Script()
    healthy(s)
    widget_loop(s, 30)
    path = tmp_path / "loop.db"
    write_session(path, s.steps)
    app = ReplayApp(str(path), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("4")
        await until(pilot, lambda: app.debugger.jobs["cycles"].data is not None, timeout=20, what="cycles")
        await pilot.pause()
        assert len(app.debugger.jobs["cycles"].data) == 1
        first = app.debugger.jobs["cycles"].data[0]["first_seq"]
        panel = app.query_one(AnalysisPanel)
        texts = [str(panel.get_option_at_index(i).prompt) for i in range(panel.option_count)]
        assert any(t.startswith("CAUSALITY CYCLES  (1)") for t in texts)
        row = next(t for t in texts if "widgets Widget/default/w" in t)
        assert "29 rounds" in row and ".status.count (churn)" in row and f"op {first}" in row
        oid = next(o for o, seq in panel.targets.items() if seq == first)
        panel.focus()
        panel.highlighted = panel.get_option_index(oid)
        await pilot.press("enter")
        await ready(pilot, app, first)


async def test_the_keys_are_bindings_in_help_and_palette(replicas_db: Path) -> None:
    app = ReplayApp(str(replicas_db), persist_marks=False)
    keys = dict(help_rows())
    assert keys["w / x"] == "Watch a field of the object / stop watching one"
    assert keys["c / C"] == "Next / previous change of a watched field"
    assert keys["p"].startswith("Provenance")
    assert keys["1-6"] == "Tabs: State, Diff, Stats, Analysis, Watches, Why"
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await watch_replicas(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Watch field" in titles and "Stop watching Deployment.apps/default/web:.spec.replicas" in titles


async def test_c_finds_a_change_recorded_after_the_watch_while_following(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    with RecordingWriter(path) as writer:
        sw = writer.session("live", "synthetic")
        for i, replicas in enumerate((1, 2, 2), start=1):
            body = dep(i, replicas)
            sw.append(op_for("create" if i == 1 else "update", body, request=body, response=body, ts_ns=T0 + i))
        sw.flush()
        app = ReplayApp(str(path), follow=True, persist_marks=False)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app, 3)
            await watch_replicas(pilot, app)
            await pilot.press("5", "h")  # looking back: new ops arrive without moving the cursor
            await ready(pilot, app, 2)
            for i, replicas in enumerate((2, 4), start=4):
                body = dep(i, replicas)
                sw.append(op_for("update", body, request=body, response=body, ts_ns=T0 + i))
            sw.flush()
            await until(pilot, lambda: app.debugger.last == 5, what="growth")
            assert app.debugger.seq == 2
            await pilot.press("c")
            await ready(pilot, app, 5)  # ops 3 and 4 left replicas at 2; op 5 set it to 4
            assert "web:.spec.replicas: 2 -> 4 at op 5" in notices(app)
            panel = app.query_one(WatchPanel)
            assert "= 4  changed HERE" in str(panel.get_option_at_index(1).prompt)
            await pilot.press("C")
            await ready(pilot, app, 2)
        sw.close()
