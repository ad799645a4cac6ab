"""The read-only connections of one recording, and the session open on each.

Interactive reads must never queue behind a whole-session scan, so each kind of work has
a connection of its own:

* ``main``   timeline pages, moves that search (errors, reconciles, jumps), filter scans, follow;
* ``detail`` what the panes show at the cursor (op, object, before/after);
* ``heavy``  whole-state diffs against a mark, the objects for the picker, watches, provenance;
* ``stats``  statistics, analysis and causality cycles;

and the session report opens one more for as long as it is being built.  A followed session
grows on ``main`` (the follow loop reads its tail); :meth:`SessionSet.grew` brings the others
to the same end, in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from replay_tui.engine.format import Mark, SessionInfo
from replay_tui.engine.store import Interrupted, Recording, Session

T = TypeVar("T")


async def retrying(fn: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run a read again when a cancelled neighbour's interrupt stopped it.

    Cancelling a worker interrupts whatever query its connection is running, which may
    be the next worker's query; that read is simply run again.
    """
    for attempt in range(attempts):
        try:
            return await fn()
        except Interrupted:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0)
    raise AssertionError("unreachable")


@dataclass
class SessionSet:
    """One session, open on every connection; what the screen needs to start showing it."""

    main: Session
    detail: Session
    heavy: Session
    stats: Session
    start_ns: int  # the first op's time (elapsed times count from it)
    marks: list[Mark]

    @property
    def info(self) -> SessionInfo:
        return self.main.info

    @property
    def last(self) -> int:
        return self.main.last

    @property
    def ended(self) -> bool:
        return self.main.info.ended_ns is not None

    def grew(self, last: int) -> None:
        """The followed session reached ``last`` on ``main``: every connection reads that far."""
        for other in (self.detail, self.heavy, self.stats):
            other.last = last
            other.info.operations = last
            other.info.ended_ns = self.main.info.ended_ns


class Connections:
    """Four read-only connections to one recording, opened on first use and kept for every session."""

    def __init__(self, db: str):
        self.db = db
        self._recs: list[Recording] = []

    async def _open(self) -> list[Recording]:
        if not self._recs:
            main = await Recording.open(self.db)
            self._recs = [main]
            for _ in range(3):
                self._recs.append(await main.clone())
        return self._recs

    async def open_session(self, ref: str | int | None) -> SessionSet:
        main_rec, detail_rec, heavy_rec, stats_rec = await self._open()
        main = await main_rec.session(ref)
        await main.refresh()
        first = await main.rows(1, 1)
        start_ns = first[0].ts_ns if first else (main.info.started_ns or 0)
        return SessionSet(main=main, detail=await detail_rec.session(main.id), heavy=await heavy_rec.session(main.id),
                          stats=await stats_rec.session(main.id), start_ns=start_ns, marks=await main.marks())

    async def sessions(self) -> list[SessionInfo]:
        recs = await self._open()
        return await recs[0].sessions()

    async def close(self) -> None:
        recs, self._recs = self._recs, []
        for rec in recs:
            try:
                await rec.close()
            except Exception:
                pass
