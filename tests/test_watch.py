"""Field watchpoints: every answer of the change index equals a naive scan of every position.

The property test writes random streams (conftest.stream_actions: creates,
updates, patches, gets, deletes, watch events, lists, failures) with the real
writer and compares, for random fields and every object, the change index's
``changes``/``next``/``prev``/``last``/``value_at`` with a fold of the
reference model (``StreamModel``), which knows nothing of the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.engine import watch
from replay_tui.engine.diff import MISSING, get_path
from replay_tui.engine.format import Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import (
    T0,
    StreamModel,
    build_stream,
    k8s_object,
    object_ids,
    op_for,
    stream_actions,
    write_session,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PATHS = ("", ".spec", ".spec.v", ".metadata.resourceVersion", ".metadata.finalizers",
         ".metadata.finalizers[0]", ".metadata.deletionTimestamp", ".metadata.name", ".status",
         '.metadata["resourceVersion"]', ".spec.v.w")


def _encode(value: Any) -> bytes:
    """Naive JSON identity: the sorted encoding (MISSING is its own thing)."""
    return b"\x00MISSING" if value is MISSING else msgspec.json.encode(value, order="sorted")


def naive_changes(model: StreamModel, key: Any, path: str, n_ops: int) -> list[tuple[int, Any, Any]]:
    """(seq, old, new) wherever the field's value at a position differs from the one before."""
    out = []
    previous: Any = MISSING
    for seq in range(1, n_ops + 1):
        body = model.states[seq].get(key)
        value = MISSING if body is None else get_path(body, path)
        if _encode(value) != _encode(previous):
            out.append((seq, previous, value))
            previous = value
    return out


def _triple(change: watch.FieldChange | None) -> tuple[int, bytes, bytes] | None:
    return None if change is None else (change.seq, _encode(change.old), _encode(change.new))


def _naive_triple(change: tuple[int, Any, Any] | None) -> tuple[int, bytes, bytes] | None:
    return None if change is None else (change[0], _encode(change[1]), _encode(change[2]))


async def _check(db: str, model: StreamModel, ops: list[Operation], path: str, read_to: int) -> None:
    async with await Recording.open(db) as rec:
        session = await rec.session()
        n = session.last
        for key, obj_id in (await object_ids(rec)).items():
            index = await watch.change_index(session, obj_id, path)
            expected = naive_changes(model, key, path, n)
            await _check_outward(session, obj_id, key, path, expected, read_to)
            got = [(c.seq, _encode(c.old), _encode(c.new)) for c in index.changes()]
            assert got == [_naive_triple(c) for c in expected], f"changes of {key}:{path}"
            for c in index.changes():
                assert c.verb == ops[c.seq - 1].verb
                assert c.deleted == (model.states[c.seq].get(key) is None)
            for pos in range(n + 2):
                nxt = next((c for c in expected if c[0] > pos), None)
                prv = next((c for c in reversed(expected) if c[0] < pos), None)
                lst = next((c for c in reversed(expected) if c[0] <= pos), None)
                assert _triple(index.next(pos)) == _naive_triple(nxt), f"next({pos}) {key}:{path}"
                assert _triple(index.prev(pos)) == _naive_triple(prv), f"prev({pos}) {key}:{path}"
                assert _triple(index.last(pos)) == _naive_triple(lst), f"last({pos}) {key}:{path}"
                body = model.states[min(pos, n)].get(key)
                value = MISSING if body is None else get_path(body, path)
                assert _encode(index.value_at(pos)) == _encode(value), f"value_at({pos})"
                if pos >= 1:
                    assert _encode(index.value_at(pos)) == _encode(
                        index.last(pos).new if index.last(pos) else MISSING)


