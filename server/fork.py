"""A fork of a recorded cluster: a writable API server seeded with the state at a position, and the
outside world of the recording replayed into it.

Seeding keeps the objects as they were recorded (uid, resourceVersion, generation, finalizers,
deletionTimestamp): an operator started against the fork finds exactly the cluster it found
then.  New writes continue the recording's resourceVersions.

The outside world: every change the recording saw after the fork point that the operator under
test did not make (a version no recorded write of its produced: another client's, what ``why``
labels "another client"; or a write by another actor, in an audit log) is applied to the fork at
the same offset from the fork's start as it had from the fork point, as the change it was (the
difference between the version before and after it, as a merge patch, status included), an
object's deletion as a delete.  The disappearance of an object that was being deleted is the
server finishing that deletion once the last finalizer went, not anybody's act: it is not
replayed.  So the operator sees the same world it saw the first time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from replay_tui.engine import provenance, state
from replay_tui.engine.format import WRITE_VERBS, ObjectKey
from replay_tui.engine.store import Session
from replay_tui.server.apiserver import ApiServer
from replay_tui.server.discovery import Discovery
from replay_tui.server.patches import merge_diff
from replay_tui.server.replay import recorded_types, state_entries, top_rv, type_for

# Metadata the server owns: never part of an external change.
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink",
                 "deletionTimestamp", "deletionGracePeriodSeconds")


class ForkPoint(msgspec.Struct, kw_only=True):
    """Where a fork starts: stored in the fork session's attributes (``fork``)."""

    source: str  # the recording, as an absolute path
    session: str
    session_id: int
    seq: int
    ts_ns: int
    replay_external: bool = True


class ExternalChange(msgspec.Struct, kw_only=True):
    """A change of the outside world, and when it happened after the fork point."""

    offset_ns: int
    seq: int
    key: ObjectKey
    resource: str
    api_version: str
    patch: dict[str, Any] | None = None  # a merge patch on the object as it was
    body: dict[str, Any] | None = None  # the object, when it was created
    delete: bool = False


async def seed(session: Session, seq: int) -> tuple[ApiServer, Discovery]:
    """A writable server holding the state just after op ``seq`` (namespaces its objects live in
    included, and ``default``: every cluster has them)."""
    types, recorded = await recorded_types(session)
    server = ApiServer(types, writable=True, default_namespace=False)
    entries = await state_entries(session, seq, server.types)
    server.reset(entries, rv=top_rv(entries) or 1000)
    have = {name for (_, name) in server.store[("", "namespaces")]}
    wanted = {"default"} | {ns for (_, ns) in ((rt, (b.get("metadata") or {}).get("namespace")) for rt, b in entries)
                            if isinstance(ns, str) and ns}
    for ns in sorted(wanted - have):
        server.put("", "namespaces", {"metadata": {"name": ns}})
    return server, Discovery(server.types, recorded=recorded)


def _clean(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    return {**body, "metadata": meta}


async def _operators(session: Session) -> set[str]:
    """Who the operator under test is, as ops name it: a proxy or hook recording leaves the actor of its
    own ops empty; importers name the session's actor."""
    return {"", session.info.actor}


async def external_changes(session: Session, after: int, *, operators: set[str] | None = None
                           ) -> AsyncIterator[ExternalChange]:
    """The outside world's changes after op ``after``, in recorded order (see the module docstring)."""
    if operators is None:
        operators = await _operators(session)
    start = (await session.rows(after, 1))[0].ts_ns if after > 0 else (await session.time_range())[0]
    last: dict[int, Any] = {}  # obj_id -> its previous version (cleaned), once it changed after the fork
    deleting: set[int] = set()  # objects whose last version had a deletionTimestamp
    async for batch in state.changes(session, after, session.last):
        for ch in batch:
            if ch.obj_id not in last:
                previous = await state.object_at(session, ch.obj_id, ch.seq - 1)
                last[ch.obj_id] = _clean(previous)
                if _deleting(previous):
                    deleting.add(ch.obj_id)
            before, now = last[ch.obj_id], _clean(ch.body)
            last[ch.obj_id] = now
            was_deleting = ch.obj_id in deleting
            if _deleting(ch.body):
                deleting.add(ch.obj_id)
            else:
                deleting.discard(ch.obj_id)
            if now is None and was_deleting:
                continue  # the server completing a deletion once the last finalizer went: nobody's act
            if ch.verb in WRITE_VERBS:
                external = ch.actor not in operators
            else:
                writer = await provenance.written_by(session, ch.obj_id, ch.seq)
                external = writer is None or writer.actor not in operators
            if not external:
                continue
            change = ExternalChange(offset_ns=max(0, ch.ts_ns - start), seq=ch.seq, key=ch.key,
                                    resource=ch.resource, api_version=ch.api_version)
            if now is None or (_deleting(ch.body) and not was_deleting):
                change.delete = True
            elif before is None:
                change.body = now
            else:
                change.patch = merge_diff(before, now)
                if not change.patch:
                    continue
            yield change


def _deleting(body: Any) -> bool:
    return isinstance(body, dict) and bool((body.get("metadata") or {}).get("deletionTimestamp"))


def apply_external(server: ApiServer, change: ExternalChange) -> bool:
    """One change of the outside world, made in the fork as an admin would; False when it had nothing
    to act on (the object is gone in the fork, or the fork already made the change)."""
    rt = type_for(server.types, change.key, change.body, change.resource, change.api_version)
    key = change.key
    if change.delete:
        return server.remove(rt.group, rt.plural, key.namespace, key.name) is not None
    if change.body is not None:
        if server.get(rt.group, rt.plural, key.namespace, key.name) is not None:
            return False
        server.put(rt.group, rt.plural, change.body)
        return True
    assert change.patch is not None
    return server.change(rt.group, rt.plural, key.namespace, key.name, change.patch) is not None


async def replay_external(server: ApiServer, db: str, session_ref: str | int, after: int, *, started: float,
                          on_change: Callable[[ExternalChange, bool], None] | None = None) -> int:
    """Apply the outside world's changes after op ``after`` to ``server`` at their offsets from
    ``started`` (a ``time.monotonic()``), on its own connection; returns how many were applied."""
    from replay_tui.engine.store import Recording

    applied = 0
    rec = await Recording.open(db)
    try:
        session = await rec.session(session_ref)
        async for change in external_changes(session, after):
            delay = started + change.offset_ns / 1e9 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            done = apply_external(server, change)
            applied += done
            if on_change is not None:
                on_change(change, done)
    finally:
        await rec.close()
    return applied


def fork_point(db: str, session: Session, seq: int, ts_ns: int, replay_external_: bool) -> ForkPoint:
    return ForkPoint(source=os.path.abspath(db), session=session.info.name, session_id=session.id, seq=seq,
                     ts_ns=ts_ns, replay_external=replay_external_)
