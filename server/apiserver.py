"""The one implementation of API-server semantics in the product: an in-memory store with the rules
operators rely on.

* server-assigned ``uid``, ``creationTimestamp``, ``generation`` (bumped when anything but
  metadata and status changes) and ``generateName``;
* one cluster-wide, increasing ``resourceVersion``; ``201`` on create; ``409 AlreadyExists``;
* ``PUT`` (full update) and ``PATCH`` (merge, JSON, strategic merge and apply patches), both
  ``409 Conflict`` on a stale ``resourceVersion``; a write that changes nothing keeps the
  resourceVersion;
* the ``status`` subresource: writes to the object leave ``.status`` as it was, writes to
  ``/status`` change only ``.status``;
* deletion with finalizers (``deletionTimestamp`` first, gone when the last finalizer is
  removed); delete preconditions (uid, resourceVersion);
* label and field selectors; ``limit`` and ``continue``;
* watches that honour ``resourceVersion`` (replaying what the server keeps, ``410 Expired``
  when it is older), ``timeoutSeconds`` and ``allowWatchBookmarks``;
* a CustomResourceDefinition, once stored, serves its resource.

Used three ways: empty, as the test emulator; seeded with a recording's state at a position
and read-only (``replay``), its position moved by :meth:`ApiServer.apply_recorded` and
:meth:`ApiServer.reset`; and seeded and writable (``fork``).  What it does not do (admission,
schema validation, garbage collection, built-in controllers, field managers) is listed in the
README ("What a fork does not emulate").
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from replay_tui.server import errors
from replay_tui.server.errors import ApiError
from replay_tui.server.patches import PatchError, json_patch, merge_patch, strategic_merge
from replay_tui.server.render import Event, event_line
from replay_tui.server.resources import BUILTIN, ResourceType, TypeRegistry
from replay_tui.server.selectors import field_matcher, label_matcher

HISTORY = 10_000  # watch events kept per resource for resumption by resourceVersion
START_RV = 1000
READ_ONLY = "this server is read-only"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC, to the second, as kube-apiserver writes metadata timestamps."""
    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """What a change of bumps ``generation``: everything but metadata, status, kind and apiVersion."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def fold_string_data(obj: dict[str, Any]) -> None:
    """Like the real server: a Secret's ``stringData`` is write-only, merged into ``data`` as base64."""
    strings = obj.pop("stringData", None)
    if isinstance(strings, dict):
        data = dict(obj.get("data") or {})
        data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in strings.items()})
        obj["data"] = data


def numeric_rv(text: Any) -> int | None:
    if isinstance(text, str) and text.isdigit() and len(text) < 19:
        return int(text)
    return None


@dataclass(eq=False)
class Watcher:
    """One open watch: what it selects, and the queue its events arrive on (None: the stream ends)."""

    rt: ResourceType
    namespace: str
    name: str
    labels: Callable[[dict[str, str]], bool]
    fields: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    initial: list[Event] = field(default_factory=list)  # what it is sent first (a list, or history)
    expired: ApiError | None = None  # the resourceVersion asked for is gone: sent as an ERROR event

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace", "") != self.namespace:
            return False
        if self.name and meta.get("name") != self.name:
            return False
        return self.labels(meta.get("labels") or {}) and self.fields(obj)