async def _check_outward(session: Session, obj_id: int, key: Any, path: str,
                         expected: list[tuple[int, Any, Any]], read_to: int) -> None:
    """``after``/``before`` at every position equal the full history's next/prev: on an index
    that has read nothing, and on one that has read the versions up to ``read_to`` only (a
    session that grew since)."""
    n = session.last
    full = await watch.change_index(session, obj_id, path)
    cold = watch.ChangeIndex(session, obj_id, key, path)
    part = watch.ChangeIndex(session, obj_id, key, path)
    session.last = min(read_to, n)
    try:
        await part.update()
    finally:
        session.last = n
    for index in (cold, part):
        for pos in range(n + 2):
            nxt = next((c for c in expected if c[0] > pos), None)
            prv = next((c for c in reversed(expected) if c[0] < pos), None)
            after, before = await index.after(pos), await index.before(pos)
            assert _triple(after) == _naive_triple(nxt), f"after({pos}) {key}:{path} read to {index.upto}"
            assert _triple(before) == _naive_triple(prv), f"before({pos}) {key}:{path} read to {index.upto}"
            for got, want in ((after, full.next(pos)), (before, full.prev(pos))):
                if got is not None and want is not None:
                    assert (got.verb, got.actor, got.reconcile, got.ts_ns, got.deleted) == \
                        (want.verb, want.actor, want.reconcile, want.ts_ns, want.deleted)


@SETTINGS
@given(actions=stream_actions(max_size=40), path=st.sampled_from(PATHS), batch=st.integers(1, 7),
       read_to=st.integers(0, 45), first=st.sampled_from((1, 2, watch.FIRST)))
def test_every_answer_equals_a_naive_scan(actions: list[Any], path: str, batch: int, read_to: int,
                                          first: int) -> None:
    ops, effects = build_stream(actions)
    model = StreamModel(effects)
    default, watch.FIRST = watch.FIRST, first  # small chunks: the outward scans read several
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "rec.db")
            write_session(db, ops, batch=batch)
            asyncio.run(_check(db, model, ops, path, read_to))
    finally:
        watch.FIRST = default


# --- fields of every shape -------------------------------------------------------------

def pod(rv: int, ready: str | None, *, phase: Any = "Running", status: Any = ..., **extra: Any) -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    body = k8s_object("Pod", "api-0", rv=rv, spec={"containers": [{"name": "web", "image": f"web:{rv}"}]},
                      **extra)
    body["status"] = {"phase": phase, "conditions": conditions} if status is ... else status
    return body


POD_VERSIONS = [
    pod(1, None, phase="Pending"),
    pod(2, "False"),
    pod(3, "False", labels={"app": "web"}),   # Ready unchanged, a label appears
    pod(4, "True"),
    pod(5, "True", status="weird"),           # .status is a string: the field is absent
    pod(6, "True", status=None),              # .status is null
    pod(7, "False", phase=1),
    pod(8, "False", phase=1.0),               # 1 -> 1.0 is a change in JSON
    pod(9, "False", phase=True),
]


@pytest.fixture
async def pods(session_of: Any) -> Session:
    steps: list[Any] = []
    for i, body in enumerate(POD_VERSIONS):
        steps.append(op_for("create" if i == 0 else "update", body, status=201 if i == 0 else 200,
                            request=body, response=body, actor="kubelet"))
    steps.append(op_for("delete", POD_VERSIONS[-1], status=200, response={"kind": "Status", "status": "Success"}))
    steps.append(op_for("create", POD_VERSIONS[3], status=201, request=POD_VERSIONS[3],
                        response=POD_VERSIONS[3]))
    return await session_of(steps)


async def test_list_selectors_strings_nulls_and_number_types(pods: Session) -> None:
    ready = await watch.watch(pods, "Pod/default/api-0:.status.conditions[type=Ready].status")
    assert [(c.seq, c.old, c.new) for c in ready.changes()] == [
        (2, MISSING, "False"), (4, "False", "True"), (5, "True", MISSING), (7, MISSING, "False"),
        (10, "False", MISSING), (11, MISSING, "True")]
    assert ready.changes()[4].deleted and ready.changes()[4].verb == "delete"
    phase = await watch.watch(pods, "pod/default/api-0:.status.phase")  # kinds match in any case
    assert [c.new for c in phase.changes()] == ["Pending", "Running", MISSING, 1, 1.0, True, MISSING,
                                                "Running"]
    label = await watch.watch(pods, 'Pod/default/api-0:.metadata.labels["app"]')
    assert [(c.seq, c.new) for c in label.changes()] == [(3, "web"), (4, MISSING)]
    image = await watch.watch(pods, "Pod/api-0:.spec.containers[name=web].image")  # KIND/NAME form
    assert len(image.changes()) == 11 and image.value_at(0) is MISSING
    first = await watch.watch(pods, "Pod/default/api-0:.status.conditions[0].type")
    assert [(c.seq, c.new) for c in first.changes()] == [(1, "PodScheduled"), (5, MISSING),
                                                         (7, "PodScheduled"), (10, MISSING),
                                                         (11, "PodScheduled")]


