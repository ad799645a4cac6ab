"""Analysis: hot loops, slow operations, error patterns and access patterns on known sessions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from replay_tui.engine import analysis
from replay_tui.engine.format import EVENT_VERBS, WRITE_VERBS, Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.writer import RecordingWriter, SessionWriter
from tests.conftest import SECOND, T0, k8s_object, op_for, status_body

MS = 1_000_000
WIDGET = "example.com/v1"


class Script:
    """Steps placed on a timeline, written in time order (ops keep their seq after writing)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, Any]] = []

    def op(self, at: int, op: Operation) -> Operation:
        op.ts_ns = T0 + at
        self.items.append((op.ts_ns, len(self.items), op))
        return op

    def call(self, at: int, fn: Callable[[SessionWriter], Any]) -> None:
        self.items.append((T0 + at, len(self.items), fn))

    def ops(self) -> list[Operation]:
        return [s for _, _, s in sorted(self.items) if isinstance(s, Operation)]

    def write(self, path: Path) -> None:
        with RecordingWriter(path) as writer:
            sw = writer.session("known", "synthetic")
            for _, _, step in sorted(self.items, key=lambda item: item[:2]):
                if isinstance(step, Operation):
                    sw.append(step)
                else:
                    step(sw)
            sw.close()


def reconcile(script: Script, at: int, name: str, kind: str, trigger: Operation | None,
              body: Callable[[], None] | None = None) -> None:
    """A reconcile span of ``kind/default/name`` starting at ``at``, triggered by ``trigger``."""
    rid: list[int] = []
    script.call(at, lambda sw: rid.append(sw.begin_reconcile(
        "ctl", kind=kind, namespace="default", name=name, ts_ns=T0 + at,
        trigger_seq=trigger.seq if trigger is not None else None)))
    script.call(at + 50 * MS, lambda sw: sw.end_reconcile(rid[0], ts_ns=T0 + at + 50 * MS))


def widget(name: str, *, generation: int, rv: int, size: int = 1, stamp: str = "never") -> dict[str, Any]:
    return k8s_object("Widget", name, api_version=WIDGET, generation=generation, rv=rv,
                      spec={"size": size}, status={"lastReconcileTime": stamp})


def deployment(name: str, *, generation: int, replicas: int = 1) -> dict[str, Any]:
    return k8s_object("Deployment", name, api_version="apps/v1", generation=generation, rv=generation,
                      spec={"replicas": replicas})


def configmap(name: str, **data: str) -> dict[str, Any]:
    return k8s_object("ConfigMap", name, data=data)


class Known(msgspec.Struct):
    """Handles on the ops of the known session the tests assert about."""

    ops: list[Operation]
    looper_updates: list[Operation]
    noop_updates: list[Operation]
    conflicts: list[Operation]
    cfg_create: Operation
    slow_update: Operation
    slow_list: Operation


