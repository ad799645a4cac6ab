"""The causality graph and its cycles, on sessions written with the real writer: a status
write that re-triggers its own handler, two controllers feeding each other a flip-flopping
field, a healthy controller that settles, and a loop broken by a requeue."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import causality
from replay_tui.engine.store import Recording, Session
from tests.conftest import k8s_object, op_for, write_session

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo" / "demo.db"


class Script:
    """Builds a session step by step: reconciles triggered by the last event on an object."""

    def __init__(self) -> None:
        self.steps: list[Callable[[Any], Any]] = []
        self.last_event: dict[str, int | None] = {}

    def event(self, verb: str, body: dict[str, Any]) -> None:
        key = f"{body['kind']}/{body['metadata']['name']}"

        def step(sw: Any) -> None:
            self.last_event[key] = sw.append(op_for(verb, body, response=body))
        self.steps.append(step)

    def reconcile(self, controller: str, target: dict[str, Any], trigger_on: str | None,
                  writes: list[tuple[str, dict[str, Any], str]], echo: bool = True) -> None:
        """One reconcile of ``target``: a get, then each (verb, body, subresource) write and its echo."""
        def step(sw: Any) -> None:
            trigger = self.last_event.get(trigger_on) if trigger_on else None
            meta = target["metadata"]
            rid = sw.begin_reconcile(controller, kind=target["kind"], namespace=meta.get("namespace", ""),
                                     name=meta["name"], trigger_seq=trigger)
            sw.append(op_for("get", target, response=target, reconcile=rid, actor=controller))
            echoes = []
            for verb, body, sub in writes:
                sw.append(op_for(verb, body, subresource=sub, request=body, response=body,
                                 reconcile=rid, actor=controller, status=200))
                echoes.append(body)
            sw.end_reconcile(rid)
            if echo:
                for body in echoes:
                    self.last_event[f"{body['kind']}/{body['metadata']['name']}"] = sw.append(
                        op_for("modified", body, response=body))
        self.steps.append(step)


def widget(n: int) -> dict[str, Any]:
    return k8s_object("Widget", "w", api_version="example.com/v1", rv=1000 + n, spec={"size": 1},
                      status={"count": n, "phase": "Ready"})


def foo(seen: str, rv: int) -> dict[str, Any]:
    return k8s_object("Foo", "a", api_version="example.com/v1", rv=rv, spec={"seen": seen})


def bar(mode: str, rv: int) -> dict[str, Any]:
    return k8s_object("Bar", "b", api_version="example.com/v1", rv=rv, spec={"mode": mode})


def healthy(s: Script) -> None:
    cm = k8s_object("ConfigMap", "settled", rv=1, data={"x": "1"})
    done = dict(cm, status={"ok": True}, metadata=dict(cm["metadata"], resourceVersion="2"))
    s.event("added", cm)
    s.reconcile("settler", cm, "ConfigMap/settled", [("update", done, "status")])
    s.reconcile("settler", done, "ConfigMap/settled", [])  # its own echo: nothing left to do


def widget_loop(s: Script, rounds: int, start: int = 0, requeue: bool = False) -> None:
    """``rounds`` reconciles, each re-triggered by the echo of the previous one's status write."""
    if not requeue:
        s.event("added", widget(start))
    for n in range(start + 1, start + rounds + 1):
        first = requeue and n == start + 1
        s.reconcile("widgets", widget(n - 1), None if first else "Widget/w", [("update", widget(n), "status")])


def ping_pong(s: Script, rounds: int) -> None:
    """foo-ctl writes Bar b's mode; bar-ctl copies it into Foo a; each write starts the other."""
    s.event("added", foo("", 1))
    rv = 2
    for n in range(rounds):
        mode = "on" if n % 2 == 0 else "off"
        s.reconcile("foo-ctl", foo("", 1), "Foo/a", [("update", bar(mode, rv), "")])
        s.reconcile("bar-ctl", bar(mode, rv), "Bar/b", [("update", foo(mode, rv + 1), "")])
        rv += 2


@pytest.fixture
async def make(session_of: Any) -> Callable[..., Any]:
    async def build(*parts: Callable[[Script], None]) -> Session:
        s = Script()
        for part in parts:
            part(s)
        return await session_of(s.steps)
    return build


