"""The timeline's data: which op sits on each row, and the rows themselves, read a page at a time.

Unfiltered, row ``i`` is op ``i + 1``.  With a filter, the rows are the matching seqs,
found by a scan that runs window by window in a worker and grows the list as it goes (an
``array`` of int64: 8 bytes a match, never the ops themselves).  When the cursor sits on
an op the filter hides, that op gets a row of its own among the matches, where it belongs
in time (the *ghost* row), so the highlighted row is always the cursor's op.

Pages are numbered over the *base* rows (matches, or every op), so the ghost row coming
and going never invalidates a page already read.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import AsyncIterator
from functools import partial

from replay_tui.engine import query
from replay_tui.engine.filters import Filter, both
from replay_tui.engine.format import OpRow, Reconcile
from replay_tui.engine.store import OPROW_COLUMNS, Session
from replay_tui.tui.control.columns import Extras
from replay_tui.tui.control.connections import retrying

PAGE = 200
SCAN_WINDOW = 65536


class TimelineSource:
    """Maps row indexes to seqs (through a filter when one is set) and reads pages of rows."""

    def __init__(self, session: Session):
        self.session = session
        self.filter: Filter | None = None  # what the rows are: the scope and the user's filter together
        self.user_filter: Filter | None = None  # what the user typed (/)
        self.scope: Filter | None = None  # one object's ops (its own timeline), or None
        self.matches: array[int] = array("q")
        self.scanned_to = 0  # filtered: the seq up to which matches are known
        self.generation = 0  # bumped whenever the base rows change meaning (a new filter)
        self.spans: dict[int, Reconcile] = {}
        self.ghost: int | None = None  # the cursor's op when the filter hides it
        self.extras = Extras(session)  # actors and field values of the rows read (when columns ask for them)

    # --- geometry ---------------------------------------------------------------

    @property
    def filtered(self) -> bool:
        return self.filter is not None

    @property
    def scanning(self) -> bool:
        return self.filter is not None and self.scanned_to < self.session.last

    @property
    def base_count(self) -> int:
        """Rows without the ghost: the matches, or every op."""
        return len(self.matches) if self.filter is not None else self.session.last

    @property
    def count(self) -> int:
        return self.base_count + (self.ghost is not None)

    @property
    def ghost_index(self) -> int | None:
        return None if self.ghost is None else bisect_left(self.matches, self.ghost)

    def base_of(self, index: int) -> int | None:
        """The base row shown at row ``index`` (None: the ghost row)."""
        g = self.ghost_index
        if g is None or index < g:
            return index
        return None if index == g else index - 1

    def seq_at(self, index: int) -> int:
        base = self.base_of(index)
        if base is None:
            assert self.ghost is not None
            return self.ghost
        return base + 1 if self.filter is None else int(self.matches[base])

    def index_of(self, seq: int) -> tuple[int, bool]:
        """The row showing ``seq`` (exact) or the row where it would be (not exact)."""
        if self.filter is None:
            return max(seq - 1, 0), seq >= 1
        g = self.ghost_index
        if self.ghost == seq and g is not None:
            return g, True
        i = bisect_left(self.matches, seq)
        exact = i < len(self.matches) and self.matches[i] == seq
        if g is not None and i >= g:
            i += 1
        return (min(i, max(self.count - 1, 0)), exact)

    def in_filter(self, seq: int) -> bool:
        if self.filter is None:
            return True
        i = bisect_left(self.matches, seq)
        return i < len(self.matches) and self.matches[i] == seq

    def place_cursor(self, seq: int) -> bool:
        """Give the cursor's op a row when the filter hides it; True when rows moved."""
        ghost = seq if self.filter is not None and seq >= 1 and not self.in_filter(seq) else None
        if ghost == self.ghost:
            return False
        self.ghost = ghost
        return True

    def set_filter(self, flt: Filter | None) -> None:
        """The user's filter (None: none); the rows are the scope's ops that match it."""
        self.user_filter = flt if flt is not None and not flt.empty else None
        self._rows_changed()

    def set_scope(self, scope: Filter | None) -> None:
        """Narrow the rows to one object's ops (None: every op again); the user's filter still applies."""
        self.scope = scope
        self._rows_changed()

    def _rows_changed(self) -> None:
        self.filter = both(self.scope, self.user_filter)
        self.matches = array("q")
        self.scanned_to = 0
        self.ghost = None
        self.generation += 1

    def add_matches(self, seqs: list[int], scanned_to: int) -> None:
        if seqs and self.matches and seqs[0] <= self.matches[-1]:
            seqs = [s for s in seqs if s > self.matches[-1]]
        self.matches.extend(seqs)
        self.scanned_to = max(self.scanned_to, scanned_to)
        if self.ghost is not None and self.in_filter(self.ghost):
            self.ghost = None  # the cursor's op turned out to match: its own row now

    # --- reads (run in workers) ---------------------------------------------------

    async def fetch_page(self, page: int) -> list[OpRow]:
        """The base rows of one page (fewer at the live end of a growing session)."""
        ses = self.session
        start = page * PAGE
        if self.filter is None:
            rows = await retrying(lambda: ses.rows(start + 1, PAGE))
        else:
            seqs = list(self.matches[start:start + PAGE])
            if not seqs:
                return []
            rows = await self.rows_by_seq(seqs)
        await self._load_spans(rows)
        await self.extras.load(rows)
        return rows

    async def rows_by_seq(self, seqs: list[int]) -> list[OpRow]:
        """By seq, not by re-running the filter: a changed= term is decided on bodies, not in SQL."""
        ses = self.session
        rows = [OpRow(*r) for r in await retrying(lambda: ses.rec.fetchall(
            f"SELECT {OPROW_COLUMNS} FROM operations WHERE session_id = ? AND seq IN"
            f" ({','.join('?' * len(seqs))}) ORDER BY seq", (ses.id, *seqs)))]
        await self.extras.load(rows)
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

    async def scan_windows(self) -> AsyncIterator[tuple[list[int], int]]:
        """(matches, scanned up to) a window at a time, from where the scan stands to the session's
        end; stops when the filter changes.  The caller adds them (``add_matches``) as they come."""
        flt, generation = self.filter, self.generation
        lo = self.scanned_to
        while flt is not None and generation == self.generation and lo < self.session.last:
            hi = min(lo + SCAN_WINDOW, self.session.last)
            seqs = await self.scan(flt, lo, hi)
            if generation != self.generation:
                return
            yield seqs, hi
            lo = hi
