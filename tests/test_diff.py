"""Field-level diffs: apply inverts diff, paths read back, ignores, and diffs over a recording."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.engine import state
from replay_tui.engine.diff import (
    MISSING,
    Change,
    PathError,
    apply,
    diff,
    get_path,
    key_segment,
    object_diff,
    parse_path,
    state_diff,
)
from replay_tui.engine.store import Recording
from tests.conftest import (
    StreamModel,
    build_stream,
    k8s_object,
    object_keys,
    op_for,
    stream_actions,
    write_session,
)

# --- JSON-like values ---------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "name", "type", "spec", "x.y", "app.kubernetes.io/name", "",
                        "0", "with space", 'q"uote', "ü", "a-b", "_"]) | st.text(max_size=3)
IDENTS = st.sampled_from(["a", "b", "c", "Ready", "x=y", "", "dotted.name", "sp ace"]) | \
    st.integers(0, 3) | st.booleans() | st.none()
SCALARS = (st.none() | st.booleans() | st.integers(-3, 3)
           | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.text(max_size=4))


def _keyed_lists(children: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of objects identified by name/type, like containers or conditions."""
    def build(key: str) -> st.SearchStrategy[list[dict[str, Any]]]:
        item = st.tuples(IDENTS, st.dictionaries(KEYS, children, max_size=3))
        return st.lists(item, max_size=4, unique_by=lambda t: repr(t[0])).map(
            lambda items: [{**d, key: ident} for ident, d in items])
    return st.sampled_from(["name", "type", "containerPort"]).flatmap(build)


JSON = st.recursive(
    SCALARS,
    lambda children: (st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4)
                      | _keyed_lists(children)),
    max_leaves=25,
)


