"""The timeline's columns: which are shown, and the values of field columns (a retroactive print).

A field column shows one path of each row's object (``.status.phase``,
``.status.conditions[type=Ready].status``) as it was right after that row's op, and marks
the rows where the op changed it.  Values are read for the rows of a page when the timeline
reads that page, in the same worker: one query gives each row's actor, object, its version at
the op and the version before, then only the versions not already cached are read, and only
the field is decoded (``engine.query.FieldValues``: batched, off the event loop, bounded).
Nothing is read for rows that are never on screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replay_tui.engine.diff import MISSING, short_value
from replay_tui.engine.format import OpRow
from replay_tui.engine.query import FieldValues
from replay_tui.engine.store import Session
from replay_tui.engine.textsafe import safe
from replay_tui.engine.watch import same
from replay_tui.tui.control.connections import retrying

MAX_FIELDS = 4


@dataclass(frozen=True)
class ColumnChoice:
    """Which columns the timeline shows (SEQ, VERB and OBJECT always)."""

    time: bool = True
    status: bool = True
    latency: bool = True
    reconcile: bool = True  # the reconcile # and its reconciler (where the width allows)
    actor: bool = False
    fields: tuple[str, ...] = ()

    @property
    def needs_extras(self) -> bool:
        """Rows need more than the timeline's own row (the actor, field values)."""
        return self.actor or bool(self.fields)


OPTIONAL = (("time", "TIME: when the op started (UTC)"), ("status", "STATUS: the HTTP status and reason"),
            ("latency", "LATENCY: how long the request took"),
            ("reconcile", "RECONCILE: its number and reconciler (wide terminals)"),
            ("actor", "ACTOR: who made the request (a user, a service account)"))


@dataclass
class RowExtra:
    """What a row shows beyond ``OpRow``."""

    actor: str = ""
    values: tuple[Any, ...] = ()  # per field column: the value (MISSING: absent; None: no object)
    changed: tuple[bool, ...] = ()  # per field column: this op changed it


@dataclass
class Extras:
    """Extras of the rows read so far, per column choice."""

    session: Session
    choice: ColumnChoice = field(default_factory=ColumnChoice)
    rows: dict[int, RowExtra] = field(default_factory=dict)
    values: FieldValues | None = None

    def choose(self, choice: ColumnChoice) -> None:
        if choice.fields != self.choice.fields:
            self.values = FieldValues(self.session, set(choice.fields)) if choice.fields else None
        self.choice = choice
        self.rows.clear()

    async def load(self, rows: list[OpRow]) -> None:
        """The extras of these rows (those not read yet)."""
        choice = self.choice
        seqs = [r.seq for r in rows if r.seq not in self.rows]
        if not choice.needs_extras or not seqs:
            return
        ses = self.session
        version = ("(SELECT st.{col} FROM states st INDEXED BY states_object WHERE st.session_id = o.session_id"
                   " AND st.obj_id = o.obj_id AND st.seq {op} o.seq ORDER BY st.seq DESC LIMIT 1)")
        fetched: list[tuple[Any, ...]] = []
        for i in range(0, len(seqs), 500):
            part = seqs[i:i + 500]
            fetched += await retrying(lambda part=part: ses.rec.fetchall(  # type: ignore[misc]
                f"SELECT o.seq, o.actor, o.obj_id, {version.format(col='seq', op='<=')},"
                f" {version.format(col='blob_id', op='<=')}, {version.format(col='blob_id', op='<')}"
                f" FROM operations o WHERE o.session_id = ? AND o.seq IN ({','.join('?' * len(part))})",
                (ses.id, *part)))
        values = self.values
        if values is not None:
            await retrying(lambda: values.load({b for r in fetched for b in (r[4], r[5]) if b is not None}))
        for seq, actor, obj_id, vseq, blob, before in fetched:
            extra = RowExtra(actor=actor or "")
            if values is not None:
                now = tuple(None if obj_id is None or vseq is None else values.get(p, blob) for p in choice.fields)
                extra.values = now
                extra.changed = tuple(vseq == seq and not same(values.get(p, before), v)
                                      for p, v in zip(choice.fields, now))
            self.rows[seq] = extra
        if choice is not self.choice:  # the choice changed meanwhile: these belong to the old one
            self.rows.clear()


def shown(value: Any) -> str:
    """A field's value as a cell shows it (escaped: it comes from the recording)."""
    if value is None:
        return ""
    if value is MISSING:
        return "∅"
    if isinstance(value, str):
        return safe(value)
    return short_value(value, 60)


CELLS = 24  # the position bar's picture of a field over the session
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass
class Trend:
    """A field of the cursor's object over the whole session, for the position bar."""

    label: str  # path=value at the cursor
    strip: str  # one cell per 1/CELLS of the session: a value's height, or │ where it changed
    cursor: int  # the cell the cursor is in
    changes: int


def trend(index: Any, last: int, cursor: int, cells: int = CELLS) -> Trend:
    """``index``: the field's ``engine.watch.ChangeIndex``; bisections only, no query."""
    import bisect

    seqs = index.seqs
    ends = [max(1, (c + 1) * last // cells) for c in range(cells)]
    starts = [0, *ends[:-1]]
    values = [index.value_at(e) for e in ends]
    numbers = [v for v in values if v is not MISSING]
    numeric = bool(numbers) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
    if numeric:
        lo, hi = min(numbers), max(numbers)
        strip = "".join(" " if v is MISSING else SPARKS[0 if hi == lo else round((v - lo) * 7 / (hi - lo))]
                        for v in values)
    else:
        strip = "".join("│" if bisect.bisect_right(seqs, e) > bisect.bisect_right(seqs, s) else "·"
                        for s, e in zip(starts, ends))
    cell = min(max((cursor - 1) * cells // max(last, 1), 0), cells - 1)
    value = shown(index.value_at(cursor))
    if len(value) > 24:  # the end of a long value tells versions apart (times, counters)
        value = value[:8] + "…" + value[-15:]
    return Trend(f"{index.path}={value}", strip, cell, len(seqs))
