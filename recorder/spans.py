"""Reconcile spans inferred from proxy traffic.

The proxy sees HTTP, not the operator's code, so it cannot know where a
reconcile starts and ends.  It guesses, and says so (``inferred=True``):

* a watch event ADDED/MODIFIED/DELETED for an object is a *trigger*;
* the requests the operator makes after it (not watches, not discovery) form
  a span for that object, with the event as its ``trigger_seq``;
* a request on an object that has a recent trigger of its own (kopf
  patching the object it handles, a status write) belongs to that object's
  span, even when events of other objects came in between; so does a
  request on a child whose ownerReferences (in the request or the answer)
  name an owner with a recent trigger; any other request (reading a Secret)
  goes to the latest event not yet answered, or joins the running span;
* a span ends when the next trigger's requests start, or when the operator
  has been quiet for ``quiet`` seconds; a trigger that no request follows
  makes no span.

This is exact for operators that handle one event at a time and close for
operators that reconcile several objects at once (kopf, controller-runtime
with several workers): then requests on child objects go to the most recent
span.  Spans marked by the source (the client hook's ``rec.reconcile(obj)``,
Sieve traces) are exact and never inferred.
"""

from __future__ import annotations

from typing import Any

import msgspec

from replay_tui.engine.format import (
    ADDED,
    CREATE,
    DELETE,
    DELETED,
    MODIFIED,
    PATCH,
    UPDATE,
    WATCH,
    ObjectMeta,
    Operation,
    api_group,
)
from replay_tui.engine.partial import object_head
from replay_tui.engine.writer import SessionWriter

TRIGGERS = frozenset({ADDED, MODIFIED, DELETED})
_WRITES = frozenset({CREATE, UPDATE, PATCH, DELETE})
DEFAULT_QUIET_S = 2.0
MAX_TRIGGERS = 4096  # objects remembered with their latest trigger


Key = tuple[str, str, str]  # kind, namespace, name


def identity(body: Any) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object body, raw JSON or decoded."""
    if isinstance(body, (bytes, bytearray)):
        head = object_head(bytes(body))  # a Table or partial metadata: the object it carries
        if head is None:
            return "", "", ""
        meta = head.metadata or ObjectMeta()
        return head.kind, meta.namespace, meta.name
    if isinstance(body, dict):
        raw = body.get("metadata")
        fields: dict[str, Any] = raw if isinstance(raw, dict) else {}
        return str(body.get("kind") or ""), str(fields.get("namespace") or ""), str(fields.get("name") or "")
    return "", "", ""


class _OwnerRef(msgspec.Struct):
    kind: str = ""
    name: str = ""


class _OwnedMeta(msgspec.Struct):
    ownerReferences: list[_OwnerRef] | None = None


class _Owned(msgspec.Struct):
    metadata: _OwnedMeta | None = None


_owned = msgspec.json.Decoder(_Owned).decode


def owners(body: Any) -> list[tuple[str, str]]:
    """(kind, name) of each owner a body's ownerReferences name (raw JSON or decoded)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            meta = _owned(body).metadata
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        return [(r.kind, r.name) for r in (meta.ownerReferences or [])] if meta else []
    if isinstance(body, dict):
        meta = body.get("metadata")
        refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
        return [(str(r.get("kind") or ""), str(r.get("name") or "")) for r in refs
                if isinstance(r, dict)] if isinstance(refs, list) else []
    return []


class _Trigger(msgspec.Struct):
    seq: int
    reconciler: str
    last_ns: int  # the event's time, then the end of the latest request attributed to it


class _Span(msgspec.Struct):
    rid: int
    key: Key
    last_ns: int
    last_seq: int = 0  # the span's own last request (watch events may follow it)


