"""How times, durations and sizes read: one place, so the CLI and the TUI agree."""

from __future__ import annotations

import datetime as dt

from replay_tui.engine.format import EVENT_VERBS, has_latency


def fmt_ts(ts_ns: int | None, *, date: bool = True) -> str:
    """An instant in UTC, to the microsecond: '2026-11-22 18:03:04.123456Z'."""
    if not ts_ns:
        return "-"
    when = dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC)
    text = when.strftime("%Y-%m-%d %H:%M:%S.%f" if date else "%H:%M:%S.%f")
    return text + "Z"


def fmt_duration(ns: int | float | None) -> str:
    """A duration with a unit a person reads at a glance: 850us, 12.3ms, 1.52s, 3m04s."""
    if ns is None:
        return "-"
    ns = float(ns)
    if ns < 1_000:
        return f"{ns:.0f}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}us"
    if ns < 1_000_000_000:
        ms = ns / 1e6
        return f"{ms:.1f}ms" if ms < 100 else f"{ms:.0f}ms"
    s = ns / 1e9
    if s < 60:
        return f"{s:.2f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def fmt_elapsed(ns: int) -> str:
    """Elapsed time since the session started: +1m02.345s."""
    sign = "-" if ns < 0 else "+"
    ns = abs(ns)
    s = ns / 1e9
    m, s = divmod(s, 60)
    h, m = divmod(int(m), 60)
    if h:
        return f"{sign}{h}h{m:02d}m{s:06.3f}s"
    if m:
        return f"{sign}{m}m{s:06.3f}s"
    return f"{sign}{s:.3f}s"


def fmt_latency(verb: str, duration_ns: int, *, why: bool = False) -> str:
    """An op's latency, or '-' when it has none recorded (``has_latency``); ``why`` says why not."""
    if has_latency(verb, duration_ns):
        return fmt_duration(duration_ns)
    if not why:
        return "-"
    return "-  (watch events have no latency of their own)" if verb in EVENT_VERBS else \
        "-  (not recorded by this source)"


def elide(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, a long one losing its middle: object names
    (``Service/default/cassandra-test-cluster-dc1-nodes``) differ at their end."""
    if len(text) <= width or width < 12:
        return text
    head = (width - 1) * 2 // 5
    return text[:head] + "…" + text[-(width - 1 - head):]


def fmt_count(n: int, one: str, many: str = "") -> str:
    """'1 write', '1,069 writes'."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def fmt_seqs(seqs: list[int], limit: int = 6) -> str:
    """'12, 13, 16 ...' : the first ops of a finding, to jump to."""
    return ", ".join(str(s) for s in seqs[:limit]) + (" ..." if len(seqs) > limit else "")


NO_TIMING = "no timing data (the source recorded no latency for its requests)"


def fmt_ms(ms: float | None) -> str:
    """A latency given in milliseconds (as statistics carry them), read like any duration."""
    return "-" if ms is None else fmt_duration(ms * 1e6)


def fmt_percent(ratio: float) -> str:
    """A ratio from 0 to 1 as a percentage: 0.0123 -> '1.2%'."""
    return f"{ratio * 100:.1f}%"
