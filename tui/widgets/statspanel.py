"""Statistics and analysis panels: verb mix, latency over time, percentiles, errors, hot spots.

The numbers come from ``engine.stats.compute`` and ``engine.analysis.analyze``
(as plain dicts, via ``msgspec.to_builtins``), computed in a worker on a
connection of their own; the cursor's place in time is drawn on the sparkline.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from replay_tui.engine.format import VERB_ORDER
from replay_tui.engine.units import fmt_duration
from replay_tui.tui.widgets.pane import Pane
from replay_tui.tui.widgets.timeline import verb_style

LABEL = "#8a96a3"
BARS = "▁▂▃▄▅▆▇█"


def _num(v: Any, default: float = 0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _ms(v: Any) -> str:
    return "-" if v is None else fmt_duration(_num(v) * 1e6)


def sparkline(values: list[float], width: int, cursor: int | None, colour: str = "#88c0d0",
              log: bool = False) -> Text:
    """Values as block characters in about ``width`` columns (max per column when squeezed,
    repeated when stretched); the cursor's bucket lit.  ``log`` keeps one outlier from
    flattening everything else (latencies)."""
    t = Text()
    if not values:
        return t
    n = len(values)
    scale = (lambda v: math.log1p(max(v, 0.0))) if log else (lambda v: v)
    top = max(scale(v) for v in values) or 1.0

    def glyph(v: float) -> str:
        return BARS[min(int(scale(v) / top * (len(BARS) - 1) + 0.5), len(BARS) - 1)] if v > 0 else " "

    if n <= width:
        rep = max(width // n, 1)
        for i, v in enumerate(values):
            ch = glyph(v) * rep
            if i == cursor:
                t.append(ch.replace(" ", "▁"), "bold #ebcb8b on #4c566a")
            else:
                t.append(ch, colour)
        return t
    per = n / width
    cursor_col = int(cursor / per) if cursor is not None else None
    for c in range(width):
        chunk = values[int(c * per): max(int((c + 1) * per), int(c * per) + 1)]
        ch = glyph(max(chunk) if chunk else 0.0)
        if c == cursor_col:
            t.append(ch if ch != " " else "▁", "bold #ebcb8b on #4c566a")
        else:
            t.append(ch, colour)
    return t


def timeline_series(tl: Any) -> tuple[list[int], list[float], list[float], list[float], int] | None:
    """(bucket starts, ops, p95 ms, errors, bucket width) from ``Stats.timeline``."""
    if isinstance(tl, dict) and tl.get("counts"):
        start, width = int(tl.get("start_ns") or 0), int(tl.get("width_ns") or 0)
        counts = [_num(v) for v in tl.get("counts") or []]
        n = len(counts)
        p95 = [_num(v) for v in (tl.get("p95_ms") or [])][:n]
        errs = [_num(v) for v in (tl.get("errors") or [])][:n]
        return ([start + i * width for i in range(n)], counts, p95 + [0.0] * (n - len(p95)),
                errs + [0.0] * (n - len(errs)), width)
    return None


def render_stats(s: dict[str, Any], cursor_ts: int | None, width: int) -> Text:
    t = Text()
    ops = int(_num(s.get("operations")))
    t.append("operations ", LABEL)
    t.append(f"{ops:,}", "bold")
    if s.get("duration_s") is not None:
        t.append(f" over {_num(s.get('duration_s')):,.1f}s", LABEL)
    if s.get("ops_per_s") is not None:
        t.append(f" ({_num(s.get('ops_per_s')):,.1f}/s", LABEL)
        if s.get("peak_ops_per_s") is not None:
            t.append(f", peak {_num(s.get('peak_ops_per_s')):,.0f}/s", LABEL)
        t.append(")", LABEL)
    t.append("\n")
    sample_rate = _num(s.get("sample_rate"), 1.0)
    if sample_rate < 1:
        t.append("SAMPLED    ", "bold #e5c07b")
        t.append(f"{sample_rate * 100:.4g}% of non-watch requests recorded: counts are estimates, "
                 f"{int(_num(s.get('recorded_operations'))):,} ops in the file\n", "#e5c07b")
    errors = int(_num(s.get("errors")))
    rate = _num(s.get("error_rate"))
    t.append("errors     ", LABEL)
    t.append(f"{errors:,}", "bold #ff6b6b" if errors else "bold")
    t.append(f" ({rate * 100:.2f}%)", "#ff6b6b" if rate > 0.01 else LABEL)
    t.append("    reconciles ", LABEL)
    t.append(f"{int(_num(s.get('reconciles'))):,}", "bold")
    t.append("    watch events ", LABEL)
    t.append(f"{int(_num(s.get('watch_events'))):,}\n", "bold")
    lat = s.get("latency_ms") or {}
    t.append("latency    ", LABEL)
    for label in ("p50", "p95", "p99", "max"):
        t.append(f"{label} ", LABEL)
        style = "bold #ff6b6b" if label in ("p99", "max") and _num(lat.get(label)) >= 1000 else "bold"
        t.append(f"{_ms(lat.get(label))}", style)
        t.append("   ")
    t.append("\n\n")
    series = timeline_series(s.get("timeline"))
    if series is not None:
        starts, counts, p95, errs, width_ns = series
        cursor = None
        if cursor_ts is not None and starts:
            cursor = max(bisect.bisect_right(starts, cursor_ts) - 1, 0)
        spark_w = max(min(width - 16, 120), 10)
        t.append("ops          ", LABEL)
        t.append_text(sparkline(counts, spark_w, cursor))
        t.append("\n")
        t.append("p95 latency  ", LABEL)
        t.append_text(sparkline(p95, spark_w, cursor, colour="#b48ead", log=True))
        t.append("\n")
        if any(errs):
            t.append("errors       ", LABEL)
            t.append_text(sparkline(errs, spark_w, cursor, colour="#ff6b6b"))
            t.append("\n")
        if cursor is not None:
            span = f" ({fmt_duration(width_ns)} wide)" if width_ns else ""
            t.append("at cursor    ", LABEL)
            t.append(f"bucket {cursor + 1}/{len(counts)}{span}: {int(counts[cursor]):,} ops, "
                     f"{int(errs[cursor]) if errs else 0:,} errors, p95 {_ms(p95[cursor] if p95 else None)}\n",
                     "#ebcb8b")
        t.append("\n")
    by_verb = s.get("by_verb") or {}
    lat_verb = s.get("latency_by_verb") or {}
    if by_verb:
        t.append("verb mix\n", "bold #81a1c1")
        top = max(by_verb.values()) or 1
        bar_w = max(min(width - 80, 30), 4)
        for verb in [v for v in VERB_ORDER if by_verb.get(v)] + sorted(set(by_verb) - set(VERB_ORDER)):
            n = by_verb[verb]
            t.append(f"  {verb:<17}", verb_style(verb))
            t.append(f"{n:>10,} ", "bold")
            t.append(f"{n / max(ops, 1) * 100:5.1f}% ", LABEL)
            t.append("█" * max(int(n / top * bar_w), 1), "#5e81ac")
            lv = lat_verb.get(verb) or {}
            if lv and any(_num(lv.get(k)) for k in ("p50", "p95", "p99")):
                t.append(" " * (bar_w - max(int(n / top * bar_w), 1)))
                t.append(f"  p50 {_ms(lv.get('p50'))} p95 {_ms(lv.get('p95'))} p99 {_ms(lv.get('p99'))}", LABEL)
            t.append("\n")
        t.append("\n")
    by_status = s.get("by_status") or {}
    if by_status:
        t.append("status     ", LABEL)
        for k, v in sorted(by_status.items(), key=lambda kv: str(kv[0])):
            bad = str(k)[:1] in ("4", "5")
            t.append(f"{k if str(k) != '0' else 'events'}:", "#ff6b6b" if bad else LABEL)
            t.append(f"{v:,}  ", "bold")
        t.append("\n\n")
    top_objects = s.get("top_objects") or {}
    groups = top_objects.items() if isinstance(top_objects, dict) else [("top objects", top_objects)]
    for label, items in groups:
        if not items:
            continue
        t.append(f"top objects {str(label).replace('_', ' ')}\n", "bold #81a1c1")
        for item in list(items)[:8]:
            if isinstance(item, dict):
                t.append(f"  {item.get('key', '?')}", "#88c0d0")
                extra = "  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                  for k, v in item.items()
                                  if k not in ("key", "obj_id") and not isinstance(v, (dict, list)))
                t.append(f"  {extra}\n", LABEL)
            else:
                t.append(f"  {item}\n", "#88c0d0")
        t.append("\n")
    by_kind = s.get("by_kind") or {}
    if by_kind:
        t.append("kinds      ", LABEL)
        for k, n in sorted(by_kind.items(), key=lambda kv: -kv[1])[:10]:
            t.append(f"{k or '-'}:", LABEL)
            t.append(f"{n:,}  ", "bold")
        t.append("\n")
    return t


class StatsPanel(Pane):
    """Session statistics; the sparklines follow the cursor."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.data: dict[str, Any] | None = None
        self.cursor_ts: int | None = None

    def show_stats(self, data: dict[str, Any] | None, cursor_ts: int | None) -> None:
        self.data = data if data is not None else self.data
        self.cursor_ts = cursor_ts
        if self.data is None:
            self.set_body(Text("computing statistics...", LABEL))
            return
        self.set_body(render_stats(self.data, cursor_ts, self.size.width or 100), keep_scroll=True)


