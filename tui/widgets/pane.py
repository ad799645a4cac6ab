"""A scrollable pane of text: the operation, state, diff and statistics panes.

A Line-API ScrollView: the text is split into lines (long ones wrapped to the pane's width
once, when it is set, continuation lines indented under the value they continue) and only
the lines on screen are rendered, so a 4,000-line object costs the same to show as a
10-line one, and stepping never re-lays out the screen.  Styles are palette roles,
resolved when a line is drawn: a new theme only needs the drawn lines forgotten.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import OptionList

#: A line of a pane: a Text, or a Text and the column its wrapped continuation lines start at.
Line = Text | tuple[Text, int]

_VALUE = re.compile(r"^\s*(?:[-~+] )?\s*(?:- )?[^\s:][^:]{0,60}?: ")  # "key: " -> continue under the value


def set_virtual_size(widget: ScrollView, size: Size) -> None:
    """Resize a ScrollView's content without re-laying out the screen.

    ``virtual_size`` is a layout reactive: setting it re-arranges every widget
    (~30 ms here), on every step.  The pane's own box does not change, only its
    scrollbar, so update just that.  Needs ``overflow-y: scroll`` (a scrollbar
    that appears or disappears would change the layout).
    """
    if widget.virtual_size == size:
        return
    widget.set_reactive(Widget.virtual_size, size)
    widget._scroll_update(size)
    widget.refresh()


def hang_of(line: Text) -> int:
    """Where a wrapped line continues: under a ``key: value``'s value, else two past its indent."""
    plain = line.plain
    m = _VALUE.match(plain)
    if m:
        return m.end()
    return len(plain) - len(plain.lstrip(" ")) + 2


def wrap_offsets(plain: str, width: int, hang: int) -> list[int]:
    """Where ``plain`` is cut into rows of at most ``width`` cells, breaking at spaces (folding longer
    words); rows after the first lose ``hang`` cells to their indent.  [] when it fits."""
    if cell_len(plain) <= width:
        return []
    offsets: list[int] = []
    start, room = 0, width
    while cell_len(plain[start:]) > room:
        end = start
        used = 0
        cut = -1
        while end < len(plain) and used + cell_len(plain[end]) <= room:
            used += cell_len(plain[end])
            if plain[end] == " ":
                cut = end + 1
            end += 1
        stop = cut if cut > start else end  # a word longer than the row is folded
        offsets.append(stop)
        start, room = stop, width - hang
    return offsets


def wrap(line: Text, width: int, hang: int) -> list[Text]:
    """``line`` in rows of at most ``width`` cells, breaking at spaces (folding longer words);
    rows after the first start with ``hang`` spaces."""
    hang = hang if hang < width // 2 else 2
    offsets = wrap_offsets(line.plain, width, hang)
    if not offsets:
        return [line]
    rows = list(line.divide(offsets))
    return [rows[0], *(Text(" " * hang) + row for row in rows[1:])]


def find_all(lines: list[str], query: str) -> list[tuple[int, int, int]]:
    """Every match of ``query`` as (line, start, end); case-insensitive unless it has a capital."""
    if not query:
        return []
    fold = query == query.lower()
    needle = query.lower() if fold else query
    out = []
    for i, text in enumerate(lines):
        hay = text.lower() if fold else text
        at = hay.find(needle)
        while at >= 0:
            out.append((i, at, at + len(needle)))
            at = hay.find(needle, at + max(len(needle), 1))
    return out


