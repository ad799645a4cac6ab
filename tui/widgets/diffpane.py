"""The diff pane: this op's before and after, or the object (and the whole state) between two points.

Between two points (``d``: a mark and the cursor; ``D``: any two of marks, ops and the cursor),
everything reads from the earlier point to the later one; the header names each end once.
The object's fields that differ come first, then its YAML side by side (when the pane is at
least ``SIDE_BY_SIDE`` columns wide) or as a unified diff, then the whole state: each object
created, deleted or changed, the changed ones with their field changes.
"""

from __future__ import annotations

import difflib
from typing import Any

from rich.text import Text

from replay_tui.engine.diff import Change, short_value
from replay_tui.engine.textsafe import safe
from replay_tui.tui import yamltext
from replay_tui.tui.control.detail import Detail, StateDiff
from replay_tui.tui.widgets.pane import Line, Pane
from replay_tui.tui.widgets.statepane import NOISE, first_seen_text

LABEL = "replay.label"
MAX_OBJECTS = 200
MAX_FIELDS = 12  # field changes listed under each object of a whole-state diff
SIDE_BY_SIDE = 100  # pane columns from which an object's diff is shown side by side


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
    rows = ([("+", key, "replay.good", None) for key in state.added]
            + [("-", key, "replay.bad", None) for key in state.removed]
            + [("~", key, "replay.warn", changes) for key, changes in state.changed])
    for sign, key, role, changes in rows[:MAX_OBJECTS]:
        t.append(f"  {sign} {safe(key)}", role)
        if changes is None:
            t.append("\n")
            continue
        n = len(changes)
        t.append(f"  ({n} field{'s' if n != 1 else ''})\n", LABEL)
        t.append_text(change_lines(changes[:MAX_FIELDS], "      "))
        if n > MAX_FIELDS:
            t.append(f"      ... {n - MAX_FIELDS} more fields (with this object at the cursor, the object's diff"
                     " above lists them all)\n", LABEL)
    if len(rows) > MAX_OBJECTS:
        t.append(f"  ... {len(rows) - MAX_OBJECTS} more\n", LABEL)


def yaml_plain(obj: Any) -> list[Text]:
    """The object as YAML lines (noise fields hidden, huge values folded) without the change column."""
    if obj is None:
        return []
    lines, _ = yamltext.render_lines(obj, {}, hidden=NOISE, fold=True)
    return [line[2:] for line in lines]


def _fit(line: Text, width: int) -> Text:
    if line.cell_len <= width:
        return line + Text(" " * (width - line.cell_len))
    out = line[: max(width - 1, 0)]
    out.append("…", LABEL)
    return out


