"""The key bar at the bottom: as many keys as the width holds, most used first, help always.

Textual's Footer lists every shown binding and cuts the line at 80 columns; this bar drops
the least used keys instead, keeps "? Help" and "^p Commands" at its end, and a click on a
key runs it.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.events import Click
from textual.widgets import Static

KEY = "replay.accent"
DESCRIPTION = "replay.text"
GAP = "  "

#: (key as shown, what it does, the screen's action)
Key = tuple[str, str, str]


def fit(keys: list[Key], tail: list[Key], width: int) -> list[Key]:
    """The keys that fit in ``width`` cells, in order, with ``tail`` always at the end."""
    def size(items: list[Key]) -> int:
        return sum(cell_len(f" {k} {d}") + len(GAP) for k, d, _ in items)

    room = width - size(tail)
    out: list[Key] = []
    for key in keys:
        if size([*out, key]) > room:
            break
        out.append(key)
    return out + tail


class KeyBar(Static):
    """One line of keys; the screen gives them in priority order."""

    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        background: $panel;
    }
    """

    def __init__(self, keys: list[Key], tail: list[Key], **kwargs: object):
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.keys = keys
        self.tail = tail
        self.spans: list[tuple[int, int, str]] = []  # (from x, to x, action)

    def render_keys(self, width: int) -> Text:
        t = Text(no_wrap=True, overflow="crop")
        self.spans = []
        for key, description, action in fit(self.keys, self.tail, width):
            start = t.cell_len
            t.append(f" {key}", KEY)
            t.append(f" {description}", DESCRIPTION)
            self.spans.append((start, t.cell_len, action))
            t.append(GAP)
        return t

    def on_resize(self) -> None:
        self.update(self.render_keys(self.size.width))

    def palette_changed(self) -> None:
        self.on_resize()

    @property
    def text(self) -> str:
        return self.render_keys(self.size.width or 160).plain

    def on_click(self, event: Click) -> None:
        for start, end, action in self.spans:
            if start <= event.x < end:
                event.stop()
                self.call_later(self.screen.run_action, action)
                return
