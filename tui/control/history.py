"""Jump history: where each jump came from, so ``ctrl+o`` goes back and the forward key returns.

Every jump (``:``, ``g``/``G``, ``e``/``E``, ``]``/``[``, Enter in a panel, ``p``, ``c``/``C``,
``'``, a divergence) records the op it left; a step or a move from row to row does not.  It
works as a browser's back and forward: going back puts the position left on the forward
list, and a new jump clears that list.  Bounded (``LIMIT`` entries); a jump to where the
cursor already is records nothing.
"""

from __future__ import annotations

LIMIT = 100


class JumpHistory:
    """Back and forward lists of seqs (most recent last)."""

    def __init__(self) -> None:
        self.back: list[int] = []
        self.forward: list[int] = []

    def jumped(self, origin: int, target: int) -> None:
        """A jump from ``origin`` to ``target`` happened."""
        if origin == target or origin < 1:
            return
        if not self.back or self.back[-1] != origin:
            self.back.append(origin)
            del self.back[:-LIMIT]
        self.forward.clear()

    def go_back(self, current: int) -> int | None:
        """Where ``ctrl+o`` lands (None: no earlier jump); ``current`` goes on the forward list."""
        while self.back and self.back[-1] == current:
            self.back.pop()  # (a jump back to where the cursor already is would do nothing)
        if not self.back:
            return None
        if not self.forward or self.forward[-1] != current:
            self.forward.append(current)
        return self.back.pop()

    def go_forward(self, current: int) -> int | None:
        while self.forward and self.forward[-1] == current:
            self.forward.pop()
        if not self.forward:
            return None
        if not self.back or self.back[-1] != current:
            self.back.append(current)
        return self.forward.pop()

    def peek_back(self, current: int) -> int | None:
        """Where a back-jump would land from ``current`` (for the position bar)."""
        return next((s for s in reversed(self.back) if s != current), None)

    def peek_forward(self, current: int) -> int | None:
        return next((s for s in reversed(self.forward) if s != current), None)

    def clamp(self, last: int) -> None:
        """Another session: positions past its end mean nothing."""
        self.back = [s for s in self.back if s <= last]
        self.forward = [s for s in self.forward if s <= last]
