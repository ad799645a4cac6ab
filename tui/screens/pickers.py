"""Modal pickers: a mark, an object that exists at the cursor, a session of the recording."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static, Tree
from textual.widgets.option_list import Option

from replay_tui.engine.format import Mark, ObjectKey, SessionInfo
from replay_tui.engine.textsafe import safe
from replay_tui.engine.units import fmt_duration, fmt_ts

LABEL = "replay.label"

PICKER_CSS = """
{name} {{
    align: center middle;
    background: $background 50%;
}}
{name} > Vertical {{
    width: 100;
    max-width: 95%;
    height: auto;
    max-height: 85%;
    border: round $accent;
    background: $panel;
    padding: 0 1;
}}
{name} .picker-title {{ text-style: bold; color: $text-accent; }}
{name} .picker-hint {{ color: $text-muted; }}
{name} OptionList {{ height: auto; max-height: 30; }}
{name} Tree {{ height: 30; }}
"""


class PickList(OptionList):
    """An option list that also moves with j and k, as the timeline does."""

    BINDINGS = [Binding("j", "cursor_down", "Down", show=False, id="picker.down"),
                Binding("k", "cursor_up", "Up", show=False, id="picker.up")]


class PickTree(Tree[int]):
    """A tree that also moves with j and k."""

    BINDINGS = [Binding("j", "cursor_down", "Down", show=False, id="picker.tree_down"),
                Binding("k", "cursor_up", "Up", show=False, id="picker.tree_up")]


class MarkPicker(ModalScreen["str | None"]):
    """Pick a mark by name; ``extra`` adds a first option (e.g. 'back to this op's diff')."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]
    DEFAULT_CSS = PICKER_CSS.format(name="MarkPicker")

    def __init__(self, title: str, marks: list[Mark], *, own: set[str], extra: str | None = None,
                 current: str | None = None):
        super().__init__()
        self.title_text = title
        self.marks = marks
        self.own = own
        self.extra = extra
        self.current = current

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        if self.extra:
            options.append(Option(Text.styled(self.extra, "italic"), id="\x00extra"))
        for m in self.marks:
            t = Text()
            t.append(f"{safe(m.name):<16}", "replay.mark")
            t.append(f" op {m.seq:<10,}")
            t.append(" set here" if m.name in self.own else " in the recording", LABEL)
            if m.note:
                t.append(f"  {safe(m.note)}", LABEL)
            options.append(Option(t, id=m.name))
        with Vertical():
            yield Label(Text(self.title_text), classes="picker-title")
            yield PickList(*options)
            yield Static("Enter picks, Esc cancels, j/k or arrows move", classes="picker-hint")

    def on_mount(self) -> None:
        ol = self.query_one(PickList)
        ol.focus()
        if self.current:
            try:
                ol.highlighted = ol.get_option_index(self.current)
            except Exception:
                pass

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


FOLLOW_OP = -1


class ObjectPicker(ModalScreen["int | None"]):
    """Every object that exists at the cursor, as a tree by kind and namespace."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]
    DEFAULT_CSS = PICKER_CSS.format(name="ObjectPicker")

    def __init__(self, seq: int, keys: dict[int, ObjectKey], current: int | None):
        super().__init__()
        self.seq = seq
        self.keys = keys
        self.current = current

    def compose(self) -> ComposeResult:
        tree = PickTree(Text(f"{len(self.keys):,} objects at op {self.seq:,}"))
        tree.root.expand()
        tree.root.add_leaf(Text.styled("⟲ follow the operation at the cursor", "italic"), data=FOLLOW_OP)
        kinds: dict[str, Any] = {}
        spaces: dict[tuple[str, str], Any] = {}
        counts: dict[str, int] = {}
        for key in self.keys.values():
            kind = f"{key.kind}.{key.group}" if key.group else key.kind
            counts[kind] = counts.get(kind, 0) + 1
        select = None
        for obj_id, key in sorted(self.keys.items(), key=lambda kv: kv[1]):
            kind = f"{key.kind}.{key.group}" if key.group else key.kind
            knode = kinds.get(kind)
            if knode is None:
                label = Text.assemble((safe(kind), "replay.heading"), f"  ({counts[kind]})")
                knode = kinds[kind] = tree.root.add(label)
            parent = knode
            if key.namespace:
                snode = spaces.get((kind, key.namespace))
                if snode is None:
                    snode = spaces[(kind, key.namespace)] = knode.add(Text.styled(safe(key.namespace), "replay.object"))
                parent = snode
            leaf = parent.add_leaf(Text(safe(key.name)), data=obj_id)
            if obj_id == self.current:
                select = leaf
        with Vertical():
            yield Label("Show which object? (Enter picks; the state pane stays on it until you pick another)",
                        classes="picker-title")
            yield tree
            yield Static("Enter picks, Esc cancels, j/k or arrows move, space expands", classes="picker-hint")
        self._select = select

    def on_mount(self) -> None:
        tree = self.query_one(PickTree)
        tree.focus()
        node = self._select
        if node is not None:
            parent = node.parent
            while parent is not None:
                parent.expand()
                parent = parent.parent
            self.call_after_refresh(tree.move_cursor, node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[int]) -> None:
        event.stop()
        if event.node.data is not None:
            self.dismiss(event.node.data)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SessionPicker(ModalScreen["int | None"]):
    """The recording holds several sessions: pick one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel"),
                Binding("q", "quit_app", "Quit", id="picker.quit")]
    DEFAULT_CSS = PICKER_CSS.format(name="SessionPicker")

    def __init__(self, path: str, sessions: list[SessionInfo], current: int | None = None):
        super().__init__()
        self.path = path
        self.sessions = sessions
        self.current = current

    def compose(self) -> ComposeResult:
        options = []
        for s in self.sessions:
            t = Text()
            t.append(f"{s.id:>3}  ", LABEL)
            t.append(f"{safe(s.name):<28}", "replay.session")
            t.append(f" {safe(s.source):<10}", "replay.object")
            t.append(f" {s.operations:>12,} ops ")
            t.append(f" {fmt_ts(s.started_ns)[:19] if s.started_ns else '-':<20}", LABEL)
            if s.ended_ns and s.started_ns:
                t.append(f" {fmt_duration(s.ended_ns - s.started_ns):>8}", LABEL)
            if s.live:
                t.append("  ● recording", "replay.bad.strong")
            elif s.interrupted:  # its writer died: it will never be closed (a line of its own)
                last = fmt_ts(s.last_op_ns)[:19] if s.last_op_ns else "-"
                t.append(f"\n       ✕ interrupted: its recorder died; last op {last}", "replay.warn")
            options.append(Option(t, id=str(s.id)))
        with Vertical():
            yield Label(Text(f"{safe(self.path)}: {len(self.sessions)} sessions, pick one"), classes="picker-title")
            yield PickList(*options)
            yield Static("Enter opens, j/k or arrows move, Esc cancels, q quits", classes="picker-hint")

    def on_mount(self) -> None:
        ol = self.query_one(PickList)
        ol.focus()
        if self.current is not None:
            try:
                ol.highlighted = ol.get_option_index(str(self.current))
            except Exception:
                pass

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(event.option.id or 0))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_quit_app(self) -> None:
        self.app.exit()
