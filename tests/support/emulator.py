"""A Kubernetes API emulator for tests, benchmarks and the demo recording.

No real kube-apiserver runs on the machines this project is built on, so
recordings of real operators are made against this emulator: kmock's
``KubernetesEmulator`` (its HTTP server, request log and discovery endpoints
``/api``, ``/apis``, ``/apis/GROUP/VERSION``), with the resource endpoints
replaced by an in-memory store that keeps the API semantics operators rely on:

* server-assigned ``uid``, ``creationTimestamp``, ``generation`` (bumped when
  anything but metadata and status changes) and ``generateName``;
* one cluster-wide, increasing ``resourceVersion``; ``201`` on create;
* ``PUT`` (full update) and ``PATCH`` (merge, strategic, JSON and apply
  patches), both ``409 Conflict`` on a stale ``resourceVersion``;
* the ``status`` subresource: writes to the object ignore ``.status``,
  writes to ``/status`` change only ``.status``;
* deletion with finalizers (``deletionTimestamp`` first, gone when the last
  finalizer is removed);
* the namespace taken from the URL; label and field selectors; ``limit`` and
  ``continue``;
* watches that honour ``resourceVersion`` (replaying history, ``410 Expired``
  when too old), ``timeoutSeconds`` and ``allowWatchBookmarks``;
* what real clients (kubectl, client-node, ...) need besides: discovery with the
  core group's ``groupVersion: "v1"`` (kmock 0.8 says ``"/v1"``), ``/openapi/v2``
  (a minimal valid document, JSON or protobuf), ``as=Table`` and
  ``as=PartialObjectMetadata(List)`` answers, gzip above 128 KiB;
* its own account of what it served (``served``, ``streams``), which the client
  conformance tests compare recordings with.

It is an emulator, not a server: no admission, no schema validation, no
garbage collection of owned objects, strategic merge is approximated by a
JSON merge patch.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import datetime
import re
import secrets
import sys
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import msgspec
import yaml
from kmock._internal import apps

from replay_tui.recorder.paths import ApiPath, parse_path

HISTORY = 10_000  # watch events kept per resource for resumption by resourceVersion
GZIP_THRESHOLD = 128 * 1024  # kube-apiserver compresses responses larger than this
_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(frozen=True)
class ResourceType:
    """A resource the emulator serves."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource
    short_names: tuple[str, ...] = ()
    custom: bool = False  # a custom resource (its list items carry kind/apiVersion)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