class Pane(ScrollView, can_focus=True, inherit_bindings=False):
    """Scrolls with up/down/page/home/end keys when focused; every other key goes to the screen."""

    DEFAULT_CSS = """
    Pane {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;
        padding: 0;
    }
    Pane:focus {
        background-tint: $foreground 4%;
    }
    """

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False, id="pane.scroll_up"),
        Binding("down", "scroll_down", "Scroll down", show=False, id="pane.scroll_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="pane.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="pane.page_down"),
        Binding("home", "scroll_home", "Top of the pane", show=False, id="pane.top"),
        Binding("end", "scroll_end", "Bottom of the pane", show=False, id="pane.bottom"),
    ]

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._source: list[Line] = []
        self._lines: list[Text] = []
        self._wrapped_at = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(512)
        self._base: Style | None = None  # the pane's own colours, computed once per theme and focus
        self._origin: list[tuple[int, int, int]] = []  # per row: (source line, its start there, indent added)
        self.search_query = ""  # the search in this pane (ctrl+f), its matches and the current one
        self.matches: list[tuple[int, int, int]] = []
        self.current = -1
        self._lit: dict[int, list[tuple[int, int, bool]]] = {}  # row -> (start, end, current) to highlight

    def set_body(self, text: Text | str | list[Line], *, keep_scroll: bool = False) -> None:
        """Show text: one Text (split at newlines) or, cheaper, a list of one-line Texts."""
        if isinstance(text, str):
            text = Text(text)
        if isinstance(text, Text):
            self._source = list(text.split("\n", allow_blank=True))
        else:
            self._source = text
        self._wrap()
        if self.search_query:
            self._search(keep=True)
        if not keep_scroll:
            self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def _width(self) -> int:
        return max(self.scrollable_content_region.width - 1, 20) if self.size.width else 80

    def _wrap(self) -> None:
        width = self._width()
        out: list[Text] = []
        origin: list[tuple[int, int, int]] = []
        for n, item in enumerate(self._source):
            line, hang = item if isinstance(item, tuple) else (item, -1)
            if line.cell_len <= width:
                out.append(line)
                origin.append((n, 0, 0))
            else:
                hang = hang if hang >= 0 else hang_of(line)
                hang = hang if hang < width // 2 else 2
                starts = [0, *wrap_offsets(line.plain, width, hang)]
                out.extend(wrap(line, width, hang))
                origin.extend((n, start, 0 if i == 0 else hang) for i, start in enumerate(starts))
        self._lines = out
        self._origin = origin
        if self.search_query:
            self._light()
        self._wrapped_at = width
        self._strips.clear()
        set_virtual_size(self, Size(width, len(out)))

    def on_resize(self) -> None:
        if self._source and self._width() != self._wrapped_at:
            self._wrap()

    def palette_changed(self) -> None:
        """The theme changed (or the focus, which tints the background): draw the lines again."""
        self._strips.clear()
        self._base = None
        self.refresh()

    def on_focus(self) -> None:
        self.palette_changed()

    def on_blur(self) -> None:
        self.palette_changed()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = round(self.scroll_y) + y
        if self._base is None:  # the pane's own colours: Textual leaves a Line-API widget's background to it
            self._base = self.rich_style
        base = self._base
        if index >= len(self._lines):
            return Strip.blank(width, base)
        key = (index, width)
        strip = self._strips.get(key)
        if strip is None:
            line = self._lines[index]
            lit = self._lit.get(index)
            if lit:
                line = line.copy()
                for start, end, current in lit:
                    line.stylize("replay.search.current" if current else "replay.search", start, end)
            console = self.app.console
            body = line.render(console)
            if line.style:  # Text.render leaves the base style to its caller
                body = Segment.apply_style(body, console.get_style(line.style, default=None))
            # every segment styled (Textual's NO_COLOR filter cannot take one without a style)
            segments = list(Segment.apply_style([Segment(" "), *body], base))
            last = segments[-1].style
            pad = Style(bgcolor=last.bgcolor) if last is not None and last.bgcolor else base  # a lit line to the edge
            strip = Strip(segments).adjust_cell_length(width, pad)
            self._strips[key] = strip
        return strip

    # --- search (ctrl+f, n / N) ------------------------------------------------------------

    def find(self, query: str) -> int:
        """Highlight every match of ``query`` and scroll to the first; the number of matches."""
        self.search_query = query
        self.current = -1
        self._search(keep=False)
        if self.matches:
            self.current = 0
            self._light()
            self._scroll_to_match()
        self.refresh()
        return len(self.matches)

    def find_next(self, step: int) -> int:
        """Move to the next (``step`` 1) or previous (-1) match, wrapping; its index (-1: none)."""
        if not self.matches:
            return -1
        self.current = (self.current + step) % len(self.matches)
        self._light()
        self._scroll_to_match()
        self.refresh()
        return self.current

    def clear_search(self) -> None:
        self.search_query, self.matches, self.current = "", [], -1
        self._light()
        self.refresh()

    def _search(self, *, keep: bool) -> None:
        plains = [(i[0] if isinstance(i, tuple) else i).plain for i in self._source]
        self.matches = find_all(plains, self.search_query)
        if keep:
            self.current = min(self.current, len(self.matches) - 1) if self.matches else -1
        self._light()

    def _light(self) -> None:
        """Which rows show which matches (a match across a wrapped row's end lights each part)."""
        lit: dict[int, list[tuple[int, int, bool]]] = {}
        if self.matches:
            rows_of: dict[int, list[int]] = {}
            for row, (n, _, _) in enumerate(self._origin):
                rows_of.setdefault(n, []).append(row)
            for m, (n, start, end) in enumerate(self.matches):
                for row in rows_of.get(n, []):
                    _, first, indent = self._origin[row]
                    length = len(self._lines[row].plain) - indent
                    a, b = max(start, first), min(end, first + length)
                    if a < b:
                        lit.setdefault(row, []).append((a - first + indent, b - first + indent, m == self.current))
        self._lit = lit
        self._strips.clear()

    def _scroll_to_match(self) -> None:
        if not 0 <= self.current < len(self.matches):
            return
        n, start, _ = self.matches[self.current]
        row = next((r for r, (src, first, _) in enumerate(self._origin) if src == n and first <= start
                    and (r + 1 >= len(self._origin) or self._origin[r + 1][0] != n or self._origin[r + 1][1] > start)),
                   None)
        if row is None:
            return
        height = self.scrollable_content_region.height or 1
        top = round(self.scroll_y)
        if not top <= row < top + height:
            self.scroll_to(y=max(row - height // 3, 0), animate=False, immediate=True)

    @property
    def match_row(self) -> int | None:
        """The row of the current match (for tests)."""
        return next((r for r, spans in self._lit.items() if any(c for _, _, c in spans)), None)

    @property
    def body_text(self) -> str:
        """What the pane shows, as plain text (for tests)."""
        return "\n".join((item[0] if isinstance(item, tuple) else item).plain for item in self._source)

    @property
    def lines(self) -> list[str]:
        return [line.plain for line in self._lines]


class ListPane(OptionList):
    """A tab's list (findings, watches, provenance links) whose Enter or x acts on the highlighted
    row: focused with nothing highlighted, it highlights the first row that can be chosen, so a key
    never silently does nothing on a list that looks ready."""

    def on_focus(self) -> None:
        if self.highlighted is None:
            self.action_first()