async def test_continue_and_reverse_continue_walk_the_changes(pods: Session) -> None:
    index = await watch.watch(pods, "Pod/default/api-0:.status.conditions[type=Ready].status")
    seqs = [c.seq for c in index.changes()]
    pos, forward = 0, []
    while (c := index.next(pos)) is not None:
        forward.append(c.seq)
        pos = c.seq
    assert forward == seqs
    pos, backward = pods.last + 1, []
    while (c := index.prev(pos)) is not None:
        backward.append(c.seq)
        pos = c.seq
    assert backward == seqs[::-1]
    assert index.last(3).seq == 2 and index.last(4).seq == 4 and index.prev(4).seq == 2
    assert index.step(4, forward=True).seq == 5 and index.step(4, forward=False).seq == 2
    assert index.changes(2, 7) == index.changes()[1:4]


async def test_indexes_are_cached_per_session_object_and_path(pods: Session) -> None:
    a = await watch.watch(pods, "Pod/default/api-0:.status.phase")
    b = await watch.watch(pods, "Pod/default/api-0:.status.phase")
    c = await watch.watch(pods, "Pod/default/api-0:.spec")
    assert a is b and a is not c


async def test_watch_set_continues_over_every_watched_field(pods: Session) -> None:
    ws = watch.WatchSet(pods)
    obj_id, _ = await pods.resolve_object("Pod/default/api-0")
    ready = await ws.add(obj_id, ".status.conditions[type=Ready].status")
    label = await ws.add_spec('Pod/default/api-0:.metadata.labels["app"]')
    assert await ws.add(obj_id, ".status.conditions[type=Ready].status") is ready and len(ws) == 2
    hit = ws.step(2, forward=True)
    assert hit is not None and hit[0] is label and hit[1].seq == 3
    hit = ws.step(4, forward=False)
    assert hit is not None and hit[0] is label and hit[1].seq == 3
    values = ws.values_at(3)
    assert [(w is ready, v, ch.seq if ch else None) for w, v, ch in values] == [
        (True, "False", 2), (False, "web", 3)]
    assert ws.remove(obj_id, '.metadata.labels["app"]') and len(ws) == 1
    assert ws.step(11, forward=True) is None


async def test_a_growing_session_extends_its_index(tmp_path: Path, open_recording: Any) -> None:
    db = tmp_path / "live.db"
    writer = RecordingWriter(db)
    sw = writer.session("live", "proxy")
    try:
        for i, body in enumerate(POD_VERSIONS[:3]):
            sw.append(op_for("update", body, request=body, response=body, ts_ns=T0 + i))
        sw.flush()
        rec = await open_recording(db)
        session = await rec.session("live")
        index = await watch.watch(session, "Pod/default/api-0:.status.conditions[type=Ready].status")
        assert [c.seq for c in index.changes()] == [2]
        for i, body in enumerate(POD_VERSIONS[3:5]):
            sw.append(op_for("update", body, request=body, response=body, ts_ns=T0 + 10 + i))
        sw.flush()
        await session.refresh()
        again = await watch.watch(session, "Pod/default/api-0:.status.conditions[type=Ready].status")
        assert again is index and [c.seq for c in again.changes()] == [2, 4, 5]
    finally:
        sw.close()
        writer.close()


async def test_bad_fields_are_one_line_errors_with_a_column(pods: Session) -> None:
    for spec, column in (("Pod/default/api-0", 1), ("Pod/default/api-0:spec", 19),
                         ("Pod/default/api-0:.status.conditions[type=Ready", 37), (":.spec", 1),
                         ("Pod//api-0:.spec", 1)):
        with pytest.raises(watch.FieldSpecError) as info:
            watch.parse_field(spec)
        assert info.value.column == column, spec
        assert "\n" not in str(info.value)
    with pytest.raises(RecordingError, match="no object"):
        await watch.watch(pods, "Pod/default/nope:.spec")
    assert watch.parse_field("Pod/default/api-0:.").path == ""


# --- the CLI ------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "replay_tui", *args], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)