BUILTIN = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status=True, short_names=("ns",)),
    ResourceType("", "v1", "pods", "Pod", status=True, short_names=("po",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "services", "Service", status=True, short_names=("svc",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("apps", "v1", "deployments", "Deployment", status=True, short_names=("deploy",)),
    ResourceType("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                 namespaced=False, status=True, short_names=("crd",)),
)
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


class ApiError(Exception):
    """An API error, answered as a Kubernetes ``Status``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details,
                "code": self.code}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _qualified(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(rt)} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def _conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(rt)} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": rt.group, "kind": rt.plural})


# --- selectors ---------------------------------------------------------------------

_REQ = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def label_matcher(selector: str) -> Callable[[dict[str, str]], bool]:
    """A predicate over labels for a Kubernetes label selector (=, ==, !=, in, notin, exists, !exists)."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split_selector(selector or ""):
        m = _REQ.match(part)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        neg, key, op, value, setop, values = m.groups()
        if op in ("=", "=="):
            tests.append(lambda lb, k=key, v=value: lb.get(k) == v)
        elif op == "!=":
            tests.append(lambda lb, k=key, v=value: lb.get(k) != v)
        elif setop:
            choices = {v.strip() for v in values.split(",") if v.strip()}
            if setop == "in":
                tests.append(lambda lb, k=key, c=choices: lb.get(k) in c)
            else:
                tests.append(lambda lb, k=key, c=choices: lb.get(k) not in c)
        elif neg:
            tests.append(lambda lb, k=key: k not in lb)
        else:
            tests.append(lambda lb, k=key: k in lb)
    return lambda labels: all(t(labels) for t in tests)


def field_matcher(selector: str) -> Callable[[dict[str, Any]], bool]:
    """Field selectors on metadata.name and metadata.namespace (what operators use)."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_selector(selector or ""):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m or m.group(1) not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'"{part}" is not a known field selector: only '
                           '"metadata.name", "metadata.namespace"')
        path, op, value = m.groups()
        attr = path.split(".")[1]
        if op == "!=":
            tests.append(lambda o, a=attr, v=value: o.get("metadata", {}).get(a, "") != v)
        else:
            tests.append(lambda o, a=attr, v=value: o.get("metadata", {}).get(a, "") == v)
    return lambda obj: all(t(obj) for t in tests)


# --- patches --------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also used, approximately, for strategic merge patches)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # strategic-merge directives ($patch, $retainKeys, ...)
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _fold_string_data(obj: dict[str, Any]) -> None:
    """Like the real server: a Secret's ``stringData`` is write-only, merged into ``data`` as base64."""
    strings = obj.pop("stringData", None)
    if isinstance(strings, dict):
        data = dict(obj.get("data") or {})
        data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in strings.items()})
        obj["data"] = data


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


# --- watches -----------------------------------------------------------------------------

# One watch event: its type, the object, and the event encoded as a JSON line.
_Event = tuple[str, dict[str, Any], bytes]


@dataclass(eq=False)
class _Watcher:
    namespace: str
    name: str
    labels: Callable[[dict[str, str]], bool]
    fields: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[_Event | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace and meta.get("namespace", "") != self.namespace:
            return False
        if self.name and meta.get("name") != self.name:
            return False
        return self.labels(meta.get("labels") or {}) and self.fields(obj)


# --- what a client asked for: JSON, a Table, or metadata only ----------------------------------

TABLE_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "priority": 0,
     "description": "Name must be unique within a namespace."},
    {"name": "Age", "type": "string", "format": "", "priority": 0,
     "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
]


def _age(obj: dict[str, Any]) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def negotiate(accept: str) -> tuple[str, str]:
    """The representation a client asked for, in its order of preference, as kube-apiserver picks it:
    ``("Table" | "PartialObjectMetadata" | "PartialObjectMetadataList" | "", meta.k8s.io version)``."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media not in ("application/json", "*/*", "application/*", ""):
            continue  # YAML, protobuf: not served, try the next
        options = dict(p.split("=", 1) for p in params if "=" in p)
        kind = options.get("as", "")
        if not kind:
            return "", ""
        if kind in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList") \
                and options.get("g") == "meta.k8s.io" and options.get("v") in ("v1", "v1beta1"):
            return kind, options["v"]
    return "", ""


class _Renderer:
    """Objects, lists and watch events in the representation the request negotiated."""

    def __init__(self, rt: ResourceType, accept: str, query: dict[str, str], *, watch: bool = False):
        self.rt = rt
        self.kind, version = negotiate(accept)
        self.api_version = f"meta.k8s.io/{version}"
        self.include = query.get("includeObject", "Metadata")
        self.watch = watch
        self._columns_sent = False

    def _full(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": self.rt.kind, "apiVersion": self.rt.api_version, **obj}

    def _partial(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "PartialObjectMetadata", "apiVersion": self.api_version,
                "metadata": copy.deepcopy(obj.get("metadata") or {})}

    def _table(self, objects: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for obj in objects:
            row: dict[str, Any] = {"cells": [obj["metadata"]["name"], _age(obj)]}
            if self.include == "Object":
                row["object"] = self._full(obj)
            elif self.include != "None":
                row["object"] = self._partial(obj)
            rows.append(row)
        table: dict[str, Any] = {"kind": "Table", "apiVersion": self.api_version, "metadata": meta}
        if not self._columns_sent:  # a watch sends the columns with its first event only
            table["columnDefinitions"] = TABLE_COLUMNS
            self._columns_sent = self.watch
        table["rows"] = rows
        return table

    def object(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.kind == "Table":
            return self._table([obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")})
        if self.kind.startswith("PartialObjectMetadata"):
            return self._partial(obj)
        return obj

    def list(self, listing: dict[str, Any]) -> dict[str, Any]:
        if self.kind == "Table":
            return self._table(listing["items"], listing["metadata"])
        if self.kind.startswith("PartialObjectMetadata"):
            return {"kind": "PartialObjectMetadataList", "apiVersion": self.api_version,
                    "metadata": listing["metadata"], "items": [self._partial(o) for o in listing["items"]]}
        return listing

    def event(self, event: _Event) -> bytes:
        kind, obj, line = event
        if not self.kind or kind == "ERROR" or (kind == "BOOKMARK" and self.kind == "Table"):
            return line
        return _encode({"type": kind, "object": self.object(obj)}) + b"\n"


# --- OpenAPI v2 ----------------------------------------------------------------------------------

def _proto_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    key, size, out = (number << 3) | 2, len(payload), bytearray()
    for value in (key, size):
        while value > 0x7F:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + payload


# The smallest valid OpenAPI v2 document: swagger "2.0", info (title, version), empty paths and
# definitions.  kubectl (client-side validation, apply) reads it as protobuf
# (gnostic's openapi_v2.Document: swagger = 1, info = 2 {title = 1, version = 2}, paths = 8,
# definitions = 9); finding no schema for a kind, it skips validating that kind.
OPENAPI_V2 = {"swagger": "2.0", "info": {"title": "Kubernetes API emulator", "version": "v1.26.4"},
              "paths": {}, "definitions": {}}
OPENAPI_V2_PROTOBUF = (_proto_field(1, b"2.0")
                       + _proto_field(2, _proto_field(1, OPENAPI_V2["info"]["title"].encode())
                                      + _proto_field(2, OPENAPI_V2["info"]["version"].encode()))
                       + _proto_field(8, b"") + _proto_field(9, b""))
# Asked for as ...spec.v2@v1.0+protobuf; answered as kube-openapi does ("@" is not valid in a Content-Type).
OPENAPI_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


# --- the emulator ----------------------------------------------------------------------------

class KubernetesAPIEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with real API semantics on the resource endpoints (see the module docstring).

    Use it as kmock intends (``async with emulator, kmock.Server(emulator)``), as
    any aiohttp low-level handler, or through :class:`EmulatorThread` from
    synchronous code.
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # The official Python client asks for "/apis/" and "/api/" (trailing slash).
        self.fallback["get /apis/"] << self._serve_apis
        self.fallback["get /api/"] << self._serve_api
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self.history: dict[tuple[str, str], deque[tuple[int, _Event]]] = \
            defaultdict(lambda: deque(maxlen=HISTORY))
        self.watchers: dict[tuple[str, str], set[_Watcher]] = defaultdict(set)
        self.rv = 1000
        self.bookmark_interval: float | None = None
        # What clients were served, counted here, independently of any recorder in between:
        # (method, path with query) of every request in arrival order, and each watch stream's
        # (path with query, the event lines it sent).
        self.served: list[tuple[str, str]] = []
        self.streams: list[tuple[str, list[bytes]]] = []
        for rt in BUILTIN:
            self.add_resource(rt)
        self.put("", "namespaces", {"metadata": {"name": "default"}})

    # --- setup ------------------------------------------------------------------------

    def add_resource(self, rt: ResourceType) -> None:
        """Serve a resource (and list it in discovery)."""
        self.types[(rt.group, rt.version, rt.plural)] = rt
        info = self.resources[kmock.resource(rt.group, rt.version, rt.plural)]
        info.kind, info.namespaced, info.singular = rt.kind, rt.namespaced, rt.singular
        info.verbs = set(VERBS)
        info.shortnames = set(rt.short_names)
        info.subresources = {"status"} if rt.status else set()

    def add_crd(self, group: str, version: str, plural: str, kind: str, *, namespaced: bool = True,
                status: bool = True, short_names: Iterable[str] = ()) -> ResourceType:
        """Serve a custom resource and store its CustomResourceDefinition (kopf watches those)."""
        rt = ResourceType(group, version, plural, kind, namespaced=namespaced, status=status,
                          short_names=tuple(short_names), custom=True)
        self.add_resource(rt)
        self.put("apiextensions.k8s.io", "customresourcedefinitions", {
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced" if namespaced else "Cluster",
                     "names": {"plural": plural, "singular": rt.singular, "kind": kind,
                               "shortNames": list(short_names)},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "subresources": {"status": {}} if status else {},
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
            "status": {"acceptedNames": {"plural": plural, "kind": kind},
                       "conditions": [{"type": "Established", "status": "True"}]},
        })
        return rt

    def type_of(self, group: str, plural: str) -> ResourceType:
        for (g, _, p), rt in self.types.items():
            if g == group and p == plural:
                return rt
        raise KeyError(f"{plural}.{group} is not served by the emulator")

    # --- direct access (server side: no HTTP, but events are sent) -----------------------

    def put(self, group: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object as if an admin had, without preconditions."""
        rt = self.type_of(group, plural)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default") if rt.namespaced else ""
        current = self.store[(rt.group, rt.plural)].get((ns, meta["name"]))
        if current is None:
            return self._create(rt, ns, obj)
        obj["metadata"] = {**current["metadata"], **meta}
        return self._replace(rt, current, obj)

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        rt = self.type_of(group, plural)
        obj = self.store[(rt.group, rt.plural)].get((namespace if rt.namespaced else "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, group: str, plural: str) -> list[dict[str, Any]]:
        rt = self.type_of(group, plural)
        objects = self.store[(rt.group, rt.plural)]
        return [copy.deepcopy(objects[k]) for k in sorted(objects)]

    def close_watches(self) -> None:
        """End every open watch stream (before shutting down)."""
        for watchers in self.watchers.values():
            for w in watchers:
                w.queue.put_nowait(None)

    # --- HTTP --------------------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self.served.append((raw.method, raw.path_qs))
        api = parse_path(raw.path)
        if raw.path == "/openapi/v2" and raw.method == "GET":
            if "protobuf" in raw.headers.get("Accept", ""):
                return aiohttp.web.Response(body=OPENAPI_V2_PROTOBUF, content_type=OPENAPI_PROTOBUF_TYPE)
            return self._json(OPENAPI_V2)
        if not api.is_resource:
            # Discovery and anything else: kmock's scaffold and any reactions a test declared.
            return await super().__call__(raw)
        # Resource endpoints: ours (kmock's path parser does not know /api/v1/namespaces).
        request = kmock.Request(id=len(self._requests), raw_request=raw, url=raw.url, method=raw.method,
                                params=dict(raw.query), headers=dict(raw.headers), body=await raw.read())
        self._requests.append(request)
        try:
            rt = self.types.get((api.group, api.version, api.resource))
            if rt is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return await self._serve(rt, api, request, raw)
        except ApiError as exc:
            return aiohttp.web.json_response(exc.status(), status=exc.code)

    async def _serve_version(self, request: Any) -> Any:
        """``/api/v1``, ``/apis/GROUP/VERSION``: kmock's list, with the core group's ``groupVersion``
        fixed (kmock 0.8 says ``"/v1"``: client-go then knows no core resource) and subresources
        listed as kube-apiserver lists them (their own verbs, no short names)."""
        doc = await super()._serve_version(request)
        doc["groupVersion"] = doc["groupVersion"].lstrip("/")
        for entry in doc["resources"]:
            if "/" in entry["name"]:
                entry.update(verbs=["get", "patch", "update"], shortNames=[])
        return doc

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        return await apps.RawHandler._handle(self, request)  # not kmock's object store: ours

    async def _serve(self, rt: ResourceType, api: ApiPath, request: kmock.Request,
                     raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        method, query = raw.method.upper(), dict(raw.query)
        if rt.namespaced and api.name and not api.namespace:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rt.namespaced and api.namespace:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if api.subresource and api.subresource != "status":
            raise ApiError(404, "NotFound", f"{rt.plural}/{api.subresource} is not served by the emulator")
        ns = api.namespace
        if method == "GET":
            if api.legacy_watch or query.get("watch", "").lower() in ("true", "1"):
                return await self._watch(rt, ns, api.name, query, raw)
            render = _Renderer(rt, raw.headers.get("Accept", ""), query)
            if api.name:
                obj = self.store[(rt.group, rt.plural)].get((ns, api.name))
                if obj is None:
                    raise _not_found(rt, api.name)
                return self._json(render.object(obj), raw=raw)
            return self._json(render.list(self._list(rt, ns, query)), raw=raw)
        body = self._body(request)
        if method == "POST":
            if api.name:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            if rt.namespaced and not ns:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._json(self._create(rt, ns, self._object(rt, body)), 201)
        if method == "PUT" and api.name:
            return self._json(self._update(rt, ns, api.name, self._object(rt, body), api.subresource))
        if method == "PATCH" and api.name:
            ctype = raw.headers.get("Content-Type", "").split(";")[0].strip()
            return self._json(self._patch(rt, ns, api.name, body, ctype, api.subresource))
        if method == "DELETE" and api.name:
            return self._json(self._delete(rt, ns, api.name, body))
        if method == "DELETE":
            matcher = label_matcher(query.get("labelSelector", ""))
            deleted = [self._delete(rt, k[0], k[1], None)
                       for k, o in sorted(self.store[(rt.group, rt.plural)].items())
                       if (not ns or k[0] == ns) and matcher(o["metadata"].get("labels") or {})]
            return self._json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                               "metadata": {"resourceVersion": str(self.rv)}, "items": deleted})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    @staticmethod
    def _json(obj: Any, status: int = 200, raw: aiohttp.web.BaseRequest | None = None) -> aiohttp.web.Response:
        """A JSON answer; gzip-compressed above 128 KiB when the client accepts it, as kube-apiserver does."""
        body = _encode(obj)
        response = aiohttp.web.Response(body=body, status=status, content_type="application/json")
        if raw is not None and len(body) > GZIP_THRESHOLD and "gzip" in raw.headers.get("Accept-Encoding", ""):
            response.enable_compression(aiohttp.web.ContentCoding.gzip)
        return response

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        if not request.body:
            return None
        try:
            return _decode(request.body)
        except msgspec.DecodeError:
            try:
                return yaml.safe_load(request.body)  # apply patches are YAML
            except yaml.YAMLError:
                raise ApiError(400, "BadRequest", "the request body is neither JSON nor YAML") from None

    @staticmethod
    def _object(rt: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", f"the body of the request is not a {rt.kind} object")
        if body.get("kind") not in (None, "", rt.kind):
            raise ApiError(400, "BadRequest", f"the kind {body.get('kind')!r} does not match {rt.kind!r}")
        return copy.deepcopy(body)

    # --- verbs ----------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _create(self, rt: ResourceType, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                                                  "the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value: "
                                               "name or generateName is required")
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(secrets.choice(alphabet) for _ in range(5))
        objects = self.store[(rt.group, rt.plural)]
        if (ns, meta["name"]) in objects:
            raise ApiError(409, "AlreadyExists", f'{_qualified(rt)} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": rt.group, "kind": rt.plural})
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), resourceVersion=self._next_rv())
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
            _fold_string_data(obj)
        objects[(ns, meta["name"])] = obj
        self._emit(rt, "ADDED", obj)
        return obj

    def _current(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        obj = self.store[(rt.group, rt.plural)].get((ns, name))
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def _update(self, rt: ResourceType, ns: str, name: str, obj: dict[str, Any],
                subresource: str) -> dict[str, Any]:
        current = self._current(rt, ns, name)
        meta = obj.get("metadata") or {}
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise _conflict(rt, name)
        if subresource == "status":
            new = copy.deepcopy(current)
            new["status"] = obj.get("status")
            if new["status"] is None:
                del new["status"]
        else:
            new = obj
            new["metadata"] = dict(meta)
            if rt.status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        return self._replace(rt, current, new)

    def _patch(self, rt: ResourceType, ns: str, name: str, patch: Any, ctype: str,
               subresource: str) -> dict[str, Any]:
        objects = self.store[(rt.group, rt.plural)]
        current = objects.get((ns, name))
        if ctype == "application/apply-patch+yaml":
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "an apply patch must be an object")
            if current is None:
                patch = copy.deepcopy(patch)
                patch.setdefault("metadata", {})["name"] = name
                return self._create(rt, ns, patch)
        if current is None:
            raise _not_found(rt, name)
        if ctype == "application/json-patch+json":
            import jsonpatch  # a dependency of kmock

            try:
                patched = jsonpatch.apply_patch(current, patch)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from None
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                       "application/apply-patch+yaml"):
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be an object")
            rv = (patch.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            patched = merge_patch(current, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types "
                           f"include: application/json-patch+json, application/merge-patch+json, "
                           f"application/apply-patch+yaml (got {ctype or 'none'})")
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in patched:
                new["status"] = patched["status"]
            else:
                new.pop("status", None)
        else:
            new = patched
            if rt.status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        return self._replace(rt, current, new)

    def _replace(self, rt: ResourceType, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Store a new version of an existing object: keep what the server owns, bump versions, notify."""
        cmeta = current["metadata"]
        meta = new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
                    "deletionGracePeriodSeconds"):
            if key in cmeta:
                meta[key] = cmeta[key]
            else:
                meta.pop(key, None)
        if "generation" in cmeta:
            meta["generation"] = cmeta["generation"]
        else:
            meta.pop("generation", None)
        meta["resourceVersion"] = cmeta["resourceVersion"]
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if rt.kind == "Secret":
            _fold_string_data(new)
        if new == current:
            return current  # a no-op write does not change the resourceVersion
        if "generation" in meta and _spec_part(new) != _spec_part(current):
            meta["generation"] = meta["generation"] + 1
        meta["resourceVersion"] = self._next_rv()
        key = (meta.get("namespace", ""), meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.store[(rt.group, rt.plural)][key]
            self._emit(rt, "DELETED", new)
            return new
        self.store[(rt.group, rt.plural)][key] = new
        self._emit(rt, "MODIFIED", new)
        return new

    def _delete(self, rt: ResourceType, ns: str, name: str, options: Any) -> dict[str, Any]:
        current = self._current(rt, ns, name)
        pre = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise _conflict(rt, name)
        if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
            raise _conflict(rt, name)
        meta = current["metadata"]
        if meta.get("deletionTimestamp"):
            return current
        if meta.get("finalizers"):
            new = copy.deepcopy(current)
            new["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0,
                                   resourceVersion=self._next_rv())
            if "generation" in meta:
                new["metadata"]["generation"] = meta["generation"] + 1
            self.store[(rt.group, rt.plural)][(ns, name)] = new
            self._emit(rt, "MODIFIED", new)
            return new
        gone = copy.deepcopy(current)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        del self.store[(rt.group, rt.plural)][(ns, name)]
        self._emit(rt, "DELETED", gone)
        return gone

    def _list(self, rt: ResourceType, ns: str, query: dict[str, str]) -> dict[str, Any]:
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""))
        objects = self.store[(rt.group, rt.plural)]
        items = [objects[k] for k in sorted(objects)
                 if (not ns or k[0] == ns) and labels(objects[k]["metadata"].get("labels") or {})
                 and fields(objects[k])]
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"].encode()).decode())
            except ValueError:
                raise ApiError(400, "BadRequest", "invalid continue token") from None
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

    # --- watch --------------------------------------------------------------------------

    def _emit(self, rt: ResourceType, kind: str, obj: dict[str, Any]) -> None:
        event = (kind, obj, _encode({"type": kind, "object": obj}) + b"\n")
        rv = int(obj["metadata"]["resourceVersion"])
        self.history[(rt.group, rt.plural)].append((rv, event))
        for w in self.watchers[(rt.group, rt.plural)]:
            if w.matches(obj):
                w.queue.put_nowait(event)

    async def _watch(self, rt: ResourceType, ns: str, name: str, query: dict[str, str],
                     raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        watcher = _Watcher(ns, name, label_matcher(query.get("labelSelector", "")),
                           field_matcher(query.get("fieldSelector", "")))
        rv_text = query.get("resourceVersion", "")
        initial: list[_Event] = []
        expired = False
        key = (rt.group, rt.plural)
        render = _Renderer(rt, raw.headers.get("Accept", ""), query, watch=True)
        if rv_text in ("", "0"):
            objects = self.store[key]
            initial = [("ADDED", objects[k], _encode({"type": "ADDED", "object": objects[k]}) + b"\n")
                       for k in sorted(objects) if watcher.matches(objects[k])]
        else:
            try:
                since = int(rv_text)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from None
            history = self.history[key]
            if history and history[0][0] > since + 1 and len(history) == history.maxlen:
                expired = True
            else:
                initial = [event for rv, event in history if rv > since and watcher.matches(event[1])]
        self.watchers[key].add(watcher)
        sent: list[bytes] = []
        self.streams.append((raw.path_qs, sent))
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})

        async def send(line: bytes) -> None:
            await response.write(line)
            sent.append(line)

        try:
            await response.prepare(raw)
            if expired:
                error = ApiError(410, "Expired", f"too old resource version: {since} ({history[0][0]})")
                await send(_encode({"type": "ERROR", "object": error.status()}) + b"\n")
                await response.write_eof()
                return response
            for event in initial:
                await send(render.event(event))
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
            bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout else None
            while True:
                wait = deadline - loop.time() if deadline is not None else None
                if self.bookmark_interval and bookmarks:
                    wait = min(wait, self.bookmark_interval) if wait is not None else self.bookmark_interval
                if wait is not None and wait <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        break
                    await send(self._bookmark(rt))
                    continue
                if event is None:
                    break
                await send(render.event(event))
            if bookmarks:
                await send(self._bookmark(rt))
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.watchers[key].discard(watcher)
        return response

    def _bookmark(self, rt: ResourceType) -> bytes:
        return _encode({"type": "BOOKMARK", "object": {
            "kind": rt.kind, "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.rv)}}}) + b"\n"


# --- running it -----------------------------------------------------------------------------

def kubeconfig_text(url: str, *, namespace: str = "default", token: str = "emulator") -> str:
    """A kubeconfig for a plain-HTTP server (the emulator, or the recording proxy)."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "emulator", "user": {"token": token}}],
        "contexts": [{"name": "emulator",
                      "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace}}],
    }, sort_keys=False)


class EmulatorThread:
    """An emulator served on 127.0.0.1 by an event loop in a background thread.

    For synchronous tests, scripts and benchmarks; ``call`` runs a function on
    the emulator's loop (the store is not thread-safe).
    """

    def __init__(self, emulator: KubernetesAPIEmulator | None = None, *, host: str = "127.0.0.1",
                 port: int = 0):
        self.host, self.port = host, port
        self._emulator = emulator
        self.loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)

    @property
    def emulator(self) -> KubernetesAPIEmulator:
        assert self._emulator is not None
        return self._emulator

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._emulator is None:
            self._emulator = KubernetesAPIEmulator()
        # Served by aiohttp directly rather than kmock.Server: that one also patches aiohttp's
        # name resolution process-wide, which breaks when two emulators overlap in one process.
        async with self._emulator:
            server = aiohttp.web.Server(self._emulator, handler_cancellation=True)  # notice hang-ups
            runner = aiohttp.web.ServerRunner(server, handle_signals=False,
                                              access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://{self.host}:{self.port}"
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                self._emulator.close_watches()
                await asyncio.sleep(0.05)
                await runner.cleanup()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the emulator's loop and return its result."""
        assert self.loop is not None

        async def go() -> Any:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default", token: str = "emulator") -> Path:
        path = Path(path)
        path.write_text(kubeconfig_text(self.url, namespace=namespace, token=token))
        path.chmod(0o600)
        return path


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.emulator``: serve an emulator until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.emulator",
                                     description="Serve a Kubernetes API emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", metavar="FILE", help="write a kubeconfig pointing at the emulator")
    parser.add_argument("--crd", action="append", default=[], metavar="GROUP/VERSION/PLURAL/KIND",
                        help="serve a custom resource (repeatable), e.g. example.com/v1/widgets/Widget")
    args = parser.parse_args(argv)
    emulator = KubernetesAPIEmulator()
    for spec in args.crd:
        parts = spec.split("/")
        if len(parts) != 4:
            parser.error(f"--crd {spec!r}: expected GROUP/VERSION/PLURAL/KIND")
        emulator.add_crd(*parts)
    with EmulatorThread(emulator, port=args.port) as server:
        if args.kubeconfig:
            server.write_kubeconfig(args.kubeconfig)
        print(f"emulator serving on {server.url}", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
