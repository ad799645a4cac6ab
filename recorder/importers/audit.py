"""Import Kubernetes API server audit logs (JSON lines of ``audit.k8s.io`` Events).

The log is JSON lines of Events (``audit.k8s.io/v1`` or ``v1beta1``), or any mix of
the shapes real collectors write: an ``EventList`` (the webhook backend's batch) is read
item by item, a JSON array likewise; an event may be pretty-printed over several lines,
or several may share one line (concatenated objects); events of the Kubernetes 1.11-1.13
webhook shape without ``apiVersion`` are recognised by ``kind: Event`` with ``auditID``
and ``stage``; a UTF-8 BOM and gzip compression are fine.  Mapping:

* the stages of one ``auditID`` (RequestReceived, ResponseStarted,
  ResponseComplete, Panic) merge into one op, written when its last stage
  (ResponseComplete or Panic) is read: seq order is completion order, and
  ``ts_ns`` is ``requestReceivedTimestamp`` (else ``timestamp``, else the
  event's creation time), the duration runs to the last ``stageTimestamp``.
  Requests whose last stage never comes (a watch still open when the log
  ends) are written at the end, or once 10 000 are waiting;
* ``verb`` and ``objectRef`` (resource, subresource, namespace, name, apiGroup,
  apiVersion, uid, resourceVersion) say what the request did; the requestURI's
  query (labelSelector, resourceVersion, watch, ...) is kept;
  ``responseStatus`` gives status, reason and message;
* the actor is the user the request acted as: the impersonated user when
  there is one, else ``user.username``;
* bodies exist only at level Request (the request) and RequestResponse (both);
  a Metadata-level log has none, so object state cannot be reconstructed from
  it (the ops are still there).  Secret values in them are redacted like the
  proxy's (``recorder.redact``) unless ``redact=False``;
* the kind comes from a body where one says it (learned in a quick first
  pass, so every op on a resource names the same kind), else a table of
  built-in resources, else the resource name singularised and capitalised;
* requests without an ``objectRef`` (discovery: ``/api``, ``/apis/...``,
  ``/healthz``) and verbs replay-tui does not model (``impersonate``, ``bind``,
  ...) are skipped and counted.

``--user NAME`` keeps requests by that user (authenticated or impersonated);
``--user-agent TEXT`` keeps requests whose user agent contains TEXT (any case).
Lines that are not audit events, and events holding what a recording cannot
(invalid UTF-8, nesting too deep, numbers out of range), are counted as
malformed with their line numbers and reasons.  An empty file, a file without a single audit event, and a log where
the filters leave nothing are errors (no session is written).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections import OrderedDict
from typing import Any

import msgspec

from replay_tui.engine.format import READ_VERBS, WRITE_VERBS, Operation
from replay_tui.recorder.importers.common import (
    INPUT_ERRORS,
    NOT_OBJECT_KINDS,
    BadInput,
    Bodies,
    ImportFormatError,
    ImportResult,
    JsonValues,
    LineReader,
    Malformed,
    Progress,
    Tally,
    Target,
    check_input,
    check_op,
    default_session_name,
    describe_input_error,
    feed_lines,
    first_pass,
    join_api_version,
    kind_from_plural,
    parse_rfc3339_ns,
)

SOURCE = "audit"
EXPECTED = "a Kubernetes audit log"
NOT_AUDIT = "not a Kubernetes audit log (expected JSON lines of audit.k8s.io/v1 or v1beta1 Events)"
AUDIT_MARK = b'"audit.k8s.io/'
AUDIT_ID = b'"auditID"'  # older events name no apiVersion, but every event has an auditID
FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
REQUEST_LEVELS = frozenset({"Request", "RequestResponse"})
MAX_PENDING = 10000
MAX_NAMES_KEPT = 20
VERBS = READ_VERBS | WRITE_VERBS

_REF = re.compile(rb'"objectRef"\s*:\s*(\{[^{}]*\})')
_BODY_KIND = re.compile(rb'"(response|request)Object"\s*:\s*\{\s*"kind"\s*:\s*"([^"]+)"')


class _Ref(msgspec.Struct):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    apiGroup: str = ""
    apiVersion: str = ""
    resourceVersion: str = ""
    subresource: str = ""


class _User(msgspec.Struct):
    username: str = ""


class _ResponseStatus(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


class _Meta(msgspec.Struct):
    creationTimestamp: str | None = None


class _Event(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    level: str = ""
    auditID: str = ""
    stage: str = ""
    requestURI: str = ""
    verb: str = ""
    user: _User | None = None
    impersonatedUser: _User | None = None
    userAgent: str = ""
    objectRef: _Ref | None = None
    responseStatus: _ResponseStatus | None = None
    requestObject: msgspec.Raw = msgspec.Raw()
    responseObject: msgspec.Raw = msgspec.Raw()
    requestReceivedTimestamp: str = ""
    stageTimestamp: str = ""
    timestamp: str = ""
    metadata: _Meta | None = None
    items: list[msgspec.Raw] | None = None


class _KindOnly(msgspec.Struct):
    kind: str = ""


_decode_event = msgspec.json.Decoder(_Event).decode
_decode_items = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_ref = msgspec.json.Decoder(_Ref).decode
_decode_kind = msgspec.json.Decoder(_KindOnly).decode


def _body(raw: msgspec.Raw) -> bytes | None:
    data = bytes(raw) if raw else b""
    return data if data and data != b"null" else None


def _object_kind(kind: str) -> str:
    """The object kind a body's kind names ('' for Status, options, ...)."""
    if not kind or kind in NOT_OBJECT_KINDS:
        return ""
    return kind[:-4] if kind.endswith("List") and len(kind) > 4 else kind


