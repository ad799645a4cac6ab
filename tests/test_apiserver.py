"""API-server semantics of ``replay_tui.server`` (what the test emulator, ``serve`` and ``serve --fork``
all answer with), exercised through the official Python client over HTTP as an operator meets them,
and the patch formats checked on their own (with properties for merge patches)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client, config, watch

from replay_tui.server.patches import PatchError, json_patch, merge_diff, merge_patch, strategic_merge
from tests.support.emulator import EmulatorThread

GROUP, VERSION = "example.com", "v1"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread() as server:
        server.call(server.emulator.add_crd, GROUP, VERSION, "widgets", "Widget")
        yield server


@pytest.fixture(scope="module")
def api(emu: EmulatorThread, tmp_path_factory: pytest.TempPathFactory) -> client.ApiClient:
    kubeconfig = emu.write_kubeconfig(tmp_path_factory.mktemp("kc") / "kubeconfig")
    return config.new_client_from_config(str(kubeconfig))


def _ns(api: client.ApiClient, name: str) -> str:
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def test_the_server_sets_identity_versions_and_generation(api: client.ApiClient) -> None:
    ns = _ns(api, "ident")
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    cm = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "cfg-"}, "data": {"a": "1"}})
    assert cm.metadata.name.startswith("cfg-") and len(cm.metadata.name) == 9
    assert cm.metadata.uid and cm.metadata.creation_timestamp and cm.metadata.generation is None
    w = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "widgets", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1},
        "status": {"ignored": True}})
    assert w["metadata"]["generation"] == 1 and "status" not in w  # status only through /status
    rv = int(w["metadata"]["resourceVersion"])
    w2 = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "widgets", "w",
                                               {"metadata": {"labels": {"x": "y"}}})
    assert w2["metadata"]["generation"] == 1 and int(w2["metadata"]["resourceVersion"]) > rv  # metadata only
    w3 = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "widgets", "w", {"spec": {"size": 2}})
    assert w3["metadata"]["generation"] == 2
    same = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "widgets", "w", {"spec": {"size": 2}})
    assert same["metadata"]["resourceVersion"] == w3["metadata"]["resourceVersion"]  # no change, no new version
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": cm.metadata.name}})
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "AlreadyExists"


def test_a_stale_resource_version_is_a_409_conflict(api: client.ApiClient) -> None:
    ns = _ns(api, "stale")
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"n": "1"}})
    core.patch_namespaced_config_map("c", ns, {"data": {"n": "2"}})
    first.data = {"n": "stale"}
    with pytest.raises(client.ApiException) as exc:
        core.replace_namespaced_config_map("c", ns, first)
    body = json.loads(exc.value.body)
    assert exc.value.status == 409 and body["reason"] == "Conflict" and "modified" in body["message"]
    with pytest.raises(client.ApiException):
        core.patch_namespaced_config_map("c", ns, {"metadata": {"resourceVersion": first.metadata.resource_version},
                                                   "data": {"n": "x"}})
    assert core.read_namespaced_config_map("c", ns).data == {"n": "2"}


def test_status_is_written_only_through_the_status_subresource(api: client.ApiClient) -> None:
    ns = _ns(api, "status")
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "widgets", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})
    after = custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, "widgets", "w",
                                                         {"status": {"ready": True}, "spec": {"size": 9}})
    assert after["status"] == {"ready": True} and after["spec"] == {"size": 1}
    main = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "widgets", "w", {"status": {"ready": False}})
    assert main["status"] == {"ready": True}


def test_finalizers_hold_a_deletion_until_they_are_removed(api: client.ApiClient) -> None:
    ns = _ns(api, "final")
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "f", "finalizers": ["example.com/keep"]}})
    core.delete_namespaced_config_map("f", ns)
    held = core.read_namespaced_config_map("f", ns)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("f", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_config_map("f", ns)
    assert exc.value.status == 404


def test_selectors_limit_and_continue(api: client.ApiClient) -> None:
    ns = _ns(api, "select")
    core = client.CoreV1Api(api)
    for i in range(5):
        tier = "a" if i % 2 else "b"
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"c{i}", "labels": {"tier": tier}}})
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="tier=a").items] == ["c1", "c3"]
    assert [c.metadata.name for c in core.list_namespaced_config_map(
        ns, label_selector="tier in (a,b),tier!=b").items] == ["c1", "c3"]
    assert [c.metadata.name for c in core.list_namespaced_config_map(
        ns, field_selector="metadata.name=c4").items] == ["c4"]
    page = core.list_namespaced_config_map(ns, limit=2)
    names = [c.metadata.name for c in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_config_map(ns, limit=2, _continue=page.metadata._continue)
        names += [c.metadata.name for c in page.items]
    assert names == ["c0", "c1", "c2", "c3", "c4"]
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_config_map(ns, field_selector="data.x=1")
    assert exc.value.status == 400


def test_a_watch_resumes_from_a_resource_version_and_sends_bookmarks(api: client.ApiClient) -> None:
    ns = _ns(api, "watching")
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", ns, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("a", ns)
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=1)]
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    resp = core.list_namespaced_config_map(ns, watch=True, resource_version=start, timeout_seconds=1,
                                           allow_watch_bookmarks=True, _preload_content=False)
    lines = [json.loads(line) for line in resp.read().splitlines()]
    assert [e["type"] for e in lines] == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in lines]
    assert rvs == sorted(rvs) and rvs[0] > int(start)


def test_a_watch_from_a_forgotten_resource_version_is_410_expired(api: client.ApiClient) -> None:
    ns = _ns(api, "expired")
    core = client.CoreV1Api(api)
    resp = core.list_namespaced_config_map(ns, watch=True, resource_version="1", timeout_seconds=1,
                                           _preload_content=False)
    (line,) = [json.loads(line) for line in resp.read().splitlines()]
    assert line["type"] == "ERROR" and line["object"]["code"] == 410 and line["object"]["reason"] == "Expired"


def test_a_stored_crd_serves_its_resource(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition({
        "metadata": {"name": "gadgets.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v2", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    crd = ext.read_custom_resource_definition("gadgets.example.org")
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
    custom = client.CustomObjectsApi(api)
    gadget = {"apiVersion": "example.org/v2", "kind": "Gadget", "metadata": {"name": "g"}}
    custom.create_namespaced_custom_object("example.org", "v2", "default", "gadgets", gadget)
    assert custom.get_namespaced_custom_object("example.org", "v2", "default", "gadgets", "g")["kind"] == "Gadget"
    resources = client.ApisApi(api).get_api_versions()
    assert "example.org" in [g.name for g in resources.groups]


def test_patch_formats_through_http(api: client.ApiClient) -> None:
    ns = _ns(api, "patches")
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {
            "containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}]}}}})
    # The Python client sends a strategic merge patch for a dict body: containers merge by name.
    d = apps.patch_namespaced_deployment("d", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2"}]}}}})
    assert [(c.name, c.image) for c in d.spec.template.spec.containers] == [("app", "app:2"), ("side", "side:1")]
    # A list body is a JSON patch.
    d = apps.patch_namespaced_deployment("d", ns, [{"op": "replace", "path": "/spec/template/spec/containers/1/image",
                                                     "value": "side:2"}])
    assert d.spec.template.spec.containers[1].image == "side:2"
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment("d", ns, [{"op": "remove", "path": "/spec/nothing"}])
    assert exc.value.status == 422


# --- patches, on their own ----------------------------------------------------------------------

def test_strategic_merge_directives() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]},
           "metadata": {"finalizers": ["x"]}}
    out = strategic_merge(pod, {"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "c"}]},
                                "metadata": {"finalizers": ["y", "x"]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "c"]
    assert out["metadata"]["finalizers"] == ["x", "y"]
    assert strategic_merge(pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})["metadata"] == \
        {"finalizers": []}
    assert strategic_merge(pod, {"spec": {"$patch": "replace", "other": 1}})["spec"] == {"other": 1}
    assert pod["spec"]["containers"][1] == {"name": "b", "image": "1"}  # inputs untouched


def test_json_patch_is_all_or_nothing() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    assert json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3}, {"op": "move", "from": "/b/c", "path": "/d"},
                            {"op": "test", "path": "/d", "value": 1}]) == {"a": [1, 2, 3], "b": {}, "d": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/a/0"}, {"op": "test", "path": "/b/c", "value": 2}])
    assert doc == {"a": [1, 2], "b": {"c": 1}}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12)
_objects = st.dictionaries(st.text(max_size=3), _json, max_size=4)


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(_objects, _objects)
def test_merge_diff_is_the_patch_that_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    """What the fork's outside world relies on: an observed change, as a merge patch, reproduces it
    (JSON merge patches cannot carry nulls inside objects: those stand for removal)."""
    old, new = _no_nulls(old), _no_nulls(new)
    assert merge_patch(old, merge_diff(old, new)) == new


def test_delete_preconditions_and_server_side_apply(emu: EmulatorThread, api: client.ApiClient) -> None:
    ns = _ns(api, "apply")
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map(ns, {"metadata": {"name": "p"}, "data": {"a": "1"}})
    with pytest.raises(client.ApiException) as exc:
        core.delete_namespaced_config_map("p", ns, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-its-uid")))
    assert exc.value.status == 409
    core.delete_namespaced_config_map("p", ns, body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=made.metadata.uid, resource_version=made.metadata.resource_version)))
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)

    def apply(value: str) -> dict[str, Any]:
        body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '{value}'\n"
        conn.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/applied?fieldManager=t", body=body,
                     headers={"Content-Type": "application/apply-patch+yaml"})
        resp = conn.getresponse()
        assert resp.status in (200, 201)
        return json.loads(resp.read())

    first, again = apply("1"), apply("2")  # an apply creates what does not exist, then merges into it
    assert first["data"] == {"a": "1"} and again["data"] == {"a": "2"}
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
