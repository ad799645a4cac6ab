"""The state pane: the object at the cursor as YAML, the fields this op changed highlighted."""

from __future__ import annotations

from typing import Any

import msgspec
from rich.text import Text

from replay_tui.engine.diff import MISSING, Change
from replay_tui.tui import yamltext
from replay_tui.tui.messages import Detail
from replay_tui.tui.widgets.pane import Pane

LABEL = "#8a96a3"
#: Bulky bookkeeping folded away until z: what the diff leaves out by default, minus the short fields.
NOISE = (".metadata.managedFields",
         '.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]')


def short_value(value: Any, limit: int = 100) -> str:
    if value is MISSING:
        return "(absent)"
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def changed_paths(changes: list[Change]) -> dict[str, str]:
    return {c.path: ("added" if c.kind == "added" else "changed") for c in changes if c.kind != "removed"}


def render_state(d: Detail, *, show_noise: bool) -> list[Text]:
    """The state pane's lines."""
    out: list[Text] = []
    if d.key is None:
        t = Text(f"op {d.seq} addresses no single object", LABEL)
        if d.op.verb in ("list", "watch", "deletecollection"):
            t.append(f" ({d.op.verb} of {d.op.resource or d.op.kind or 'objects'})", LABEL)
        return [t, Text("press o to pick any object that exists here", LABEL)]
    head = Text(str(d.key), "bold #88c0d0")
    head.append("  (pinned: o picks another)" if d.pinned else "  (o picks another object)", LABEL)
    out.append(head)
    if d.obj is None:
        if d.deleted_at is not None:
            out.append(Text(f"does not exist at op {d.seq}: deleted by op {d.deleted_at}", "#d08770"))
        else:
            out.append(Text(f"does not exist at op {d.seq} (not seen yet)", "#d08770"))
        return out
    lit = [c for c in d.changes if c.kind != "removed"]
    removed = [c for c in d.changes if c.kind == "removed"]
    if d.version_seq == d.seq:
        if d.before is None:
            out.append(Text(f"created by this op (op {d.seq})", "#a3be8c"))
        else:
            n = len(d.changes)
            out.append(Text(f"this op changed {n} field{'s' if n != 1 else ''}", "#ebcb8b" if n else LABEL))
    else:
        out.append(Text(f"version from op {d.version_seq}; unchanged by this op", LABEL))
    out.append(Text())
    body, _ = yamltext.render_lines(d.obj, changed_paths(lit) if d.before is not None else {},
                                    hidden=() if show_noise else NOISE)
    out.extend(body)
    if removed:
        out.append(Text())
        out.append(Text("removed by this op:", "bold #bf616a"))
        for c in removed:
            out.append(Text(f"- {c.path}: {short_value(c.old)}", "#bf616a"))
    return out


class StatePane(Pane):
    """The reconstructed object at the cursor."""

    def show_detail(self, d: Detail, *, show_noise: bool, keep_scroll: bool = False) -> None:
        self.set_body(render_state(d, show_noise=show_noise), keep_scroll=keep_scroll)

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
