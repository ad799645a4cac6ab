"""Provenance: why an object (or one field of it) looks the way it does at a position.

The chain is walked back one link at a time:

    version   the object at op N is the version op V produced
    write     op W (create/update/patch/delete) wrote it          -- or --
    observed  op V saw it (watch event, get, list) and no recorded write made it:
              another client changed it (end of the chain)
    reconcile the write was issued by reconcile #R (its span)      -- or the write was
              made outside any reconcile (end)
    trigger   reconcile #R was started by the watch event at op T  -- or --
    requeue   it had no triggering event: a requeue, a resync or a first run (end)

and from a trigger the walk goes on with the version of the event's object
that the event delivered: which write produced *that*, and so on, until an
external change, a requeue, a loop (a version already explained) or the
link limit.  A hot loop therefore shows as a long chain of the same
reconcile; ``engine.causality`` summarises those.

A version seen through a watch event or a read is matched to the write that
produced it by object and ``resourceVersion``, near it in either direction
(Sieve logs a write after the watch event it caused).

Every step is one or two index lookups; nothing scans the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from replay_tui.engine.diff import short_value
from replay_tui.engine.format import EVENT_VERBS, WRITE_VERBS, Reconcile
from replay_tui.engine.state import Version
from replay_tui.engine.store import Session
from replay_tui.engine.watch import change_index, jsonable

MAX_LINKS = 32
MATCH_WINDOW = 512  # ops either side of an observed version searched for the write that made it

# Writes that can make a version a read or a watch event then shows (deletes make tombstones).
_WRITES = tuple(sorted(WRITE_VERBS - {"delete", "deletecollection"}))
_IN_WRITES = ",".join("?" * len(_WRITES))


class Link(msgspec.Struct, kw_only=True):
    """One step of a provenance chain; ``seq`` is the op to jump to (None: nowhere to go)."""

    # field | version | write | observed | reconcile | trigger | requeue | absent | loop | limit | unattributed
    kind: str
    seq: int | None
    text: str
    object: str | None = None
    obj_id: int | None = None
    verb: str = ""
    actor: str = ""
    status: int = 0
    reconcile: int | None = None
    reconciler: str = ""
    source_id: str = ""
    inferred: bool = False
    old: Any = None
    new: Any = None

    @property
    def final(self) -> bool:
        """Nothing comes after this link."""
        return self.kind in ("observed", "requeue", "absent", "loop", "limit", "unattributed")


class Provenance(msgspec.Struct, kw_only=True):
    """A whole chain, newest link first, and why it ended."""

    object: str
    at: int
    path: str | None
    links: list[Link]

    @property
    def end(self) -> str:
        return self.links[-1].kind if self.links else "absent"


class _Op(msgspec.Struct):
    seq: int
    verb: str
    kind: str
    namespace: str
    name: str
    subresource: str
    status: int
    actor: str
    reconcile: int | None
    obj_id: int | None
    resource_version: str


async def version_at(session: Session, obj_id: int, seq: int) -> Version | None:
    """The object's version current at ``seq``, through the (object, seq) index.

    ``engine.state.version_at`` lets SQLite pick the primary key (session, seq) and
    walk it backwards until the object turns up: milliseconds on a long session.
    """
    row = await session.rec.fetchone(
        "SELECT seq, blob_id FROM states INDEXED BY states_object WHERE session_id = ? AND obj_id = ?"
        " AND seq <= ? ORDER BY seq DESC LIMIT 1", (session.id, obj_id, seq))
    return Version(seq=row[0], blob_id=row[1]) if row else None


async def _op(session: Session, seq: int) -> _Op | None:
    row = await session.rec.fetchone(
        "SELECT seq, verb, kind, namespace, name, subresource, status, actor, reconcile, obj_id,"
        " resource_version FROM operations WHERE session_id = ? AND seq = ?", (session.id, seq))
    return _Op(*row) if row else None


def _target(op: _Op) -> str:
    text = "/".join(p for p in (op.kind, op.namespace, op.name) if p)
    return f"{text}/{op.subresource}" if op.subresource else text


def _span_target(span: Reconcile) -> str:
    return "/".join(p for p in (span.kind, span.namespace, span.name) if p) or "-"


def _ok_write(op: _Op) -> bool:
    return op.verb in WRITE_VERBS and op.status < 400


async def _key(session: Session, obj_id: int) -> str:
    key = (await session.object_keys([obj_id])).get(obj_id)
    return str(key) if key is not None else f"object {obj_id}"


async def _resource_version(session: Session, obj_id: int, seq: int, op: _Op) -> str:
    """The resourceVersion of the object's version at ``seq`` (from the op, else the body)."""
    if op.obj_id == obj_id and op.resource_version:
        return op.resource_version
    v = await version_at(session, obj_id, seq)
    if v is None or v.blob_id is None:
        return ""
    body = await session.rec.body(v.blob_id)
    meta = body.get("metadata") if isinstance(body, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) else ""


