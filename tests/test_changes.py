"""The change index: what the writer records for each new version, and that ``when``,
``c``/``C`` and ``changed=`` read it without missing a change (they give exactly what
reading every version gives) while decoding only the versions it names."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import generator
from replay_tui.engine import changes, query, watch
from replay_tui.engine.changes import CHANGE_DEPTH, ChangeTracker, changed_paths, index_path
from replay_tui.engine.diff import MISSING, diff, get_path, key_segment, parse_path
from replay_tui.engine.filters import parse
from replay_tui.engine.schema import FORMAT_V2, FORMAT_V3
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.watch import same
from replay_tui.engine.writer import RecordingWriter
from tests.conftest import op_for, write_session, writing_format

# --- what the writer records ------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "Ready", "x]y"]))
keys = st.sampled_from(["spec", "status", "metadata", "name", "type", "replicas", "a.b", "phase", "items"])
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(keys, inner, max_size=4),
        st.lists(st.fixed_dictionaries({"name": st.sampled_from(["w", "v"]), "type": st.sampled_from(["A", "B"])},
                                       optional={"x": inner, "a.b": inner}), max_size=3)),
    max_leaves=12)
documents = st.dictionaries(keys, values, max_size=5)


@settings(max_examples=300, deadline=None)
@given(old=documents, new=documents)
def test_every_changed_field_is_named_by_its_indexed_path(old: dict[str, Any], new: dict[str, Any]) -> None:
    """No false negatives: for each field diff reports, and for each selector path whose value
    differs, the path the index is asked for (``index_path``) is among the recorded ones."""
    recorded = set(changed_paths(msgspec.json.encode(old), msgspec.json.encode(new)))
    for change in diff(old, new, ignore=()):
        looked = index_path(change.path)
        assert looked == "" or looked in recorded, (change.path, looked, recorded)
    for key in old.keys() | new.keys():  # list items by any key field, as a watch names them
        items = [i for side in (old, new) if isinstance(side.get(key), list) for i in side[key]]
        for field in ("name", "type"):
            for item in items:
                if isinstance(item, dict) and isinstance(item.get(field), str) and "]" not in item[field]:
                    path = f"{key_segment(key)}[{field}={item[field]}]"
                    if not same(get_path(old, path), get_path(new, path)):
                        assert index_path(path) in recorded, (path, recorded)
    for path in recorded:  # and what it records has the depth it promises: what index_path looks up
        assert index_path(path) == path, path
        segments = parse_path(path)
        kinds = [kind for kind, _ in segments]
        assert 1 <= len(segments) <= CHANGE_DEPTH or kinds[CHANGE_DEPTH:] in (["sel"], ["key"], ["sel", "key"]), path
        assert "key" not in kinds[CHANGE_DEPTH:] or kinds[-2] == "sel", path  # deeper only: an item's member


def test_paths_name_list_items_by_key_and_stop_at_the_depth() -> None:
    old = {"metadata": {"resourceVersion": "1", "labels": {"app": "web"}},
           "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}}
    new = {"metadata": {"resourceVersion": "2", "labels": {"app": "web"}},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    got = changed_paths(msgspec.json.encode(old), msgspec.json.encode(new))
    assert got == [".metadata", ".metadata.resourceVersion", ".status", ".status.phase", ".status.conditions",
                   ".status.conditions[type=Ready]", ".status.conditions[type=Ready].status"]
    assert index_path(".status.conditions[type=Ready].status") == ".status.conditions[type=Ready].status"
    assert index_path(".status.conditions[type=Ready].status", FORMAT_V2) == ".status.conditions[type=Ready]"
    assert index_path(".spec.containers[name=web].ports[name=http].containerPort") == \
        ".spec.containers[name=web].ports"  # an item's member, not the items below it
    assert index_path(".spec[name=a].b.c") == ".spec[name=a].b"
    assert index_path(".status.conditions[reason=X]") == ".status.conditions"
    assert index_path(".spec.containers[0].image") == ".spec.containers"
    assert index_path('.metadata.labels["app.kubernetes.io/name"]') == '.metadata.labels'
    assert index_path("[0]") == ""


def test_a_first_version_lists_list_items_and_not_their_members() -> None:
    """An item keyed by a value of its own (an ownerReference by name and uid) would give every
    object paths of its own: a first version lists the item, its mark stands for the members."""
    t = ChangeTracker(1)
    owned = b'{"metadata":{"ownerReferences":[{"name":"web-1","uid":"u1","kind":"Deployment"}]}}'
    assert t.version(1, owned) == "|*|1|2|3|4|"
    assert sorted(t.paths) == [".metadata", ".metadata.ownerReferences",
                               ".metadata.ownerReferences[name=web-1]", ".metadata.ownerReferences[uid=u1]"]
    assert t.version(1, owned.replace(b"Deployment", b"ReplicaSet")) == "|1|2|3|5|4|6|"  # a member changed
    assert t.paths[".metadata.ownerReferences[name=web-1].kind"] == 5
    assert changes.implied_by(".metadata.ownerReferences[name=web-1].kind", FORMAT_V3) == \
        ".metadata.ownerReferences[name=web-1]"
    assert changes.implied_by(".metadata.ownerReferences[name=web-1].kind", FORMAT_V2) is None
    assert changes.implied_by(".status.phase", FORMAT_V3) is None


items = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["Ready", "Synced"])},
                                       optional={"status": scalars, "reason": scalars, "x.y": scalars}),
                 max_size=3)
conditioned = st.fixed_dictionaries({}, optional={"status": st.fixed_dictionaries({}, optional={
    "conditions": items, "phase": scalars}), "items": items})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=st.lists(conditioned, min_size=1, max_size=4), deleted=st.booleans())
def test_member_fields_over_the_index_read_what_every_version_says(
        tmp_path_factory: pytest.TempPathFactory, versions: list[dict[str, Any]], deleted: bool) -> None:
    """Created, updated, deleted and created again: a member of a list item (its first version
    lists only the item) has the same changes, and the same ``changed=`` matches, read through the
    index as read from every version."""
    path = tmp_path_factory.mktemp("m") / "m.db"
    steps = []
    for rnd in range(2):
        for i, body in enumerate(versions):
            obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "namespace": "default"}, **body}
            steps.append(op_for("create" if i == 0 else "update", obj, response=obj))
        if deleted or rnd == 0:
            steps.append(op_for("delete", obj, response=obj))
    write_session(path, steps)
    fields = [".status.conditions[type=Ready].status", ".items[type=Synced].reason",
              '.items[type=Ready]["x.y"]', ".status.conditions[type=Synced]", ".status.phase"]

    async def check() -> None:
        async with await Recording.open(path) as rec:
            ses = await rec.session()
            (obj_id,) = await _objects(ses)
            for field in fields:
                flt = parse(f"changed={field}")
                watch.forget(ses)
                a = _changes(await watch.change_index(ses, obj_id, field))
                got = [m.row.seq async for batch in query.stream(ses, flt) for m in batch]
                count = await query.count(ses, flt)
                watch.forget(ses)
                fmt, ses.format = ses.format, 1
                try:
                    b = _changes(await watch.change_index(ses, obj_id, field))
                    want = [m.row.seq async for batch in query.stream(ses, flt) for m in batch]
                finally:
                    ses.format = fmt
                assert a == b, field
                assert got == want and count == len(want), field

    asyncio.run(check())


def test_the_tracker_records_unknown_where_it_cannot_compare() -> None:
    t = ChangeTracker(1, max_bytes=60)
    assert t.version(1, b'{"a":1}') == "|*|1|"  # the first version: every path it has (marked)
    assert t.version(1, b'{"a":2}') == "|1|"
    assert t.version(1, b'{"a":2,"b":[1]}') == "|2|"
    assert t.version(1, None) == "|*|1|2|"  # deleted: every path it had
    assert t.version(1, b'{"c":0}') == "|*|3|"  # re-created
    t.version(2, b'{"a":1,"pad":"' + b"x" * 40 + b'"}')
    t.version(3, b'{"a":1,"pad":"' + b"y" * 40 + b'"}')  # 2 no longer fits the cache
    assert t.version(2, b'{"a":3}') is None
    assert dict(t.committed()) == {1: ".a", 2: ".b", 3: ".c", 4: ".pad"}


@given(st.integers(1, 1 << 40), st.sampled_from([FORMAT_V2, FORMAT_V3]))
def test_path_ids_read_back_and_no_token_is_inside_another(path_id: int, fmt: int) -> None:
    text = changes.id_text(path_id, fmt)
    assert changes.id_of(text, fmt) == path_id and "|" not in text
    assert changes.token(path_id, fmt) == f"|{text}|"
    other = changes.id_text(path_id + 1, fmt)
    assert changes.token(path_id, fmt) not in f"|{other}|{changes.id_text(path_id * 64 + 1, fmt)}|"
    if fmt == FORMAT_V3 and path_id >= 100:
        assert len(text) < len(str(path_id))  # shorter: the index holds every token twice


# --- readers: the same answers as reading every version --------------------------------------

FIELDS = (".status", ".status.conditions[type=Ready].status", ".spec.replicas", ".metadata.resourceVersion",
          ".status.conditions[0].type", '.metadata.labels["app.kubernetes.io/name"]', ".nothing.here",
          ".spec")


@pytest.fixture(scope="module", params=[FORMAT_V3, FORMAT_V2], ids=["format3", "format2"])
def synthetic(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session as this writer writes it, and as the writer of format 2 (recordings made before) did."""
    path = tmp_path_factory.mktemp("changes") / f"s{request.param}.db"
    with writing_format(request.param), RecordingWriter(path) as w:
        generator.write_session(w, 6000, seed=11, batch=500)
    return path


