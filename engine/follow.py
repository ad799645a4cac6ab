"""Live follow: pick up operations another process appends, without reopening.

The writer commits a batch at a time in WAL mode; a read-only connection sees
each commit on its next query.  Polling the tail is one index lookup
(``MAX(seq)`` on the (session_id, seq) index), so polling every 100 ms costs
nothing measurable and keeps new ops visible within the 250 ms budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from replay_tui.engine.store import Session

POLL_S = 0.1


async def follow(session: Session, *, interval: float = POLL_S,
                 stop_when_ended: bool = True) -> AsyncIterator[int]:
    """Yield the new last seq each time the session grows.

    Ends when the recorder closed the session and every op has been seen
    (unless ``stop_when_ended`` is False); cancel the iterating task to stop
    earlier.
    """
    seen = session.last
    while True:
        last = await session.refresh()
        if last > seen:
            seen = last
            yield last
        elif stop_when_ended and session.info.ended_ns is not None:
            return
        await asyncio.sleep(interval)
