"""What the panes show at the cursor, read from the engine in one call (run in a worker).

A diff against a mark always reads from the earlier position to the later one, whichever
side the mark is on: the object's fields and the whole state in the same direction, said
once in the pane's header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replay_tui.engine import diff as diffmod
from replay_tui.engine import state as statemod
from replay_tui.engine.diff import Change
from replay_tui.engine.format import Mark, ObjectKey, Operation, Reconcile
from replay_tui.engine.store import Session
from replay_tui.tui.control.connections import retrying


@dataclass
class MarkDiff:
    """The object between a mark and the cursor, earlier → later."""

    mark: Mark
    earlier: int
    later: int
    cursor_first: bool  # the cursor is the earlier end
    changes: list[Change] | None = None  # None: no object at the cursor to diff

    def end_name(self, seq: int) -> str:
        cursor = seq == (self.earlier if self.cursor_first else self.later)
        return "the cursor" if cursor else f"mark '{self.mark.name}'"


@dataclass
class Detail:
    """Everything the panes show for one position."""

    seq: int
    op: Operation
    obj_id: int | None = None
    key: ObjectKey | None = None
    pinned: bool = False
    obj: Any = None
    before: Any = None
    version_seq: int | None = None
    deleted_at: int | None = None
    changes: list[Change] = field(default_factory=list)  # this op's before -> after
    span: Reconcile | None = None
    mark_diff: MarkDiff | None = None

    @property
    def first_seen(self) -> bool:
        """This op is where the object first appears (made it, or is the first to show it)."""
        return self.version_seq == self.seq and self.before is None and self.obj is not None


@dataclass
class StateDiff:
    """Every object that differs between two positions (earlier ``a``, later ``b``), by name."""

    a: int
    b: int
    added: list[str]
    removed: list[str]
    changed: list[tuple[str, int]]


def mark_diff_ends(mark: Mark, seq: int) -> tuple[int, int, bool]:
    """(earlier, later, the cursor is earlier) for a diff between a mark and the cursor."""
    return min(mark.seq, seq), max(mark.seq, seq), seq <= mark.seq


async def compute_detail(ses: Session, seq: int, pinned: int | None, mark: Mark | None,
                         spans: dict[int, Reconcile] | None = None) -> Detail:
    async def go() -> Detail:
        op = await ses.op(seq)
        obj_id = pinned if pinned is not None else await ses.op_object(seq)
        d = Detail(seq=seq, op=op, obj_id=obj_id, pinned=pinned is not None)
        if obj_id is not None:
            d.key = (await ses.object_keys([obj_id])).get(obj_id)
            version = await statemod.version_at(ses, obj_id, seq)
            if version is not None:
                d.version_seq = version.seq
                if version.blob_id is None:
                    d.deleted_at = version.seq
                else:
                    d.obj = await ses.rec.body(version.blob_id)
                if version.seq == seq:
                    d.before = await statemod.object_at(ses, obj_id, seq - 1)
                    if d.before is not None and d.obj is not None:
                        d.changes = diffmod.diff(d.before, d.obj)
        if mark is not None:
            earlier, later, cursor_first = mark_diff_ends(mark, seq)
            d.mark_diff = MarkDiff(mark, earlier, later, cursor_first)
            if obj_id is not None and 1 <= mark.seq <= ses.last:
                d.mark_diff.changes = await diffmod.object_diff(ses, obj_id, earlier, later)
        if op.reconcile is not None:
            known = spans.get(op.reconcile) if spans is not None else None
            d.span = known if known is not None and known.end_seq is not None else await ses.reconcile(op.reconcile)
        return d

    return await retrying(go)


async def compute_state_diff(ses: Session, a: int, b: int) -> StateDiff:
    """The whole state between positions a < b, objects named (for the Diff tab)."""
    async def go() -> StateDiff:
        sd = await diffmod.state_diff(ses, a, b)
        keys = await ses.object_keys([*sd.added, *sd.removed, *sd.changed])
        return StateDiff(a, b, sorted(str(keys[i]) for i in sd.added if i in keys),
                         sorted(str(keys[i]) for i in sd.removed if i in keys),
                         sorted((str(keys[i]), len(c)) for i, c in sd.changed.items() if i in keys))

    return await retrying(go)


async def objects_at(ses: Session, seq: int) -> dict[int, ObjectKey]:
    """Every object that exists at ``seq`` (for the object picker)."""
    async def go() -> dict[int, ObjectKey]:
        snap = await statemod.snapshot(ses, seq)
        return await snap.keys()

    return await retrying(go)
