"""The position bar: where the cursor is (op N of total, time, elapsed), LIVE when following.

The bar draws a :class:`Position`, a value the debugger screen computes from its reactive
state (cursor, follow, filter, marks): any of them changing repaints the bar, with no
call to remember.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from replay_tui.engine.textsafe import safe
from replay_tui.engine.units import fmt_elapsed, fmt_ts

WIDE = 120  # columns from which the date and the microseconds are shown


@dataclass(frozen=True)
class Position:
    """What the bar shows."""

    session: str = ""
    seq: int = 0
    last: int = 0
    ts_ns: int | None = None
    start_ns: int = 0
    following: bool = False
    ended: bool = True
    filter_text: str = ""
    matches: int = 0
    scanning: bool = False
    in_filter: bool = True
    marks_here: str = ""
    diff_mark: str = ""
    pinned: str = ""


def render_position(p: Position, width: int = 160) -> Text:
    sep = ("  │  " if width >= WIDE else " │ ", "replay.sep")
    t = Text(no_wrap=True, overflow="ellipsis")
    if p.following:
        t.append(" FOLLOW " if p.ended else " ● LIVE ", "replay.following" if p.ended else "replay.live")
        t.append(" ")
    t.append(" op ", "replay.label")
    if p.last == 0:
        t.append("- of 0", "replay.heading")
    else:
        t.append(f"{p.seq:,}", "replay.heading")
        t.append(f" of {p.last:,}", "replay.text")
    if p.ts_ns:
        t.append(*sep)
        stamp = fmt_ts(p.ts_ns, date=width >= WIDE)
        t.append(stamp if width >= WIDE else stamp[:12], "replay.text")
        t.append(" ")
        t.append(fmt_elapsed(p.ts_ns - p.start_ns) if p.start_ns else "", "replay.accent")
    t.append(*sep)
    if width >= WIDE:
        t.append("session ", "replay.label")
    t.append(safe(p.session), "replay.session")
    if p.filter_text:
        t.append(*sep)
        t.append("filter ", "replay.label")
        t.append(p.filter_text, "replay.warn")
        t.append(f" {p.matches:,} match{'es' if p.matches != 1 else ''}" + (" (scanning...)" if p.scanning else ""),
                 "replay.text")
        if not p.in_filter and p.last:
            t.append(" · cursor op not in filter", "replay.ghost")
    if p.marks_here:
        t.append(*sep)
        t.append("◆ " + safe(p.marks_here), "replay.mark")
    if p.diff_mark:
        t.append(*sep)
        t.append("diff vs " + safe(p.diff_mark), "replay.accent")
    if p.pinned:
        t.append(*sep)
        t.append("pinned " + safe(p.pinned), "replay.object")
    return t


class PositionBar(Static):
    """One line at the top of the debugger."""

    DEFAULT_CSS = """
    PositionBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    position: reactive[Position] = reactive(Position, layout=False)

    def __init__(self, **kwargs: object):
        super().__init__("", **kwargs)  # type: ignore[arg-type]

    def watch_position(self, position: Position) -> None:
        self.update(render_position(position, self.size.width or 160), layout=False)

    def on_resize(self) -> None:
        self.watch_position(self.position)

    def palette_changed(self) -> None:
        self.watch_position(self.position)

    @property
    def text(self) -> str:
        """What the bar says, as plain text (for tests)."""
        return render_position(self.position, self.size.width or 160).plain
