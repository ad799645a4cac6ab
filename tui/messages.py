"""Messages the debugger's widgets and streaming workers post, as dataclasses.

One-shot results of workers do not need a message: they arrive through the worker's own
state change (``DebuggerScreen.on_worker_state_changed``).  These are the streams (pages,
filter matches, follow ticks) and what widgets ask of the screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from replay_tui.engine.format import OpRow


@dataclass
class PageLoaded(Message):
    """A page of timeline rows (``GHOST_PAGE``: the ghost row of the cursor's hidden op; None for
    rows before the start of a filter's scan not found yet)."""

    generation: int
    page: int
    rows: list[OpRow | None]


@dataclass
class MatchesFound(Message):
    """The seqs matching the filter in the scanned window (lo, hi]."""

    generation: int
    seqs: list[int]
    lo: int
    hi: int


@dataclass
class FollowTick(Message):
    """The followed session grew or ended; ticks are coalesced, the handler reads the latest state."""


@dataclass
class JumpTo(Message):
    """A panel (analysis, watches) asks to move the cursor to ``seq``."""

    seq: int


@dataclass
class GoToLink(Message):
    """The Why tab asks to move the cursor to link ``index`` of the provenance chain it shows."""

    index: int


@dataclass
class ExtendChain(Message):
    """The Why tab asks for more of a provenance chain cut at its length limit."""


@dataclass
class ShowCycle(Message):
    """The Analysis tab asks to show a causality cycle's rounds (in the Why tab) and go to its first."""

    cycle: dict[str, Any]


@dataclass
class RemoveWatch(Message):
    obj_id: int
    path: str


@dataclass
class PaletteChanged(Message):
    """The theme changed: everything drawn from the palette is drawn again."""