class ApiServer:
    """Objects by resource and (namespace, name), with the API's semantics (see the module docstring).

    Every method runs on one event loop (watch queues are asyncio queues); from another
    thread, go through ``server.http.ServerThread.call``.
    """

    def __init__(self, types: Iterable[ResourceType] | TypeRegistry = BUILTIN, *, writable: bool = True,
                 read_only_message: str = READ_ONLY, clock: Callable[[], float] = time.time,
                 rv: int = START_RV, history: int = HISTORY, default_namespace: bool = True):
        self.types = types if isinstance(types, TypeRegistry) else TypeRegistry(types)
        self.writable = writable
        self.read_only_message = read_only_message
        self.clock = clock
        self.store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self.history: dict[tuple[str, str], deque[tuple[int, Event]]] = \
            defaultdict(lambda: deque(maxlen=history))
        self.watchers: dict[tuple[str, str], set[Watcher]] = defaultdict(set)
        self.rv = rv
        self.floor = rv  # history is complete from this resourceVersion on
        self.bookmark_interval: float | None = None
        self.listeners: list[Callable[[ResourceType, str, dict[str, Any]], None]] = []
        if default_namespace:
            self.put("", "namespaces", {"metadata": {"name": "default"}})

    # --- types ---------------------------------------------------------------------------------

    def add_resource(self, rt: ResourceType) -> ResourceType:
        """Serve a resource (and list it in discovery)."""
        return self.types.add(rt)

    def type_of(self, group: str, plural: str) -> ResourceType:
        return self.types.plural(group, plural)

    def add_crd(self, group: str, version: str, plural: str, kind: str, *, namespaced: bool = True,
                status: bool = True, short_names: Iterable[str] = ()) -> ResourceType:
        """Store a CustomResourceDefinition (which serves its resource), as an admin would."""
        self.put("apiextensions.k8s.io", "customresourcedefinitions", crd_object(
            group, version, plural, kind, namespaced=namespaced, status=status, short_names=tuple(short_names)))
        return self.types.plural(group, plural)

    def _crd_stored(self, crd: dict[str, Any]) -> None:
        for rt in crd_types(crd):
            self.types.add(rt)

    # --- direct access (server side: no preconditions, but events are sent) ------------------

    def put(self, group: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object as if an admin had, without preconditions."""
        rt = self.type_of(group, plural)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default") if rt.namespaced else ""
        current = self.store[rt.key].get((ns, meta["name"]))
        if current is None:
            return self._create(rt, ns, obj)
        obj["metadata"] = {**current["metadata"], **meta}
        return self._replace(rt, current, obj)

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        rt = self.type_of(group, plural)
        obj = self.store[rt.key].get((namespace if rt.namespaced else "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, group: str, plural: str) -> list[dict[str, Any]]:
        """Copies of every object of a resource, by namespace and name."""
        rt = self.type_of(group, plural)
        objects = self.store[rt.key]
        return [copy.deepcopy(objects[k]) for k in sorted(objects)]

    def remove(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Delete an object as if an admin had (finalizers honoured); None when it does not exist."""
        rt = self.type_of(group, plural)
        ns = namespace if rt.namespaced else ""
        if (ns, name) not in self.store[rt.key]:
            return None
        return self._delete(rt, ns, name, None)

    def change(self, group: str, plural: str, namespace: str, name: str,
               patch: dict[str, Any]) -> dict[str, Any] | None:
        """A merge patch applied as if an admin had (status included, no preconditions); None when the
        object does not exist."""
        rt = self.type_of(group, plural)
        current = self.store[rt.key].get((namespace if rt.namespaced else "", name))
        if current is None:
            return None
        return self._replace(rt, current, merge_patch(current, patch))

    def close_watches(self) -> None:
        """End every open watch stream (before shutting down)."""
        for watchers in self.watchers.values():
            for w in watchers:
                w.queue.put_nowait(None)

    # --- the verbs, as the HTTP layer calls them --------------------------------------------------

    def check_writable(self) -> None:
        if not self.writable:
            raise errors.method_not_allowed(self.read_only_message)

    def read(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        """GET: the stored object (not a copy: callers must not change it)."""
        obj = self.store[rt.key].get((ns, name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def create(self, rt: ResourceType, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.check_writable()
        if rt.namespaced and not ns:
            raise errors.no_resource()
        return self._create(rt, ns, obj)

    def update(self, rt: ResourceType, ns: str, name: str, obj: dict[str, Any],
               subresource: str = "") -> dict[str, Any]:
        self.check_writable()
        return self._update(rt, ns, name, obj, subresource)

    def patch(self, rt: ResourceType, ns: str, name: str, patch: Any, content_type: str,
              subresource: str = "") -> dict[str, Any]:
        self.check_writable()
        return self._patch(rt, ns, name, patch, content_type, subresource)

    def delete(self, rt: ResourceType, ns: str, name: str, options: Any = None) -> dict[str, Any]:
        self.check_writable()
        return self._delete(rt, ns, name, options)

    def delete_collection(self, rt: ResourceType, ns: str, query: dict[str, str]) -> dict[str, Any]:
        self.check_writable()
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""), rt.kind)
        deleted = [self._delete(rt, k[0], k[1], None)
                   for k, o in sorted(self.store[rt.key].items())
                   if (not ns or k[0] == ns) and labels(o["metadata"].get("labels") or {}) and fields(o)]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.rv)}, "items": deleted}

    def list_objects(self, rt: ResourceType, ns: str, query: dict[str, str]) -> dict[str, Any]:
        """LIST: selectors, ``limit`` and ``continue``; built-in items without kind and apiVersion."""
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""), rt.kind)
        objects = self.store[rt.key]
        keys = sorted(objects) if not ns else sorted(k for k in objects if k[0] == ns)
        items = [o for o in (objects[k] for k in keys)
                 if labels(o["metadata"].get("labels") or {}) and fields(o)]
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"].encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise errors.bad_request("invalid continue token") from None
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        limit = int(query["limit"]) if query.get("limit", "").isdigit() and int(query["limit"]) > 0 else 0
        if limit and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        if not rt.custom:  # built-in list items come without kind and apiVersion
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": items}

    # --- watches ---------------------------------------------------------------------------------------

    def subscribe(self, rt: ResourceType, ns: str, name: str, query: dict[str, str]) -> Watcher:
        """Open a watch: what it is sent first (the objects, or the history after its resourceVersion)
        and the queue later events arrive on.  Call :meth:`unsubscribe` when the stream ends."""
        watcher = Watcher(rt, ns, name, label_matcher(query.get("labelSelector", "")),
                          field_matcher(query.get("fieldSelector", ""), rt.kind))
        rv_text = query.get("resourceVersion", "")
        if rv_text in ("", "0"):
            objects = self.store[rt.key]
            watcher.initial = [("ADDED", objects[k], event_line("ADDED", objects[k]))
                               for k in sorted(objects) if watcher.matches(objects[k])]
        else:
            since = numeric_rv(rv_text)
            if since is None:
                raise errors.bad_request(f"invalid resourceVersion {rv_text!r}")
            history = self.history[rt.key]
            oldest = history[0][0] if history else self.rv + 1
            if since < self.floor or (history and oldest > since + 1 and len(history) == history.maxlen):
                watcher.expired = errors.expired(f"too old resource version: {since} ({max(self.floor, oldest - 1)})")
            else:
                watcher.initial = [event for rv, event in history if rv > since and watcher.matches(event[1])]
        self.watchers[rt.key].add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self.watchers[watcher.rt.key].discard(watcher)

    def bookmark(self, rt: ResourceType) -> bytes:
        return event_line("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                       "metadata": {"resourceVersion": str(self.rv)}})

    def _emit(self, rt: ResourceType, kind: str, obj: dict[str, Any], index: int | None = None,
              line: bytes | None = None) -> None:
        event = (kind, obj, line or event_line(kind, obj))
        rv = index if index is not None else int(obj["metadata"]["resourceVersion"])
        self.history[rt.key].append((rv, event))
        for w in self.watchers[rt.key]:
            if w.matches(obj):
                w.queue.put_nowait(event)
        for listener in self.listeners:
            listener(rt, kind, obj)

    # --- moving a served recording ------------------------------------------------------------------

    def apply_recorded(self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any] | None,
                       rv: str = "", raw: bytes = b"") -> None:
        """A version a recording holds, stored as recorded (None: the object was deleted); open watches
        get it as ADDED, MODIFIED or DELETED, with the recorded resourceVersion.  ``raw``: the object's
        JSON as recorded, which the event carries without encoding it again."""
        key = (namespace if rt.namespaced else "", name)
        objects = self.store[rt.key]
        current = objects.get(key)
        if obj is None and current is None:
            return
        number = numeric_rv(rv or ((obj or {}).get("metadata") or {}).get("resourceVersion"))
        index = number if number is not None and number > self.rv else self.rv + 1
        self.rv = index
        if obj is None:
            assert current is not None
            gone = current  # no longer stored: the event may carry it as it is
            if rv:
                gone = {**current, "metadata": {**(current.get("metadata") or {}), "resourceVersion": rv}}
            del objects[key]
            self._emit(rt, "DELETED", gone, index)
            return
        objects[key] = obj
        if rt.kind == "CustomResourceDefinition":
            self._crd_stored(obj)
        kind = "MODIFIED" if current is not None else "ADDED"
        self._emit(rt, kind, obj, index, b'{"type":"%s","object":%s}\n' % (kind.encode(), raw) if raw else None)

    def reset(self, objects: Iterable[tuple[ResourceType, dict[str, Any]]], *, rv: int | None = None,
              gone: str = "the server's history was reset") -> None:
        """Replace every object (a served recording moved backwards): open watches end with 410 Gone,
        as after an etcd compaction, and clients re-list."""
        error = errors.ApiError(410, "Expired", gone)
        line = event_line("ERROR", error.status())
        for watchers in self.watchers.values():
            for w in watchers:
                w.queue.put_nowait(("ERROR", error.status(), line))
                w.queue.put_nowait(None)
        self.store.clear()
        self.history.clear()
        top = 0
        for rt, obj in objects:
            meta = obj.get("metadata") or {}
            self.store[rt.key][(meta.get("namespace", "") if rt.namespaced else "", meta.get("name", ""))] = obj
            if rt.kind == "CustomResourceDefinition":
                self._crd_stored(obj)
            top = max(top, numeric_rv(meta.get("resourceVersion")) or 0)
        self.rv = rv if rv is not None else max(top, self.rv + 1)
        self.floor = self.rv

    # --- the verbs' rules ------------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _create(self, rt: ResourceType, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value: "
                                               "name or generateName is required")
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
        objects = self.store[rt.key]
        if (ns, meta["name"]) in objects:
            raise errors.already_exists(rt, meta["name"])
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=timestamp(self.clock()),
                    resourceVersion=self._next_rv())
        if rt.status or rt.custom:  # like the real server: no generation on ConfigMaps, Secrets, ...
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.status and rt.kind not in ("Namespace", "CustomResourceDefinition"):
            obj.pop("status", None)  # status is written through the status subresource only
        if rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        if rt.kind == "Secret":
            fold_string_data(obj)
        if rt.kind == "CustomResourceDefinition":
            established(obj)
        objects[(ns, meta["name"])] = obj
        if rt.kind == "CustomResourceDefinition":
            self._crd_stored(obj)
        self._emit(rt, "ADDED", obj)
        return obj

    def _current(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        obj = self.store[rt.key].get((ns, name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def _update(self, rt: ResourceType, ns: str, name: str, obj: dict[str, Any], subresource: str) -> dict[str, Any]:
        current = self._current(rt, ns, name)
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name", name) != name:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        if subresource == "status":
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(obj.get("status"))
            if new["status"] is None:
                del new["status"]
        else:
            new = copy.deepcopy(obj)
            new["metadata"] = dict(new.get("metadata") or {})
            _keep_status(rt, current, new)
        return self._replace(rt, current, new)

    def _patch(self, rt: ResourceType, ns: str, name: str, patch: Any, content_type: str,
               subresource: str) -> dict[str, Any]:
        current = self.store[rt.key].get((ns, name))
        apply = content_type == "application/apply-patch+yaml"
        if apply:
            if not isinstance(patch, dict):
                raise errors.bad_request("an apply patch must be an object")
            if current is None:
                patch = copy.deepcopy(patch)
                patch.setdefault("metadata", {})["name"] = name
                return self._create(rt, ns, patch)
        if current is None:
            raise errors.not_found(rt, name)
        try:
            if content_type == "application/json-patch+json":
                patched = json_patch(current, patch)
            elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json") or apply:
                if not isinstance(patch, dict):
                    raise errors.bad_request("a merge patch must be an object")
                rv = (patch.get("metadata") or {}).get("resourceVersion")
                if rv and rv != current["metadata"]["resourceVersion"]:
                    raise errors.conflict(rt, name)
                strategic = content_type != "application/merge-patch+json" and not rt.custom
                patched = strategic_merge(current, patch) if strategic else merge_patch(current, patch)
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted media types "
                               "include: application/json-patch+json, application/merge-patch+json, "
                               f"application/apply-patch+yaml (got {content_type or 'none'})")
        except PatchError as exc:
            raise errors.invalid(rt, name, f"the patch cannot be applied: {exc}") from None
        if not isinstance(patched, dict):
            raise errors.invalid(rt, name, "the patch does not leave an object")
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in patched:
                new["status"] = patched["status"]
            else:
                new.pop("status", None)
        else:
            new = patched
            _keep_status(rt, current, new)
        return self._replace(rt, current, new)

    def _replace(self, rt: ResourceType, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Store a new version of an existing object: keep what the server owns, bump versions, notify."""
        cmeta = current["metadata"]
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        for key in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            if key in cmeta:
                meta[key] = cmeta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = cmeta["resourceVersion"]
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if rt.kind == "Secret":
            fold_string_data(new)
        if new == current:
            return current  # a write that changes nothing keeps the resourceVersion
        if "generation" in meta and spec_part(new) != spec_part(current):
            meta["generation"] = meta["generation"] + 1
        meta["resourceVersion"] = self._next_rv()
        where = (meta.get("namespace", ""), meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.store[rt.key][where]
            self._emit(rt, "DELETED", new)
            return new
        self.store[rt.key][where] = new
        if rt.kind == "CustomResourceDefinition":
            self._crd_stored(new)
        self._emit(rt, "MODIFIED", new)
        return new

    def _delete(self, rt: ResourceType, ns: str, name: str, options: Any) -> dict[str, Any]:
        current = self._current(rt, ns, name)
        pre = ((options or {}).get("preconditions") or {}) if isinstance(options, dict) else {}
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
            raise errors.conflict(rt, name)
        meta = current["metadata"]
        if meta.get("deletionTimestamp"):
            return current
        if meta.get("finalizers"):
            new = copy.deepcopy(current)
            new["metadata"].update(deletionTimestamp=timestamp(self.clock()), deletionGracePeriodSeconds=0,
                                   resourceVersion=self._next_rv())
            if "generation" in meta:
                new["metadata"]["generation"] = meta["generation"] + 1
            self.store[rt.key][(ns, name)] = new
            self._emit(rt, "MODIFIED", new)
            return new
        gone = copy.deepcopy(current)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        del self.store[rt.key][(ns, name)]
        if rt.kind == "CustomResourceDefinition":
            for served in crd_types(current):
                if served.key in self.types and self.types.plural(*served.key).custom:
                    self.store.pop(served.key, None)  # the real server deletes a CRD's objects with it
        self._emit(rt, "DELETED", gone)
        return gone


def _keep_status(rt: ResourceType, current: dict[str, Any], new: dict[str, Any]) -> None:
    """A write to an object with a status subresource leaves its status as it was."""
    if rt.status:
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        else:
            new.pop("status", None)


# --- CustomResourceDefinitions -----------------------------------------------------------------------

def crd_object(group: str, version: str, plural: str, kind: str, *, namespaced: bool = True,
               status: bool = True, short_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """A CustomResourceDefinition serving one version, its schema open (no validation)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced" if namespaced else "Cluster",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                           "shortNames": list(short_names)},
                 "versions": [{"name": version, "served": True, "storage": True,
                               "subresources": {"status": {}} if status else {},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
        "status": {"acceptedNames": {"plural": plural, "kind": kind},
                   "conditions": [{"type": "Established", "status": "True"}]},
    }


def established(crd: dict[str, Any]) -> None:
    """A stored CRD is established at once (no controller takes its time here)."""
    names = (crd.get("spec") or {}).get("names") or {}
    crd["status"] = {"acceptedNames": {k: v for k, v in names.items() if k in ("plural", "kind", "singular")},
                     "conditions": [{"type": "NamesAccepted", "status": "True"},
                                    {"type": "Established", "status": "True"}]}


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resources a CustomResourceDefinition serves (its served versions; the storage one first)."""
    spec = crd.get("spec") if isinstance(crd, dict) else None
    if not isinstance(spec, dict):
        return []
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str) and plural and kind):
        return []
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("served", True)]
    versions.sort(key=lambda v: not v.get("storage"))
    short = tuple(str(s) for s in names.get("shortNames") or [])
    out = []
    for v in versions[:1]:  # one served version per resource (the storage version)
        status = "status" in (v.get("subresources") or spec.get("subresources") or {})
        out.append(ResourceType(group, str(v.get("name")), plural, kind,
                                namespaced=spec.get("scope", "Namespaced") == "Namespaced", status=status,
                                short_names=short, custom=True, singular_name=str(names.get("singular") or "")))
    return out
