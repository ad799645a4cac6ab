"""Tables and PartialObjectMetadata: the objects inside name the ops and feed the state.

Bodies here are shaped as kube-apiserver sends them to ``kubectl get`` (``as=Table``, rows
carrying PartialObjectMetadata, or whole objects with ``includeObject=Object``) and to
metadata-only clients (``as=PartialObjectMetadata``/``PartialObjectMetadataList``), written
through the real writer and read back through the engine.  The end-to-end counterpart, with
kubectl itself, is ``tests/conformance/test_kubectl.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from replay_tui.engine import state
from replay_tui.engine.format import Operation
from replay_tui.engine.partial import merge_partial
from replay_tui.engine.store import Recording
from replay_tui.engine.writer import RecordingWriter

META_V1 = "meta.k8s.io/v1"


def cm(name: str, rv: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"kind": "ConfigMap", "apiVersion": "v1", "data": data,
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": rv, **meta}}


def partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": META_V1, "metadata": obj["metadata"]}


def table(*objects: dict[str, Any], whole: bool = False) -> dict[str, Any]:
    return {"kind": "Table", "apiVersion": META_V1, "metadata": {"resourceVersion": "99"},
            "columnDefinitions": [{"name": "Name", "type": "string"}],
            "rows": [{"cells": [o["metadata"]["name"]], "object": o if whole else partial(o)} for o in objects]}


def event(verb: str, body: Any) -> Operation:
    """A watch event as the proxy records it: the resource from the watch URL, no name."""
    return Operation(verb=verb, api_version="v1", resource="configmaps", kind="ConfigMap", namespace="default",
                     response=msgspec.json.encode(body))


def request(verb: str, body: Any, name: str = "", status: int = 200) -> Operation:
    return Operation(verb=verb, api_version="v1", resource="configmaps", kind="ConfigMap", namespace="default",
                     name=name, status=status, response=msgspec.json.encode(body))


async def _record(tmp_path: Path, ops: list[Operation]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Write ``ops``; return each op's (verb, name) and the state after each op (object name -> body)."""
    path = tmp_path / "r.db"
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        s.extend(ops)
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        rows = await ses.rows(1, len(ops))
        states = []
        for seq in range(1, len(ops) + 1):
            snap = await state.snapshot(ses, seq)
            states.append({key.name: await snap.get(oid) for oid, key in (await snap.keys()).items()})
        return [(r.verb, r.name) for r in rows], states


async def test_a_table_watch_names_its_events_and_moves_the_state(tmp_path: Path) -> None:
    a1 = cm("a", "1", {"x": "1"})
    a2 = cm("a", "2", {"x": "1"}, labels={"team": "x"})
    rows, states = await _record(tmp_path, [
        request("get", a1, name="a"),  # kubectl label: the whole object first
        event("modified", table(a2)),  # then get -w's Table event, metadata only
        event("added", table(cm("b", "3", {"y": "2"}))),
        event("deleted", table(cm("b", "4", {"y": "2"}))),
    ])
    assert rows == [("get", "a"), ("modified", "a"), ("added", "b"), ("deleted", "b")]
    assert states[1]["a"] == {**a1, "metadata": a2["metadata"]}  # labels and rv new, data kept
    assert states[2]["b"] == {"kind": "ConfigMap", "apiVersion": "v1", "metadata": cm("b", "3", {})["metadata"]}
    assert "b" not in states[3]


async def test_a_table_list_gives_every_row_its_object(tmp_path: Path) -> None:
    a, b = cm("a", "1", {"x": "1"}), cm("b", "2", {"y": "2"})
    listing = request("list", table(a, b))
    rows, states = await _record(tmp_path, [listing, request("list", table(a, b, whole=True))])
    assert rows == [("list", ""), ("list", "")]
    assert set(states[0]) == {"a", "b"} and "data" not in states[0]["a"]
    assert states[1] == {"a": a, "b": b}  # includeObject=Object: whole objects, as they are


async def test_a_table_get_and_partial_object_metadata(tmp_path: Path) -> None:
    a1, a2 = cm("a", "1", {"x": "1"}), cm("a", "2", {"x": "1"}, annotations={"seen": "1"})
    rows, states = await _record(tmp_path, [
        request("get", a1, name="a"),
        request("get", table(a2), name="a"),
        event("modified", partial(cm("a", "3", {}, annotations={"seen": "2"}))),
    ])
    assert rows == [("get", "a"), ("get", "a"), ("modified", "a")]
    assert states[1]["a"]["data"] == {"x": "1"} and states[1]["a"]["metadata"]["annotations"] == {"seen": "1"}
    assert states[2]["a"]["data"] == {"x": "1"} and states[2]["a"]["metadata"]["resourceVersion"] == "3"


async def test_a_partial_object_metadata_list(tmp_path: Path) -> None:
    a, b = cm("a", "1", {"x": "1"}), cm("b", "2", {"y": "2"})
    items = [partial(a), {"metadata": b["metadata"]}]  # items with and without their kind
    rows, states = await _record(tmp_path, [
        request("list", {"kind": "PartialObjectMetadataList", "apiVersion": META_V1,
                         "metadata": {"resourceVersion": "5"}, "items": items})])
    assert rows == [("list", "")]
    assert {k: v["metadata"]["uid"] for k, v in states[0].items()} == {"a": "uid-a", "b": "uid-b"}
    assert {v["kind"] for v in states[0].values()} == {"ConfigMap"}