class _Kinds:
    """(apiGroup, resource) -> kind, from bodies; the first body to say wins."""

    def __init__(self) -> None:
        self.learned: dict[tuple[str, str], str] = {}

    def learn(self, group: str, resource: str, kind: str) -> None:
        kind = _object_kind(kind)
        if kind and resource:
            self.learned.setdefault((group, resource), kind)

    def kind(self, group: str, resource: str) -> str:
        return self.learned.get((group, resource)) or kind_from_plural(resource)


def prescan(path: str, bar: Progress | None = None) -> tuple[_Kinds, int]:
    """First pass: kinds named by bodies, and how many lines look like audit events."""
    kinds = _Kinds()
    audit_lines = 0
    with LineReader(path) as reader:
        for _, line in reader:
            if bar is not None and bar.enabled:
                bar.update(reader.position, None)
            if AUDIT_MARK not in line and AUDIT_ID not in line:
                continue
            audit_lines += 1
            if b'Object"' not in line:
                continue
            ref_match = _REF.search(line)
            if ref_match is None:
                continue
            try:
                ref = _decode_ref(ref_match.group(1))
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if ref.subresource:
                continue
            for m in _BODY_KIND.finditer(line):
                kinds.learn(ref.apiGroup, ref.resource, m.group(2).decode("utf-8", "replace"))
    return kinds, audit_lines


def _is_event(ev: _Event) -> bool:
    """An audit Event: ``audit.k8s.io`` says so, or (1.11-1.13 webhooks) no apiVersion but an
    auditID and a stage, which no other ``kind: Event`` (core/v1 events) carries."""
    if ev.apiVersion:
        return ev.apiVersion.startswith("audit.k8s.io/")
    return bool(ev.auditID and ev.stage)


def _query(uri: str) -> dict[str, str] | None:
    _, _, text = uri.partition("?")
    if not text:
        return None
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        query.setdefault(key, value)
    return query or None


