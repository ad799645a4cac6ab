"""What the panes show at the cursor, read from the engine in one call (run in a worker).

A diff between two points (``d``: a mark and the cursor; ``D``: any two of marks, ops and the
cursor) always reads from the earlier position to the later one, whichever end is which: the
object's fields and the whole state in the same direction, said once in the pane's header.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from replay_tui.engine import diff as diffmod
from replay_tui.engine import state as statemod
from replay_tui.engine.diff import Change
from replay_tui.engine.format import ObjectKey, Operation, Reconcile
from replay_tui.engine.store import Session
from replay_tui.tui.control.connections import retrying


@dataclass(frozen=True)
class End:
    """One end of a diff between two points: the cursor, a mark (it follows the mark if it moves), or an op."""

    kind: str  # cursor | mark | seq
    name: str = ""  # the mark's
    seq: int = 0  # a fixed op's

    def at(self, cursor: int, marks: Any) -> int | None:
        """The op this end stands for now (None: a mark that no longer exists)."""
        if self.kind == "cursor":
            return cursor
        if self.kind == "mark":
            mark = marks.get(self.name) if marks is not None else None
            return mark.seq if mark is not None else None
        return self.seq

    @property
    def label(self) -> str:
        return "the cursor" if self.kind == "cursor" else f"mark '{self.name}'" if self.kind == "mark" \
            else f"op {self.seq:,}"


CURSOR = End("cursor")


def ends_after_marks_changed(ends: tuple[End, End], marks: Any,
                             renamed: tuple[str, str] | None = None) -> tuple[End, End] | None:
    """The ends once marks changed: a renamed mark is followed under its new name; a diff against a
    mark that no longer exists ends (None: each op's own diff again), so the bar never names it."""
    out = []
    for end in ends:
        if end.kind == "mark" and renamed is not None and end.name == renamed[0]:
            end = End("mark", renamed[1])
        if end.at(0, marks) is None:
            return None
        out.append(end)
    return out[0], out[1]


def diff_ends(ends: tuple[End, End], cursor: int, marks: Any) -> tuple[int, str, int, str] | None:
    """(earlier op, its name, later op, its name): a diff always reads from the earlier point to the later."""
    a, b = ends[0].at(cursor, marks), ends[1].at(cursor, marks)
    if a is None or b is None:
        return None
    first, second = (ends[0], ends[1]) if a <= b else (ends[1], ends[0])
    return min(a, b), first.label, max(a, b), second.label


@dataclass
class RangeDiff:
    """The object between two points, earlier → later."""

    earlier: int
    earlier_name: str
    later: int
    later_name: str
    changes: list[Change] | None = None  # None: no object at the cursor to diff
    old: Any = None  # the object at each end (None: it did not exist there)
    new: Any = None


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
    range_diff: RangeDiff | None = None
    #: The panes' lines for it, made once: (pane, folded) -> lines (a step onto a Detail read ahead
    #: finds its lines made too, while the screen was idle).
    lines: dict[tuple[str, bool], Any] = field(default_factory=dict, compare=False, repr=False)

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
    changed: list[tuple[str, list[Change]]]  # each object, with its field changes


async def compute_detail(ses: Session, seq: int, pinned: int | None, ends: tuple[int, str, int, str] | None,
                         spans: dict[int, Reconcile] | None = None) -> Detail:
    """What the panes show at ``seq``; ``ends``: a diff between two points (``diff_ends``) to compute too."""
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
        if ends is not None:
            earlier, earlier_name, later, later_name = ends
            rd = d.range_diff = RangeDiff(earlier, earlier_name, later, later_name)
            if obj_id is not None and earlier >= 0 and later <= ses.last:
                rd.old = await statemod.object_at(ses, obj_id, earlier)
                rd.new = await statemod.object_at(ses, obj_id, later)
                rd.changes = diffmod.diff(diffmod.MISSING if rd.old is None else rd.old,
                                          diffmod.MISSING if rd.new is None else rd.new)
        if op.reconcile is not None:
            known = spans.get(op.reconcile) if spans is not None else None
            d.span = known if known is not None and known.end_seq is not None else await ses.reconcile(op.reconcile)
        return d

    return await retrying(go)


#: What a Detail depends on: the op, the pinned object, the diff's two ends, and how far the session
#: reached (a followed session's growth can close an open reconcile the op belongs to).
DetailKey = tuple[int, int | None, tuple[int, str, int, str] | None, int]


class DetailCache:
    """The Details read lately, and those read ahead for the cursor's neighbours.

    A step onto one paints the panes at once, in the same frame as the timeline, with no
    read: a read's few queries cost ~0.5 ms of work but 5-30 ms of waiting on the connection's
    thread while the screen paints beside a busy core.
    """

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[DetailKey, Detail] = OrderedDict()

    def get(self, key: DetailKey) -> Detail | None:
        d = self._items.get(key)
        if d is not None:
            self._items.move_to_end(key)
        return d

    def put(self, key: DetailKey, d: Detail) -> None:
        self._items[key] = d
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, key: DetailKey) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()


async def compute_state_diff(ses: Session, a: int, b: int) -> StateDiff:
    """The whole state between positions a < b, objects named (for the Diff tab)."""
    async def go() -> StateDiff:
        sd = await diffmod.state_diff(ses, a, b)
        keys = await ses.object_keys([*sd.added, *sd.removed, *sd.changed])
        return StateDiff(a, b, sorted(str(keys[i]) for i in sd.added if i in keys),
                         sorted(str(keys[i]) for i in sd.removed if i in keys),
                         sorted(((str(keys[i]), c) for i, c in sd.changed.items() if i in keys),
                                key=lambda kc: kc[0]))

    return await retrying(go)


async def objects_at(ses: Session, seq: int) -> dict[int, ObjectKey]:
    """Every object that exists at ``seq`` (for the object picker)."""
    async def go() -> dict[int, ObjectKey]:
        snap = await statemod.snapshot(ses, seq)
        return await snap.keys()

    return await retrying(go)
