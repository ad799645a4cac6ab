"""The cursor, and every way the debugger moves it.

The position is the engine's :class:`~replay_tui.engine.cursor.Cursor` (the seq of the op
the panes show).  Moves come in two kinds:

* *in time* (step, first, last, a jump): the cursor goes to that op, shown or hidden by
  the filter (a hidden op gets a ghost row, see ``source``);
* *by row* (↓/↑, PgDn/PgUp, g/G, a click): from row to row of the timeline as drawn, so
  under a filter from match to match.

Searches that need the database (next error, next reconcile, a typed jump) run on a copy
of the cursor in a worker and return where to go: the cursor itself only ever moves on
the UI thread, and nothing but a key, a click or following moves it (a filter's scan never
does).
"""

from __future__ import annotations

from functools import partial

from replay_tui.engine import query
from replay_tui.engine.cursor import Cursor, resolve_position
from replay_tui.engine.filters import Filter, FilterError, both, parse
from replay_tui.engine.format import Reconcile
from replay_tui.engine.store import Session
from replay_tui.tui.control.connections import retrying
from replay_tui.tui.control.errors import ExpectedErrors
from replay_tui.tui.control.source import TimelineSource

ERRORS = parse("error")


def filter_problem(text: str) -> tuple[str, int] | None:
    """For the filter prompt: what is wrong with an expression (message, 1-based column), or None."""
    try:
        parse(text)
    except FilterError as exc:
        return exc.short, exc.column
    return None


class Navigator:
    """Where the cursor is, over the rows the timeline draws."""

    def __init__(self, session: Session):
        self.session = session
        self.source = TimelineSource(session)
        self.cursor = Cursor(session, 0)

    @property
    def seq(self) -> int:
        return self.cursor.seq

    @property
    def last(self) -> int:
        return self.session.last

    # --- moves in time -------------------------------------------------------------

    def goto(self, seq: int) -> int:
        """Put the cursor on op ``seq`` (clamped to the session); returns where it landed."""
        self.cursor.seq = seq
        self.cursor.step(0)  # the engine's clamp: 1..last, or 0 when there is no op
        self.source.place_cursor(self.cursor.seq)
        return self.cursor.seq

    def step(self, n: int) -> int:
        return self.goto(self.seq + n)

    # --- moves by row -----------------------------------------------------------------

    def row(self) -> int:
        """The cursor's row (its own, or its ghost)."""
        return self.source.index_of(self.seq)[0]

    def move(self, n: int) -> int:
        """``n`` rows down (up when negative), clamped to the rows there are."""
        src = self.source
        if src.count == 0:
            return self.seq
        target = max(0, min(self.row() + n, src.count - 1))
        return self.goto(src.seq_at(target))

    def first_row(self) -> int:
        return self.goto(self.source.seq_at(0)) if self.source.count else self.seq

    def last_row(self) -> int:
        src = self.source
        if not src.count:
            return self.seq
        if src.filtered:  # the last match, not the cursor's own ghost row after it
            return self.goto(int(src.matches[-1])) if src.matches else self.seq
        return self.goto(src.seq_at(src.count - 1))

    def at_last_row(self, last: int) -> bool:
        """Following keeps the cursor on the newest row when it is there (``last``: the session's
        end as the screen last showed it; the session itself may have grown since)."""
        src = self.source
        if src.filtered:
            return not src.matches or self.seq >= src.matches[-1]
        return self.seq >= last

    # --- searches (run in workers; return a target, never move the cursor) ------------------

    def _probe(self, start: int) -> Cursor:
        return Cursor(self.session, start)

    async def find_error(self, start: int, forward: bool, among: Filter | None = None,
                         expected: ExpectedErrors | None = None) -> int | None:
        """The next (previous) error after (before) ``start``: among the ops ``among`` keeps (the
        timeline's filter, an object's own timeline) when given, and not one ``expected`` calls expected."""
        errors = both(among, ERRORS) if among is not None else None
        async def after(at: int) -> int | None:
            if errors is None:
                return await self._probe(at).next_error(forward)
            return await query.find(self.session, at, errors, forward)

        seq: int | None = start
        while seq is not None:
            seq = await retrying(partial(after, seq))
            if seq is None or expected is None or not await expected.is_expected(seq):
                return seq
        return None

    async def find_reconcile(self, start: int, forward: bool) -> Reconcile | None:
        return await retrying(lambda: self._probe(start).next_reconcile(forward))

    async def resolve(self, text: str) -> int:
        """The op a typed position names (seq, %, time, offset, a recorded mark)."""
        return await retrying(lambda: resolve_position(self.session, text))