async def matching_write(session: Session, obj_id: int, seq: int, rv: str) -> int | None:
    """The write that produced the version seen at ``seq``: same object and resourceVersion, nearest."""
    if not rv:
        return None
    row = await session.rec.fetchone(
        f"SELECT seq FROM operations WHERE session_id = ? AND seq BETWEEN ? AND ? AND obj_id = ?"
        f" AND resource_version = ? AND verb IN ({_IN_WRITES}) AND error = 0"
        f" ORDER BY abs(seq - ?), seq LIMIT 1",
        (session.id, max(seq - MATCH_WINDOW, 1), seq + MATCH_WINDOW, obj_id, rv, *_WRITES, seq))
    return int(row[0]) if row else None


async def matching_delete(session: Session, obj_id: int, seq: int) -> int | None:
    """The delete that removed the object seen deleted at ``seq``: nearest, after its last version."""
    row = await session.rec.fetchone(
        "SELECT MAX(seq) FROM states INDEXED BY states_object WHERE session_id = ? AND obj_id = ?"
        " AND seq < ?", (session.id, obj_id, seq))
    after = max(row[0] if row and row[0] is not None else 0, seq - MATCH_WINDOW)
    found = await session.rec.fetchone(
        "SELECT seq FROM operations WHERE session_id = ? AND seq > ? AND seq <= ? AND obj_id = ?"
        " AND verb IN ('delete', 'deletecollection') AND error = 0 ORDER BY abs(seq - ?), seq LIMIT 1",
        (session.id, after, seq + MATCH_WINDOW, obj_id, seq))
    return int(found[0]) if found else None


async def producer(session: Session, obj_id: int, vseq: int) -> tuple[_Op | None, _Op | None]:
    """(the write that made the version produced at ``vseq``, the op that recorded it).

    A version first seen through a watch event or a read is matched to a write of the
    same object and resourceVersion near it; a deletion seen that way, to a delete of
    the object after its previous version (a DELETED event repeats the last version's
    resourceVersion, which must not make the last update look like the deletion).
    """
    op = await _op(session, vseq)
    if op is None:
        return None, None
    if _ok_write(op):
        return op, op
    version = await version_at(session, obj_id, vseq)
    if version is not None and version.seq == vseq and version.blob_id is None:
        wseq = await matching_delete(session, obj_id, vseq)
    else:
        wseq = await matching_write(session, obj_id, vseq,
                                    await _resource_version(session, obj_id, vseq, op))
    if wseq is None:
        return None, op
    return await _op(session, wseq), op


class Writer(msgspec.Struct, kw_only=True):
    """The write that produced a version: who changed it."""

    seq: int
    verb: str
    actor: str
    reconcile: int | None
    status: int


async def written_by(session: Session, obj_id: int, vseq: int) -> Writer | None:
    """The write behind the version recorded at ``vseq`` (None: another client made it)."""
    write, _ = await producer(session, obj_id, vseq)
    if write is None:
        return None
    return Writer(seq=write.seq, verb=write.verb, actor=write.actor, reconcile=write.reconcile,
                  status=write.status)