async def test_a_status_write_that_retriggers_its_own_handler_is_a_cycle(make: Any) -> None:
    session = await make(healthy, lambda s: widget_loop(s, 30))
    graph = await causality.graph(session)
    assert graph.reconciles == 32 and graph.triggered == 32
    assert len(graph.cycles) == 1
    cycle = graph.cycles[0]
    assert cycle.controllers == ["widgets Widget/default/w"]
    assert cycle.reconcilers == ["widgets"] and cycle.objects == ["Widget/default/w"]
    assert (cycle.rounds, cycle.runs, cycle.longest_run) == (29, 1, 30)
    assert cycle.writes == [{"verb": "update", "target": "Widget/default/w/status", "count": 29}]
    fields = {f.path: f for f in cycle.fields}
    assert fields[".status.count"].pattern == "churn" and fields[".status.count"].values[:3] == [0, 1, 2]
    assert ".status.phase" not in fields  # it never changes
    assert "29 rounds" in cycle.explanation and ".status.count (churn)" in cycle.explanation
    # The ops to jump to: each round's write, the echo it caused, and the reconcile it started.
    for r in cycle.rounds_sample:
        assert r.write_seq < r.trigger_seq < r.start_seq
        assert (await session.op(r.write_seq)).verb == "update"
        assert (await session.op(r.trigger_seq)).verb == "modified"
        assert (await session.op(r.start_seq)).reconcile == r.reconcile
    assert set(cycle.seqs) == {s for r in cycle.rounds_sample for s in (r.write_seq, r.trigger_seq, r.start_seq)}
    # The healthy controller is in the graph (its echo started one more reconcile) but is no loop.
    settled = [e for e in graph.edges if e.source == "settler ConfigMap/default/settled"]
    assert [(e.target, e.count, e.longest_run) for e in settled] == [
        ("settler ConfigMap/default/settled", 1, 2)]


async def test_two_controllers_feeding_each_other_a_flip_flopping_field(make: Any) -> None:
    session = await make(healthy, lambda s: ping_pong(s, 8))
    cycles = await causality.cycles(session)
    assert len(cycles) == 1
    cycle = cycles[0]
    assert set(cycle.controllers) == {"foo-ctl Foo/default/a", "bar-ctl Bar/default/b"}
    assert cycle.rounds == 15 and cycle.longest_run == 16
    assert {w["target"] for w in cycle.writes} == {"Foo/default/a", "Bar/default/b"}
    fields = {f.path: f for f in cycle.fields}
    assert fields[".spec.mode"].pattern == "flip-flop" and fields[".spec.mode"].distinct == 2
    assert fields[".spec.seen"].pattern == "flip-flop"
    assert " -> " in cycle.explanation and "flip-flop" in cycle.explanation


async def test_runs_broken_by_a_requeue_are_counted_apart(make: Any) -> None:
    session = await make(lambda s: widget_loop(s, 12),
                         lambda s: widget_loop(s, 12, start=12, requeue=True))
    (cycle,) = await causality.cycles(session)
    assert (cycle.rounds, cycle.runs, cycle.longest_run) == (22, 2, 12)


async def test_short_runs_are_not_loops(make: Any) -> None:
    session = await make(healthy, lambda s: widget_loop(s, 6))
    assert await causality.cycles(session) == []
    assert len(await causality.cycles(session, min_rounds=6)) == 1


async def test_a_session_without_reconciles(session_of: Any) -> None:
    cm = k8s_object("ConfigMap", "c")
    session = await session_of([op_for("create", cm, status=201, request=cm, response=cm)])
    graph = await causality.graph(session)
    assert (graph.reconciles, graph.edges, graph.cycles) == (0, [], [])


def test_analyze_reports_the_cycles(tmp_path: Path) -> None:
    s = Script()
    widget_loop(s, 15)
    db = tmp_path / "loop.db"
    write_session(db, s.steps)
    proc = subprocess.run([sys.executable, "-m", "replay_tui", "analyze", str(db), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    cycles = json.loads(proc.stdout)["cycles"]
    assert [(c["controllers"], c["rounds"]) for c in cycles] == [(["widgets Widget/default/w"], 14)]
    text = subprocess.run([sys.executable, "-m", "replay_tui", "analyze", str(db)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT).stdout
    assert "CYCLES" in text and "widgets Widget/default/w -> widgets Widget/default/w" in text


@pytest.mark.skipif(not DEMO.exists(), reason="the buggy demo operator's recording is not bundled yet")
async def test_the_buggy_demo_operator_has_a_hot_loop_and_the_healthy_one_none(open_recording: Any) -> None:
    """fixtures/operators/buggy.py writes a fresh status.lastSync on every event of a Report."""
    rec: Recording = await open_recording(DEMO)
    by_name = {}
    for info in await rec.sessions():
        session = await rec.session(info.id)
        await session.refresh()
        by_name[info.name] = await causality.cycles(session)
    buggy = by_name.pop("buggy-operator")
    assert buggy and all(c.objects[0].startswith("Report/") for c in buggy)
    for cycle in buggy:
        assert cycle.rounds >= causality.MIN_ROUNDS and cycle.longest_run >= causality.MIN_ROUNDS
        assert any(w["target"].endswith("/status") for w in cycle.writes)
        fields = {f.path: f.pattern for f in cycle.fields}
        assert fields.get(".status.lastSync") == "churn"
    assert all(cycles == [] for cycles in by_name.values())  # the healthy operator settles