# --- analysis -------------------------------------------------------------------

def jump_target(item: Any) -> int | None:
    """The op an analysis finding points at, when it names one."""
    if not isinstance(item, dict):
        return None
    for k in ("seq", "first_seq", "start_seq", "example_seq"):
        v = item.get(k)
        if isinstance(v, int) and v > 0:
            return v
    for k in ("seqs", "example_seqs", "examples"):
        v = item.get(k)
        if isinstance(v, list) and v and isinstance(v[0], int):
            return int(v[0])
    return None


def brief(value: Any, limit: int = 150) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                if k in ("seqs", "example_seqs", "examples") and isinstance(v, list):
                    parts.append(f"{k}={','.join(str(x) for x in v[:4])}{'...' if len(v) > 4 else ''}")
                continue
            if isinstance(v, float):
                v = f"{v:,.1f}"
            parts.append(f"{k}={v}")
        text = "  ".join(parts)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


Finding = tuple[Text, "int | None"]


def _seqs(item: dict[str, Any], key: str = "example_seqs", n: int = 3) -> str:
    seqs = item.get(key) or []
    return ", ".join(str(x) for x in seqs[:n]) + ("..." if len(seqs) > n else "")


def analysis_sections(data: dict[str, Any]) -> list[tuple[str, list[Finding]]]:
    """Each section's findings as (text, op to jump to); the engine's shapes, read defensively."""
    out: list[tuple[str, list[Finding]]] = []
    loops: list[Finding] = []
    for h in data.get("hot_loops") or []:
        if not isinstance(h, dict):
            loops.append((Text(brief(h)), jump_target(h)))
            continue
        t = Text()
        t.append(str(h.get("key", "?")), "bold #ebcb8b")
        t.append(f"  {h.get('writes_without_spec_change', 0):,} writes, spec unchanged;"
                 f" {h.get('self_triggered_reconciles', 0):,} self-triggered;"
                 f" {_num(h.get('writes_per_min')):,.0f}/min", "#d8dee9")
        fields = h.get("changed_fields") or []
        if fields:
            t.append(f"  only {', '.join(fields[:2])}{' ...' if len(fields) > 2 else ''}", "#b48ead")
        loops.append((t, h.get("window_first_seq") or h.get("first_seq") or jump_target(h)))
    out.append(("hot loops", loops))
    if "causality_cycles" in data:  # what explains a hot loop: which reconcile re-triggers which
        out.append(cycle_section(data["causality_cycles"]))
    slow: list[Finding] = []
    so = data.get("slow_operations")
    if isinstance(so, dict):
        threshold = _num(so.get("threshold_ms"), 1000.0)
        title = f"slow operations ({int(_num(so.get('count'))):,} over {threshold:,.0f} ms)"
        for op in so.get("slowest") or []:
            if not isinstance(op, dict):
                continue
            ms = _num(op.get("ms"))
            t = Text()
            t.append(f"{fmt_duration(ms * 1e6):>8} ", "bold #ff6b6b" if ms >= threshold else "#ebcb8b")
            t.append(f"{op.get('verb', '')} ", verb_style(str(op.get("verb", ""))))
            t.append(str(op.get("target", "")))
            status = op.get("status")
            if status:
                t.append(f"  {status}", "#ff6b6b" if int(status) >= 400 else LABEL)
            slow.append((t, op.get("seq")))
        out.append((title, slow))
    elif so:
        out.append(("slow operations", [(Text(brief(i)), jump_target(i)) for i in so]))
    errors: list[Finding] = []
    ep = data.get("error_patterns")
    if isinstance(ep, dict):
        title = f"error patterns ({int(_num(ep.get('total'))):,} errors)"
        for storm in ep.get("conflict_storms") or []:
            t = Text()
            t.append("conflict storm ", "bold #ff6b6b")
            t.append(f"{storm.get('key')}: {storm.get('count', 0):,} × 409 in {_num(storm.get('duration_s')):,.1f}s")
            t.append(f"  ops {storm.get('first_seq')}..{storm.get('last_seq')}", LABEL)
            errors.append((t, storm.get("first_seq")))
        for g in ep.get("by_status_reason") or []:
            t = Text()
            t.append(f"{g.get('status')} {g.get('reason') or ''}".rstrip(), "bold #ff8a8a")
            t.append(f" × {g.get('count', 0):,}")
            t.append(f"  e.g. op {_seqs(g)}", LABEL)
            errors.append((t, jump_target(g)))
        for o in (ep.get("by_object") or [])[:10]:
            t = Text()
            t.append(f"{o.get('key')}", "#88c0d0")
            t.append(f"  {o.get('count', 0):,} errors  e.g. op {_seqs(o)}", LABEL)
            errors.append((t, jump_target(o)))
        for v in ep.get("by_verb") or []:
            t = Text()
            t.append(f"{v.get('verb')}", verb_style(str(v.get("verb", ""))))
            t.append(f"  {v.get('count', 0):,} errors  e.g. op {_seqs(v)}", LABEL)
            errors.append((t, jump_target(v)))
        out.append((title, errors))
    elif ep:
        out.append(("error patterns", [(Text(brief(i)), jump_target(i)) for i in ep]))
    access: list[Finding] = []
    ap = data.get("access_patterns")
    if isinstance(ap, dict):
        for k in ap.get("by_kind") or []:
            ratio = k.get("read_write_ratio")
            t = Text()
            t.append(f"{k.get('kind') or '-':<14}", "bold #81a1c1")
            t.append(f" gets {k.get('gets', 0):,}  lists {k.get('lists', 0):,}  watches {k.get('watches', 0):,}"
                     f"  writes {k.get('writes', 0):,}  events {k.get('watch_events', 0):,}"
                     f"  reads/write {'-' if ratio is None else f'{_num(ratio):.1f}'}"
                     f"  lists/min {_num(k.get('lists_per_min')):.1f}")
            access.append((t, None))
        for r in ap.get("rereads") or []:
            t = Text()
            t.append("re-read ", "#ebcb8b")
            t.append(f"{r.get('key')}", "#88c0d0")
            t.append(f"  {r.get('gets', 0):,} gets of {r.get('versions_read', 0):,} versions:"
                     f" {r.get('redundant_gets', 0):,} the cache already had", LABEL)
            target = r.get("most_read_version_seq")
            access.append((t, target if target else None))
        out.append(("access patterns", access))
    return out