async def walk(session: Session, obj_id: int, at: int, *, path: str | None = None,
               max_links: int = MAX_LINKS) -> AsyncIterator[Link]:
    """The provenance chain of an object (or of one field) at position ``at``, link by link."""
    session.check_position(at, allow_zero=True)
    name = await _key(session, obj_id)
    if path is not None:
        index = await change_index(session, obj_id, path, build=False)
        change = await index.before(at + 1)  # the change that set the value at ``at``, read outward from it
        if change is None:
            yield Link(kind="absent", seq=None, object=name, obj_id=obj_id,
                       text=f"{name}:{path or '.'} is absent at op {at} and was never set before it")
            return
        yield Link(kind="field", seq=change.seq, object=name, obj_id=obj_id, verb=change.verb,
                   actor=change.actor, reconcile=change.reconcile,
                   old=jsonable(change.old), new=jsonable(change.new),
                   text=f"{name}:{path or '.'} = {short_value(change.new, 60)} at op {at}, set at op {change.seq}"
                        f" ({change.verb}; was {short_value(change.old, 60)})")
        vseq = change.seq
    else:
        v = await version_at(session, obj_id, at)
        if v is None:
            first = await session.rec.fetchone(
                "SELECT MIN(seq) FROM states INDEXED BY states_object WHERE session_id = ? AND obj_id = ?",
                (session.id, obj_id))
            later = f" (first seen at op {first[0]})" if first and first[0] else ""
            yield Link(kind="absent", seq=first[0] if first else None, object=name, obj_id=obj_id,
                       text=f"{name} was not seen by op {at}{later}")
            return
        vseq = v.seq
        what = "was deleted at" if v.blob_id is None else "is the version from"
        yield Link(kind="version", seq=vseq, object=name, obj_id=obj_id,
                   text=f"{name} at op {at} {what} op {vseq}")
    links = 1
    seen: set[tuple[int, int]] = set()
    while True:
        if (obj_id, vseq) in seen:
            yield Link(kind="loop", seq=vseq, object=name, obj_id=obj_id,
                       text=f"the version of {name} from op {vseq} was explained above: a loop")
            return
        seen.add((obj_id, vseq))
        write, recorded = await producer(session, obj_id, vseq)
        if write is None:
            verb = recorded.verb if recorded else "?"
            how = "a watch event" if verb in EVENT_VERBS else f"a {verb}"
            version = await version_at(session, obj_id, vseq)
            if version is not None and version.blob_id is None:
                text = (f"op {vseq} ({how}) found {name} deleted; no recorded write deleted it:"
                        f" another client did")
            else:
                text = (f"op {vseq} ({how}) delivered this version of {name}; no recorded write made"
                        f" it: another client changed it")
            yield Link(kind="observed", seq=vseq, object=name, obj_id=obj_id, verb=verb,
                       actor=recorded.actor if recorded else "", status=recorded.status if recorded else 0,
                       text=text)
            return
        seen_at = f", seen at op {vseq} ({recorded.verb})" if recorded and recorded.seq != write.seq else ""
        yield Link(kind="write", seq=write.seq, object=_target(write), obj_id=write.obj_id,
                   verb=write.verb, actor=write.actor, status=write.status, reconcile=write.reconcile,
                   text=f"op {write.seq} {write.verb} {_target(write)} ({write.status or '-'})"
                        f"{' by ' + write.actor if write.actor else ''}{seen_at}")
        links += 1
        if write.reconcile is None:
            yield Link(kind="unattributed", seq=None, object=_target(write), actor=write.actor,
                       text=f"op {write.seq} was not inside a recorded reconcile"
                            f"{' (actor ' + write.actor + ')' if write.actor else ''}")
            return
        span = await session.reconcile(write.reconcile)
        if span is None:
            yield Link(kind="unattributed", seq=None, reconcile=write.reconcile,
                       text=f"reconcile #{write.reconcile} is not in the recording")
            return
        yield Link(kind="reconcile", seq=span.start_seq, object=_span_target(span), reconcile=span.id,
                   reconciler=span.reconciler, source_id=span.source_id, inferred=span.inferred,
                   text=f"reconcile #{span.id} {span.reconciler or '-'} of {_span_target(span)}"
                        f" (ops {span.start_seq}..{span.end_seq if span.end_seq is not None else '?'})"
                        + (f" [source id {span.source_id}]" if span.source_id else "")
                        + (" [inferred]" if span.inferred else ""))
        links += 1
        if span.trigger_seq is None:
            yield Link(kind="requeue", seq=span.start_seq, reconcile=span.id, reconciler=span.reconciler,
                       text=f"reconcile #{span.id} had no triggering watch event: a requeue, a resync"
                            f" or a first run")
            return
        trigger = await _op(session, span.trigger_seq)
        if trigger is None:
            yield Link(kind="unattributed", seq=None, reconcile=span.id,
                       text=f"the trigger of reconcile #{span.id} (op {span.trigger_seq}) is not in the session")
            return
        yield Link(kind="trigger", seq=trigger.seq, object=_target(trigger), obj_id=trigger.obj_id,
                   verb=trigger.verb, actor=trigger.actor, reconcile=span.id,
                   text=f"op {trigger.seq} {trigger.verb} {_target(trigger)} started reconcile #{span.id}")
        links += 1
        if trigger.obj_id is None:
            return
        if links >= max_links:
            yield Link(kind="limit", seq=None,
                       text=f"... the chain goes on (stopped after {links} links; see 'replay-tui analyze' cycles)")
            return
        obj_id = trigger.obj_id
        name = await _key(session, obj_id)
        v = await version_at(session, obj_id, trigger.seq)
        if v is None:
            return
        vseq = v.seq


async def explain(session: Session, obj_id: int, at: int, *, path: str | None = None,
                  max_links: int = MAX_LINKS) -> Provenance:
    """The whole chain (bounded by ``max_links``)."""
    links = [link async for link in walk(session, obj_id, at, path=path, max_links=max_links)]
    return Provenance(object=await _key(session, obj_id), at=at, path=path, links=links)