@pytest.fixture
def pods_db(tmp_path: Path) -> Path:
    db = tmp_path / "pods.db"
    steps: list[Any] = []
    for i, body in enumerate(POD_VERSIONS):
        rid_holder: dict[str, int] = {}
        steps.append(lambda sw, h=rid_holder: h.setdefault("rid", sw.begin_reconcile("podctl", kind="Pod",
                                                                                        namespace="default",
                                                                                        name="api-0")))
        steps.append(lambda sw, body=body, i=i, h=rid_holder: sw.append(op_for(
            "create" if i == 0 else "update", body, status=201 if i == 0 else 200, request=body,
            response=body, actor="podctl", reconcile=h["rid"], ts_ns=T0 + i * 1_000_000_000)))
        steps.append(lambda sw, h=rid_holder: sw.end_reconcile(h["rid"]))
    write_session(db, steps, name="pods")
    return db


def test_when_json_lists_changes_with_who_made_them(pods_db: Path) -> None:
    field = "Pod/default/api-0:.status.conditions[type=Ready].status"
    proc = run_cli("when", str(pods_db), "--field", field, "--json")
    assert proc.returncode == 0, proc.stderr
    changes = json.loads(proc.stdout)
    assert [(c["seq"], c["old"], c["new"], c["op"]) for c in changes] == [
        (2, None, "False", "added"), (4, "False", "True", "changed"), (5, "True", None, "removed"),
        (7, None, "False", "added")]
    assert all(c["verb"] == "update" and c["reconcile"] == c["seq"] for c in changes)
    assert changes[0]["write"] == {"seq": 2, "verb": "update", "actor": "podctl", "reconcile": 2,
                                   "status": 200}
    before = json.loads(run_cli("when", str(pods_db), "--field", field, "--before", "6", "--json").stdout)
    assert [c["seq"] for c in before] == [5]
    before_all = json.loads(run_cli("when", str(pods_db), "--field", field, "--before", "6", "--all",
                                    "--json").stdout)
    assert [c["seq"] for c in before_all] == [2, 4, 5]
    after = json.loads(run_cli("when", str(pods_db), "--field", field, "--after", "5", "--json").stdout)
    assert [c["seq"] for c in after] == [7]
    assert json.loads(run_cli("when", str(pods_db), "--field", field, "--after", "7", "--json").stdout) == []


def test_when_text_and_errors(pods_db: Path) -> None:
    proc = run_cli("when", str(pods_db), "--field", "Pod/default/api-0:.status.phase")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Pod/default/api-0:.status.phase: 6 change(s)")
    assert lines[1].split()[:4] == ["SEQ", "ELAPSED", "VERB", "WRITTEN"]
    assert '"Pending" -> "Running"' in lines[3] and "op 2 update (reconcile #2) podctl" in lines[3]
    bad = run_cli("when", str(pods_db), "--field", "Pod/default/api-0:.status..phase")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    first, second = bad.stderr.splitlines()
    assert second.index("^") == first.index(".status..phase") + len(".status")
    missing = run_cli("when", str(pods_db), "--field", "Pod/default/nope:.spec")
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1
    assert "no object" in missing.stderr
    both = run_cli("when", str(pods_db), "--field", "Pod/default/api-0:.spec", "--before", "1",
                   "--after", "2")
    assert both.returncode == 2 and "not allowed with" in both.stderr