def cycle_section(cycles: list[dict[str, Any]] | None) -> tuple[str, list[Finding]]:
    """Causality cycles (engine.causality): the loop, its rounds and flip-flopping fields; None = computing."""
    if cycles is None:
        return "causality cycles (computing...)", []
    found: list[Finding] = []
    for c in cycles:
        if not isinstance(c, dict):
            continue
        t = Text()
        t.append(" -> ".join(c.get("controllers") or []) or "?", "bold #ebcb8b")
        t.append(f"  {c.get('rounds', 0):,} rounds in {c.get('runs', 0):,} run(s),"
                 f" longest {c.get('longest_run', 0):,}", "#d8dee9")
        fields = [f"{f.get('path')} ({f.get('pattern')})" for f in c.get("fields") or [] if isinstance(f, dict)]
        t.append(f"  fields: {', '.join(fields[:3]) if fields else 'none change (no-op writes)'}", "#b48ead")
        t.append("\n" + " " * 14 + str(c.get("explanation", "")), LABEL)
        seqs = c.get("seqs") or []
        found.append((t, c.get("first_seq") or (seqs[0] if seqs else None)))
    return "causality cycles", found


class AnalysisPanel(OptionList):
    """Findings; Enter (or a click) on one with an op jumps there."""

    class JumpTo(Message):
        def __init__(self, seq: int):
            super().__init__()
            self.seq = seq

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.targets: dict[str, int] = {}

    def show_analysis(self, data: dict[str, Any] | None) -> None:
        self.clear_options()
        self.targets = {}
        if data is None:
            self.add_option(Option(Text("computing analysis...", LABEL), disabled=True))
            return
        n = 0
        for title, findings in analysis_sections(data):
            self.add_option(Option(Text(f"{title.upper()}  ({len(findings)})", "bold #81a1c1"), disabled=True))
            if not findings:
                self.add_option(Option(Text("  none found", LABEL), disabled=True))
            for text, target in findings[:60]:
                line = Text("  ")
                if isinstance(target, int) and target > 0:
                    line.append(f"op {target:<8} ", "bold #ebcb8b")
                else:
                    line.append(" " * 12)
                    target = None
                line.append_text(text)
                n += 1
                oid = f"finding-{n}"
                if target is not None:
                    self.targets[oid] = target
                self.add_option(Option(line, id=oid, disabled=target is None))
            self.add_option(Option(Text(""), disabled=True))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        seq = self.targets.get(event.option.id or "")
        if seq is not None:
            self.post_message(self.JumpTo(seq))