def side_by_side(old: list[Text], new: list[Text], width: int, names: tuple[str, str]) -> list[Text]:
    """Two columns, aligned: lines only on the left removed, only on the right added, both: changed."""
    col = max((width - 3) // 2, 10)
    out = [_fit(Text(names[0], "replay.heading"), col) + Text(" │ ", LABEL)
           + _fit(Text(names[1], "replay.heading"), col)]
    matcher = difflib.SequenceMatcher(None, [x.plain for x in old], [x.plain for x in new], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = old[i1:i2], new[j1:j2]
        for k in range(max(len(left), len(right))):
            a = _fit(left[k], col) if k < len(left) else Text(" " * col)
            b = _fit(right[k], col) if k < len(right) else Text(" " * col)
            if tag != "equal":
                if k < len(left):
                    a.stylize("replay.removed.line")
                if k < len(right):
                    b.stylize("replay.added.line")
            sep = Text(" │ " if tag == "equal" else " ┃ ", LABEL if tag == "equal" else "replay.sign.changed")
            out.append(a + sep + b)
    return out


def unified(old: list[Text], new: list[Text], context: int = 3) -> list[Text]:
    """A unified diff of the YAML (git's shape): changed lines with ``context`` lines around them."""
    out: list[Text] = []
    matcher = difflib.SequenceMatcher(None, [x.plain for x in old], [x.plain for x in new], autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        out.append(Text(f"@@ lines {first[1] + 1}-{last[2]} → {first[3] + 1}-{last[4]} @@", "replay.accent"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(Text("  ") + x for x in old[i1:i2])
                continue
            for x in old[i1:i2]:
                line = Text("- ", "replay.sign.removed") + x
                line.stylize("replay.removed.line", 2)
                out.append(line)
            for x in new[j1:j2]:
                line = Text("+ ", "replay.sign.added") + x
                line.stylize("replay.added.line", 2)
                out.append(line)
    return out


def _end(seq: int, name: str) -> str:
    return f"op {seq:,}" if name == f"op {seq:,}" else f"op {seq:,} ({name})"


def render_range_diff(d: Detail, state: StateDiff | None, width: int = 80) -> list[Line]:
    rd = d.range_diff
    assert rd is not None
    t = Text()
    t.append(f"op {rd.earlier:,} → op {rd.later:,}", "replay.heading")
    t.append(f"   (from {rd.earlier_name} to {rd.later_name}, earlier to later)", "replay.accent")
    t.append("   d: a mark and the cursor · D: any two points\n\n", LABEL)
    body: list[Text] = []
    if d.key is None or rd.changes is None:
        t.append("this op addresses no single object; o picks one\n", LABEL)
    else:
        t.append(safe(str(d.key)), "replay.object")
        changes = rd.changes
        appears = len(changes) == 1 and changes[0].path == "" and changes[0].kind == "added"
        gone = len(changes) == 1 and changes[0].path == "" and changes[0].kind == "removed"
        if appears:
            t.append(f"  not there at op {rd.earlier}; exists at op {rd.later}\n", "replay.good")
        elif gone:
            t.append(f"  exists at op {rd.earlier}; gone by op {rd.later}\n", "replay.bad")
        else:
            t.append(f"  {len(changes)} field{'s differ' if len(changes) != 1 else ' differs'}\n", LABEL)
            t.append_text(change_lines(changes, "  ") if changes else Text("  (no changes)\n", LABEL))
        if changes and (rd.old is not None or rd.new is not None):
            old, new = yaml_plain(rd.old), yaml_plain(rd.new)
            a, b = _end(rd.earlier, rd.earlier_name), _end(rd.later, rd.later_name)
            if width >= SIDE_BY_SIDE:
                body = [Text("")] + side_by_side(old, new, width, (a, b))
            else:
                body = [Text(""), Text(f"--- {a}", "replay.sign.removed"), Text(f"+++ {b}", "replay.sign.added"),
                        *unified(old, new)]
    tail = Text("\n")
    if state is None or (state.a, state.b) != (rd.earlier, rd.later):
        tail.append("whole state: computing...\n", LABEL)
    else:
        _state_lines(tail, state)
    return [*t.split("\n", allow_blank=True)[:-1], *body, *tail.split("\n", allow_blank=True)]


def render_diff(d: Detail, state: StateDiff | None, width: int = 80) -> Text | list[Line]:
    if d.range_diff is not None:
        return render_range_diff(d, state, width)
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
    t.append("\nm sets a mark, d diffs the object against a mark, D between any two points", LABEL)
    return t


class DiffPane(Pane):
    """What changed: by this op, or between two points."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._shown: tuple[Detail, StateDiff | None] | None = None
        self._side = False

    def show_detail(self, d: Detail, state: StateDiff | None) -> None:
        self._shown = (d, state)
        self._side = self._width() >= SIDE_BY_SIDE
        self.set_body(render_diff(d, state, self._width()), keep_scroll=True)

    def on_resize(self) -> None:
        if self._shown is not None and self._shown[0].range_diff is not None \
                and (self._width() >= SIDE_BY_SIDE) != self._side:
            self.show_detail(*self._shown)  # wide enough now for side by side (a zoom), or no longer
        else:
            super().on_resize()

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
