"""A scrollable pane of text: the operation, state, diff and statistics panes.

A Line-API ScrollView: the text is split into lines (long ones wrapped to the
pane's width once, when it is set) and only the lines on screen are rendered,
so a 4,000-line object costs the same to show as a 10-line one, and stepping
never re-lays out the screen.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget


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


class Pane(ScrollView, can_focus=True, inherit_bindings=False):
    """Scrolls with up/down/page keys when focused; every other key goes to the app (steps, jumps)."""

    DEFAULT_CSS = """
    Pane {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;
        padding: 0;
    }
    """

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._source: list[Text] = []
        self._lines: list[Text] = []
        self._wrapped_at = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(512)

    def set_body(self, text: Text | str | list[Text], *, keep_scroll: bool = False) -> None:
        """Show text: one Text (split at newlines) or, cheaper, a list of one-line Texts."""
        if isinstance(text, str):
            text = Text(text)
        if isinstance(text, Text):
            self._source = list(text.split("\n", allow_blank=True))
        else:
            self._source = text
        self._wrap()
        if not keep_scroll:
            self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def _width(self) -> int:
        return max(self.scrollable_content_region.width - 1, 20) if self.size.width else 80

    def _wrap(self) -> None:
        width = self._width()
        console = self.app.console
        out: list[Text] = []
        for line in self._source:
            if line.cell_len <= width:
                out.append(line)
            else:
                out.extend(line.wrap(console, width, overflow="fold"))
        self._lines = out
        self._wrapped_at = width
        self._strips.clear()
        set_virtual_size(self, Size(width, len(out)))

    def on_resize(self) -> None:
        if self._source and self._width() != self._wrapped_at:
            self._wrap()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = round(self.scroll_y) + y
        if index >= len(self._lines):
            return Strip.blank(width)
        key = (index, width)
        strip = self._strips.get(key)
        if strip is None:
            line = self._lines[index]
            console = self.app.console
            body = line.render(console)
            if line.style:  # Text.render leaves the base style to its caller
                body = Segment.apply_style(body, console.get_style(line.style, default=None))
            segments = [Segment(" "), *body]  # a 1-cell margin
            pad = None
            if segments and segments[-1].style is not None and segments[-1].style.bgcolor is not None:
                pad = Style(bgcolor=segments[-1].style.bgcolor)  # a lit line is lit to the edge
            strip = Strip(segments).adjust_cell_length(width, pad)
            self._strips[key] = strip
        return strip

    @property
    def body_text(self) -> str:
        """What the pane shows, as plain text (for tests)."""
        return "\n".join(line.plain for line in self._source)

    @property
    def lines(self) -> list[str]:
        return [line.plain for line in self._lines]

