"""What the recorder captures, and how a capture becomes an ``Operation``.

Capturing (in the proxy's event loop, or in the thread that called the
Kubernetes client) does the least possible: it copies bytes and timestamps
into a :class:`Capture`.  Everything else (path parsing, JSON validation,
redaction, splitting watch streams into events) happens on the writer thread,
through :class:`Converter`, so the operator never waits for it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import yaml

from replay_tui.engine.format import ADDED, BOOKMARK, DELETED, EVENT_ERROR, MODIFIED, PATCH, Operation
from replay_tui.engine.partial import WRAPPER_KINDS
from replay_tui.recorder.paths import ApiPath, kept_query, parse_path, parse_query, verb_for
from replay_tui.recorder.redact import Redactor, is_secret_path

EVENT_TYPES = {"ADDED": ADDED, "MODIFIED": MODIFIED, "DELETED": DELETED, "BOOKMARK": BOOKMARK,
               "ERROR": EVENT_ERROR}
TEXT_LIMIT = 2000  # characters of a non-JSON error body kept for the message


class Capture(msgspec.Struct):
    """One request and its response as seen on the wire (or by the client hook)."""

    method: str
    path: str  # without the query
    query: str = ""  # the raw query string
    status: int = 0
    ts_ns: int = 0
    duration_ns: int = 0
    request: bytes | None = None
    request_type: str = ""  # Content-Type of the request body
    response: bytes | None = None
    response_type: str = ""
    error: str = ""  # the recorder's own failure to forward, e.g. the cluster is unreachable
    reconcile: int | None = None  # client hook: the span token the call was made in


class WatchContext(msgspec.Struct):
    """What a watch stream is about: its events inherit the resource from the request."""

    api: ApiPath
    secret: bool


class _Event(msgspec.Struct):
    type: str = ""
    object: msgspec.Raw = msgspec.Raw(b"null")


class _Status(msgspec.Struct):
    kind: str = ""
    code: int = 0
    reason: str = ""
    message: str = ""


_event = msgspec.json.Decoder(_Event).decode
_status = msgspec.json.Decoder(_Status).decode
_raw = msgspec.json.Decoder(msgspec.Raw).decode
_any = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# Kinds of common resources, so a failed call (whose body is a Status) still names its object.
# Others are learnt from discovery and from the bodies the server returns.
KNOWN_KINDS = {
    ("", "pods"): "Pod", ("", "services"): "Service", ("", "configmaps"): "ConfigMap",
    ("", "secrets"): "Secret", ("", "namespaces"): "Namespace", ("", "nodes"): "Node",
    ("", "events"): "Event", ("", "serviceaccounts"): "ServiceAccount", ("", "endpoints"): "Endpoints",
    ("", "persistentvolumeclaims"): "PersistentVolumeClaim", ("", "persistentvolumes"): "PersistentVolume",
    ("apps", "deployments"): "Deployment", ("apps", "statefulsets"): "StatefulSet",
    ("apps", "daemonsets"): "DaemonSet", ("apps", "replicasets"): "ReplicaSet",
    ("batch", "jobs"): "Job", ("batch", "cronjobs"): "CronJob",
    ("coordination.k8s.io", "leases"): "Lease", ("events.k8s.io", "events"): "Event",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "CustomResourceDefinition",
}


class _ResourceEntry(msgspec.Struct):
    name: str = ""
    kind: str = ""


class _ResourceList(msgspec.Struct):
    kind: str = ""
    groupVersion: str = ""
    resources: list[_ResourceEntry] | None = None


class _Kind(msgspec.Struct):
    kind: str = ""


_resource_list = msgspec.json.Decoder(_ResourceList).decode
_kind = msgspec.json.Decoder(_Kind).decode


class Converter:
    """Turns captures into operations; redacts Secret values unless ``redactor`` is None."""

    def __init__(self, redactor: Redactor | None):
        self.redactor = redactor
        self.kinds: dict[tuple[str, str], str] = dict(KNOWN_KINDS)

    def _learn(self, api: ApiPath, cap: Capture) -> None:
        """Remember resource -> kind from discovery answers and from returned objects."""
        if not isinstance(cap.response, bytes) or not 200 <= cap.status < 300:
            return
        try:
            if not api.is_resource and api.version:
                found = _resource_list(cap.response)
                if found.kind == "APIResourceList":
                    for entry in found.resources or ():
                        if "/" not in entry.name and entry.kind:
                            self.kinds[(api.group, entry.name)] = entry.kind
            elif api.is_resource and (api.group, api.resource) not in self.kinds:
                kind = _kind(cap.response).kind
                if kind.endswith("List"):
                    kind = kind[:-4]
                if kind and kind != "Status" and kind not in WRAPPER_KINDS and not api.subresource:
                    self.kinds[(api.group, api.resource)] = kind
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass

    def operation(self, cap: Capture) -> Operation:
        api = parse_path(cap.path)
        query = parse_query(cap.query) if cap.query else {}
        verb = verb_for(cap.method, api, query)
        secret = self.redactor is not None and is_secret_path(api.group, api.resource)
        op = Operation(
            verb=verb, ts_ns=cap.ts_ns, duration_ns=cap.duration_ns, api_version=api.api_version,
            resource=api.resource or cap.path, namespace=api.namespace, name=api.name,
            subresource=api.subresource, status=cap.status, query=kept_query(query),
            reconcile=cap.reconcile)
        self._learn(api, cap)
        if api.is_resource:
            op.kind = self.kinds.get((api.group, api.resource), "")
        if verb == PATCH:
            op.patch_type = media_type(cap.request_type)
        op.request = self.body(cap.request, cap.request_type, secret, cap.status)
        op.response = self.body(cap.response, cap.response_type, secret, cap.status)
        if cap.error:
            op.reason, op.message = "ProxyError", cap.error
        elif cap.status >= 400 and isinstance(cap.response, bytes):
            self._fill_status(op, cap.response)
        return op

    def watch_context(self, cap: Capture) -> WatchContext:
        api = parse_path(cap.path)
        return WatchContext(api=api,
                            secret=self.redactor is not None and is_secret_path(api.group, api.resource))

    def event(self, ctx: WatchContext, line: bytes, ts_ns: int) -> Operation:
        """One line of a watch stream as an operation (a malformed line becomes an error event)."""
        api = ctx.api
        op = Operation(verb=EVENT_ERROR, ts_ns=ts_ns, api_version=api.api_version,
                       resource=api.resource, namespace=api.namespace, name=api.name,
                       kind=self.kinds.get((api.group, api.resource), ""))
        try:
            event = _event(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            op.reason, op.message = "MalformedEvent", f"the watch stream sent a malformed line: {exc}"
            return op
        verb = EVENT_TYPES.get(event.type.upper())
        if verb is None:
            op.reason, op.message = "UnknownEvent", f"unknown watch event type {event.type!r}"
        else:
            op.verb = verb
        body = bytes(event.object)
        if body and body != b"null":
            op.response = self.body(body, "application/json", ctx.secret, 200)
            if verb == EVENT_ERROR:
                self._fill_status(op, body)
        return op

    def body(self, data: bytes | None, content_type: str, secret: bool, status: int) -> bytes | None:
        """A body ready for the writer: JSON bytes (as received when possible, or a marker)."""
        if not data:
            return None
        return _encode(self._value(data, content_type, secret, status))

    def _value(self, data: bytes, content_type: str, secret: bool, status: int) -> Any:
        media = media_type(content_type)
        if "protobuf" in media:
            return {"$opaque": media, "bytes": len(data)}
        redactor = self.redactor
        if media.endswith("yaml"):
            try:
                value = yaml.safe_load(data)
            except (yaml.YAMLError, RecursionError):
                # never the text of a Secret's body, even in an error
                return self._opaque(data, media, 0 if secret and redactor else status)
            return redactor.value(value, secret=secret) if redactor is not None else value
        if redactor is not None:
            try:
                kept = redactor.json(data, secret=secret)  # a secrets body that is no JSON: a marker
            except (ValueError, RecursionError):
                return self._opaque(data, media, status)
            if kept is not data:
                return msgspec.Raw(kept)
        try:
            _raw(data)
        except (ValueError, RecursionError):
            return self._opaque(data, media, status)
        return msgspec.Raw(data)

    @staticmethod
    def _opaque(data: bytes, media: str, status: int) -> dict[str, Any]:
        marker: dict[str, Any] = {"$opaque": media or "unknown", "bytes": len(data)}
        if status >= 400:  # an error page from something in between: its text explains the error
            marker["text"] = data[:TEXT_LIMIT * 4].decode("utf-8", "replace")[:TEXT_LIMIT]
        return marker

    @staticmethod
    def _fill_status(op: Operation, body: bytes) -> None:
        try:
            status = _status(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if status.kind == "Status":
            op.reason, op.message = status.reason, status.message
            if op.verb == EVENT_ERROR and status.code:
                op.status = status.code


def split_lines(buffer: bytearray, chunk: bytes) -> list[bytes]:
    """Append a chunk of a watch stream to ``buffer``; return the complete lines, leave the rest."""
    buffer += chunk
    end = buffer.rfind(b"\n")
    if end < 0:
        return []
    lines = [bytes(line) for line in buffer[:end].split(b"\n") if line.strip()]
    del buffer[:end + 1]
    return lines