def build(script: Script) -> Known:
    s = script
    # looper: a Widget whose every status write re-triggers its own reconcile (generation stays 1).
    body = widget("looper", generation=1, rv=100)
    s.op(0, op_for("create", body, status=201, request=body, response=body))
    trigger = s.op(10 * MS, op_for("added", body, status=0, response=body))
    looper_updates = []
    for i in range(20):
        at = 10 * SECOND + i * 2 * SECOND
        reconcile(s, at, "looper", "Widget", trigger)
        body = widget("looper", generation=1, rv=101 + i, stamp=f"t{i}")
        looper_updates.append(s.op(at + 10 * MS, op_for(
            "update", body, subresource="status", request=body, response=body, duration_ns=5 * MS)))
        trigger = s.op(at + 20 * MS, op_for("modified", body, status=0, response=body))

    # calm: a user edits the spec (generation 2), the operator reconciles and writes status once.
    calm = widget("calm", generation=1, rv=1)
    s.op(1 * SECOND, op_for("create", calm, status=201, request=calm, response=calm))
    s.op(1 * SECOND + MS, op_for("added", calm, status=0, response=calm))
    edited = widget("calm", generation=2, rv=2, size=3)
    user_edit = s.op(30 * SECOND, op_for("modified", edited, status=0, response=edited))
    reconcile(s, 30 * SECOND + 100 * MS, "calm", "Widget", user_edit)
    done = widget("calm", generation=2, rv=3, size=3, stamp="ok")
    s.op(30 * SECOND + 200 * MS, op_for("update", done, subresource="status", request=done, response=done))
    echo = s.op(30 * SECOND + 300 * MS, op_for("modified", done, status=0, response=done))
    reconcile(s, 31 * SECOND, "calm", "Widget", echo)

    conflicts = []

    def conflict(at: int, obj: dict[str, Any]) -> Operation:
        op = s.op(at, op_for("update", obj, status=409, reason="Conflict", request=obj,
                             response=status_body(409, "Conflict")))
        conflicts.append(op)
        return op

    conflict(60 * SECOND, calm)  # a lone conflict: not a storm

    # scaler: written 16 times in 32 s, but every write changes the spec: not a hot loop.
    for i in range(16):
        dep = deployment("scaler", generation=i + 1, replicas=i)
        s.op(120 * SECOND + i * 2 * SECOND, op_for("create" if i == 0 else "update", dep,
                                                   status=201 if i == 0 else 200, request=dep, response=dep))

    # noop: a ConfigMap (no generation) rewritten 12 times with the very same body.
    noop = configmap("noop", a="1")
    s.op(3 * SECOND, op_for("create", noop, status=201, request=noop, response=noop))
    noop_updates = [s.op(150 * SECOND + i * 2 * SECOND, op_for("update", noop, request=noop, response=noop))
                    for i in range(12)]

    # busy: a ConfigMap rewritten 12 times with new data each time: real changes, not a loop.
    s.op(4 * SECOND, op_for("create", configmap("busy", n="0"), status=201, response=configmap("busy", n="0")))
    for i in range(12):
        cm = configmap("busy", n=str(i + 1))
        s.op(180 * SECOND + i * 2 * SECOND, op_for("update", cm, request=cm, response=cm))

    # A retry storm: five conflicts on one object a second apart, then success.
    contended = deployment("contended", generation=1)
    s.op(5 * SECOND, op_for("create", contended, status=201, request=contended, response=contended))
    for i in range(5):
        conflict(100 * SECOND + i * SECOND, contended)
    s.op(105 * SECOND, op_for("update", contended, request=contended, response=contended))
    # Two conflicts close together (too few for a storm); two far apart (not a run).
    pair = deployment("pair", generation=1)
    conflict(210 * SECOND, pair)
    conflict(215 * SECOND, pair)
    slowly = deployment("slowly", generation=1)
    conflict(220 * SECOND, slowly)
    conflict(420 * SECOND, slowly)

    # cfg: read 12 times without ever changing: an operator not using its cache.
    cfg = configmap("cfg", a="1")
    cfg_create = s.op(6 * SECOND, op_for("create", cfg, status=201, request=cfg, response=cfg))
    for i in range(12):
        s.op(300 * SECOND + i * SECOND, op_for("get", cfg, response=cfg,
                                               duration_ns=1000 * MS if i == 5 else 2 * MS))
    for i in range(3):
        s.op(320 * SECOND + i * SECOND, op_for("get", configmap("missing"), status=404, reason="NotFound",
                                               response=status_body(404, "NotFound")))

    # Slow requests; a ten-minute watch stream is not one.
    slowpoke = configmap("slowpoke", a="1")
    s.op(7 * SECOND, op_for("create", slowpoke, status=201, request=slowpoke, response=slowpoke))
    slow_update = s.op(250 * SECOND, op_for("update", slowpoke, request=slowpoke, response=slowpoke,
                                            duration_ns=2500 * MS))
    slow_list = s.op(400 * SECOND, Operation(verb="list", kind="Pod", api_version="v1", status=200,
                                             duration_ns=1500 * MS))
    s.op(460 * SECOND, Operation(verb="list", kind="Pod", api_version="v1", status=200, duration_ns=3 * MS))
    s.op(520 * SECOND, Operation(verb="list", kind="Pod", api_version="v1", status=500, reason="InternalError",
                                 response=status_body(500, "InternalError"), duration_ns=3 * MS))
    s.op(500 * SECOND, Operation(verb="watch", kind="ConfigMap", api_version="v1", namespace="default",
                                 status=200, duration_ns=600 * SECOND, query={"watch": "true"}))
    s.op(540 * SECOND, Operation(verb="error", reason="Expired", response=status_body(410, "Expired")))
    s.op(600 * SECOND, op_for("get", done, response=done))
    return Known(ops=[], looper_updates=looper_updates, noop_updates=noop_updates, conflicts=conflicts,
                 cfg_create=cfg_create, slow_update=slow_update, slow_list=slow_list)


