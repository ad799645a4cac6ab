"""Modal pickers: a mark, an object that exists at the cursor, a session of the recording."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, SelectionList, Static, Tree
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
{name} .picker-error {{ height: auto; }}
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


class SessionPicker(ModalScreen["Any"]):
    """The recording holds several sessions: pick one.

    With ``compare`` (the S key), Enter opens the session and c compares it beside the open one
    (its result is ("open" | "compare", id)); a last row compares with a run of another recording
    ("file"), and, while one is compared, another closes the comparison ("close")."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel"),
                Binding("q", "quit_app", "Quit", id="picker.quit"),
                Binding("c", "compare", "Compare beside", id="picker.compare")]
    DEFAULT_CSS = PICKER_CSS.format(name="SessionPicker")

    def __init__(self, path: str, sessions: list[SessionInfo], current: int | None = None, *,
                 compare: bool = False, comparing: str | None = None, title: str = ""):
        super().__init__()
        self.path = path
        self.sessions = sessions
        self.current = current
        self.compare = compare
        self.comparing = comparing
        self.title_text = title

    def compose(self) -> ComposeResult:
        options = []
        for s in self.sessions:
            t = Text()
            if self.compare:  # the open one (its own column only here: the row stays within the box)
                t.append("▶" if s.id == self.current else " ", "replay.accent")
            t.append(f"{s.id:>3}  " if not self.compare else f"{s.id:>2}  ", LABEL)
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
        if self.compare:
            options.append(Option(Text.styled("  ⇄  compare with a run from another recording file...", "italic"),
                                  id="file"))
            if self.comparing:
                options.append(Option(Text.styled(f"  ✕  close the comparison with {safe(self.comparing)}",
                                                  "italic"), id="close"))
        title = self.title_text or f"{safe(self.path)}: {len(self.sessions)} session" \
            f"{'s' if len(self.sessions) != 1 else ''}, pick one"
        hint = ("Enter opens · c compares it beside the open session (where the runs diverge: ≠, > next) · "
                "j/k or arrows move · Esc cancels") if self.compare else \
            "Enter opens, j/k or arrows move, Esc cancels, q quits"
        with Vertical():
            yield Label(Text(title), classes="picker-title")
            yield PickList(*options)
            yield Static(hint, classes="picker-hint")

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
        oid = event.option.id or "0"
        if not self.compare:
            self.dismiss(int(oid))
        elif oid in ("file", "close"):
            self.dismiss((oid, 0))
        else:
            self.dismiss(("open", int(oid)))

    def action_compare(self) -> None:
        if not self.compare:
            return
        ol = self.query_one(PickList)
        if ol.highlighted is None:
            return
        oid = ol.get_option_at_index(ol.highlighted).id or ""
        if oid.isdigit():
            self.dismiss(("compare", int(oid)))
        elif oid == "file":
            self.dismiss(("file", 0))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_quit_app(self) -> None:
        if self.compare:  # over the debugger, q closes the picker (the debugger's q quits)
            self.dismiss(None)
        else:
            self.app.exit()


