"""What workers report back to the UI: every database result arrives as one of these messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from replay_tui.engine.diff import Change
from replay_tui.engine.format import Mark, ObjectKey, Operation, OpRow, Reconcile, SessionInfo


class SessionOpened(Message):
    """The session is open on every connection; the screen can fill in."""

    def __init__(self, info: SessionInfo, last: int, start_ns: int, marks: list[Mark]):
        super().__init__()
        self.info = info
        self.last = last
        self.start_ns = start_ns
        self.marks = marks


class Notice(Message):
    """Something the user should read: a bad jump, a locked file, a lost recording."""

    def __init__(self, text: str, severity: str = "error"):
        super().__init__()
        self.text = text
        self.severity = severity


class PageLoaded(Message):
    """A page of timeline rows."""

    def __init__(self, generation: int, page: int, rows: list[OpRow]):
        super().__init__()
        self.generation = generation
        self.page = page
        self.rows = rows


class MatchesFound(Message):
    """More seqs matching the filter, up to ``scanned_to``."""

    def __init__(self, generation: int, seqs: list[int], scanned_to: int, done: bool):
        super().__init__()
        self.generation = generation
        self.seqs = seqs
        self.scanned_to = scanned_to
        self.done = done


class MoveResolved(Message):
    """A move that needed the database (jump, next error, next reconcile) found its op."""

    def __init__(self, seq: int, why: str = ""):
        super().__init__()
        self.seq = seq
        self.why = why


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
    mark: Mark | None = None
    mark_changes: list[Change] | None = None  # the object from the mark to the cursor


class DetailLoaded(Message):
    def __init__(self, detail: Detail):
        super().__init__()
        self.detail = detail


class FollowTick(Message):
    """The followed session grew (or ended)."""

    def __init__(self, last: int, ended: bool):
        super().__init__()
        self.last = last
        self.ended = ended


class StatsReady(Message):
    def __init__(self, data: dict[str, Any], last: int):
        super().__init__()
        self.data = data
        self.last = last


class AnalysisReady(Message):
    def __init__(self, data: dict[str, Any], last: int):
        super().__init__()
        self.data = data
        self.last = last


class StateDiffReady(Message):
    """Every object that differs between a mark and the cursor."""

    def __init__(self, a: int, b: int, added: list[str], removed: list[str],
                 changed: list[tuple[str, int]]):
        super().__init__()
        self.a = a
        self.b = b
        self.added = added
        self.removed = removed
        self.changed = changed


class ObjectsReady(Message):
    """The objects that exist at a position, for the object picker."""

    def __init__(self, seq: int, keys: dict[int, ObjectKey]):
        super().__init__()
        self.seq = seq
        self.keys = keys


class WatchAdded(Message):
    """A field watch is built (its change index is ready); ``index`` is an engine.watch.ChangeIndex."""

    def __init__(self, index: Any, generation: int):
        super().__init__()
        self.index = index
        self.generation = generation


class ProvenanceReady(Message):
    """The provenance chain of the object at ``seq`` (an engine.provenance.Provenance)."""

    def __init__(self, chain: Any, obj_id: int, seq: int):
        super().__init__()
        self.chain = chain
        self.obj_id = obj_id
        self.seq = seq


class CyclesReady(Message):
    """The session's causality cycles (hot loops), as builtins, for the analysis tab."""

    def __init__(self, cycles: list[dict[str, Any]], last: int):
        super().__init__()
        self.cycles = cycles
        self.last = last


class ReportWritten(Message):
    """The session report (R) is written to ``path``, or ``error`` says why not."""

    def __init__(self, path: str, *, size: int = 0, seconds: float = 0.0, error: str = ""):
        super().__init__()
        self.path = path
        self.size = size
        self.seconds = seconds
        self.error = error
