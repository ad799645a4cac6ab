"""The diff pane: this op's before and after, or the object (and the whole state) since a mark."""

from __future__ import annotations

from rich.text import Text

from replay_tui.engine.diff import Change
from replay_tui.tui.messages import Detail, StateDiffReady
from replay_tui.tui.widgets.pane import Pane
from replay_tui.tui.widgets.statepane import short_value

LABEL = "#8a96a3"
MAX_OBJECTS = 200


def change_lines(changes: list[Change], indent: str = "") -> Text:
    t = Text()
    for c in changes:
        path = c.path or "."
        if c.kind == "added":
            t.append(f"{indent}+ {path}: ", "bold #a3be8c")
            t.append(short_value(c.new, 160) + "\n", "#a3be8c")
        elif c.kind == "removed":
            t.append(f"{indent}- {path}: ", "bold #bf616a")
            t.append(short_value(c.old, 160) + "\n", "#bf616a")
        else:
            t.append(f"{indent}~ {path}: ", "bold #ebcb8b")
            t.append(short_value(c.old, 80), "#bf616a")
            t.append(" → ", LABEL)
            t.append(short_value(c.new, 80) + "\n", "#a3be8c")
    return t


def render_diff(d: Detail, state: StateDiffReady | None) -> Text:
    t = Text()
    if d.mark is not None:
        t.append(f"from mark '{d.mark.name}' (op {d.mark.seq}) to the cursor (op {d.seq})", "bold #b48ead")
        t.append("   d: another mark or back to this op\n\n", LABEL)
        if d.key is None:
            t.append("this op addresses no single object; o picks one\n", LABEL)
        else:
            t.append(str(d.key), "bold #88c0d0")
            changes = d.mark_changes or []
            t.append(f"  {len(changes)} field{'s' if len(changes) != 1 else ''} differ\n", LABEL)
            t.append_text(change_lines(changes, "  ") if changes else Text("  (no changes)\n", LABEL))
        t.append("\n")
        if state is None or (state.a, state.b) != (min(d.mark.seq, d.seq), max(d.mark.seq, d.seq)):
            t.append("whole state: computing...\n", LABEL)
        else:
            t.append(f"whole state, op {state.a} → op {state.b}: ", "bold")
            t.append(f"{len(state.added)} created", "#a3be8c")
            t.append(", ")
            t.append(f"{len(state.removed)} deleted", "#bf616a")
            t.append(", ")
            t.append(f"{len(state.changed)} changed\n", "#ebcb8b")
            shown = 0
            for key in state.added:
                if shown >= MAX_OBJECTS:
                    break
                t.append(f"  + {key}\n", "#a3be8c")
                shown += 1
            for key in state.removed:
                if shown >= MAX_OBJECTS:
                    break
                t.append(f"  - {key}\n", "#bf616a")
                shown += 1
            for key, n in state.changed:
                if shown >= MAX_OBJECTS:
                    break
                t.append(f"  ~ {key}", "#ebcb8b")
                t.append(f"  ({n} field{'s' if n != 1 else ''})\n", LABEL)
                shown += 1
            total = len(state.added) + len(state.removed) + len(state.changed)
            if total > shown:
                t.append(f"  ... {total - shown} more\n", LABEL)
        return t
    if d.key is None:
        t.append(f"op {d.seq} addresses no single object: nothing to diff", LABEL)
        return t
    t.append(f"op {d.seq}: {d.key}", "bold #88c0d0")
    t.append("  before → after\n\n", LABEL)
    if d.version_seq != d.seq:
        t.append("this op did not change the object (a read, or a write that changed nothing)\n", LABEL)
        return t
    if d.before is None:
        t.append("created by this op\n", "#a3be8c")
    elif d.obj is None:
        t.append("deleted by this op\n", "#bf616a")
    if not d.changes:
        t.append("(no field changed, apart from bookkeeping such as resourceVersion)\n", LABEL)
    else:
        t.append_text(change_lines(d.changes))
    t.append("\nm sets a mark, d diffs the object against a mark", LABEL)
    return t


class DiffPane(Pane):
    """What changed: by this op, or since a mark."""

    def show_detail(self, d: Detail, state: StateDiffReady | None) -> None:
        self.set_body(render_diff(d, state), keep_scroll=True)

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
