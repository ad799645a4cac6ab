"""Discovery (``/api``, ``/apis``, ``/apis/GROUP/VERSION``), ``/version`` and a minimal ``/openapi/v2``.

Documents are built from the types the server serves, in the shapes kube-apiserver answers.
A served recording may hold the answers the real cluster gave: those are answered as they
were recorded, completed with the resources the server serves that they do not list (so a
client finds every kind the recording has objects of).
"""

from __future__ import annotations

import copy
from typing import Any

from replay_tui.server.resources import VERBS, ResourceType, TypeRegistry

VERSION = {
    "major": "1", "minor": "26", "gitVersion": "v1.26.4", "gitCommit": "replay-tui", "gitTreeState": "clean",
    "buildDate": "2023-04-14T00:00:00Z", "goVersion": "go1.19.8", "compiler": "gc", "platform": "linux/amd64",
}
SUBRESOURCE_VERBS = ["get", "patch", "update"]


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
OPENAPI_V2: dict[str, Any] = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.26.4"},
              "paths": {}, "definitions": {}}
OPENAPI_V2_PROTOBUF = (_proto_field(1, b"2.0")
                       + _proto_field(2, _proto_field(1, OPENAPI_V2["info"]["title"].encode())
                                      + _proto_field(2, OPENAPI_V2["info"]["version"].encode()))
                       + _proto_field(8, b"") + _proto_field(9, b""))
# Asked for as ...spec.v2@v1.0+protobuf; answered as kube-openapi does ("@" is not valid in a Content-Type).
OPENAPI_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def resource_entries(rt: ResourceType, verbs: tuple[str, ...] = VERBS) -> list[dict[str, Any]]:
    """The APIResourceList entries of a type: the resource, then its status subresource."""
    entries = [{"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                "verbs": list(verbs), "shortNames": list(rt.short_names)}]
    if rt.status:
        entries.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                        "kind": rt.kind, "verbs": list(SUBRESOURCE_VERBS)})
    return entries


def types_from_resource_list(doc: Any) -> list[ResourceType]:
    """The types an APIResourceList (a discovery answer) declares, status subresources included."""
    if not isinstance(doc, dict) or doc.get("kind") != "APIResourceList":
        return []
    group, _, version = str(doc.get("groupVersion", "")).rpartition("/")
    if not version:
        return []
    listed = doc.get("resources")
    entries = [e for e in listed if isinstance(e, dict) and isinstance(e.get("name"), str)] \
        if isinstance(listed, list) else []
    subresources = {e["name"] for e in entries if "/" in e["name"]}
    out = []
    for e in entries:
        name, kind = e["name"], e.get("kind")
        if "/" in name or not isinstance(kind, str) or not kind:
            continue
        short = e.get("shortNames")
        short = short if isinstance(short, list) else []
        out.append(ResourceType(group, version, name, kind, namespaced=bool(e.get("namespaced")),
                                status=f"{name}/status" in subresources,
                                short_names=tuple(str(s) for s in short), custom=False,
                                singular_name=str(e.get("singularName") or "")))
    return out


class Discovery:
    """Discovery documents for a registry of types, recorded answers first where given."""

    def __init__(self, types: TypeRegistry, *, verbs: tuple[str, ...] = VERBS,
                 recorded: dict[str, Any] | None = None):
        self.types = types
        self.verbs = verbs
        self.recorded = recorded or {}  # path -> the answer a recording holds

    def version(self) -> dict[str, Any]:
        doc = self.recorded.get("/version")
        return copy.deepcopy(doc) if isinstance(doc, dict) else dict(VERSION)

    def root(self) -> dict[str, Any]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/openapi/v2", "/healthz", "/livez", "/readyz"}
        for group, versions in self.types.group_versions().items():
            if group:
                paths.add(f"/apis/{group}")
                paths.update(f"/apis/{group}/{v}" for v in versions)
        return {"paths": sorted(paths)}

    def api(self) -> dict[str, Any]:
        doc = self.recorded.get("/api")
        if isinstance(doc, dict) and doc.get("kind") == "APIVersions":
            return copy.deepcopy(doc)
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": dict(listed[0])}

    def apis(self) -> dict[str, Any]:
        doc = self.recorded.get("/apis")
        groups: list[dict[str, Any]] = []
        if isinstance(doc, dict) and doc.get("kind") == "APIGroupList":
            groups = copy.deepcopy([g for g in doc.get("groups") or [] if isinstance(g, dict)])
        known = {g.get("name"): g for g in groups}
        for group, versions in sorted(self.types.group_versions().items()):
            if not group:
                continue
            entry = known.get(group)
            if entry is None:
                groups.append(self._group(group, versions))
                continue
            have = {v.get("version") for v in entry.get("versions") or [] if isinstance(v, dict)}
            entry.setdefault("versions", []).extend(
                {"groupVersion": f"{group}/{v}", "version": v} for v in versions if v not in have)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def group(self, group: str) -> dict[str, Any] | None:
        for entry in self.apis()["groups"]:
            if entry.get("name") == group:
                return {"kind": "APIGroup", "apiVersion": "v1", **entry}
        return None

    def resources(self, group: str, version: str) -> dict[str, Any] | None:
        """``/api/v1`` or ``/apis/GROUP/VERSION``; None when nothing is served there."""
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        group_version = f"{group}/{version}" if group else version
        doc = self.recorded.get(path)
        entries: list[dict[str, Any]] = []
        if isinstance(doc, dict) and doc.get("kind") == "APIResourceList":
            entries = copy.deepcopy([e for e in doc.get("resources") or [] if isinstance(e, dict)])
        names = {e.get("name") for e in entries}
        for rt in self.types:
            if rt.group == group and rt.version == version:
                entries.extend(e for e in resource_entries(rt, self.verbs) if e["name"] not in names)
        if not entries and doc is None and not (group == "" and version == "v1"):
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": entries}