class AuditImporter:
    """Streams one audit log into one session."""

    def __init__(self, sw: Any, kinds: _Kinds, malformed: Malformed, *, user: str | None,
                 user_agent: str | None, bodies: Bodies | None = None):
        self.sw = sw
        self.kinds = kinds
        self.malformed = malformed
        self.user = user
        self.user_agent = user_agent.lower() if user_agent else None
        self.bodies = bodies if bodies is not None else Bodies()
        self.tally = Tally()
        self.values = JsonValues()
        self.pending: OrderedDict[str, tuple[_Event, int]] = OrderedDict()  # auditID -> (so far, line)
        self.audit_events = 0
        self.filtered = 0
        self.non_resource = 0
        self.other_verbs: dict[str, int] = {}
        self.actors: dict[str, int] = {}
        self.agents: dict[str, int] = {}
        self.last_ts = 0
        self.looks_like_audit = False

    # --- lines ----------------------------------------------------------------------------

    def line(self, lineno: int, line: bytes) -> None:
        if AUDIT_MARK in line or AUDIT_ID in line:
            self.looks_like_audit = True
        for start, value in self.values.feed(lineno, line):
            self.value(start, value)

    def value(self, lineno: int, data: bytes | str, *, item: bool = False, split: bool = True) -> None:
        """One JSON value of the log: an Event, an EventList, or an array of them (a str: why
        the text there is none)."""
        if isinstance(data, str):
            self.malformed.add(lineno, data)
            return
        if data[:1] == b"[" and not item:
            try:
                items = _decode_items(data)
            except INPUT_ERRORS as exc:
                self.malformed.add(lineno, f"invalid JSON ({describe_input_error(exc)})")
                return
            for raw in items:
                self.value(lineno, bytes(raw), item=True)
            return
        try:
            event = _decode_event(data)
        except msgspec.ValidationError as exc:
            self.malformed.add(lineno, f"not an audit event ({describe_input_error(exc)})")
            return
        except INPUT_ERRORS as exc:
            parts = JsonValues.split(lineno, data) if split and data[:1] == b"{" else []
            if len(parts) > 1:  # objects concatenated on one line, each read on its own
                for start, part in parts:
                    self.value(start, part, split=False)
                return
            self.malformed.add(lineno, f"invalid JSON ({describe_input_error(exc)})")
            return
        if event.kind == "EventList" and (event.apiVersion.startswith("audit.k8s.io/")
                                          or (not event.apiVersion and event.items is not None)):
            for raw in event.items or []:
                try:
                    self.event(lineno, _decode_event(bytes(raw)))
                except INPUT_ERRORS as exc:
                    self.malformed.add(lineno, "EventList item is not an audit event "
                                               f"({describe_input_error(exc)})")
            return
        self.event(lineno, event)

    def event(self, lineno: int, ev: _Event) -> None:
        if ev.kind != "Event" or not _is_event(ev):
            self.malformed.add(lineno, f"not an audit.k8s.io Event (kind {ev.kind!r}, "
                                       f"apiVersion {ev.apiVersion!r})")
            return
        self.audit_events += 1
        final = ev.stage in FINAL_STAGES or not ev.stage or not ev.auditID
        if not self._wanted(ev):
            if final:
                self.filtered += 1
            self.pending.pop(ev.auditID, None)
            return
        if final:
            prev = self.pending.pop(ev.auditID, None) if ev.auditID else None
            self.emit(self._merge(prev[0] if prev else None, ev), prev[1] if prev else lineno)
            return
        prev = self.pending.get(ev.auditID)
        self.pending[ev.auditID] = (self._merge(prev[0] if prev else None, ev), prev[1] if prev else lineno)
        self.pending.move_to_end(ev.auditID)
        if len(self.pending) > MAX_PENDING:
            self.emit(*self.pending.popitem(last=False)[1])

    def _wanted(self, ev: _Event) -> bool:
        if self.user is not None:
            names = {u.username for u in (ev.user, ev.impersonatedUser) if u is not None}
            if self.user not in names:
                return False
        return not (self.user_agent is not None and self.user_agent not in ev.userAgent.lower())

    @staticmethod
    def _merge(prev: _Event | None, ev: _Event) -> _Event:
        """Later stages complete earlier ones: status, response, stage time; the request stays."""
        if prev is None:
            return ev
        prev.stage = ev.stage or prev.stage
        prev.stageTimestamp = ev.stageTimestamp or prev.stageTimestamp
        prev.level = ev.level or prev.level
        if ev.responseStatus is not None:
            prev.responseStatus = ev.responseStatus
        if _body(ev.responseObject):
            prev.responseObject = ev.responseObject
        if not _body(prev.requestObject) and _body(ev.requestObject):
            prev.requestObject = ev.requestObject
        prev.requestReceivedTimestamp = prev.requestReceivedTimestamp or ev.requestReceivedTimestamp
        prev.timestamp = prev.timestamp or ev.timestamp
        prev.objectRef = prev.objectRef or ev.objectRef
        prev.verb = prev.verb or ev.verb
        return prev

    # --- ops -----------------------------------------------------------------------------------

    def emit(self, ev: _Event, lineno: int) -> None:
        """Write one request as an op; what the recording cannot hold makes its line malformed."""
        try:
            self._emit(ev)
        except BadInput as exc:
            self.malformed.add(lineno, str(exc))

    def _emit(self, ev: _Event) -> None:
        ref = ev.objectRef
        if ref is None or not ref.resource:
            self.non_resource += 1
            return
        if ev.verb not in VERBS:
            key = ev.verb or "(none)"
            if key in self.other_verbs or len(self.other_verbs) < MAX_NAMES_KEPT:
                self.other_verbs[key] = self.other_verbs.get(key, 0) + 1
            return
        level = ev.level
        secret = ref.resource == "secrets" and not ref.apiGroup
        request = self.bodies(_body(ev.requestObject) if level in REQUEST_LEVELS else None,
                              secret=secret, what="requestObject")
        response = self.bodies(_body(ev.responseObject) if level == "RequestResponse" else None,
                               secret=secret, what="responseObject")
        kind = ""
        if not ref.subresource:
            for data in (response, request):
                if data is not None:
                    try:
                        kind = _object_kind(_decode_kind(data).kind)
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        kind = ""
                    if kind:
                        self.kinds.learn(ref.apiGroup, ref.resource, kind)
                        kind = self.kinds.kind(ref.apiGroup, ref.resource)
                        break
        kind = kind or self.kinds.kind(ref.apiGroup, ref.resource)
        start = (parse_rfc3339_ns(ev.requestReceivedTimestamp) or parse_rfc3339_ns(ev.timestamp)
                 or parse_rfc3339_ns((ev.metadata.creationTimestamp or "") if ev.metadata else "")
                 or parse_rfc3339_ns(ev.stageTimestamp) or self.last_ts)
        end = parse_rfc3339_ns(ev.stageTimestamp)
        self.last_ts = max(self.last_ts, start)
        status = ev.responseStatus or _ResponseStatus()
        actor = ""
        if ev.impersonatedUser is not None and ev.impersonatedUser.username:
            actor = ev.impersonatedUser.username
        elif ev.user is not None:
            actor = ev.user.username
        namespace = "" if ref.resource == "namespaces" and not ref.subresource else ref.namespace
        op = Operation(
            verb=ev.verb, ts_ns=start, duration_ns=max(0, end - start) if end and start else 0,
            api_version=join_api_version(ref.apiGroup, ref.apiVersion), resource=ref.resource,
            kind=kind, namespace=namespace, name=ref.name, subresource=ref.subresource, uid=ref.uid,
            resource_version=ref.resourceVersion, status=status.code, reason=status.reason,
            message=status.message if status.code >= 400 else "", query=_query(ev.requestURI),
            request=request, response=response, actor=actor)
        self.sw.append(check_op(op))
        self.tally.count(op.verb, op.error)
        self._remember(self.actors, actor)
        self._remember(self.agents, ev.userAgent)

    @staticmethod
    def _remember(counts: dict[str, int], name: str) -> None:
        if name and (name in counts or len(counts) < MAX_NAMES_KEPT):
            counts[name] = counts.get(name, 0) + 1

    def finish(self) -> None:
        """A value cut short at the end is malformed; requests whose last stage never came are
        written as far as they got."""
        for start, value in self.values.finish():
            self.value(start, value)
        while self.pending:
            self.emit(*self.pending.popitem(last=False)[1])

    def skipped(self) -> dict[str, int]:
        out = {"non-resource requests": self.non_resource,
               "requests with other verbs": sum(self.other_verbs.values()),
               "filtered out": self.filtered}
        return {k: v for k, v in out.items() if v}

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = self.tally.attributes()
        attrs.update(malformed=self.malformed.count, malformed_lines=self.malformed.lines,
                     audit_events=self.audit_events, non_resource_requests=self.non_resource,
                     filtered=self.filtered, actors=dict(self.actors), user_agents=dict(self.agents),
                     **self.bodies.attributes())
        if self.other_verbs:
            attrs["other_verbs"] = dict(self.other_verbs)
        return attrs