@st.composite
def mutated(draw: Any, value: Any) -> Any:
    """``value`` with a few random edits: changed scalars, added/removed keys and items, reorders."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            c = draw(st.integers(0, 5))
            if c == 0:
                continue
            out[k] = draw(mutated(v)) if c == 1 else v
        if draw(st.integers(0, 3)) == 0:
            out[draw(KEYS)] = draw(JSON)
        return out
    if isinstance(value, list):
        items = [draw(mutated(v)) if draw(st.integers(0, 3)) == 0 else v
                 for v in value if draw(st.integers(0, 5)) != 0]
        if draw(st.integers(0, 3)) == 0:
            extra = dict(items[0]) if items and isinstance(items[0], dict) else draw(JSON)
            if isinstance(extra, dict):
                for k in ("name", "type", "containerPort"):
                    if k in extra:
                        extra[k] = draw(IDENTS)
            items.insert(draw(st.integers(0, len(items))), extra)
        if draw(st.integers(0, 5)) == 0:
            items = list(draw(st.permutations(items)))
        return items
    return draw(SCALARS) if draw(st.booleans()) else value


@st.composite
def pairs(draw: Any) -> tuple[Any, Any]:
    a = draw(JSON)
    how = draw(st.integers(0, 5))
    if how == 0:
        return a, a
    if how == 1:
        return a, draw(JSON)
    return a, draw(mutated(a))


def same(x: Any, y: Any) -> bool:
    """JSON equality: 1, 1.0 and true are different values (``==`` says they are equal)."""
    if type(x) is not type(y):
        return False
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(v, y[k]) for k, v in x.items())
    if isinstance(x, list):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
    return x == y


def render(segments: list[tuple[str, Any]]) -> str:
    out = []
    for kind, arg in segments:
        if kind == "key":
            out.append(key_segment(arg))
        elif kind == "index":
            out.append(f"[{arg}]")
        else:
            out.append(f"[{arg[0]}={arg[1]}]")
    return "".join(out)


def under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


PROPS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(pairs())
def test_apply_inverts_diff(pair: tuple[Any, Any]) -> None:
    a, b = pair
    changes = diff(a, b, ignore=())
    assert same(apply(a, changes), b)
    assert (changes == []) == same(a, b)
    # apply does not touch its input
    assert same(a, pair[0])


@PROPS
@given(pairs())
def test_paths_parse_and_point_at_old_and_new(pair: tuple[Any, Any]) -> None:
    a, b = pair
    for ch in diff(a, b, ignore=()):
        segments = parse_path(ch.path)
        assert render(segments) == ch.path
        assert same(get_path(b, ch.path), ch.new) or (ch.new is MISSING and get_path(b, ch.path) is MISSING)
        assert same(get_path(a, ch.path), ch.old) or (ch.old is MISSING and get_path(a, ch.path) is MISSING)
        assert ch.old is not MISSING or ch.new is not MISSING


@PROPS
@given(pairs(), st.data())
def test_ignored_paths_hide_exactly_their_subtree(pair: tuple[Any, Any], data: st.DataObject) -> None:
    a, b = pair
    full = diff(a, b, ignore=())
    if not full:
        return
    path = data.draw(st.sampled_from([c.path for c in full]))
    segments = parse_path(path)
    prefix = render(segments[:data.draw(st.integers(0 if path == "" else 1, len(segments)))])
    if prefix == "":
        assert diff(a, b, ignore=("",)) == []
        return
    assert diff(a, b, ignore=(prefix,)) == [c for c in full if not under(c.path, prefix)]


# --- readable paths ----------------------------------------------------------------

POD = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"},
                 "resourceVersion": "5", "managedFields": [{"manager": "kubectl"}]},
    "spec": {"containers": [{"name": "app", "image": "web:1", "ports": [{"containerPort": 80}]},
                            {"name": "sidecar", "image": "proxy:1"}],
             "args": ["a", "b", "c"]},
    "status": {"conditions": [{"type": "Ready", "status": "False"},
                              {"type": "Initialized", "status": "True"}]},
}


def test_condition_paths_use_the_type() -> None:
    new = apply(POD, [Change(".status.conditions[type=Ready].status", "False", "True")])
    assert diff(POD, new) == [Change(".status.conditions[type=Ready].status", "False", "True")]
    assert get_path(new, ".status.conditions[type=Ready].status") == "True"


def test_label_with_dots_and_slashes_is_quoted() -> None:
    new = apply(POD, [Change('.metadata.labels["app.kubernetes.io/name"]', "web", "api")])
    (change,) = diff(POD, new)
    assert change.path == '.metadata.labels["app.kubernetes.io/name"]'
    assert (change.old, change.new, change.kind) == ("web", "api", "changed")
    assert parse_path(change.path) == [("key", "metadata"), ("key", "labels"),
                                      ("key", "app.kubernetes.io/name")]


def test_inserting_a_container_reports_only_that_container() -> None:
    import copy
    new = copy.deepcopy(POD)
    new["spec"]["containers"].append({"name": "debug", "image": "busybox"})
    new["spec"]["containers"][0]["image"] = "web:2"
    assert diff(POD, new) == [
        Change(".spec.containers[name=app].image", "web:1", "web:2"),
        Change(".spec.containers[name=debug]", MISSING, {"name": "debug", "image": "busybox"}),
    ]
    assert get_path(new, ".spec.containers[name=app].ports[containerPort=80]") == {"containerPort": 80}


def test_positional_and_removed_fields() -> None:
    import copy
    new = copy.deepcopy(POD)
    new["spec"]["args"][2] = "z"
    del new["spec"]["containers"][1]["image"]
    changes = diff(POD, new)
    assert Change(".spec.args[2]", "c", "z") in changes
    removed = [c for c in changes if c.kind == "removed"]
    assert removed == [Change(".spec.containers[name=sidecar].image", "proxy:1", MISSING)]
    assert removed[0].to_json() == {"path": ".spec.containers[name=sidecar].image", "op": "removed",
                                    "old": "proxy:1"}


def test_default_ignore_hides_noise_but_ignore_empty_shows_it() -> None:
    import copy
    new = copy.deepcopy(POD)
    new["metadata"]["resourceVersion"] = "6"
    new["metadata"]["managedFields"] = [{"manager": "operator"}]
    assert diff(POD, new) == []
    assert {c.path.split("[")[0] for c in diff(POD, new, ignore=())} == {
        ".metadata.resourceVersion", ".metadata.managedFields"}


def test_type_changes_are_changes() -> None:
    assert diff({"a": [1]}, {"a": [True]}, ignore=()) != []
    assert diff({"a": 1}, {"a": 1.0}, ignore=()) == [Change(".a", 1, 1.0)]
    assert diff({"a": None}, {}, ignore=()) == [Change(".a", None, MISSING)]


@pytest.mark.parametrize("bad", ["spec", ".spec..x", ".spec[", "[a=b", ".a[-1]", '.a["unterminated]'])
def test_bad_paths_raise_path_error(bad: str) -> None:
    with pytest.raises(PathError, match="column"):
        parse_path(bad)


# --- over a recording ------------------------------------------------------------------

async def _check_state_diff(path: str, model: StreamModel, positions: list[tuple[int, int]]) -> None:
    async with await Recording.open(path) as rec:
        session = await rec.session()
        keys = await object_keys(rec)
        for a, b in positions:
            sd = await state_diff(session, a, b, ignore=())
            got = dict(model.states[a])
            for obj_id in sd.removed:
                del got[keys[obj_id]]
            for obj_id in sd.added:
                assert keys[obj_id] not in got
                got[keys[obj_id]] = await state.object_at(session, obj_id, b)
            for obj_id, changes in sd.changed.items():
                got[keys[obj_id]] = apply(got[keys[obj_id]], changes)
                one = await object_diff(session, obj_id, a, b, ignore=())
                assert one == changes
            assert got == model.states[b], f"state_diff({a}, {b})"


@settings(max_examples=40, deadline=None)
@given(actions=stream_actions(max_size=20), data=st.data())
def test_state_diff_applied_gives_the_state_at_b(actions: list[Any], data: st.DataObject) -> None:
    ops, effects = build_stream(actions)
    model = StreamModel(effects)
    n = len(ops)
    positions = data.draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, n)), min_size=1,
                                   max_size=8))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rec.db")
        write_session(path, ops, keyframe_interval=2, batch=3)
        asyncio.run(_check_state_diff(path, model, positions))


async def test_object_diff_between_positions(session_of: Any) -> None:
    v1 = k8s_object("Deployment", "web", api_version="apps/v1", spec={"replicas": 1})
    v2 = k8s_object("Deployment", "web", api_version="apps/v1", rv=2, spec={"replicas": 3})
    session = await session_of([
        op_for("create", v1, status=201, response=v1),
        op_for("update", v2, response=v2),
        op_for("delete", v2),
    ])
    obj_id, _ = await session.resolve_object("deployment/default/web")
    assert await object_diff(session, obj_id, 1, 2) == [Change(".spec.replicas", 1, 3)]
    assert await object_diff(session, obj_id, 0, 1) == [Change("", MISSING, v1)]
    assert await object_diff(session, obj_id, 2, 3) == [Change("", v2, MISSING)]
    sd = await state_diff(session, 1, 2)
    assert (sd.added, sd.removed, list(sd.changed)) == ([], [], [obj_id])