@pytest.fixture
async def known(tmp_path: Path, open_recording: Callable[[Path], Awaitable[Recording]]) -> tuple[Session, Known]:
    script = Script()
    handles = build(script)
    path = tmp_path / "known.db"
    script.write(path)
    handles.ops = script.ops()
    rec = await open_recording(path)
    return await rec.session(), handles


def seqs(ops: list[Operation]) -> list[int]:
    return [op.seq for op in ops]


# --- hot loops ---------------------------------------------------------------------------

async def test_the_self_feeding_status_loop_and_the_noop_rewrites_are_found(known: tuple[Session, Known]) -> None:
    session, k = known
    result = await analysis.analyze(session)
    assert [h.key for h in result.hot_loops] == ["Widget.example.com/default/looper", "ConfigMap/default/noop"]
    looper, noop = result.hot_loops
    assert looper.writes == 21 and looper.writes_without_spec_change == 20 and looper.status_writes == 20
    assert looper.reconciles == 20 and looper.reconciles_without_spec_change == 19
    assert looper.self_triggered_reconciles == 20 and looper.longest_self_trigger_chain == 20
    assert looper.max_in_window == 20 and looper.max_reconciles_in_window == 19
    assert (looper.window_first_seq, looper.window_last_seq) == (k.looper_updates[0].seq, k.looper_updates[-1].seq)
    assert looper.example_seqs == seqs(k.looper_updates[:5])
    assert looper.changed_fields == [".status.lastReconcileTime"]
    # Where the loop starts: its first write without a spec change (not the create before it).
    assert looper.first_seq == k.looper_updates[0].seq and looper.last_seq == k.looper_updates[-1].seq
    span_min = (k.looper_updates[-1].ts_ns - T0) / 60e9
    assert looper.writes_per_min == pytest.approx(21 / span_min)

    # A ConfigMap has no generation: identical rewrites (no new version) are no-spec-change writes.
    assert noop.writes == 13 and noop.writes_without_spec_change == 12 and noop.status_writes == 0
    assert noop.max_in_window == 12 and noop.reconciles == 0 and noop.longest_self_trigger_chain == 0
    assert noop.example_seqs == seqs(k.noop_updates[:5])
    assert (noop.window_first_seq, noop.window_last_seq) == (k.noop_updates[0].seq, k.noop_updates[-1].seq)
    assert noop.changed_fields == []


async def test_spec_changes_and_healthy_objects_are_not_hot(known: tuple[Session, Known]) -> None:
    session, _ = known
    keys = {h.key for h in (await analysis.analyze(session, hot_min=3)).hot_loops}
    # scaler (16 writes, each a new generation), busy (12 new bodies), calm (1 status write): never.
    assert "Deployment.apps/default/scaler" not in keys
    assert "ConfigMap/default/busy" not in keys
    assert "Widget.example.com/default/calm" not in keys


async def test_the_window_and_threshold_decide(known: tuple[Session, Known]) -> None:
    session, _ = known
    # Writes 2 s apart: any 5 s window holds 3 of them, under the threshold of 10.
    assert (await analysis.analyze(session, window_s=5)).hot_loops == []
    narrow = (await analysis.analyze(session, window_s=5, hot_min=3)).hot_loops
    assert {h.key: h.max_in_window for h in narrow} == {
        "Widget.example.com/default/looper": 3, "ConfigMap/default/noop": 3}
    assert (await analysis.analyze(session, hot_min=21)).hot_loops == []


# --- slow operations -----------------------------------------------------------------------

async def test_slow_operations_over_the_threshold(known: tuple[Session, Known]) -> None:
    session, k = known
    slow = (await analysis.analyze(session, slow_ms=1000)).slow_operations
    assert slow.threshold_ms == 1000 and slow.count == 2  # the 1000 ms GET is not over 1000 ms
    assert slow.count_by_verb == {"list": 1, "update": 1}
    top = slow.slowest[0]
    assert (top.seq, top.verb, top.target, top.ms, top.status) == (
        k.slow_update.seq, "update", "ConfigMap/default/slowpoke", 2500.0, 200)
    assert [s.ms for s in slow.slowest[:3]] == [2500.0, 1500.0, 1000.0]
    assert all(s.verb != "watch" for s in slow.slowest)  # a watch stream is not a slow request
    assert slow.slowest_by_verb["list"].seq == k.slow_list.seq
    assert slow.slowest_by_verb["get"].ms == 1000.0
    assert "watch" not in slow.slowest_by_verb and "modified" not in slow.slowest_by_verb
    assert (await analysis.analyze(session, slow_ms=2000)).slow_operations.count == 1