def import_audit(path: str, db: str, *, session: str | None = None, user: str | None = None,
                 user_agent: str | None = None, progress: bool | None = None,
                 redact: bool = True) -> ImportResult:
    """Import an audit log into a new session of recording ``db`` (atomically)."""
    size = check_input(path, EXPECTED)
    kinds, bar = first_pass(path, size, prescan, _Kinds, NOT_AUDIT, progress)
    name = session or default_session_name(path)
    attributes: dict[str, Any] = {"source_file": os.path.abspath(path), "source_bytes": size,
                                  "format": "kubernetes audit log"}
    if user is not None:
        attributes["filter_user"] = user
    if user_agent is not None:
        attributes["filter_user_agent"] = user_agent
    malformed = Malformed()
    with Target(db) as target, target.session(name, SOURCE, attributes) as sw:
        importer = AuditImporter(sw, kinds, malformed, user=user, user_agent=user_agent,
                                 bodies=Bodies(redact))
        feed_lines(path, size, importer, bar)
        if importer.tally.ops == 0:
            if importer.audit_events == 0:
                if not importer.looks_like_audit:
                    raise ImportFormatError(f"{path}: {NOT_AUDIT}")
                raise ImportFormatError(f"{path}: no valid audit event ({malformed.count} malformed "
                                        f"lines; first: {malformed.describe_first()})")
            skipped = ", ".join(f"{n} {what}" for what, n in importer.skipped().items())
            raise ImportFormatError(f"{path}: nothing to import: {importer.audit_events} audit events "
                                    f"read, none kept ({skipped})")
        sw.close(**importer.attributes())
        return ImportResult(db=db, session=sw.name, session_id=sw.id, source=path,
                            ops=importer.tally.ops, verbs=dict(importer.tally.verbs),
                            errors=importer.tally.errors, malformed=malformed.count,
                            malformed_lines=list(malformed.lines), skipped=importer.skipped(),
                            redacted=importer.bodies.redacted)
