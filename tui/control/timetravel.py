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


class ProvenanceWalk:
    """The chain ``p`` walks, and how far along it the cursor is."""

    def __init__(self, chain: provmod.Provenance, at: int):
        self.chain = chain
        self.at = at  # where the cursor was sent last (a move elsewhere ends the walk)
        self.i = -1

    @staticmethod
    async def explain(ses: Session, seq: int, pinned: int | None) -> tuple[provmod.Provenance | None, int | None]:
        """(the chain of the object at ``seq``, its id); (None, None) when the op names no object."""
        obj_id = pinned if pinned is not None else await retrying(lambda: ses.op_object(seq))
        if obj_id is None:
            return None, None
        chain = await retrying(lambda: provmod.explain(ses, obj_id, seq))
        return chain, obj_id

    def summary(self) -> str:
        lines = [f"{n + 1}. {safe(link.text)}" for n, link in enumerate(self.chain.links)]
        return f"provenance of {safe(self.chain.object)} at op {self.chain.at:,} (p walks back):\n" + "\n".join(lines)

    def step(self, last: int) -> tuple[str, int | None, bool]:
        """The next link: (what to say, the op to go to or None, whether the chain has ended)."""
        links = self.chain.links
        i = self.i + 1
        if i >= len(links):
            return f"end of the chain ({self.chain.end}): {safe(links[-1].text)}", None, True
        self.i = i
        link = links[i]
        where = "" if link.seq is None else f" → op {link.seq:,}"
        target = link.seq if link.seq is not None and 1 <= link.seq <= last else None
        if target is not None:
            self.at = target
        return f"provenance {i + 1}/{len(links)} [{link.kind}]{where}: {safe(link.text)}", target, False