# --- error patterns --------------------------------------------------------------------------

async def test_errors_grouped_and_the_conflict_storm_found(known: tuple[Session, Known]) -> None:
    session, k = known
    errors = (await analysis.analyze(session)).error_patterns
    assert errors.total == 15
    assert [(g.status, g.reason, g.count) for g in errors.by_status_reason] == [
        (409, "Conflict", 10), (404, "NotFound", 3), (0, "Expired", 1), (500, "InternalError", 1)]
    assert errors.by_status_reason[0].example_seqs == sorted(seqs(k.conflicts))[:5]
    assert [(v.verb, v.count) for v in errors.by_verb] == [("update", 10), ("get", 3), ("error", 1), ("list", 1)]
    by_object = {o.key: o.count for o in errors.by_object}
    assert by_object["Deployment.apps/default/contended"] == 5
    assert by_object["ConfigMap/default/missing"] == 3
    assert errors.by_object[0].key == "Deployment.apps/default/contended"

    storm_ops = [op for op in k.conflicts if op.name == "contended"]
    assert len(errors.conflict_storms) == 1  # not the lone one, not the pair, not the far-apart two
    storm = errors.conflict_storms[0]
    assert (storm.key, storm.count, storm.first_seq, storm.last_seq, storm.duration_s) == (
        "Deployment.apps/default/contended", 5, storm_ops[0].seq, storm_ops[-1].seq, 4.0)
    assert storm.example_seqs == seqs(storm_ops)


async def test_a_long_window_joins_conflicts_far_apart(known: tuple[Session, Known]) -> None:
    session, _ = known
    storms = (await analysis.analyze(session, window_s=300)).error_patterns.conflict_storms
    # pair (2) and slowly (2, 200 s apart) are still under three conflicts each.
    assert [s.key for s in storms] == ["Deployment.apps/default/contended"]


# --- access patterns -------------------------------------------------------------------------

async def test_access_patterns_per_kind_match_the_ops(known: tuple[Session, Known]) -> None:
    session, k = known
    access = (await analysis.analyze(session)).access_patterns
    per_kind = {a.kind: a for a in access.by_kind}
    minutes = (max(op.ts_ns for op in k.ops) - min(op.ts_ns for op in k.ops)) / 60e9
    verbs: dict[str, Counter[str]] = {}
    for op in k.ops:
        if op.kind:
            verbs.setdefault(op.kind, Counter())[op.verb] += 1
    assert set(per_kind) == set(verbs)
    for kind, count in verbs.items():
        a = per_kind[kind]
        writes = sum(n for v, n in count.items() if v in WRITE_VERBS)
        assert (a.gets, a.lists, a.watches, a.writes) == (count["get"], count["list"], count["watch"], writes)
        assert a.watch_events == sum(n for v, n in count.items() if v in EVENT_VERBS)
        assert a.lists_per_min == pytest.approx(count["list"] / minutes)
        expected_ratio = (count["get"] + count["list"]) / writes if writes else None
        assert a.read_write_ratio == (pytest.approx(expected_ratio) if writes else None)
    assert per_kind["Pod"].lists == 3 and per_kind["Pod"].read_write_ratio is None


async def test_an_object_read_again_and_again_unchanged_is_reported(known: tuple[Session, Known]) -> None:
    session, k = known
    access = (await analysis.analyze(session)).access_patterns
    assert [r.key for r in access.rereads] == ["ConfigMap/default/cfg"]
    cfg = access.rereads[0]
    assert (cfg.gets, cfg.versions_read, cfg.max_reads_of_one_version, cfg.redundant_gets) == (12, 1, 12, 11)
    assert cfg.most_read_version_seq == k.cfg_create.seq
    assert access.most_read[0].key == "ConfigMap/default/cfg"
    assert {r.key for r in access.most_read} == {"ConfigMap/default/cfg", "Widget.example.com/default/calm"}
    # With a higher bar, nothing is re-read often enough.
    assert (await analysis.analyze(session, hot_min=13)).access_patterns.rereads == []


# --- edges -------------------------------------------------------------------------------------

