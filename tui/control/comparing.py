"""A second run beside the first: ``S`` picks it (this file's sessions or another recording's).

``engine.compare.compare`` lines the two runs up (by object; by reconcile trigger where spans
are exact) and lists where they diverge; each divergence names the op to jump to in each run.
The second run's timeline shows beside the first, both mark the divergences (≠, and on the
scrollbar), ``>`` / ``<`` move both cursors to the next / previous one, and otherwise the
second timeline keeps to the op at the same time since the compared start (a fork is
compared from its fork point).

The comparison reads both runs on connections of its own (closed when it is done); the
second run keeps one connection for its timeline until the comparison is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replay_tui.engine.compare import Comparison, Divergence, compare
from replay_tui.engine.store import Recording, Session
from replay_tui.tui.control.connections import retrying
from replay_tui.tui.control.source import TimelineSource


@dataclass
class Compared:
    """The compared run, its timeline's rows and the divergences, in order."""

    rec: Recording
    session: Session
    source: TimelineSource
    comparison: Comparison
    start_a_ns: int  # the first compared op's time in each run (the alignment's origin)
    start_b_ns: int
    label: str  # "path:session" of run B
    anchors: list[int]  # each divergence's op in run A: its own, else the op at the same time (a request only B made)
    current: int = -1  # the divergence the cursors were last sent to (-1: none)
    at_seq: int = -1  # where run A's cursor was then (moved since: the next > starts from the cursor)

    @property
    def divergences(self) -> list[Divergence]:
        return self.comparison.divergences

    def step(self, cursor: int, forward: bool) -> int | None:
        """The index of the next (previous) divergence from the cursor; None: no more that way."""
        ds = self.divergences
        if not ds:
            return None
        here = self.current
        if 0 <= here < len(ds) and self.at_seq == cursor:
            i = here + (1 if forward else -1)  # walking them in order
        elif forward:
            i = next((n for n, a in enumerate(self.anchors) if a > cursor), len(ds))
        else:
            i = next((n for n in range(len(ds) - 1, -1, -1) if self.anchors[n] < cursor), -1)
        return i if 0 <= i < len(ds) else None

    def a_seqs(self) -> list[int]:
        """Where run A's timeline marks ≠: each divergence's anchor (a request only B made is marked
        at A's op of the same time, so a run that never made it still shows where it diverged)."""
        return sorted(set(self.anchors))

    def b_seqs(self) -> list[int]:
        return sorted({d.seq_b for d in self.divergences if d.seq_b is not None})

    def at(self, seq_a: int) -> tuple[int, Divergence] | None:
        """The divergence anchored at op ``seq_a`` of run A (the first, when several), with its index."""
        return next(((i, d) for i, d in enumerate(self.divergences) if self.anchors[i] == seq_a), None)

    async def aligned(self, ts_a_ns: int) -> int:
        """The op of run B at the same time since the compared start as ``ts_a_ns`` in run A."""
        ses = self.session
        return await retrying(lambda: ses.seq_at_time(self.start_b_ns + (ts_a_ns - self.start_a_ns)))

    async def close(self) -> None:
        try:
            await self.rec.close()
        except Exception:
            pass


async def _first_ns(ses: Session, after: int) -> int:
    rows = await ses.rows(after + 1, 1) if after < ses.last else []
    return rows[0].ts_ns if rows else (await ses.time_range())[0]


async def open_compared(db_a: str, session_a: int, db_b: str, ref_b: str | int | None) -> Compared:
    """Compare run A (this session) with run B and keep B open for its timeline."""
    rec_a = await Recording.open(db_a)
    try:
        a = await rec_a.session(session_a)
        rec_b = await Recording.open(db_b)
        try:
            b = await rec_b.session(ref_b)
            await b.refresh()
            result = await compare(a, b)
            start_a = await _first_ns(a, result.a.after)
            start_b = await _first_ns(b, result.b.after)
            anchors = []
            for d in result.divergences:  # in time order: the anchors are sorted too
                anchors.append(d.seq_a if d.seq_a is not None else
                               await a.seq_at_time(start_a + int(d.offset_s * 1e9)))
        except BaseException:
            await rec_b.close()
            raise
    finally:
        await rec_a.close()
    label = f"{db_b}:{b.info.name}" if db_b != db_a else b.info.name
    return Compared(rec=rec_b, session=b, source=TimelineSource(b), comparison=result, start_a_ns=start_a,
                    start_b_ns=start_b, label=label, anchors=anchors)


def describe(d: Any) -> str:
    """One line for a divergence (the bar and the notification)."""
    return str(d.text) if str(d.text).startswith(str(d.object)) else f"{d.object}: {d.text}"
