"""What a client asked for: the object as JSON, a Table (kubectl), or its metadata only.

kube-apiserver picks the representation from ``Accept`` (``application/json;as=Table;g=meta.k8s.io;v=v1``,
``as=PartialObjectMetadata``...), in the client's order of preference; so does :func:`negotiate`.
Tables have the two columns every kind has (Name, Age); Age is counted on the server's clock,
which for a served recording is the recorded time of the position.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from typing import Any

import msgspec

from replay_tui.server.resources import ResourceType

_encode = msgspec.json.encode

# One watch event: its type, the object, and the event encoded as a JSON line.
Event = tuple[str, dict[str, Any], bytes]

TABLE_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "priority": 0,
     "description": "Name must be unique within a namespace."},
    {"name": "Age", "type": "string", "format": "", "priority": 0,
     "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
]


def event_line(kind: str, obj: dict[str, Any]) -> bytes:
    return _encode({"type": kind, "object": obj}) + b"\n"


def age(obj: dict[str, Any], now: float) -> str:
    """kubectl's short age (``5s``, ``3m``, ``2h``, ``4d``) of an object at ``now`` (epoch seconds)."""
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(created, str) or not created:
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(now - then))
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


class Renderer:
    """Objects, lists and watch events in the representation the request negotiated."""

    def __init__(self, rt: ResourceType, accept: str, query: dict[str, str], *, now: Callable[[], float],
                 watch: bool = False):
        self.rt = rt
        self.kind, version = negotiate(accept)
        self.api_version = f"meta.k8s.io/{version}"
        self.include = query.get("includeObject", "Metadata")
        self.watch = watch
        self.now = now
        self._columns_sent = False

    def _full(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": self.rt.kind, "apiVersion": self.rt.api_version, **obj}

    def _partial(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "PartialObjectMetadata", "apiVersion": self.api_version,
                "metadata": copy.deepcopy(obj.get("metadata") or {})}

    def _table(self, objects: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        rows = []
        for obj in objects:
            row: dict[str, Any] = {"cells": [obj["metadata"]["name"], age(obj, now)]}
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

    def event(self, event: Event) -> bytes:
        kind, obj, line = event
        if not self.kind or kind == "ERROR" or (kind == "BOOKMARK" and self.kind == "Table"):
            return line
        return event_line(kind, self.object(obj))