class MarksScreen(ModalScreen[None]):
    """Every mark: Enter jumps, r renames, x (or Delete) deletes; marks set here only (the recording's
    are part of it, and reading never modifies a recording)."""

    BINDINGS = [Binding("escape", "close", "Close", id="marks.close"),
                Binding("r", "rename", "Rename", id="marks.rename"),
                Binding("x,delete", "delete", "Delete", key_display="x", id="marks.delete")]
    DEFAULT_CSS = PICKER_CSS.format(name="MarksScreen")

    def __init__(self, store: Any, jump: Any, changed: Any, ask: Any):
        super().__init__()
        self.store = store  # a MarkStore
        self.jump = jump  # jump(name): go to the mark
        self.changed = changed  # changed(renamed=(old, new) or None): the marks changed (the timeline redraws them)
        self.ask = ask  # ask(title, value, done): a name prompt

    def options(self) -> list[Option]:
        out = []
        for m in self.store.all():
            t = Text()
            t.append(f"{safe(m.name):<16}", "replay.mark")
            t.append(f" op {m.seq:<10,}")
            t.append(" set here" if m.name in self.store.own else " in the recording", LABEL)
            if m.note:
                t.append(f"  {safe(m.note)}", LABEL)
            out.append(Option(t, id=m.name))
        if not out:
            out.append(Option(Text.styled("no marks: m sets one at the cursor", LABEL), disabled=True))
        return out

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Marks (◆ on the timeline and its scrollbar)"), classes="picker-title")
            yield PickList(*self.options())
            yield Static("", classes="picker-error")
            yield Static("Enter jumps · r renames · x deletes · Esc closes", classes="picker-hint")

    def on_mount(self) -> None:
        self.query_one(PickList).focus()

    def refill(self, select: str | None = None) -> None:
        ol = self.query_one(PickList)
        keep = ol.highlighted
        ol.clear_options()
        ol.add_options(self.options())
        if select is not None:
            try:
                ol.highlighted = ol.get_option_index(select)
                return
            except Exception:
                pass
        if keep is not None and ol.option_count:
            ol.highlighted = min(keep, ol.option_count - 1)

    def selected(self) -> str | None:
        ol = self.query_one(PickList)
        if ol.highlighted is None:
            return None
        return ol.get_option_at_index(ol.highlighted).id

    def say(self, text: str) -> None:
        self.query_one(".picker-error", Static).update(Text(text, "replay.warn"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.dismiss(None)
            self.jump(event.option.id)

    def action_rename(self) -> None:
        name = self.selected()
        if name is None:
            return
        if name not in self.store.own:
            self.say(f"'{safe(name)}' is in the recording: it cannot be renamed (m sets a mark of your own)")
            return

        def renamed(new: str | None) -> None:
            new = (new or "").strip()
            if not new or new == name:
                return
            mark = self.store.own[name]
            self.store.remove(name)
            problem = self.store.set(new, mark.seq, mark.note)
            self.changed(renamed=(name, new))
            self.refill(select=new)
            self.say(problem or f"'{safe(name)}' is now '{safe(new)}'")

        self.ask(f"Rename mark '{name}' to", name, renamed)

    def action_delete(self) -> None:
        name = self.selected()
        if name is None:
            return
        if name not in self.store.own:
            self.say(f"'{safe(name)}' is in the recording: it cannot be deleted (reading never modifies it)")
            return
        self.store.remove(name)
        self.changed()
        self.refill()
        self.say(f"mark '{safe(name)}' deleted")

    def action_close(self) -> None:
        self.dismiss(None)


class ColumnsScreen(ModalScreen["Any"]):
    """Which optional columns the timeline shows; field columns can be removed here (+ adds one)."""

    BINDINGS = [Binding("escape", "done", "Done", id="columns.done")]
    DEFAULT_CSS = PICKER_CSS.format(name="ColumnsScreen") + """
    ColumnsScreen SelectionList { height: auto; max-height: 20; }
    """

    def __init__(self, choice: Any, optional: list[tuple[str, str]]):
        super().__init__()
        self.choice = choice  # a ColumnChoice
        self.optional = optional

    def compose(self) -> ComposeResult:
        self.labels = [(name, label) for name, label in self.optional]
        self.labels += [(f"field:{path}", f"field {safe(path)}") for path in self.choice.fields]
        on = {name for name, _ in self.optional if getattr(self.choice, name)} | \
            {f"field:{path}" for path in self.choice.fields}
        items: list[Any] = [(self._prompt(label, name in on), name, name in on) for name, label in self.labels]
        with Vertical():
            yield Label(Text("Timeline columns (SEQ, VERB and OBJECT are always shown)"), classes="picker-title")
            yield SelectionList[str](*items)
            yield Static("space or Enter: show / hide · Esc: done · + adds a field column "
                         "(a path of each row's object)", classes="picker-hint")

    @staticmethod
    def _prompt(label: str, shown: bool) -> Text:
        """The state in words too: the check box differs only by colour (the same X under NO_COLOR)."""
        t = Text("shown  " if shown else "hidden ", "bold" if shown else "replay.label")
        t.append(label)
        return t

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        sl = event.selection_list
        picked = set(sl.selected)
        for i, (name, label) in enumerate(self.labels):
            sl.replace_option_prompt_at_index(i, self._prompt(label, name in picked))

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_done(self) -> None:
        picked = set(self.query_one(SelectionList).selected)
        values = {name: name in picked for name, _ in self.optional}
        fields = tuple(p for p in self.choice.fields if f"field:{p}" in picked)
        self.dismiss((values, fields))
