"""The diff pane: this op's before and after, or the object (and the whole state) against a mark.

Against a mark, everything reads from the earlier position to the later one, whichever side
the mark is on; the header says which end is the cursor, once.
"""

from __future__ import annotations

from rich.text import Text

from replay_tui.engine.diff import Change, short_value
from replay_tui.engine.textsafe import safe
from replay_tui.tui.control.detail import Detail, StateDiff
from replay_tui.tui.widgets.pane import Pane
from replay_tui.tui.widgets.statepane import first_seen_text

LABEL = "replay.label"
MAX_OBJECTS = 200


def change_lines(changes: list[Change], indent: str = "") -> Text:
    t = Text()
    for c in changes:
        path = safe(c.path) or "."
        if c.kind == "added":
            t.append(f"{indent}+ {path}: ", "replay.sign.added")
            t.append(short_value(c.new, 160) + "\n", "replay.good")
        elif c.kind == "removed":
            t.append(f"{indent}- {path}: ", "replay.sign.removed")
            t.append(short_value(c.old, 160) + "\n", "replay.bad")
        else:
            t.append(f"{indent}~ {path}: ", "replay.sign.changed")
            t.append(short_value(c.old, 80), "replay.bad")
            t.append(" → ", LABEL)
            t.append(short_value(c.new, 80) + "\n", "replay.good")
    return t


def _state_lines(t: Text, state: StateDiff) -> None:
    t.append(f"whole state, op {state.a} → op {state.b}: ", "replay.heading")
    t.append(f"{len(state.added)} created", "replay.good")
    t.append(", ")
    t.append(f"{len(state.removed)} deleted", "replay.bad")
    t.append(", ")
    t.append(f"{len(state.changed)} changed\n", "replay.warn")
    rows = ([("+", key, "replay.good", "") for key in state.added]
            + [("-", key, "replay.bad", "") for key in state.removed]
            + [("~", key, "replay.warn", f"  ({n} field{'s' if n != 1 else ''})") for key, n in state.changed])
    for sign, key, role, extra in rows[:MAX_OBJECTS]:
        t.append(f"  {sign} {safe(key)}", role)
        t.append(extra + "\n", LABEL)
    if len(rows) > MAX_OBJECTS:
        t.append(f"  ... {len(rows) - MAX_OBJECTS} more\n", LABEL)


def render_mark_diff(d: Detail, state: StateDiff | None) -> Text:
    md = d.mark_diff
    assert md is not None
    t = Text()
    t.append(f"op {md.earlier} → op {md.later}", "replay.heading")
    t.append(f"   (from {md.end_name(md.earlier)} to {md.end_name(md.later)}, earlier to later)", "replay.accent")
    t.append("   d: another mark or back to this op\n\n", LABEL)
    if d.key is None or md.changes is None:
        t.append("this op addresses no single object; o picks one\n", LABEL)
    else:
        t.append(safe(str(d.key)), "replay.object")
        changes = md.changes
        appears = len(changes) == 1 and changes[0].path == "" and changes[0].kind == "added"
        gone = len(changes) == 1 and changes[0].path == "" and changes[0].kind == "removed"
        if appears:
            t.append(f"  not there at op {md.earlier}; exists at op {md.later}\n", "replay.good")
        elif gone:
            t.append(f"  exists at op {md.earlier}; gone by op {md.later}\n", "replay.bad")
        else:
            t.append(f"  {len(changes)} field{'s' if len(changes) != 1 else ''} differ\n", LABEL)
            t.append_text(change_lines(changes, "  ") if changes else Text("  (no changes)\n", LABEL))
    t.append("\n")
    if state is None or (state.a, state.b) != (md.earlier, md.later):
        t.append("whole state: computing...\n", LABEL)
    else:
        _state_lines(t, state)
    return t


def render_diff(d: Detail, state: StateDiff | None) -> Text:
    if d.mark_diff is not None:
        return render_mark_diff(d, state)
    t = Text()
    if d.key is None:
        t.append(f"op {d.seq} addresses no single object: nothing to diff", LABEL)
        return t
    t.append(f"op {d.seq}: {safe(str(d.key))}", "replay.object")
    t.append("  before → after\n\n", LABEL)
    if d.version_seq != d.seq:
        t.append("this op did not change the object (a read, or a write that changed nothing)\n", LABEL)
        return t
    if d.first_seen:
        t.append(first_seen_text(d) + "\n", "replay.good")
    elif d.obj is None:
        t.append("deleted by this op\n", "replay.bad")
    if not d.changes:
        t.append("(no field changed, apart from bookkeeping such as resourceVersion)\n", LABEL)
    else:
        t.append_text(change_lines(d.changes))
    t.append("\nm sets a mark, d diffs the object against a mark", LABEL)
    return t


class DiffPane(Pane):
    """What changed: by this op, or between a mark and the cursor."""

    def show_detail(self, d: Detail, state: StateDiff | None) -> None:
        self.set_body(render_diff(d, state), keep_scroll=True)

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
