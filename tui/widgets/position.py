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
from replay_tui.tui.control.columns import Trend

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
    back_to: int | None = None  # where ctrl+o would land
    forward_to: int | None = None
    scope: str = ""  # the object whose own timeline is shown
    interrupted_ns: int | None = None  # following a session whose writer died: its last op's time
    errors: str = ""  # with expected errors hidden: the count and the rule
    trend: Trend | None = None  # a field column's path at the cursor's object: its value, its changes over the session
    serving: str = ""  # "https://127.0.0.1:PORT", and the kubeconfig to use
    kubeconfig: str = ""
    compare: str = ""  # the run compared beside, and the divergence at the cursor
    search: str = ""  # the search in a pane, and where its match is


def render_position(p: Position, width: int = 160) -> Text:
    """The bar for ``width`` columns; what still does not fit ends in … (Textual would just cut it)."""
    text = _choose(p, width)
    text.truncate(width, overflow="ellipsis")
    return text


def _choose(p: Position, width: int) -> Text:
    if width >= WIDE:
        full = _render(p, wide=True)
        if full.cell_len <= width:
            return full
    # much to say, or a narrow terminal: the compact form (the time of day, no labels), which keeps
    # the served kubeconfig's path while it fits (the notification that started serving has it too)
    compact = _render(p, wide=False)
    if compact.cell_len <= width or not p.kubeconfig:
        return compact
    return _render(p, wide=False, kubeconfig=False)


def _render(p: Position, *, wide: bool, kubeconfig: bool = True) -> Text:
    sep = ("  │  " if wide else " │ ", "replay.sep")
    t = Text(no_wrap=True, overflow="ellipsis")
    if p.following and p.interrupted_ns is not None:  # its writer died: nothing more will come
        t.append(" ✕ INTERRUPTED ", "replay.following")
        t.append(f" recorder died; last op {fmt_ts(p.interrupted_ns, date=wide)[:19 if wide else 8]}",
                 "replay.warn")
        t.append(*sep)
    elif p.following:
        t.append(" FOLLOW " if p.ended else " ● LIVE ", "replay.following" if p.ended else "replay.live")
        t.append(" ")
    if p.serving:
        t.append(" serving ", "replay.live")
        t.append(p.serving, "replay.accent")
        if p.kubeconfig and kubeconfig:
            t.append(f" KUBECONFIG={p.kubeconfig}", "replay.label")
        t.append(*sep)
    t.append(" op ", "replay.label")
    if p.last == 0:
        t.append("- of 0", "replay.heading")
    else:
        t.append(f"{p.seq:,}", "replay.heading")
        t.append(f" of {p.last:,}", "replay.text")
    if p.ts_ns:
        t.append(*sep)
        stamp = fmt_ts(p.ts_ns, date=wide)
        t.append(stamp if wide else stamp[:12], "replay.text")
        t.append(" ")
        t.append(fmt_elapsed(p.ts_ns - p.start_ns) if p.start_ns else "", "replay.accent")
    if p.back_to is not None or p.forward_to is not None:
        t.append(*sep)
        if p.back_to is not None:
            t.append("^o", "replay.accent")
            t.append(f" ← op {p.back_to:,}", "replay.text")
        if p.forward_to is not None:
            t.append("  " if p.back_to is not None else "", "replay.text")
            t.append("^n", "replay.accent")
            t.append(f" → op {p.forward_to:,}", "replay.text")
    t.append(*sep)
    if wide:
        t.append("session ", "replay.label")
    t.append(safe(p.session), "replay.session")
    if p.compare:
        t.append(*sep)
        t.append(safe(p.compare), "replay.bad.strong")
    if p.scope:
        t.append(*sep)
        t.append(safe(p.scope), "replay.object")
        t.append(" (esc: all ops)", "replay.label")
    if p.trend is not None:
        t.append(*sep)
        t.append(safe(p.trend.label) + " ", "replay.accent")
        strip = p.trend.strip
        t.append(strip[:p.trend.cursor], "replay.spark")
        t.append(strip[p.trend.cursor:p.trend.cursor + 1], "replay.spark.cursor")
        t.append(strip[p.trend.cursor + 1:], "replay.spark")
        t.append(f" {p.trend.changes:,} change{'s' if p.trend.changes != 1 else ''}", "replay.label")
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
    if p.errors:
        t.append(*sep)
        t.append(p.errors, "replay.warn")
    if p.search:
        t.append(*sep)
        t.append(p.search, "replay.warn")
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
