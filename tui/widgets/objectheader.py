"""The header above an object's own timeline (``t``): its versions, who wrote them, the fields that changed.

Two lines; each is cut at the screen's width (the fields most often changed come first).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from replay_tui.engine.textsafe import safe
from replay_tui.tui.control.objectview import TOP_FIELDS, ObjectSummary

LABEL = "replay.label"


def render_header(s: ObjectSummary | None, label: str) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(" OBJECT ", "replay.following")
    t.append(" " + safe(s.label if s is not None else label), "replay.object")
    if s is None:
        t.append("   reading its versions...", LABEL)
        t.append("\n")
        return t
    t.append(f"   {s.versions:,} version{'s' if s.versions != 1 else ''}", "replay.heading")
    if s.first_seq is not None:
        t.append(f", ops {s.first_seq:,}..{s.last_seq:,}", LABEL)
    if not s.complete:
        t.append(" · reading who wrote them...", LABEL)
    for who, n in s.writers[:3]:
        t.append(" · ", LABEL)
        t.append(f"{n:,} by {safe(who)}", "replay.accent")
    if len(s.writers) > 3:
        t.append(f" · {sum(n for _, n in s.writers[3:]):,} by {len(s.writers) - 3} others", "replay.accent")
    if s.unwritten:
        t.append(f" · {s.unwritten:,} first seen in a watch event or read", "replay.accent")
    requests = [f"{n:,} {what}" for n, what in ((s.writes, "writes"), (s.reads, "reads"), (s.watches, "watches")) if n]
    if requests:
        t.append("   requests: ", LABEL)
        t.append(", ".join(requests), "replay.text")
    t.append("\n")
    t.append(" fields changed ", LABEL)
    if not s.complete:
        t.append("counting...", LABEL)
    elif not s.fields:
        t.append("none after its first version" if s.versions > 1 or not s.versions else "(one version)", LABEL)
    else:
        for i, (path, n) in enumerate(s.fields[:TOP_FIELDS]):
            t.append(" · " if i else " ", LABEL)
            t.append(safe(path), "replay.yaml.key")
            t.append(f" ×{n:,}", "replay.warn")
        if len(s.fields) > TOP_FIELDS:
            t.append(f" · {len(s.fields) - TOP_FIELDS} more", LABEL)
    if not s.indexed and s.compared:
        t.append(f"   (compared {s.compared:,} versions: a recording without a change index)", LABEL)
    return t


class ObjectHeader(Static):
    """Shown above the timeline while it is narrowed to one object."""

    DEFAULT_CSS = """
    ObjectHeader {
        height: 2;
        background: $panel;
        display: none;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    ObjectHeader.-shown {
        display: block;
    }
    """

    def __init__(self, **kwargs: Any):
        super().__init__("", **kwargs)
        self.summary: ObjectSummary | None = None
        self.label = ""

    def show(self, summary: ObjectSummary | None, label: str) -> None:
        self.summary, self.label = summary, label
        self.add_class("-shown")
        self.update(render_header(summary, label))

    def hide(self) -> None:
        self.summary, self.label = None, ""
        self.remove_class("-shown")

    def palette_changed(self) -> None:
        if self.has_class("-shown"):
            self.update(render_header(self.summary, self.label))

    @property
    def text(self) -> str:
        return render_header(self.summary, self.label).plain if self.has_class("-shown") else ""
