"""The timeline's data: which op sits on each row, and the rows themselves, read a page at a time.

Unfiltered, row ``i`` is op ``i + 1``.  With a filter, the rows are the matching
seqs, found by a scan that runs window by window in a worker and grows the
list as it goes (an ``array`` of int64: 8 bytes a match, never the ops
themselves).  Rows are read from the recording by page, never all at once.
"""

from __future__ import annotations

import asyncio
from array import array
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from replay_tui.engine import query
from replay_tui.engine.filters import Filter
from replay_tui.engine.format import OpRow, Reconcile
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import OPROW_COLUMNS, Session

PAGE = 200
SCAN_WINDOW = 65536

T = TypeVar("T")


async def retrying(fn: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run a read again when a cancelled neighbour's interrupt hit it.

    Cancelling a worker interrupts whatever query its connection is running;
    that may be the next worker's query.  Such a query is simply run again.
    """
    for attempt in range(attempts):
        try:
            return await fn()
        except RecordingError as exc:
            if "interrupted" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0)
    raise AssertionError("unreachable")


class TimelineSource:
    """Maps row indexes to seqs (through a filter when one is set) and reads pages of rows."""

    def __init__(self, session: Session):
        self.session = session
        self.filter: Filter | None = None
        self.matches: array[int] = array("q")
        self.scanned_to = 0  # filtered: the seq up to which matches are known
        self.generation = 0  # bumped whenever row indexes change meaning
        self.spans: dict[int, Reconcile] = {}

    # --- geometry ---------------------------------------------------------------

    @property
    def filtered(self) -> bool:
        return self.filter is not None

    @property
    def scanning(self) -> bool:
        return self.filter is not None and self.scanned_to < self.session.last

    @property
    def count(self) -> int:
        return len(self.matches) if self.filter is not None else self.session.last

    def seq_at(self, index: int) -> int:
        if self.filter is None:
            return index + 1
        return int(self.matches[index])

    def index_of(self, seq: int) -> tuple[int, bool]:
        """The row showing ``seq`` (exact) or the row where it would be (not exact)."""
        if self.filter is None:
            return max(seq - 1, 0), seq >= 1
        i = bisect_left(self.matches, seq)
        exact = i < len(self.matches) and self.matches[i] == seq
        if not exact and i >= len(self.matches):
            i = max(len(self.matches) - 1, 0)
        return i, exact

    def set_filter(self, flt: Filter | None) -> None:
        self.filter = flt if flt is not None and not flt.empty else None
        self.matches = array("q")
        self.scanned_to = 0
        self.generation += 1

    # --- reads (run in workers) ---------------------------------------------------

    async def fetch_page(self, page: int) -> list[OpRow]:
        """The rows of one page (fewer at the live end of a growing session)."""
        ses = self.session
        start = page * PAGE
        if self.filter is None:
            rows = await retrying(lambda: ses.rows(start + 1, PAGE))
        else:
            seqs = list(self.matches[start:start + PAGE])
            if not seqs:
                return []
            # by seq, not by re-running the filter: a changed= term is decided on bodies, not in SQL
            rows = [OpRow(*r) for r in await retrying(lambda: ses.rec.fetchall(
                f"SELECT {OPROW_COLUMNS} FROM operations WHERE session_id = ? AND seq IN"
                f" ({','.join('?' * len(seqs))}) ORDER BY seq", (ses.id, *seqs)))]
        await self._load_spans(rows)
        return rows

    async def _load_spans(self, rows: list[OpRow]) -> None:
        """Reconcile spans of these rows, in one query (open ones again: they may have ended since).

        A page can touch dozens of spans; one ``Session.reconcile`` each would be
        dozens of round trips before the first paint.
        """
        wanted = sorted({r.reconcile for r in rows if r.reconcile is not None
                         and (r.reconcile not in self.spans or self.spans[r.reconcile].end_seq is None)})
        ses = self.session
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            found = await retrying(partial(
                ses.rec.fetchall,
                "SELECT id, reconciler, kind, namespace, name, start_seq, end_seq, start_ns, end_ns,"
                " trigger_seq, error, inferred, source_id FROM reconciles WHERE session_id = ?"
                f" AND id IN ({','.join('?' * len(part))})", (ses.id, *part)))
            for r in found:
                self.spans[r[0]] = Reconcile(
                    id=r[0], reconciler=r[1], kind=r[2], namespace=r[3], name=r[4], start_seq=r[5],
                    end_seq=r[6], start_ns=r[7], end_ns=r[8], trigger_seq=r[9], error=r[10],
                    inferred=bool(r[11]), source_id=r[12])

    async def scan(self, flt: Filter, after: int, upto: int) -> list[int]:
        """Matching seqs in (after, upto] (exact for changed= terms too)."""
        return await retrying(lambda: query.scan(self.session, flt, after, upto))

    def add_matches(self, seqs: list[int], scanned_to: int) -> None:
        if seqs and self.matches and seqs[0] <= self.matches[-1]:
            seqs = [s for s in seqs if s > self.matches[-1]]
        self.matches.extend(seqs)
        self.scanned_to = max(self.scanned_to, scanned_to)
