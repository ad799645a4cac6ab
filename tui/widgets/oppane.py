"""The operation pane: the request, the response, status, timing and the reconcile it belongs to."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from replay_tui.engine.format import EVENT_VERBS, is_path
from replay_tui.engine.units import fmt_duration, fmt_elapsed, fmt_ts
from replay_tui.tui import yamltext
from replay_tui.tui.messages import Detail
from replay_tui.tui.widgets.pane import Pane

LABEL = "#8a96a3"
BODY_LINES = 400


def _row(out: list[Text], label: str, value: str | Text, style: str = "") -> None:
    t = Text(f"{label:<10}", LABEL)
    if isinstance(value, Text):
        t.append_text(value)
    else:
        t.append(value, style)
    out.append(t)


def _body_summary(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        n = len(body["items"])
        return f"{body.get('kind') or 'List'} with {n} item{'s' if n != 1 else ''}"
    return None


def render_op(d: Detail, start_ns: int) -> list[Text]:
    """The operation pane's lines."""
    from replay_tui.tui.widgets.timeline import verb_style

    op = d.op
    out: list[Text] = []
    head = Text()
    head.append(op.verb.upper(), verb_style(op.verb))
    head.append("  ")
    target = str(op.key) if op.key else (op.kind or op.resource or "-")
    if op.subresource:
        target += f"/{op.subresource}"
    head.append(target, "bold")
    if op.resource and not is_path(op.resource):  # a discovery request's path is its target already
        head.append(f"   ({op.resource}, {op.api_version or 'v1'})", LABEL)
    out.append(head)
    out.append(Text())
    status = Text()
    if op.status:
        status.append(str(op.status), "bold #ff6b6b" if op.error else "bold #a3be8c")
    else:
        status.append("-" if op.verb not in EVENT_VERBS else "watch event", LABEL)
    if op.reason:
        status.append(f" {op.reason}", "#ff6b6b" if op.error else "")
    if op.error:
        status.append("  ERROR", "bold #ff6b6b")
    _row(out, "status", status)
    if op.message:
        _row(out, "message", op.message, "#d08770" if op.error else "")
    _row(out, "started", f"{fmt_ts(op.ts_ns)}  ({fmt_elapsed(op.ts_ns - start_ns)})")
    lat = Text(fmt_duration(op.duration_ns))
    if op.duration_ns >= 1_000_000_000:
        lat.stylize("bold #ff6b6b")
        lat.append("  slow", "#ff6b6b")
    elif op.duration_ns >= 250_000_000:
        lat.stylize("#ebcb8b")
    _row(out, "latency", lat)
    span = d.span
    if span is not None:
        rt = Text()
        rt.append(f"#{span.id} ", "bold #b48ead")
        rt.append(span.reconciler or "-")
        target = "/".join(p for p in (span.kind, span.namespace, span.name) if p)
        if target:
            rt.append(f" {target}")
        _row(out, "reconcile", rt)
        where = Text(" " * 10)
        end = span.end_seq if span.end_seq is not None else "open"
        where.append(f"ops {span.start_seq}..{end}", LABEL)
        if span.end_seq is not None:
            n = span.end_seq - span.start_seq + 1
            where.append(f" ({n} op{'s' if n != 1 else ''}, this is op {op.seq - span.start_seq + 1})"
                         if n > 1 else " (this op alone)", LABEL)
        if span.trigger_seq:
            where.append(f", triggered by op {span.trigger_seq}", LABEL)
        if span.inferred:
            where.append("  [inferred]", LABEL)
        out.append(where)
        if span.error:
            out.append(Text(f"{'':<10}failed: {span.error}", "#ff6b6b"))
    elif op.reconcile is not None:
        _row(out, "reconcile", f"#{op.reconcile}")
    if op.actor:
        _row(out, "actor", op.actor)
    if op.uid:
        _row(out, "uid", op.uid)
    if op.resource_version or op.generation is not None:
        parts = []
        if op.resource_version:
            parts.append(f"resourceVersion {op.resource_version}")
        if op.generation is not None:
            parts.append(f"generation {op.generation}")
        _row(out, "version", "  ".join(parts))
    if op.query:
        _row(out, "query", "  ".join(f"{k}={v}" for k, v in op.query.items()))
    if op.request is not None:
        out.append(Text())
        out.append(Text("request" + (f" ({op.patch_type})" if op.patch_type else ""), "bold #81a1c1"))
        out.extend(yamltext.render_lines(op.request, max_lines=BODY_LINES)[0])
    if op.response is not None:
        out.append(Text())
        head = Text("response" if op.verb not in EVENT_VERBS else "event object", "bold #81a1c1")
        summary = _body_summary(op.response)
        if summary:
            head.append(f"  {summary}", LABEL)
        out.append(head)
        if d.obj is not None and op.response == d.obj and not d.pinned:
            out.append(Text("  the object version shown in the State tab (this op returned it)", LABEL))
        else:
            out.extend(yamltext.render_lines(op.response, max_lines=BODY_LINES)[0])
    return out


class OpPane(Pane):
    """The operation at the cursor."""

    def show_detail(self, d: Detail, start_ns: int) -> None:
        self.set_body(render_op(d, start_ns))

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
