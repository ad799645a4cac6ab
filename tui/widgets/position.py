"""The position bar: where the cursor is (op N of total, time, elapsed), LIVE when following."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from replay_tui.engine.units import fmt_elapsed, fmt_ts


@dataclass
class Position:
    """What the bar shows; the app fills it in and calls ``PositionBar.show``."""

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


class PositionBar(Static):
    """One line at the top of the main screen."""

    DEFAULT_CSS = """
    PositionBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, **kwargs: object):
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.position = Position()

    def show(self, pos: Position) -> None:
        self.position = pos
        self.update(self.render_text(pos), layout=False)

    @staticmethod
    def render_text(p: Position) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        if p.following:
            if p.ended:
                t.append(" FOLLOW ", "bold #2e3440 on #ebcb8b")
            else:
                t.append(" ● LIVE ", "bold #ffffff on #bf3b3b")
            t.append(" ")
        t.append(" op ", "#8a96a3")
        if p.last == 0:
            t.append("- of 0", "bold")
        else:
            t.append(f"{p.seq:,}", "bold #eceff4")
            t.append(f" of {p.last:,}", "#d8dee9")
        if p.ts_ns:
            t.append("  │  ", "#4c566a")
            t.append(fmt_ts(p.ts_ns), "#d8dee9")
            t.append("  ")
            t.append(fmt_elapsed(p.ts_ns - p.start_ns) if p.start_ns else "", "#88c0d0")
        t.append("  │  ", "#4c566a")
        t.append("session ", "#8a96a3")
        t.append(p.session, "bold #a3be8c")
        if p.filter_text:
            t.append("  │  ", "#4c566a")
            t.append("filter ", "#8a96a3")
            t.append(p.filter_text, "bold #ebcb8b")
            t.append(f" {p.matches:,} match{'es' if p.matches != 1 else ''}" + (" (scanning...)" if p.scanning else ""),
                     "#d8dee9")
            if not p.in_filter and p.last:
                t.append(" · cursor op not in filter", "italic #d08770")
        if p.marks_here:
            t.append("  │  ", "#4c566a")
            t.append("◆ " + p.marks_here, "bold #ebcb8b")
        if p.diff_mark:
            t.append("  │  ", "#4c566a")
            t.append("diff vs " + p.diff_mark, "bold #b48ead")
        if p.pinned:
            t.append("  │  ", "#4c566a")
            t.append("pinned " + p.pinned, "bold #88c0d0")
        return t
