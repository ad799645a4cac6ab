"""The recording format: what one API interaction of an operator looks like.

These msgspec Structs are the single vocabulary shared by every producer
(recording proxy, client hook, importers, synthetic generator) and every
consumer (replay engine, CLI, TUI).  Bodies travel as Python objects or as raw
JSON bytes straight off the wire; the store keeps them as JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# --- verbs -----------------------------------------------------------------

GET, LIST, WATCH = "get", "list", "watch"
CREATE, UPDATE, PATCH = "create", "update", "patch"
DELETE, DELETECOLLECTION = "delete", "deletecollection"
# Watch events are operations of their own, one per event, in stream order.
ADDED, MODIFIED, DELETED, BOOKMARK, EVENT_ERROR = "added", "modified", "deleted", "bookmark", "error"

READ_VERBS = frozenset({GET, LIST, WATCH})
WRITE_VERBS = frozenset({CREATE, UPDATE, PATCH, DELETE, DELETECOLLECTION})
EVENT_VERBS = frozenset({ADDED, MODIFIED, DELETED, BOOKMARK, EVENT_ERROR})
VERBS = READ_VERBS | WRITE_VERBS | EVENT_VERBS
# Display order: requests first, then watch events.
VERB_ORDER = (GET, LIST, WATCH, CREATE, UPDATE, PATCH, DELETE, DELETECOLLECTION,
              ADDED, MODIFIED, DELETED, BOOKMARK, EVENT_ERROR)

SOURCES = frozenset({"proxy", "client", "sieve", "audit", "kubestep", "synthetic"})


def is_error(verb: str, status: int) -> bool:
    """An op failed when the server said so (status >= 400) or the watch stream sent an ERROR event."""
    return status >= 400 or verb == EVENT_ERROR


def target_label(kind: str, namespace: str, name: str, subresource: str = "", resource: str = "") -> str:
    """What an op is about, as a person reads it: ``Kind/namespace/name[/subresource]``, or for a
    request on no resource (discovery, ``/version``, ``/openapi/v2``) its path, which the
    recorders keep in ``resource``.  The one label of the timeline, ``show``, ``query`` and reports."""
    if not kind and not name and resource.startswith("/"):
        return resource
    text = "/".join(p for p in (kind, namespace, name) if p)
    return f"{text}/{subresource}" if subresource else text


def is_path(resource: str) -> bool:
    """A request on no resource: ``resource`` holds its path (``/apis/apps/v1``)."""
    return resource.startswith("/")


def api_group(api_version: str) -> str:
    """'apps/v1' -> 'apps'; 'v1' -> '' (the core group)."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


#: What SQLite stores as an INTEGER: a body claiming more is not an object the engine reads.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class ObjectMeta(msgspec.Struct, gc=False):
    """The metadata fields the engine reads from a body (the rest is skipped unparsed).
    (Not tracked by the cyclic GC: the writer caches tens of thousands of them.)"""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    generation: Int64 | None = None
    deletionTimestamp: str | None = None
    finalizers: list[str] | None = None


class ObjectHead(msgspec.Struct, gc=False):
    """What identifies a body: kind, apiVersion, metadata."""

    kind: str = ""
    apiVersion: str = ""
    metadata: ObjectMeta | None = None


class ListHead(msgspec.Struct):
    """A list response, its items left as raw JSON."""

    kind: str = ""
    apiVersion: str = ""
    items: list[msgspec.Raw] | None = None


#: Raw JSON -> ObjectHead / ListHead; raise msgspec.DecodeError or ValidationError.
decode_head = msgspec.json.Decoder(ObjectHead).decode
decode_list = msgspec.json.Decoder(ListHead).decode


