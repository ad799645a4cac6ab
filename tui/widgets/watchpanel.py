"""The Watches tab: each watched field, its value at the cursor and the op that last changed it.

The values come from the engine's change indexes (bisections in memory), so the
panel is refilled synchronously on every cursor move without touching the database.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from replay_tui.engine.diff import short_value
from replay_tui.engine.textsafe import safe
from replay_tui.tui.messages import JumpTo, RemoveWatch
from replay_tui.tui.widgets.pane import ListPane

LABEL = "replay.label"
HINT = "w watches a field of the object in the state pane · c / C continue to its next / previous change"


def render_watch(index: Any, value: Any, change: Any, seq: int) -> Text:
    """One row: the field, its value at ``seq``, and when (and by what) it last changed."""
    t = Text()
    t.append(safe(index.label), "replay.object")
    t.append(" = ")
    t.append(short_value(value, 60), "replay.good")
    if change is None:
        t.append(f"  never set by op {seq:,}", LABEL)
    else:
        here = change.seq == seq
        t.append(f"  {'changed HERE' if here else 'last changed at op'} ", "replay.mark" if here else LABEL)
        if not here:
            t.append(f"{change.seq:,}", "replay.warn")
        by = f" by {safe(change.actor)}" if change.actor else ""
        t.append(f" ({change.verb}{by}; was {short_value(change.old, 30)})", LABEL)
    t.append(f"  {len(index):,} change{'s' if len(index) != 1 else ''}", LABEL)
    return t


class WatchPanel(ListPane):
    """Watched fields; Enter jumps to the highlighted one's last change, x (or Delete) removes it."""

    BINDINGS = [Binding("x,delete", "remove", "Remove watch", key_display="x", id="watches.remove")]

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.rows: dict[str, tuple[Any, int | None]] = {}  # option id -> (index, op to jump to)
        self._shown: tuple[list[tuple[Any, Any, Any]], int] = ([], 0)

    def show_watches(self, values: list[tuple[Any, Any, Any]], seq: int) -> None:
        """``values``: WatchSet.values_at(seq)."""
        self._shown = (values, seq)
        highlighted = self.highlighted
        self.clear_options()
        self.rows = {}
        if not values:
            self.add_option(Option(Text.styled("no watched fields", LABEL), disabled=True))
            self.add_option(Option(Text.styled(HINT, LABEL), disabled=True))
            return
        self.add_option(Option(Text.styled(f"WATCHED FIELDS AT OP {seq:,}  ({len(values)})", "replay.heading"),
                               disabled=True))
        for n, (index, value, change) in enumerate(values):
            oid = f"watch-{n}"
            self.rows[oid] = (index, change.seq if change is not None else None)
            self.add_option(Option(render_watch(index, value, change, seq), id=oid))
        self.add_option(Option(Text(""), disabled=True))
        self.add_option(Option(Text.styled("Enter: go to its last change · x: stop watching · "
                                           + HINT.split(" · ")[1], LABEL), disabled=True))
        if highlighted is not None and highlighted < self.option_count:
            self.highlighted = highlighted

    def palette_changed(self) -> None:
        self.show_watches(*self._shown)

    def selected_watch(self) -> Any:
        """The highlighted watch's change index (None when no watch row is highlighted)."""
        if self.highlighted is None:
            return None
        row = self.rows.get(self.get_option_at_index(self.highlighted).id or "")
        return row[0] if row is not None else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        row = self.rows.get(event.option.id or "")
        if row is not None and row[1] is not None:
            self.post_message(JumpTo(row[1]))

    def action_remove(self) -> None:
        index = self.selected_watch()
        if index is not None:
            self.post_message(RemoveWatch(index.obj_id, index.path))