async def _objects(session: Session) -> list[int]:
    """The object with the most versions, and a few others of other kinds."""
    rows = await session.rec.fetchall(
        "SELECT s.obj_id, o.kind, COUNT(*) n FROM states s JOIN objects o ON o.id = s.obj_id"
        " WHERE s.session_id = ? GROUP BY s.obj_id ORDER BY n DESC", (session.id,))
    picked, kinds = [], set()
    for obj_id, kind, _ in rows:
        if kind not in kinds:
            kinds.add(kind)
            picked.append(obj_id)
    return picked


def _changes(index: watch.ChangeIndex) -> list[tuple[Any, ...]]:
    return [(c.seq, msgspec.json.encode(watch.jsonable(c.old)), msgspec.json.encode(watch.jsonable(c.new)),
             c.old is MISSING, c.new is MISSING, c.verb, c.deleted) for c in index.changes()]


async def test_watches_over_the_index_find_every_change(synthetic: Path) -> None:
    async with await Recording.open(synthetic) as rec:
        ses = await rec.session()
        for obj_id in await _objects(ses):
            for path in FIELDS:
                watch.forget(ses)
                indexed = await watch.change_index(ses, obj_id, path)
                got, decoded, versions = _changes(indexed), indexed.decoded, indexed.versions
                watch.forget(ses)
                fmt, ses.format = ses.format, 1  # read every version, as for a recording without the index
                try:
                    everything = await watch.change_index(ses, obj_id, path)
                finally:
                    ses.format = fmt
                assert got == _changes(everything), (obj_id, path)
                assert everything.decoded == versions == everything.versions
                assert decoded <= versions