class ObjectKey(msgspec.Struct, frozen=True, order=True):
    """Identity of a Kubernetes object inside a recording: API group, kind, namespace, name."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


class Operation(msgspec.Struct, kw_only=True):
    """One API interaction: a request with its response, or one watch event.

    ``seq`` is assigned by the writer (1-based, contiguous within a session).
    ``request`` and ``response`` are decoded JSON values, or ``bytes`` of raw
    JSON as received (the writer stores those without re-encoding).
    """

    verb: str
    ts_ns: int = 0  # start time, nanoseconds since the epoch
    duration_ns: int = 0
    api_version: str = ""  # group/version, e.g. "apps/v1", "v1"
    resource: str = ""  # plural, e.g. "deployments"
    kind: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int | None = None
    status: int = 0  # HTTP status; 0 when the source does not say
    reason: str = ""  # error reason, e.g. "Conflict", "NotFound"
    message: str = ""
    patch_type: str = ""
    query: dict[str, str] | None = None  # labelSelector, fieldSelector, resourceVersion, watch, limit, continue
    request: Any = None
    response: Any = None
    actor: str = ""
    reconcile: int | None = None  # session-local reconcile span id
    seq: int = 0

    @property
    def error(self) -> bool:
        return is_error(self.verb, self.status)

    @property
    def key(self) -> ObjectKey | None:
        if not self.kind or not self.name:
            return None
        return ObjectKey(api_group(self.api_version), self.kind, self.namespace, self.name)

    @property
    def target(self) -> str:
        """What the op is about (:func:`target_label`): its object, or the path of a discovery request."""
        return target_label(self.kind, self.namespace, self.name, self.subresource, self.resource)


class Reconcile(msgspec.Struct, kw_only=True):
    """A reconcile span: one run of a reconciler for one object, from its first to its last op."""

    id: int = 0
    reconciler: str = ""  # controller / handler name, e.g. "cassandradatacenter"
    kind: str = ""
    namespace: str = ""
    name: str = ""
    start_seq: int = 0
    end_seq: int | None = None
    start_ns: int = 0
    end_ns: int | None = None
    trigger_seq: int | None = None  # the watch event (or requeue) that started it
    error: str = ""
    inferred: bool = False  # True when derived from traffic, not marked by the source
    source_id: str = ""  # the id the source gave it (Sieve reconcile id, kubestep span id)


class Mark(msgspec.Struct, kw_only=True):
    """A named bookmark on a position."""

    name: str
    seq: int
    note: str = ""
    created_ns: int = 0


class SessionInfo(msgspec.Struct, kw_only=True):
    """A recorded session as listed by ``replay-tui sessions``."""

    id: int
    name: str
    source: str
    started_ns: int | None = None
    ended_ns: int | None = None
    actor: str = ""
    cluster: str = ""
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    operations: int = 0
    keyframe_interval: int = 0
    # Open, but its writer is gone (killed, crashed): it will never be closed (engine.liveness).
    interrupted: bool = False
    last_op_ns: int | None = None  # the start of its last op, for an interrupted session
    format: int = 1  # 1: recorded before rollups and the change index; 2: with them; 3: list items' members indexed

    @property
    def live(self) -> bool:
        """Still being written: the recorder has not closed it, and is alive."""
        return self.ended_ns is None and not self.interrupted

    @property
    def state(self) -> str:
        """``recording``, ``interrupted`` or ``closed``."""
        return "closed" if self.ended_ns is not None else "interrupted" if self.interrupted else "recording"

    @property
    def sample_rate(self) -> float:
        """Fraction of non-watch requests recorded (``record --sample``); 1.0 when all were
        (or when the stored value is not a fraction from 0 to 1)."""
        rate = (self.attributes or {}).get("sample_rate")
        if isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0.0 <= rate <= 1.0:
            return float(rate)
        return 1.0


class OpRow(msgspec.Struct, array_like=True):
    """A light view of an operation, without bodies: what a timeline row or a scan needs."""

    seq: int
    ts_ns: int
    duration_ns: int
    verb: str
    kind: str
    namespace: str
    name: str
    subresource: str
    status: int
    reason: str
    reconcile: int | None
    resource: str = ""  # the plural, or the path of a request on no resource

    @property
    def error(self) -> bool:
        return is_error(self.verb, self.status)

    @property
    def target(self) -> str:
        """kind/namespace/name as a person reads it (namespace and name omitted when absent), or the
        path of a discovery request (:func:`target_label`)."""
        return target_label(self.kind, self.namespace, self.name, self.subresource, self.resource)


def has_latency(verb: str, duration_ns: int) -> bool:
    """Whether an op's duration is a measured latency.  Watch events have none of their own,
    and a duration of 0 is one the source did not record (a Sieve trace's one-second
    timestamps): both are unknown, never "0 ns"."""
    return duration_ns > 0 and verb not in EVENT_VERBS


def list_summary(body: Any) -> str | None:
    """'PodList with 3 items' for a list body (None for anything else)."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        n = len(body["items"])
        return f"{body.get('kind') or 'List'} with {n:,} item{'s' if n != 1 else ''}"
    return None
