"""The state pane: the object at the cursor as YAML, the fields this op changed highlighted."""

from __future__ import annotations

from rich.text import Text

from replay_tui.engine.diff import Change, short_value
from replay_tui.engine.format import CREATE, EVENT_VERBS
from replay_tui.engine.textsafe import safe
from replay_tui.tui import yamltext
from replay_tui.tui.control.detail import Detail
from replay_tui.tui.widgets.pane import Line, Pane

LABEL = "replay.label"
#: Bulky bookkeeping folded away until z: what the diff leaves out by default, minus the short fields.
NOISE = (".metadata.managedFields",
         '.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]')


def changed_paths(changes: list[Change]) -> dict[str, str]:
    return {c.path: ("added" if c.kind == "added" else "changed") for c in changes if c.kind != "removed"}


def first_seen_text(d: Detail) -> str:
    """How the op at the cursor relates to the object's first appearance: only a create creates."""
    if d.op.verb == CREATE:
        return f"created by this op (op {d.seq})"
    how = "a watch event" if d.op.verb in EVENT_VERBS else f"a {d.op.verb}"
    return f"first seen at this op (op {d.seq}, {how}: it existed before, or another client made it)"


def render_state(d: Detail, *, unfold: bool) -> list[Line]:
    """The state pane's lines; ``unfold`` shows noise fields and huge values in full."""
    out: list[Line] = []
    if d.key is None:
        t = Text(f"op {d.seq} addresses no single object", LABEL)
        if d.op.verb in ("list", "watch", "deletecollection"):
            t.append(f" ({d.op.verb} of {safe(d.op.resource or d.op.kind or 'objects')})", LABEL)
        return [t, Text("press o to pick any object that exists here", LABEL)]
    head = Text(safe(str(d.key)), "replay.object")
    head.append("  (pinned: o picks another)" if d.pinned else "  (o picks another object)", LABEL)
    out.append(head)
    if d.obj is None:
        if d.deleted_at is not None:
            out.append(Text(f"does not exist at op {d.seq}: deleted by op {d.deleted_at}", "replay.warn"))
        else:
            out.append(Text(f"does not exist at op {d.seq} (not seen yet)", "replay.warn"))
        return out
    lit = [c for c in d.changes if c.kind != "removed"]
    removed = [c for c in d.changes if c.kind == "removed"]
    if d.first_seen:
        out.append(Text(first_seen_text(d), "replay.good"))
    elif d.version_seq == d.seq:
        n = len(d.changes)
        out.append(Text(f"this op changed {n} field{'s' if n != 1 else ''}", "replay.warn" if n else LABEL))
    else:
        out.append(Text(f"version from op {d.version_seq}; unchanged by this op", LABEL))
    out.append(Text())
    body, _ = yamltext.render_lines(d.obj, changed_paths(lit) if d.before is not None else {},
                                    hidden=() if unfold else NOISE, fold=not unfold)
    out.extend(body)
    if removed:
        out.append(Text())
        out.append(Text("removed by this op:", "replay.bad.strong"))
        for c in removed:
            out.append(Text(f"- {safe(c.path)}: {short_value(c.old)}", "replay.bad"))
    return out


def state_lines(d: Detail, *, unfold: bool) -> list[Line]:
    """The state pane's lines for ``d``, made once."""
    lines: list[Line] | None = d.lines.get(("state", unfold))
    if lines is None:
        lines = d.lines[("state", unfold)] = render_state(d, unfold=unfold)
    return lines


class StatePane(Pane):
    """The reconstructed object at the cursor."""

    def show_detail(self, d: Detail, *, unfold: bool, keep_scroll: bool = False) -> None:
        self.set_body(state_lines(d, unfold=unfold), keep_scroll=keep_scroll)

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