async def test_a_failed_build_leaves_nothing_half_read(pods: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails (or is cancelled) midway is rolled back; the next one is complete."""
    monkeypatch.setattr(watch, "FETCH", 2)  # several batches
    calls = {"n": 0}
    real = watch.ChangeIndex._extract

    def failing(self: watch.ChangeIndex, rows: Any, cache: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker died")
        return real(self, rows, cache)

    monkeypatch.setattr(watch.ChangeIndex, "_extract", failing)
    obj_id, key = await pods.resolve_object("Pod/default/api-0")
    index = watch.ChangeIndex(pods, obj_id, key, ".status.phase")
    with pytest.raises(RuntimeError):
        await index.update()
    assert (len(index), index.versions, index.upto) == (0, 0, 0)
    await index.update()
    assert [c.new for c in index.changes()] == ["Pending", "Running", MISSING, 1, 1.0, True, MISSING,
                                                "Running"]
    assert index.versions == 11


def test_path_for_names_list_items_by_their_key() -> None:
    doc = {"status": {"conditions": [{"type": "Scheduled", "status": "True"},
                                     {"type": "Ready", "status": "False"}]},
           "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
           "spec": {"args": ["--a", "--b"], "ports": [{"port": 80}, {"port": 80}]}}
    cases = {
        ("status", "conditions", 1, "status"): (".status.conditions[type=Ready].status", "False"),
        ("metadata", "labels", "app.kubernetes.io/name"): ('.metadata.labels["app.kubernetes.io/name"]', "web"),
        ("spec", "args", 1): (".spec.args[1]", "--b"),
        ("spec", "ports", 1, "port"): (".spec.ports[1].port", 80),  # no unique key: by index
    }
    for parts, (path, value) in cases.items():
        assert watch.path_for(doc, list(parts)) == path
        assert get_path(doc, watch.check_path(path)) == value
    with pytest.raises(watch.FieldSpecError):
        watch.path_for(doc, ["spec", "args", "x"])


async def test_an_index_over_compressed_versions_and_a_corrupted_one(tmp_path: Path, open_recording: Any) -> None:
    import sqlite3

    db = tmp_path / "big.db"
    bodies = [k8s_object("ConfigMap", "big", rv=i + 1, data={"n": str(i // 3), "pad": "y" * 2000})
              for i in range(40)]
    write_session(db, [op_for("create" if i == 0 else "update", b, response=b) for i, b in enumerate(bodies)])
    rec = await open_recording(db)
    ses = await rec.session(None)
    await ses.refresh()
    obj_id, key = await ses.resolve_object("ConfigMap/default/big")
    index = watch.ChangeIndex(ses, obj_id, key, ".data.n")
    await index.update()
    assert [c.new for c in index.changes()] == [str(n) for n in range(14)]
    assert index.versions == 40
    conn = sqlite3.connect(db)
    with conn:
        assert conn.execute("SELECT COUNT(*) FROM blobs WHERE codec = 1").fetchone()[0] >= 40
        conn.execute("UPDATE blobs SET data = ? WHERE id = (SELECT MAX(id) FROM blobs WHERE codec = 1)",
                     (b"\x28\xb5\x2f\xfd not zstd",))
    conn.close()
    fresh = await open_recording(db)
    ses2 = await fresh.session(None)
    await ses2.refresh()
    with pytest.raises(RecordingError, match="corrupted"):
        await watch.ChangeIndex(ses2, obj_id, key, ".data.n").update()


# --- the first answer reads around its position, not the object's history ---------------

PROBED = ".status.conditions[type=Ready].probe.status"


def _probed(rv: int) -> dict[str, Any]:
    """A pod whose Ready condition's probe is rewritten on every version (the index records the
    item's members, ``.probe`` among them, not what is below) and whose probe's status flips
    every 10th: every version is a candidate for the status."""
    body = k8s_object("Pod", "hot", rv=rv)
    body["status"] = {"conditions": [{"type": "Ready", "probe": {"status": str(rv // 10 % 2 == 0),
                                                                 "lastProbeTime": f"t{rv}"}}]}
    return body


@pytest.mark.parametrize("versions", [300, 3000])
async def test_the_first_answer_decodes_a_bounded_number_of_versions(
        versions: int, session_of: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``after``/``before`` on an index that has read nothing decode the versions between the
    position and the nearest change (and one before it), whatever the object's history."""
    ses = await session_of([op_for("create" if i == 0 else "update", _probed(i + 1), response=_probed(i + 1))
                            for i in range(versions)])
    decodes = {"n": 0}
    real = watch.FieldReader.value

    def counting(self: watch.FieldReader, data: bytes) -> Any:
        decodes["n"] += 1
        return real(self, data)

    monkeypatch.setattr(watch.FieldReader, "value", counting)
    obj_id, key = await ses.resolve_object("Pod/default/hot")
    most = 0
    for pos in range(2, versions - 10, max(1, versions // 97)):
        for field in (PROBED, ".metadata.resourceVersion"):
            for forward in (True, False):
                cold = watch.ChangeIndex(ses, obj_id, key, field)
                decodes["n"] = 0
                found = await (cold.after(pos) if forward else cold.before(pos))
                assert found is not None and (found.seq > pos if forward else found.seq < pos)
                most = max(most, decodes["n"])
    assert most <= 2 * 10 + 8  # the status changes every 10 versions; chunks are decoded 1, 2, 4, ...
    full = watch.ChangeIndex(ses, obj_id, key, PROBED)
    decodes["n"] = 0
    await full.update()
    assert decodes["n"] == versions  # (reading the history decodes all of it)