async def test_an_unchanged_partial_view_adds_no_version(tmp_path: Path) -> None:
    a = cm("a", "1", {"x": "1"})
    path = tmp_path / "r.db"
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        s.extend([request("get", a, name="a"), request("get", table(a), name="a"), event("modified", partial(a))])
        s.close()
    async with await Recording.open(path) as rec:
        ses = await rec.session()
        (oid,) = (await state.snapshot(ses, 3)).versions
        assert [v.seq for v in await state.history(ses, oid)] == [1]


_values = st.dictionaries(st.sampled_from(["labels", "annotations", "finalizers", "resourceVersion", "generation"]),
                          st.one_of(st.text(max_size=3), st.dictionaries(st.text(max_size=2), st.text(max_size=2))))


@settings(max_examples=200, deadline=None)
@given(previous=st.one_of(st.none(), st.fixed_dictionaries(
           {"kind": st.just("ConfigMap"), "apiVersion": st.just("v1"), "metadata": _values,
            "data": st.dictionaries(st.text(max_size=2), st.text(max_size=2))})),
       carried=_values)
def test_partial_metadata_never_erases_what_it_lacks(previous: dict[str, Any] | None,
                                                     carried: dict[str, Any]) -> None:
    merged = merge_partial(previous, msgspec.json.encode({"kind": "PartialObjectMetadata", "metadata": carried}),
                           "ConfigMap", "v1")
    assert merged is not None
    for key, value in carried.items():
        assert merged["metadata"][key] == value  # what it carries wins
    if previous is not None:
        for key in previous:
            assert key in merged  # spec, data, status: kept
        for key, value in previous["metadata"].items():
            if key not in carried:
                assert merged["metadata"][key] == value  # a metadata key it lacks: kept
    assert merged["kind"] == "ConfigMap" and merged["apiVersion"] == "v1"


# --- an object's own ops (the TUI's ``t``): the filter's shortcut is exact -----------------------------

_OLD_OBJECT_SQL = ("(obj_id = ? OR EXISTS (SELECT 1 FROM states st WHERE st.session_id = operations.session_id"
                   " AND st.seq = operations.seq AND st.obj_id = ?))")


def _op_shapes() -> Any:
    names = st.sampled_from(["a", "b", "c"])
    body = st.builds(lambda n, rv: cm(n, str(rv), {"v": str(rv % 3)}), names, st.integers(1, 9))
    bodies = st.lists(body, min_size=1, max_size=3, unique_by=lambda o: o["metadata"]["name"])
    plain_list = bodies.map(lambda objs: {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": objs})
    meta_list = bodies.map(lambda objs: {"kind": "PartialObjectMetadataList", "apiVersion": META_V1, "metadata": {},
                                         "items": [partial(o) for o in objs]})
    return st.one_of(
        body.map(lambda o: request("get", o, name=o["metadata"]["name"])),
        body.map(lambda o: request("update", o, name=o["metadata"]["name"])),
        st.tuples(names, st.booleans()).map(lambda nb: request("delete", {"kind": "Status"} if nb[1] else
                                                                 cm(nb[0], "9", {}), name=nb[0])),
        st.tuples(st.one_of(plain_list, meta_list, bodies.map(lambda o: table(*o)),
                            bodies.map(lambda o: table(*o, whole=True))), st.sampled_from(["", "a"]))
        .map(lambda bn: request("list", bn[0], name=bn[1])),  # a named list: a field selector the recorder kept
        st.tuples(st.sampled_from(["added", "modified", "deleted"]), body, st.sampled_from(["whole", "table", "meta"]))
        .map(lambda e: event(e[0], e[1] if e[2] == "whole" else table(e[1]) if e[2] == "table" else partial(e[1]))),
        bodies.map(lambda o: request("get", table(*o))),  # a Table of several rows for a get naming nothing
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(_op_shapes(), min_size=1, max_size=25))
def test_an_objects_ops_are_the_same_as_by_probing_every_op(tmp_path_factory: Any, ops: list[Operation]) -> None:
    """``object_ops`` probes ``states`` only for lists and ops naming no object; on any mix of gets,
    writes, deletes, lists (plain, Table, PartialObjectMetadataList, named) and watch events (whole,
    Table, partial), it finds exactly the ops that probing every op finds."""
    import sqlite3

    from replay_tui.engine.filters import object_ops

    path = tmp_path_factory.mktemp("objops") / "r.db"
    with RecordingWriter(path) as w:
        s = w.session("s", "proxy")
        s.extend(ops)
        s.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for (oid,) in conn.execute("SELECT id FROM objects").fetchall():
            new = object_ops(oid, "x")
            got, want = ([r[0] for r in conn.execute(f"SELECT seq FROM operations WHERE {sql} ORDER BY seq", params)]
                         for sql, params in ((new.sql, new.params), (_OLD_OBJECT_SQL, (oid, oid))))
            assert got == want
    finally:
        conn.close()
