"""The analysis panel: hot loops, causality cycles, slow operations, error and access patterns.

Each finding that names an op is a row Enter (or a click) jumps to.  The data comes from
``engine.analysis.analyze`` and ``engine.causality.cycles`` as plain dicts, read
defensively; names and explanations come from the recording and pass through ``textsafe``.
Long findings wrap under their own text, not under the ``op N`` column.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from replay_tui.engine.textsafe import safe
from replay_tui.engine.units import fmt_duration
from replay_tui.tui.messages import JumpTo, ShowCycle
from replay_tui.tui.widgets.pane import ListPane, wrap
from replay_tui.tui.widgets.statspanel import NO_TIMING, num
from replay_tui.tui.widgets.timeline import verb_role

LABEL = "replay.label"
GUTTER = 14  # "  op 12345678 ": findings wrap under their text
Finding = tuple[Text, "int | None"]


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
    text = safe(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seqs(item: dict[str, Any], key: str = "example_seqs", n: int = 3) -> str:
    seqs = item.get(key) or []
    return ", ".join(str(x) for x in seqs[:n]) + ("..." if len(seqs) > n else "")


def _s(value: Any) -> str:
    return safe(str(value))


def hot_loops(data: dict[str, Any]) -> list[Finding]:
    loops: list[Finding] = []
    for h in data.get("hot_loops") or []:
        if not isinstance(h, dict):
            loops.append((Text(brief(h)), jump_target(h)))
            continue
        t = Text()
        t.append(_s(h.get("key", "?")), "replay.mark")
        t.append(f"  {h.get('writes_without_spec_change', 0):,} writes, spec unchanged;"
                 f" {h.get('self_triggered_reconciles', 0):,} self-triggered;"
                 f" {num(h.get('writes_per_min')):,.0f}/min", "replay.text")
        fields = [_s(f) for f in h.get("changed_fields") or []]
        if fields:
            t.append(f"  only {', '.join(fields[:2])}{' ...' if len(fields) > 2 else ''}", "replay.accent")
        loops.append((t, h.get("first_seq") or jump_target(h)))  # where the loop starts
    return loops


def cycle_section(cycles: list[dict[str, Any]] | None, error: str = "") -> tuple[str, list[Finding]]:
    """Causality cycles (engine.causality): the loop, its rounds and flip-flopping fields; None = computing."""
    if error:
        return "causality cycles (could not be computed)", [(Text.styled(safe(error), "replay.bad"), None)]
    if cycles is None:
        return "causality cycles (computing...)", []
    found: list[Finding] = []
    for c in cycles:
        if not isinstance(c, dict):
            continue
        t = Text()
        t.append(" -> ".join(_s(x) for x in c.get("controllers") or []) or "?", "replay.mark")
        t.append(f"  {c.get('rounds', 0):,} rounds in {c.get('runs', 0):,} run(s),"
                 f" longest {c.get('longest_run', 0):,}", "replay.text")
        fields = [f"{_s(f.get('path'))} ({_s(f.get('pattern'))})" for f in c.get("fields") or [] if isinstance(f, dict)]
        t.append(f"  fields: {', '.join(fields[:3]) if fields else 'none change (no-op writes)'}", "replay.accent")
        t.append("  " + _s(c.get("explanation", "")), LABEL)
        seqs = c.get("seqs") or []
        found.append((t, c.get("first_seq") or (seqs[0] if seqs else None)))
    return "causality cycles", found


def slow_section(so: Any) -> tuple[str, list[Finding]]:
    if not isinstance(so, dict):
        return "slow operations", [(Text(brief(i)), jump_target(i)) for i in so or []]
    if so.get("timing") is False:
        return "slow operations", [(Text.styled(NO_TIMING, LABEL), None)]
    threshold = num(so.get("threshold_ms"), 1000.0)
    slow: list[Finding] = []
    for op in so.get("slowest") or []:
        if not isinstance(op, dict):
            continue
        ms = num(op.get("ms"))
        t = Text()
        t.append(f"{fmt_duration(ms * 1e6):>8} ", "replay.slow" if ms >= threshold else "replay.slowish")
        t.append(f"{_s(op.get('verb', ''))} ", verb_role(str(op.get("verb", ""))))
        t.append(_s(op.get("target", "")))
        status = op.get("status")
        if status:
            t.append(f"  {status}", "replay.bad" if int(status) >= 400 else LABEL)
        slow.append((t, op.get("seq")))
    return f"slow operations ({int(num(so.get('count'))):,} over {threshold:,.0f} ms)", slow


def error_section(ep: Any) -> tuple[str, list[Finding]]:
    if not isinstance(ep, dict):
        return "error patterns", [(Text(brief(i)), jump_target(i)) for i in ep or []]
    errors: list[Finding] = []
    for storm in ep.get("conflict_storms") or []:
        t = Text()
        t.append("conflict storm ", "replay.bad.strong")
        t.append(f"{_s(storm.get('key'))}: {storm.get('count', 0):,} × 409 in {num(storm.get('duration_s')):,.1f}s")
        t.append(f"  ops {storm.get('first_seq')}..{storm.get('last_seq')}", LABEL)
        errors.append((t, storm.get("first_seq")))
    for g in ep.get("by_status_reason") or []:
        t = Text()
        t.append(f"{g.get('status')} {_s(g.get('reason') or '')}".rstrip(), "replay.bad.strong")
        t.append(f" × {g.get('count', 0):,}")
        t.append(f"  e.g. op {_seqs(g)}", LABEL)
        errors.append((t, jump_target(g)))
    for o in (ep.get("by_object") or [])[:10]:
        t = Text()
        t.append(_s(o.get("key")), "replay.object")
        t.append(f"  {o.get('count', 0):,} errors  e.g. op {_seqs(o)}", LABEL)
        errors.append((t, jump_target(o)))
    for v in ep.get("by_verb") or []:
        t = Text()
        t.append(_s(v.get("verb")), verb_role(str(v.get("verb", ""))))
        t.append(f"  {v.get('count', 0):,} errors  e.g. op {_seqs(v)}", LABEL)
        errors.append((t, jump_target(v)))
    return f"error patterns ({int(num(ep.get('total'))):,} errors)", errors


def access_section(ap: Any) -> list[Finding]:
    access: list[Finding] = []
    if not isinstance(ap, dict):
        return access
    for k in ap.get("by_kind") or []:
        ratio = k.get("read_write_ratio")
        t = Text()
        t.append(f"{_s(k.get('kind') or '-'):<14}", "replay.heading")
        t.append(f" gets {k.get('gets', 0):,}  lists {k.get('lists', 0):,}  watches {k.get('watches', 0):,}"
                 f"  writes {k.get('writes', 0):,}  events {k.get('watch_events', 0):,}"
                 f"  reads/write {'-' if ratio is None else f'{num(ratio):.1f}'}"
                 f"  lists/min {num(k.get('lists_per_min')):.1f}")
        access.append((t, None))
    for r in ap.get("rereads") or []:
        t = Text()
        t.append("re-read ", "replay.warn")
        t.append(_s(r.get("key")), "replay.object")
        t.append(f"  {r.get('gets', 0):,} gets of {r.get('versions_read', 0):,} versions:"
                 f" {r.get('redundant_gets', 0):,} the cache already had", LABEL)
        target = r.get("most_read_version_seq")
        access.append((t, target if target else None))
    return access


def analysis_sections(data: dict[str, Any]) -> list[tuple[str, list[Finding]]]:
    """Each section's findings as (text, op to jump to)."""
    out: list[tuple[str, list[Finding]]] = [("hot loops", hot_loops(data))]
    if "causality_cycles" in data:  # what explains a hot loop: which reconcile re-triggers which
        out.append(cycle_section(data["causality_cycles"], data.get("cycles_error", "")))
    out.append(slow_section(data.get("slow_operations")))
    out.append(error_section(data.get("error_patterns")))
    out.append(("access patterns", access_section(data.get("access_patterns"))))
    return out


