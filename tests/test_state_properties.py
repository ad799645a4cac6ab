"""State reconstruction equals a naive fold of the operations, at every position.

Random streams (creates, updates, patches, gets, deletes, watch events, lists
whose items lack kind/apiVersion, failures) are written by the real writer
with tiny keyframe intervals and batches, so keyframes and batch boundaries
land everywhere; then every position is read back in a random order (so the
keyframe cache is hit and missed) and compared with ``StreamModel``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.engine import state
from replay_tui.engine.store import PositionError, Recording
from tests.conftest import (
    StreamModel,
    build_stream,
    k8s_object,
    object_ids,
    object_keys,
    op_for,
    status_body,
    stream_actions,
    write_session,
)

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


async def _check_stream(path: str, model: StreamModel, n_ops: int, order: list[int],
                        keyframe_interval: int) -> None:
    async with await Recording.open(path) as rec:
        session = await rec.session()
        assert session.last == n_ops
        ids = await object_ids(rec)
        keys_by_id = {v: k for k, v in ids.items()}
        # Every object that ever existed is known to the recording.
        assert set(model.history) <= set(ids)

        versions = sum(len(h) for h in model.history.values())
        keyframes = (await rec.fetchone("SELECT COUNT(*) FROM keyframes WHERE session_id = ?",
                                        (session.id,)))[0]
        if versions >= keyframe_interval:
            assert keyframes >= 1, "keyframes were not exercised"

        for seq in order:
            expected = model.states[seq]
            snap = await state.snapshot(session, seq)
            keys = await snap.keys()
            got = {keys_by_id[obj_id]: await snap.get(obj_id) for obj_id in snap.versions}
            assert got == expected, f"snapshot at {seq}"
            assert list(keys.values()) == sorted(expected)
            for obj_id in snap.versions:
                assert snap.version_seq(obj_id) == model.version_seq(keys_by_id[obj_id], seq)
            for key, obj_id in ids.items():
                assert await state.object_at(session, obj_id, seq) == expected.get(key), \
                    f"object_at({key}, {seq})"

        for key, obj_id in ids.items():
            hist = await state.history(session, obj_id)
            got_hist = [(v.seq, None if v.deleted else await rec.body(v.blob_id)) for v in hist]
            assert got_hist == model.history.get(key, []), f"history of {key}"
            page = await state.history(session, obj_id, limit=2, offset=1)
            assert [v.seq for v in page] == [v.seq for v in hist[1:3]]
            for v in hist:
                assert v.verb == (await session.op(v.seq)).verb


@SETTINGS
@given(actions=stream_actions(), keyframe_interval=st.integers(1, 4), batch=st.integers(1, 7),
       data=st.data())
def test_snapshot_object_at_and_history_equal_the_fold(actions: list[Any], keyframe_interval: int,
                                                       batch: int, data: st.DataObject) -> None:
    ops, effects = build_stream(actions)
    model = StreamModel(effects)
    order = data.draw(st.permutations(range(len(ops) + 1)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rec.db")
        write_session(path, ops, keyframe_interval=keyframe_interval, batch=batch)
        asyncio.run(_check_stream(path, model, len(ops), list(order), keyframe_interval))


@settings(max_examples=15, deadline=None)
@given(first=stream_actions(max_size=12), second=stream_actions(max_size=12))
def test_sessions_in_one_file_do_not_see_each_other(first: list[Any], second: list[Any]) -> None:
    """Two sessions share objects and blobs in one file, yet each folds only its own ops."""
    ops1, eff1 = build_stream(first)
    ops2, eff2 = build_stream(second)
    m1, m2 = StreamModel(eff1), StreamModel(eff2)

    async def check(path: str, n1: str, n2: str) -> None:
        async with await Recording.open(path) as rec:
            ids = await object_keys(rec)
            for name, model in ((n1, m1), (n2, m2)):
                session = await rec.session(name)
                for seq in range(session.last + 1):
                    snap = await state.snapshot(session, seq)
                    got = {ids[o]: await snap.get(o) for o in snap.versions}
                    assert got == model.states[seq]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rec.db")
        n1 = write_session(path, ops1, name="one", keyframe_interval=2, batch=3)
        n2 = write_session(path, ops2, name="two", keyframe_interval=1, batch=2)
        asyncio.run(check(path, n1, n2))


# --- the rules, one by one (readable failures when the property finds something) ----

async def test_finalizers_keep_a_deleted_object_until_the_deleted_event(session_of: Any) -> None:
    live = k8s_object("ConfigMap", "cm", finalizers=["x/y"])
    terminating = k8s_object("ConfigMap", "cm", finalizers=["x/y"], deleting=True, rv=2)
    session = await session_of([
        op_for("create", live, status=201, response=live),
        op_for("delete", live, response=terminating),
        op_for("deleted", terminating, status=0, response=terminating),
    ])
    (obj_id, _) = await session.resolve_object("ConfigMap/default/cm")
    assert await state.object_at(session, obj_id, 2) == terminating
    assert await state.object_at(session, obj_id, 3) is None
    assert [v.seq for v in await state.history(session, obj_id)] == [1, 2, 3]


async def test_failed_writes_and_404_reads(session_of: Any) -> None:
    cm = k8s_object("ConfigMap", "cm")
    session = await session_of([
        op_for("create", cm, status=201, response=cm),
        op_for("update", cm, status=409, reason="Conflict", request=cm,
               response=status_body(409, "Conflict")),
        op_for("get", cm, status=404, response=status_body(404, "NotFound")),
        op_for("get", cm, status=404, response=status_body(404, "NotFound")),
    ])
    obj_id, _ = await session.resolve_object("configmap/default/cm")
    versions = await state.history(session, obj_id)
    assert [(v.seq, v.deleted) for v in versions] == [(1, False), (3, True)]
    assert len(await state.snapshot(session, 2)) == 1
    assert len(await state.snapshot(session, 4)) == 0


async def test_list_items_get_kind_and_api_version_like_a_get(session_of: Any) -> None:
    from tests.conftest import list_body

    dep = k8s_object("Deployment", "web", api_version="apps/v1")
    session = await session_of([
        op_for("get", dep, response=dep),
        op_for("list", None, kind="Deployment", api_version="apps/v1",
               response=list_body("Deployment", [dep], api_version="apps/v1")),
    ])
    obj_id, key = await session.resolve_object("Deployment.apps/default/web")
    assert key.group == "apps"
    # Same object listed: no new version, and the body read back has kind/apiVersion.
    assert [v.seq for v in await state.history(session, obj_id)] == [1]
    assert (await state.object_at(session, obj_id, 2))["kind"] == "Deployment"


async def test_snapshot_positions(session_of: Any) -> None:
    cm = k8s_object("ConfigMap", "cm")
    session = await session_of([op_for("create", cm, status=201, response=cm)])
    assert len(await state.snapshot(session, 0)) == 0
    for bad in (-1, 2):
        try:
            await state.snapshot(session, bad)
        except PositionError as exc:
            assert str(bad) in str(exc)
        else:
            raise AssertionError(f"snapshot({bad}) did not fail")
