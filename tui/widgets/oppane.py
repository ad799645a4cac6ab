"""The operation pane: the request, the response, status, timing and the reconcile it belongs to."""

from __future__ import annotations

from rich.text import Text

from replay_tui.engine.format import EVENT_VERBS, has_latency, is_path, list_summary
from replay_tui.engine.textsafe import safe
from replay_tui.engine.units import fmt_duration, fmt_elapsed, fmt_latency, fmt_ts
from replay_tui.tui import yamltext
from replay_tui.tui.control.detail import Detail
from replay_tui.tui.widgets.pane import Line, Pane
from replay_tui.tui.widgets.timeline import SLOW_NS, SLOWISH_NS, verb_role

LABEL = "replay.label"
BODY_LINES = 400
ROW = 10  # a row's label column: wrapped values continue under the value


def _row(out: list[Line], label: str, value: str | Text, style: str = "") -> None:
    t = Text(f"{label:<{ROW}}", LABEL)
    if isinstance(value, Text):
        t.append_text(value)
    else:
        t.append(value, style)
    out.append((t, ROW))


def latency_text(verb: str, duration_ns: int) -> Text:
    if not has_latency(verb, duration_ns):
        return Text(fmt_latency(verb, duration_ns, why=True), LABEL)
    lat = Text(fmt_duration(duration_ns))
    if duration_ns >= SLOW_NS:
        lat.stylize("replay.slow")
        lat.append("  slow", "replay.bad")
    elif duration_ns >= SLOWISH_NS:
        lat.stylize("replay.slowish")
    return lat


def render_op(d: Detail, start_ns: int, *, fold: bool = True) -> list[Line]:
    """The operation pane's lines."""
    op = d.op
    out: list[Line] = []
    head = Text()
    head.append(op.verb.upper(), verb_role(op.verb))
    head.append("  ")
    target = str(op.key) if op.key else (op.kind or op.resource or "-")
    if op.subresource:
        target += f"/{op.subresource}"
    head.append(safe(target), "replay.object")
    if op.resource and not is_path(op.resource):  # a discovery request's path is its target already
        head.append(f"   ({safe(op.resource)}, {safe(op.api_version or 'v1')})", LABEL)
    out.append(head)
    out.append(Text())
    status = Text()
    if op.status:
        status.append(str(op.status), "replay.bad.strong" if op.error else "replay.good")
    else:
        status.append("-" if op.verb not in EVENT_VERBS else "watch event", LABEL)
    if op.reason:
        status.append(f" {safe(op.reason)}", "replay.bad" if op.error else "")
    if op.error:
        status.append("  ERROR", "replay.bad.strong")
    _row(out, "status", status)
    if op.message:
        _row(out, "message", safe(op.message), "replay.warn" if op.error else "")
    _row(out, "started", f"{fmt_ts(op.ts_ns)}  ({fmt_elapsed(op.ts_ns - start_ns)})")
    _row(out, "latency", latency_text(op.verb, op.duration_ns))
    span = d.span
    if span is not None:
        rt = Text()
        rt.append(f"#{span.id} ", "replay.accent")
        rt.append(safe(span.reconciler or "-"))
        where = "/".join(safe(p) for p in (span.kind, span.namespace, span.name) if p)
        if where:
            rt.append(f" {where}")
        _row(out, "reconcile", rt)
        end = span.end_seq if span.end_seq is not None else "open"
        info = f"ops {span.start_seq}..{end}"
        if span.end_seq is not None:
            n = span.end_seq - span.start_seq + 1
            info += f" ({n} ops, this is op {op.seq - span.start_seq + 1})" if n > 1 else " (this op alone)"
        if span.trigger_seq:
            info += f", triggered by op {span.trigger_seq}"
        if span.inferred:
            info += "  [inferred]"
        _row(out, "", Text(info, LABEL))
        if span.error:
            _row(out, "", Text(f"failed: {safe(span.error)}", "replay.bad"))
    elif op.reconcile is not None:
        _row(out, "reconcile", f"#{op.reconcile}")
    if op.actor:
        _row(out, "actor", safe(op.actor))
    if op.uid:
        _row(out, "uid", safe(op.uid))
    if op.resource_version or op.generation is not None:
        parts = []
        if op.resource_version:
            parts.append(f"resourceVersion {safe(op.resource_version)}")
        if op.generation is not None:
            parts.append(f"generation {op.generation}")
        _row(out, "version", "  ".join(parts))
    if op.query:
        _row(out, "query", safe("  ".join(f"{k}={v}" for k, v in op.query.items())))
    if op.request is not None:
        out.append(Text())
        out.append(Text("request" + (f" ({safe(op.patch_type)})" if op.patch_type else ""), "replay.heading"))
        out.extend(yamltext.render_lines(op.request, max_lines=BODY_LINES, fold=fold)[0])
    if op.response is not None:
        out.append(Text())
        head = Text("response" if op.verb not in EVENT_VERBS else "event object", "replay.heading")
        summary = list_summary(op.response)
        if summary:
            head.append(f"  {safe(summary)}", LABEL)
        out.append(head)
        if d.obj is not None and op.response == d.obj and not d.pinned:
            out.append(Text("  the object version shown in the State tab (this op returned it)", LABEL))
        else:
            out.extend(yamltext.render_lines(op.response, max_lines=BODY_LINES, fold=fold)[0])
    return out


def op_lines(d: Detail, start_ns: int, *, fold: bool = True) -> list[Line]:
    """The operation pane's lines for ``d``, made once."""
    lines: list[Line] | None = d.lines.get(("op", fold))
    if lines is None:
        lines = d.lines[("op", fold)] = render_op(d, start_ns, fold=fold)
    return lines


class OpPane(Pane):
    """The operation at the cursor."""

    def show_detail(self, d: Detail, start_ns: int, *, fold: bool = True) -> None:
        self.set_body(op_lines(d, start_ns, fold=fold))

    def show_empty(self, text: str) -> None:
        self.set_body(Text(text, LABEL))