class SpanInferrer:
    """Feeds inferred reconcile spans to a session writer, op by op, in append order."""

    def __init__(self, writer: SessionWriter, quiet_s: float = DEFAULT_QUIET_S):
        self.writer = writer
        self.quiet_ns = int(quiet_s * 1e9)
        self.spans = 0
        self._triggers: dict[Key, _Trigger] = {}
        self._latest: Key | None = None  # the object of the most recent trigger, until a span uses it
        self._span: _Span | None = None

    def before_event(self, op: Operation) -> None:
        """Called before a watch event is appended (nothing to do: spans end when requests say so)."""

    def after_event(self, op: Operation, seq: int) -> None:
        """Called after a watch event was appended with ``seq``: a trigger for its object."""
        if op.verb not in TRIGGERS:
            return
        kind, namespace, name = identity(op.response)
        kind, namespace, name = op.kind or kind, namespace or op.namespace, name or op.name
        op.kind = kind  # the writer would fill it too; the span needs it now
        if not name:
            return
        group = api_group(op.api_version)
        key = (kind, namespace, name)
        self._triggers.pop(key, None)  # re-insert: the dict stays ordered oldest first
        self._triggers[key] = _Trigger(seq, f"{op.resource}.{group}" if group else op.resource, op.ts_ns)
        if len(self._triggers) > MAX_TRIGGERS:
            del self._triggers[next(iter(self._triggers))]
        self._latest = key
        if self._span is not None and self._span.key == key:
            self._close()  # a new event for the same object: its next requests are a new reconcile

    def before_call(self, op: Operation) -> None:
        """Called before a request is appended: it joins, opens or leaves a span."""
        if op.verb == WATCH or op.resource.startswith("/"):
            return  # (re)starting a watch or discovery: the operator's plumbing, not a reconcile
        now = op.ts_ns
        span = self._span
        if span is not None and now - span.last_ns > self.quiet_ns:
            self._close()
            span = None
        target = (op.kind, op.namespace, op.name) if op.name else None
        own = self._triggers.get(target) if target is not None else None
        if (own is None or now - own.last_ns > self.quiet_ns) and op.verb in _WRITES:
            target, own = self._owner_trigger(op, now)
        if own is not None and target is not None and now - own.last_ns <= self.quiet_ns:
            if span is None or span.key != target:
                self._close()
                span = self._open(target, own, now)
        elif span is None or self._latest is not None:
            # A request on no triggered object: it belongs to the latest event not yet answered,
            # or else to the running span.
            latest = self._triggers.get(self._latest) if self._latest is not None else None
            if latest is not None and now - latest.last_ns <= self.quiet_ns:
                self._close()
                span = self._open(self._latest, latest, now)  # type: ignore[arg-type]
            elif span is None:
                return
        op.reconcile = span.rid
        span.last_seq = self.writer.seq + 1  # the seq this request is about to be appended with
        end = now + max(op.duration_ns, 0)
        span.last_ns = max(span.last_ns, end)
        trigger = self._triggers.get(span.key)
        if trigger is not None:
            trigger.last_ns = max(trigger.last_ns, end)

    def _owner_trigger(self, op: Operation, now: int) -> tuple[Key | None, _Trigger | None]:
        """The owner (named by the child's ownerReferences) with the most recent live trigger."""
        best: tuple[Key | None, _Trigger | None] = (None, None)
        for body in (op.request, op.response):
            for kind, name in owners(body):
                key = (kind, op.namespace, name)
                trigger = self._triggers.get(key)
                if trigger is not None and now - trigger.last_ns <= self.quiet_ns and (
                        best[1] is None or trigger.last_ns > best[1].last_ns):
                    best = (key, trigger)
            if best[1] is not None:
                break
        return best

    def finish(self) -> None:
        self._close()

    def _open(self, key: Key, trigger: _Trigger, now: int) -> _Span:
        kind, namespace, name = key
        rid = self.writer.begin_reconcile(trigger.reconciler, kind=kind, namespace=namespace, name=name,
                                          trigger_seq=trigger.seq, inferred=True, ts_ns=now)
        self.spans += 1
        if self._latest == key:
            self._latest = None  # used: requests after a quiet gap do not reopen it
        self._span = _Span(rid, key, now)
        return self._span

    def _close(self) -> None:
        if self._span is not None:
            self.writer.end_reconcile(self._span.rid, ts_ns=self._span.last_ns or None,
                                      end_seq=self._span.last_seq or None)
            self._span = None
