"""The statistics panel: verb mix, latency over time, percentiles, errors, hot spots.

The numbers come from ``engine.stats.compute`` (as plain dicts, via ``msgspec.to_builtins``),
computed in a worker on a connection of their own; the cursor's place in time is drawn on
the sparkline.  A trace without latency (Sieve's one-second timestamps) says so instead of
showing percentiles of zero.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from rich.text import Text

from replay_tui.engine.format import VERB_ORDER
from replay_tui.engine.stats import LATENCY_VERBS
from replay_tui.engine.textsafe import safe
from replay_tui.engine.units import NO_TIMING, fmt_duration, fmt_ms
from replay_tui.tui.widgets.pane import Pane
from replay_tui.tui.widgets.timeline import verb_role

LABEL = "replay.label"
BARS = "▁▂▃▄▅▆▇█"


def num(v: Any, default: float = 0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def sparkline(values: list[float], width: int, cursor: int | None, role: str = "replay.spark",
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
            t.append(ch.replace(" ", "▁") if i == cursor else ch, "replay.spark.cursor" if i == cursor else role)
        return t
    per = n / width
    cursor_col = int(cursor / per) if cursor is not None else None
    for c in range(width):
        chunk = values[int(c * per): max(int((c + 1) * per), int(c * per) + 1)]
        ch = glyph(max(chunk) if chunk else 0.0)
        if c == cursor_col:
            t.append(ch if ch != " " else "▁", "replay.spark.cursor")
        else:
            t.append(ch, role)
    return t


def timeline_series(tl: Any) -> tuple[list[int], list[float], list[float], list[float], int] | None:
    """(bucket starts, ops, p95 ms, errors, bucket width) from ``Stats.timeline``."""
    if isinstance(tl, dict) and tl.get("counts"):
        start, width = int(tl.get("start_ns") or 0), int(tl.get("width_ns") or 0)
        counts = [num(v) for v in tl.get("counts") or []]
        n = len(counts)
        p95 = [num(v) for v in (tl.get("p95_ms") or [])][:n]
        errs = [num(v) for v in (tl.get("errors") or [])][:n]
        return ([start + i * width for i in range(n)], counts, p95 + [0.0] * (n - len(p95)),
                errs + [0.0] * (n - len(errs)), width)
    return None


def timed(lat: Any) -> bool:
    """Whether a latency summary has any measured latency (all zero: the source recorded none)."""
    return isinstance(lat, dict) and num(lat.get("max")) > 0


def _latency_line(t: Text, lat: Any) -> None:
    t.append("latency    ", LABEL)
    if not timed(lat):
        t.append(NO_TIMING + "\n", LABEL)
        return
    for label in ("p50", "p95", "p99", "max"):
        t.append(f"{label} ", LABEL)
        slow = label in ("p99", "max") and num(lat.get(label)) >= 1000
        t.append(fmt_ms(lat.get(label)), "replay.bad.strong" if slow else "replay.heading")
        t.append("   ")
    t.append("\n")


VERB_MIX_LEFT = 2 + 17 + 11 + 7  # a verb-mix row before its bar: indent, verb, count, share


def render_stats(s: dict[str, Any], cursor_ts: int | None, width: int) -> Text:
    t = Text()
    ops = int(num(s.get("operations")))
    sample_rate = num(s.get("sample_rate"), 1.0)
    est = "~" if sample_rate < 1 else ""  # a scaled count in a sampled session: an estimate (as `stats` marks it)
    t.append("operations ", LABEL)
    t.append(f"{'' if s.get('requests_exact', True) else est}{ops:,}", "replay.heading")
    if s.get("duration_s") is not None:
        t.append(f" over {num(s.get('duration_s')):,.1f}s", LABEL)
    if s.get("ops_per_s") is not None:
        t.append(f" ({num(s.get('ops_per_s')):,.1f}/s", LABEL)
        if s.get("peak_ops_per_s") is not None:
            t.append(f", peak {est}{num(s.get('peak_ops_per_s')):,.0f}/s", LABEL)
        t.append(")", LABEL)
    t.append("\n")
    if sample_rate < 1:
        t.append("SAMPLED    ", "replay.warn")
        t.append(f"{sample_rate * 100:.4g}% of non-watch requests recorded: counts are estimates (~), "
                 f"{int(num(s.get('recorded_operations'))):,} ops in the file\n", "replay.warn")
    errors = int(num(s.get("errors")))
    rate = num(s.get("error_rate"))
    t.append("errors     ", LABEL)
    t.append(f"{est}{errors:,}", "replay.bad.strong" if errors else "replay.heading")
    t.append(f" ({rate * 100:.2f}%)", "replay.bad" if rate > 0.01 else LABEL)
    t.append("    reconciles ", LABEL)
    t.append(f"{int(num(s.get('reconciles'))):,}", "replay.heading")
    t.append("    watch events ", LABEL)
    t.append(f"{int(num(s.get('watch_events'))):,}\n", "replay.heading")
    lat = s.get("latency_ms") or {}
    _latency_line(t, lat)
    t.append("\n")
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
        if timed(lat):
            t.append("p95 latency  ", LABEL)
            t.append_text(sparkline(p95, spark_w, cursor, role="replay.spark.latency", log=True))
            t.append("\n")
        if any(errs):
            t.append("errors       ", LABEL)
            t.append_text(sparkline(errs, spark_w, cursor, role="replay.spark.errors"))
            t.append("\n")
        if cursor is not None:
            span = f" ({fmt_duration(width_ns)} wide)" if width_ns else ""
            p95_text = f", p95 {fmt_ms(p95[cursor] if p95 else None)}" if timed(lat) else ""
            t.append("at cursor    ", LABEL)
            t.append(f"bucket {cursor + 1}/{len(counts)}{span}: {int(counts[cursor]):,} ops, "
                     f"{int(errs[cursor]) if errs else 0:,} errors{p95_text}\n", "replay.warn")
        t.append("\n")
    by_verb = s.get("by_verb") or {}
    lat_verb = s.get("latency_by_verb") or {}
    if by_verb:
        t.append("verb mix\n", "replay.heading")
        top = max(by_verb.values()) or 1
        verbs = [v for v in VERB_ORDER if by_verb.get(v)] + sorted(set(by_verb) - set(VERB_ORDER))
        lat_texts = {v: f"  p50 {fmt_ms(lv.get('p50'))} p95 {fmt_ms(lv.get('p95'))} p99 {fmt_ms(lv.get('p99'))}"
                     for v in verbs if timed(lv := lat_verb.get(v) or {})}
        widest = max(map(len, lat_texts.values()), default=0)
        room = width - 1 - VERB_MIX_LEFT - widest  # for the bars, with the percentiles beside them
        bar_w = max(min(room, 30), 4)
        beside = room >= 4  # else the percentiles go on a line of their own, as far right as they fit
        below = "\n" + " " * max(0, min(VERB_MIX_LEFT - 2, width - 1 - widest))
        for verb in verbs:
            n = by_verb[verb]
            bar = max(int(n / top * bar_w), 1)
            t.append(f"  {safe(verb):<17}", verb_role(verb))
            t.append(f"{(est if verb in LATENCY_VERBS else '') + f'{n:,}':>10} ", "replay.heading")
            t.append(f"{n / max(ops, 1) * 100:5.1f}% ", LABEL)
            t.append("█" * bar, "replay.bar")
            if verb in lat_texts:
                t.append(" " * (bar_w - bar) if beside else below)
                t.append(lat_texts[verb], LABEL)
            t.append("\n")
        t.append("\n")
    by_status = s.get("by_status") or {}
    if by_status:
        t.append("status     ", LABEL)
        for k, v in sorted(by_status.items(), key=lambda kv: str(kv[0])):
            bad = str(k)[:1] in ("4", "5")
            t.append(f"{k if str(k) != '0' else 'events'}:", "replay.bad" if bad else LABEL)
            t.append(f"{est if str(k) != '0' else ''}{v:,}  ", "replay.heading")  # (watch events: all kept)
        t.append("\n\n")
    top_objects = s.get("top_objects") or {}
    groups = top_objects.items() if isinstance(top_objects, dict) else [("top objects", top_objects)]
    for label, items in groups:
        if not items:
            continue
        t.append(f"top objects {str(label).replace('_', ' ')}\n", "replay.heading")
        for item in list(items)[:8]:
            if isinstance(item, dict):
                t.append(f"  {safe(str(item.get('key', '?')))}", "replay.object")
                extra = "  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {safe(str(v))}"
                                  for k, v in item.items()
                                  if k not in ("key", "obj_id") and not isinstance(v, (dict, list)))
                t.append(f"  {extra}\n", LABEL)
            else:
                t.append(f"  {safe(str(item))}\n", "replay.object")
        t.append("\n")
    by_kind = s.get("by_kind") or {}
    if by_kind:
        t.append("kinds      ", LABEL)
        for k, n in sorted(by_kind.items(), key=lambda kv: -kv[1])[:10]:
            t.append(f"{safe(k) or '-'}:", LABEL)
            t.append(f"{est}{n:,}  ", "replay.heading")
        t.append("\n")
    return t


class StatsPanel(Pane):
    """Session statistics; the sparklines follow the cursor."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.data: dict[str, Any] | None = None
        self.error = ""
        self.cursor_ts: int | None = None
        self._drawn_at = -1  # the width the figures were last drawn at

    def show_stats(self, data: dict[str, Any] | None, cursor_ts: int | None, error: str = "") -> None:
        """``data`` None keeps what is shown (computing, or the last figures); ``error`` replaces it."""
        self.data = data if data is not None else self.data
        self.error = error if data is None else ""
        self.cursor_ts = cursor_ts
        if self.data is None:
            if self.error:
                self.set_body([Text("statistics could not be computed:", "replay.bad.strong"),
                               Text(safe(self.error), "replay.bad")])
            else:
                self.set_body(Text("computing statistics...", LABEL))
            return
        self._drawn_at = self.size.width
        # drawn to the width the pane wraps at (inside its padding and scrollbar): nothing wraps
        self.set_body(render_stats(self.data, cursor_ts, self._width() + 1), keep_scroll=True)

    def on_resize(self) -> None:
        """Bars and sparklines are drawn to the pane's width: draw them again at the new one (the
        figures may have arrived while the tab was hidden, with no width yet).  Pane's own handler
        runs after this one (Textual calls each class's), and finds the text wrapped already."""
        if self.data is not None and self.size.width != self._drawn_at:
            self.show_stats(self.data, self.cursor_ts)
