"""One object's own timeline: which ops are its, and the header above them.

The rows are ``engine.filters.object_ops``: the requests naming the object, its watch events,
and the ops that recorded a new version of it.  The header says what a hot-loop hunt asks
first, from what the writer already keeps, without reading a body:

* **versions**, and what produced them: the writes (by actor and by reconciler) and the
  versions first seen in a watch event or a read (another client, or a write not recorded);
  from the object's version rows joined to the ops that recorded them (one index range);
* **requests**: reads, watches and writes naming it (the per-object rollup);
* **fields changed and how often**: the change index (``states.changed``) of each version
  after the first, counted by path; a path is left out when a deeper one under it is counted,
  and bookkeeping (``resourceVersion``, ``managedFields``...) is left out as ``diff`` leaves it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace

from replay_tui.engine import rollups
from replay_tui.engine.changes import changed_paths, format_path, id_of
from replay_tui.engine.diff import PathError, parse_path
from replay_tui.engine.filters import Filter, object_ops
from replay_tui.engine.format import WRITE_VERBS, ObjectKey
from replay_tui.engine.store import Session
from replay_tui.tui.control.connections import retrying

#: Bookkeeping the header leaves out of "fields changed" (as diff does).
NOISE = (".metadata.resourceVersion", ".metadata.managedFields", ".metadata.selfLink",
         '.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]')
TOP_FIELDS = 8
OLD_FORMAT_VERSIONS = 2000  # a recording without a change index: versions compared for the header


@dataclass
class ObjectSummary:
    """What the object timeline's header says."""

    obj_id: int
    key: ObjectKey | None
    versions: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    writers: list[tuple[str, int]] = field(default_factory=list)  # (who, versions written)
    unwritten: int = 0  # versions first seen in a watch event or a read
    reads: int = 0
    watches: int = 0
    writes: int = 0
    fields: list[tuple[str, int]] = field(default_factory=list)  # (path, versions that changed it)
    indexed: bool = True  # the session has a change index (schema 2)
    compared: int = 0  # without one: the versions compared (at most OLD_FORMAT_VERSIONS)
    complete: bool = True  # False: the overview alone (writers and fields still being read)

    @property
    def label(self) -> str:
        return str(self.key) if self.key is not None else f"object {self.obj_id}"


def scope(obj_id: int, key: ObjectKey | None) -> Filter:
    return object_ops(obj_id, f"object {key if key is not None else obj_id}")


def leaves(counts: Counter[str]) -> list[tuple[str, int]]:
    """Paths with their counts, deepest first where one contains another, noise left out."""
    parents: set[str] = set()
    for p in counts:
        try:
            segments = parse_path(p)
        except PathError:
            continue
        parents.update(format_path(segments[:i]) for i in range(1, len(segments)))
    return sorted(((p, n) for p, n in counts.items() if p and p not in parents and not p.startswith(NOISE)),
                  key=lambda pc: (-pc[1], pc[0]))


async def overview(ses: Session, obj_id: int) -> ObjectSummary:
    """The header's first line from index reads alone (versions, their ops, requests): shown at
    once, while ``summarize`` reads who wrote them and what changed (seconds for an object with a
    quarter of a 10M-op session: it reads every version's row)."""
    async def go() -> ObjectSummary:
        key = (await ses.object_keys([obj_id])).get(obj_id)
        out = ObjectSummary(obj_id=obj_id, key=key, indexed=ses.format >= 2, complete=False)
        row = await ses.rec.fetchone(
            "SELECT COUNT(*), MIN(seq), MAX(seq) FROM states INDEXED BY states_object"
            " WHERE session_id = ? AND obj_id = ?", (ses.id, obj_id))
        if row is not None:
            out.versions, out.first_seq, out.last_seq = row
        found = await rollups.top_objects(ses, "obj_id", 1, (obj_id,), "obj_id = ?2")
        if found:
            out.reads, out.watches, out.writes = found[0].reads, found[0].watches, found[0].writes
        return out

    return await retrying(go)


async def summarize(ses: Session, obj_id: int, known: ObjectSummary | None = None) -> ObjectSummary:
    """The header of an object's timeline (see the module docstring): the overview (``known``
    when it was read already), then who wrote each version and the fields they changed."""
    async def go() -> ObjectSummary:
        out = replace(known) if known is not None else await overview(ses, obj_id)
        out.complete = True
        rows = await ses.rec.fetchall(
            "SELECT o.verb, o.actor, r.reconciler, COUNT(*) FROM states st INDEXED BY states_object"
            " JOIN operations o ON o.session_id = st.session_id AND o.seq = st.seq"
            " LEFT JOIN reconciles r ON r.session_id = o.session_id AND r.id = o.reconcile"
            " WHERE st.session_id = ? AND st.obj_id = ? GROUP BY 1, 2, 3", (ses.id, obj_id))
        writers: Counter[str] = Counter()
        for verb, actor, reconciler, n in rows:
            if verb in WRITE_VERBS:
                who = " ".join(p for p in (actor, f"reconciler {reconciler}" if reconciler else "") if p)
                writers[who or "writes outside any reconcile"] += n
            else:
                out.unwritten += n
        out.writers = writers.most_common()
        if not out.indexed:
            out.fields, out.compared = await _compare_versions(ses, obj_id)
        else:
            counts: Counter[int] = Counter()
            first = True
            async for batch in ses.rec.stream(
                    "SELECT changed FROM states INDEXED BY states_object WHERE session_id = ? AND obj_id = ?"
                    " ORDER BY seq", (ses.id, obj_id)):
                for (changed,) in batch:
                    if first:  # the first version names every path the object has
                        first = False
                        continue
                    if changed:
                        counts.update(id_of(t, ses.format) for t in changed.strip("|").split("|")
                                      if t and t != "*")  # (a deletion's row lists every path, changes.EVERY)
            names: dict[int, str] = {}
            ids = list(counts)
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                names.update(await ses.rec.fetchall(
                    f"SELECT id, path FROM paths WHERE session_id = ? AND id IN ({','.join('?' * len(part))})",
                    (ses.id, *part)))
            by_path: Counter[str] = Counter({names[i]: n for i, n in counts.items() if i in names})
            out.fields = leaves(by_path)
        return out

    return await retrying(go)


async def _compare_versions(ses: Session, obj_id: int) -> tuple[list[tuple[str, int]], int]:
    """A recording from before the change index: compare the object's first versions, as the
    writer would have (``changes.changed_paths`` on the raw JSON), at most OLD_FORMAT_VERSIONS."""
    rows = await ses.rec.fetchall(
        "SELECT b.codec, b.data FROM states st INDEXED BY states_object LEFT JOIN blobs b ON b.id = st.blob_id"
        " WHERE st.session_id = ? AND st.obj_id = ? ORDER BY st.seq LIMIT ?", (ses.id, obj_id, OLD_FORMAT_VERSIONS))

    def fold() -> Counter[str]:
        counts: Counter[str] = Counter()
        before: bytes | None = None
        for kind, data in rows:
            raw = ses.rec.unpack(kind, data) if data is not None else None
            if before is not None and raw is not None:
                counts.update(changed_paths(before, raw))
            before = raw
        return counts

    return leaves(await asyncio.to_thread(fold)), len(rows)