async def test_a_rarely_changing_field_of_the_busiest_object_reads_few_versions(synthetic: Path) -> None:
    async with await Recording.open(synthetic) as rec:
        ses = await rec.session()
        busiest = (await _objects(ses))[0]
        index = await watch.change_index(ses, busiest, ".spec")
        assert index.versions > 300 and index.decoded < index.versions / 10


async def test_a_conditions_status_reads_only_the_versions_that_changed_it(synthetic: Path) -> None:
    """Format 3 indexes a condition's members: versions that changed only its lastTransitionTime or
    message are not read for its status.  A format-2 recording reads them (and still answers right)."""
    async with await Recording.open(synthetic) as rec:
        ses = await rec.session()
        busiest = (await _objects(ses))[0]
        index = await watch.change_index(ses, busiest, ".status.conditions[type=Ready].status")
        found = len(index.changes())
        assert found >= 1
        if ses.format >= FORMAT_V3:
            assert index.decoded <= found + 1
        else:
            assert index.decoded > found + 1


@pytest.mark.parametrize("expression", ["changed=.status", "changed=.spec.replicas,.status.phase",
                                        "verb=update changed=.status.conditions[type=Ready].status",
                                        "changed=.metadata.resourceVersion changed=.spec"])
async def test_changed_filters_over_the_index_match_what_every_version_says(synthetic: Path,
                                                                           expression: str) -> None:
    flt = parse(expression)

    async def matches(ses: Session) -> list[Any]:
        out = []
        async for batch in query.stream(ses, flt):
            out.extend((m.row.seq, [f.to_json() for f in m.fields]) for m in batch)
        return out

    async with await Recording.open(synthetic) as rec:
        ses = await rec.session()
        indexed = await matches(ses)
        count = await query.count(ses, flt)
        fmt, ses.format = ses.format, 1
        try:
            assert indexed == await matches(ses)
        finally:
            ses.format = fmt
        assert count == len(indexed)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), ops=st.integers(50, 800))
def test_watches_agree_on_any_synthetic_session(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                ops: int) -> None:
    path = tmp_path_factory.mktemp("w") / "w.db"
    with RecordingWriter(path) as w:
        generator.write_session(w, ops, seed=seed, batch=97)

    async def check() -> None:
        async with await Recording.open(path) as rec:
            ses = await rec.session()
            for obj_id in (await _objects(ses))[:3]:
                for path_ in (".status", ".spec.replicas", ".status.conditions[type=Ready].status"):
                    watch.forget(ses)
                    a = _changes(await watch.change_index(ses, obj_id, path_))
                    watch.forget(ses)
                    ses.format = 1
                    b = _changes(await watch.change_index(ses, obj_id, path_))
                    ses.format = FORMAT_V3
                    assert a == b

    asyncio.run(check())


def test_values_that_read_the_same_are_not_changes() -> None:
    # The index may name a path whose JSON spelling changed (key order); readers compare values.
    old, new = b'{"spec":{"a":{"x":1,"y":2}}}', b'{"spec":{"a":{"y":2,"x":1}}}'
    assert ".spec.a" in changed_paths(old, new)  # an object at the last level: compared by its bytes
    assert same(get_path(msgspec.json.decode(old), ".spec"), get_path(msgspec.json.decode(new), ".spec"))


def test_a_number_written_another_way_is_no_change() -> None:
    assert changed_paths(b'{"spec":{"a":1.0,"b":"x"}}', b'{"spec":{"a":1.00,"b":"\\u0078"}}') == []
    assert changed_paths(b'{"spec":{"a":1}}', b'{"spec":{"a":1.0}}') == [".spec", ".spec.a"]  # int -> float