async def test_the_json_has_the_sections_the_cli_prints(known: tuple[Session, Known]) -> None:
    session, _ = known
    data = msgspec.to_builtins(await analysis.analyze(session))
    assert set(data) >= {"hot_loops", "slow_operations", "error_patterns", "access_patterns"}
    msgspec.json.encode(data)


async def test_an_empty_session_gives_empty_findings(session_of: Callable[..., Awaitable[Session]]) -> None:
    result = await analysis.analyze(await session_of([]))
    assert result.hot_loops == [] and result.slow_operations.count == 0
    assert result.slow_operations.slowest == [] and result.error_patterns.total == 0
    assert result.error_patterns.conflict_storms == [] and result.access_patterns.by_kind == []
    assert result.access_patterns.rereads == []


@pytest.mark.parametrize("kwargs", [{"window_s": 0}, {"hot_min": 0}, {"slow_ms": -1},
                                    {"slow_ms": float("nan")}])
async def test_bad_parameters_are_a_clear_error(known: tuple[Session, Known], kwargs: dict[str, Any]) -> None:
    session, _ = known
    with pytest.raises(RecordingError, match="analysis needs"):
        await analysis.analyze(session, **kwargs)


async def test_the_synthetic_hot_loop_tops_the_list(tmp_path: Path) -> None:
    from benchmarks import generator as synth

    path = tmp_path / "synth.db"
    with RecordingWriter(path) as writer:
        synth.write_session(writer, 4000, seed=3)
    async with await Recording.open(path) as rec:
        result = await analysis.analyze(await rec.session())
    top = result.hot_loops[0]
    assert top.key == f"WebApp.example.com/{synth.HOT[0]}/{synth.HOT[1]}"
    assert top.longest_self_trigger_chain >= 10
    assert all(h.longest_self_trigger_chain < top.longest_self_trigger_chain / 5 for h in result.hot_loops[1:])


async def test_many_candidates_filtered_in_python_give_the_same_loops(
        known: tuple[Session, Known], monkeypatch: pytest.MonkeyPatch) -> None:
    session, _ = known
    in_sql = msgspec.to_builtins((await analysis.analyze(session, hot_min=3)).hot_loops)
    monkeypatch.setattr(analysis, "MAX_SQL_LIST", 0)  # as if there were too many to list in SQL
    assert msgspec.to_builtins((await analysis.analyze(session, hot_min=3)).hot_loops) == in_sql
    assert len(in_sql) >= 2


def test_every_output_says_the_same_op_where_a_hot_loop_starts() -> None:
    """``analyze --json``'s first_seq (the loop's first write without a spec change), the report's
    "Jump to seq", compare's op and the TUI's Analysis row all name the same op; the densest window
    is told apart (window_first_seq).  Loops are listed worst first."""
    import json

    from replay_tui.tui.widgets.analysispanel import hot_loops
    from tests.conftest import run_cli

    demo = str(Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db")
    code, out, err = run_cli("analyze", demo, "-s", "buggy-operator", "--json")
    assert code == 0, err
    data = json.loads(out)
    starts = {h["key"]: h["first_seq"] for h in data["hot_loops"]}
    assert starts == {"Report.example.com/default/daily": 14, "Report.example.com/default/weekly": 12}
    weekly = next(h for h in data["hot_loops"] if h["key"].endswith("weekly"))
    assert weekly["window_first_seq"] == 16 and weekly["window_first_seq"] != weekly["first_seq"]
    chains = [h["longest_self_trigger_chain"] for h in data["hot_loops"]]
    assert chains == sorted(chains, reverse=True)  # worst first
    _, shown, _ = run_cli("show", demo, "-s", "buggy-operator", "--at", "12")
    assert "verb       patch Report.example.com/default/weekly/status" in shown  # the loop's first write

    _, out, _ = run_cli("report", demo, "-s", "buggy-operator", "--format", "json")
    told = {f["target"]: f["seq"] for f in json.loads(out)["findings"] if f["kind"] == "hot loop"}
    assert told == starts
    _, out, _ = run_cli("compare", f"{demo}:buggy-operator", f"{demo}:buggy-operator", "--json")
    told = {f["object"]: f["seq_a"] for f in json.loads(out)["findings"] if f["kind"] == "hot-loop"}
    assert told == starts
    rows = hot_loops(data)
    assert {text.plain.split("  ")[0]: seq for text, seq in rows} == starts
