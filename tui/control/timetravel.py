"""Watched fields and the provenance walk: the debugger's "when did it change, and who did it".

* :class:`Watches` keeps the fields watched in the open session (the engine's ``WatchSet``,
  on the ``heavy`` connection); continue / reverse-continue and the values shown at the
  cursor are bisections in memory once an index is built.
* :class:`ProvenanceWalk` is the chain ``p`` walks, one link per press: the first press
  explains the version at the cursor, each further press moves to the next link back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replay_tui.engine import provenance as provmod
from replay_tui.engine import watch as watchmod
from replay_tui.engine.diff import short_value
from replay_tui.engine.store import Session
from replay_tui.engine.textsafe import safe
from replay_tui.tui.control.connections import retrying


def check_watch_path(text: str) -> tuple[str, int] | None:
    """A problem with a typed field path, as (message, column), or None when it parses."""
    if not text.strip():
        return "type a field path, e.g. .spec.replicas or .status.conditions[type=Ready].status", 0
    try:
        watchmod.check_path(text.strip())
    except watchmod.FieldSpecError as exc:
        return (f"column {exc.column}: {exc.short}" if exc.column else exc.short), exc.column
    return None


@dataclass
class Found:
    """Where continue landed: the op, and a line saying which field changed how."""

    seq: int
    text: str


class Watches:
    """The fields watched in one session."""

    def __init__(self, session: Session):
        self.set = watchmod.WatchSet(session)
        self.session = session

    def __len__(self) -> int:
        return len(self.set)

    @property
    def indexes(self) -> list[Any]:
        return list(self.set.watches)

    async def add(self, obj_id: int, path: str, key: Any = None) -> Any:
        """Build the field's change index (one streamed pass over the object's versions)."""
        return await retrying(lambda: self.set.add(obj_id, path, key=key))

    def remove(self, obj_id: int, path: str) -> str | None:
        """The removed watch's label (None when it was not watched)."""
        label = next((w.label for w in self.set.watches if w.obj_id == obj_id and w.path == path), None)
        return label if self.set.remove(obj_id, path) else None

    @property
    def stale(self) -> bool:
        """The followed session grew past what the indexes have read."""
        return any(w.upto < self.session.last for w in self.set.watches)

    async def refresh(self) -> None:
        if self.stale:
            await retrying(self.set.refresh)

    def values_at(self, seq: int) -> list[tuple[Any, Any, Any]]:
        return self.set.values_at(seq)

    async def continue_from(self, seq: int, forward: bool) -> Found | None:
        """The nearest change of any watched field after (before) ``seq``."""
        await self.refresh()
        found = self.set.step(seq, forward)
        if found is None:
            return None
        index, change = found
        return Found(change.seq, f"{safe(index.label)}: {short_value(change.old, 40)} -> "
                                 f"{short_value(change.new, 40)} at op {change.seq:,} ({change.verb})")


FIRST_LINKS = 16  # links read for a chain at first; reaching its end reads EXTEND_BY more


class ProvenanceWalk:
    """A provenance chain shown in the Why tab, and the link the cursor is on.

    ``p`` explains the object at the cursor, then moves one link back per press; Enter in the
    panel goes to any link.  A chain stops after ``links`` links; going past its last link reads
    a longer one (the walk is index lookups: reading it again costs milliseconds).
    """

    def __init__(self, chain: provmod.Provenance, at: int, obj_id: int, links: int = FIRST_LINKS):
        self.chain = chain
        self.origin = at  # the position explained
        self.at = at  # where the cursor was sent last (a move elsewhere and p explains anew)
        self.obj_id = obj_id
        self.links = links
        self.i = -1  # the link the cursor is on (-1: none yet)

    @staticmethod
    async def explain(ses: Session, seq: int, pinned: int | None,
                      links: int = FIRST_LINKS) -> tuple[provmod.Provenance | None, int | None]:
        """(the chain of the object at ``seq``, its id); (None, None) when the op names no object."""
        obj_id = pinned if pinned is not None else await retrying(lambda: ses.op_object(seq))
        if obj_id is None:
            return None, None
        chain = await retrying(lambda: provmod.explain(ses, obj_id, seq, max_links=links))
        return chain, obj_id

    @property
    def extendable(self) -> bool:
        """The chain stopped at its length limit: there is more behind it."""
        return self.chain.end == "limit"

    async def extend(self, ses: Session) -> None:
        """Read a longer chain (the same start), keeping the link the cursor is on."""
        self.links += EXTEND_BY
        chain, _ = await ProvenanceWalk.explain(ses, self.origin, self.obj_id, self.links)
        if chain is not None:
            self.chain = chain

    def target(self, i: int, last: int) -> int | None:
        """The op link ``i`` points at (None: nowhere in the session), and the cursor is on it now."""
        link = self.chain.links[i]
        self.i = i
        target = link.seq if link.seq is not None and 1 <= link.seq <= last else None
        if target is not None:
            self.at = target
        return target

    def next_link(self) -> int | None:
        """The index of the next link back (None: the chain has ended)."""
        i = self.i + 1
        return i if i < len(self.chain.links) else None

    def summary(self) -> str:
        """The chain as text (the Why tab's header and the yank of it)."""
        lines = [f"{n + 1}. {safe(link.text)}" for n, link in enumerate(self.chain.links)]
        return f"provenance of {safe(self.chain.object)} at op {self.chain.at:,}:\n" + "\n".join(lines)


EXTEND_BY = 24
