"""The timeline's data: which op sits on each row, and the rows themselves, read a page at a time.

Unfiltered, row ``i`` is op ``i + 1``.  With a filter, the rows are the matching seqs,
found by a scan that runs window by window in a worker and grows the list as it goes (an
``array`` of int64: 8 bytes a match, never the ops themselves).  When the cursor sits on
an op the filter hides, that op gets a row of its own among the matches, where it belongs
in time (the *ghost* row), so the highlighted row is always the cursor's op.

Pages are numbered over the *base* rows (matches, or every op), so the ghost row coming
and going never invalidates a page already read.

The scan starts at the window around the cursor, goes on to the session's end, then reaches
back to its start a window at a time: the rows a user looks at first (the cursor's neighbours)
are there after one window, not after a scan of everything before them.  Matches found back
there are put before the known ones (``add_matches`` says how many: the rows below moved by
that much).  Pages are numbered from where the scan began (``page_of``), so rows put before
never renumber a page already read: the rows on screen stay drawn while the scan reaches back.
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
GHOST_PAGE = -(1 << 62)  # the page of the ghost row (page numbers of rows put before the scan's start are < 0)


class TimelineSource:
    """Maps row indexes to seqs (through a filter when one is set) and reads pages of rows."""

    def __init__(self, session: Session):
        self.session = session
        self.filter: Filter | None = None  # what the rows are: the scope and the user's filter together
        self.user_filter: Filter | None = None  # what the user typed (/)
        self.scope: Filter | None = None  # one object's ops (its own timeline), or None
        self.matches: array[int] = array("q")
        self.scanned_from = 0  # filtered: matches are known for the seqs in (scanned_from, scanned_to]
        self.scanned_to = 0
        self._started = False  # a window of the scan has arrived (it says where the known seqs start)
        self.generation = 0  # bumped whenever the base rows change meaning (a new filter)
        self.prepended = 0  # matches put before those the scan found first (the start of page 0)
        self.spans: dict[int, Reconcile] = {}
        self.ghost: int | None = None  # the cursor's op when the filter hides it
        self.extras = Extras(session)  # actors and field values of the rows read (when columns ask for them)

    # --- geometry ---------------------------------------------------------------

    @property
    def filtered(self) -> bool:
        return self.filter is not None

    @property
    def scanning(self) -> bool:
        return self.filter is not None and (self.scanned_from > 0 or self.scanned_to < self.session.last)

    def page_of(self, base: int) -> tuple[int, int]:
        """(page, index in it) of a base row: pages count from the scan's first match, so matches
        put before it later take pages below 0 and never renumber one already read."""
        return divmod(base - self.prepended, PAGE)

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
        self.scanned_from = self.scanned_to = 0
        self._started = False
        self.prepended = 0
        self.ghost = None
        self.generation += 1

    def add_matches(self, seqs: list[int], lo: int, hi: int) -> int:
        """The matches of the scanned window (lo, hi]; returns how many were put before the
        known ones (0 when the window follows them)."""
        before = 0
        if not self._started:
            self._started = True
            self.scanned_from = self.scanned_to = lo
        if hi <= self.scanned_from:  # reaching back: these come first
            found = [s for s in seqs if s <= self.scanned_from]
            if found:
                self.matches = array("q", found) + self.matches
            before = len(found)
            self.prepended += before
            self.scanned_from = min(self.scanned_from, lo)
        else:
            if seqs and self.matches and seqs[0] <= self.matches[-1]:
                seqs = [s for s in seqs if s > self.matches[-1]]
            self.matches.extend(seqs)
            self.scanned_to = max(self.scanned_to, hi)
        if self.ghost is not None and self.in_filter(self.ghost):
            self.ghost = None  # the cursor's op turned out to match: its own row now
        return before

    # --- reads (run in workers) ---------------------------------------------------

    async def fetch_page(self, page: int) -> list[OpRow | None]:
        """The base rows of one page (fewer at the live end of a growing session; None in front
        for rows of a page below 0 that the scan has not reached back to yet)."""
        ses = self.session
        start = page * PAGE + self.prepended
        if self.filter is None:
            rows = await retrying(lambda: ses.rows(start + 1, PAGE))
            await self.extras.load(rows)
        else:
            seqs = list(self.matches[max(start, 0):start + PAGE])
            if not seqs:
                return []
            rows = await self.rows_by_seq(seqs)
        await self._load_spans(rows)
        return [None] * -start + rows if start < 0 else list(rows)

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

    async def scan_windows(self, around: int = 0) -> AsyncIterator[tuple[list[int], int, int]]:
        """(matches, lo, hi) of a window (lo, hi] at a time: a new scan from the window around
        ``around`` (the cursor) to the session's end, then back to its start; a scan under way
        goes on from where it stands.  Stops when the filter changes.  The caller adds them
        (``add_matches``) as they come."""
        flt, generation = self.filter, self.generation
        if flt is None:
            return
        lo = self.scanned_to if self._started else max(0, min(around, self.session.last) - SCAN_WINDOW // 2)
        start = self.scanned_from if self._started else lo
        while generation == self.generation and lo < self.session.last:
            hi = min(lo + SCAN_WINDOW, self.session.last)
            seqs = await self.scan(flt, lo, hi)
            if generation != self.generation:
                return
            yield seqs, lo, hi
            lo = hi
        hi = start
        while generation == self.generation and hi > 0:
            lo = max(0, hi - SCAN_WINDOW)
            seqs = await self.scan(flt, lo, hi)
            if generation != self.generation:
                return
            yield seqs, lo, hi
            hi = lo