class AnalysisPanel(ListPane):
    """Findings; Enter (or a click) on one with an op jumps there."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.targets: dict[str, int] = {}
        self.cycles: dict[str, dict[str, Any]] = {}  # option id -> the causality cycle it shows
        self.data: dict[str, Any] | None = None
        self.error = ""

    def _row(self, text: Text, *, disabled: bool = True, oid: str | None = None) -> Option:
        width = max((self.size.width or 100) - 3, 40)
        return Option(Text("\n").join(wrap(text, width, GUTTER)), id=oid, disabled=disabled)

    def show_analysis(self, data: dict[str, Any] | None, error: str = "") -> None:
        """``data`` None: computing, or ``error`` says why it could not be."""
        self.data, self.error = data, error
        highlighted = self.highlighted
        self.clear_options()
        self.targets = {}
        self.cycles = {}
        if data is None:
            if error:
                self.add_option(self._row(Text.styled("the analysis could not be computed:", "replay.bad.strong")))
                self.add_option(self._row(Text.styled(safe(error), "replay.bad")))
            else:
                self.add_option(self._row(Text.styled("computing analysis...", LABEL)))
            return
        n = 0
        cycles = [c for c in data.get("causality_cycles") or [] if isinstance(c, dict)]
        for title, findings in analysis_sections(data):
            self.add_option(self._row(Text(f"{title.upper()}  ({len(findings)})", "replay.heading")))
            if not findings:
                self.add_option(self._row(Text.styled("  none found", LABEL)))
            for text, target in findings[:60]:
                line = Text("  ")
                if isinstance(target, int) and target > 0:
                    line.append(f"op {target:<8} ", "replay.mark")
                else:
                    line.append(" " * (GUTTER - 2))
                    target = None
                line.append_text(text)
                n += 1
                oid = f"finding-{n}"
                if target is not None:
                    self.targets[oid] = target
                if title.startswith("causality cycles") and len(self.cycles) < len(cycles):
                    self.cycles[oid] = cycles[len(self.cycles)]
                    line.append("  Enter: its rounds (Why tab)", LABEL)
                self.add_option(self._row(line, disabled=target is None, oid=oid))
            self.add_option(self._row(Text("")))
        if highlighted is not None and highlighted < self.option_count:
            self.highlighted = highlighted

    def on_resize(self) -> None:
        if self.data is not None or self.error:
            self.show_analysis(self.data, self.error)

    def palette_changed(self) -> None:
        self.show_analysis(self.data, self.error)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        cycle = self.cycles.get(event.option.id or "")
        if cycle is not None:
            self.post_message(ShowCycle(cycle))
            return
        seq = self.targets.get(event.option.id or "")
        if seq is not None:
            self.post_message(JumpTo(seq))
