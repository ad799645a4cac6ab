"""``replay-tui compare A.db[:SESSION] B.db[:SESSION] [--json] [--fail-on hot-loop,conflict-storm,errors]``.

Run B is the candidate (a fork running the fixed build), A the baseline.  ``--fail-on`` makes the
command a CI gate: exit status 3 when run B has a hot loop (or causality cycle), a 409 storm, or
more errors than A (a higher error rate, or an error A never had); 1 stays for bad input.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import msgspec

from replay_tui.cli.commands import emit, emit_json, table
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.textsafe import safe as escape
from replay_tui.engine.units import fmt_ms

GATE_FAILED = 3


def register(subparsers: Any) -> None:
    text = "compare two runs: the first divergence, writes per object, hot loops, 409 storms, errors, latency"
    p = subparsers.add_parser("compare", help=text, description=text + ". Run B is the candidate, A the baseline.")
    p.add_argument("a", metavar="A.db[:SESSION]", help="the baseline run (a recording; SESSION: id or name)")
    p.add_argument("b", metavar="B.db[:SESSION]", help="the run compared with it (e.g. a fork with the fix)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--fail-on", metavar="CHECKS", default="",
                   help="exit with status 3 when run B has: hot-loop, conflict-storm, errors (comma-separated)")
    p.add_argument("--settle", type=float, default=1.0, metavar="SECONDS",
                   help="a request one run made and the other did not counts as a divergence only if the other "
                        "ran this long after it (default 1)")
    p.add_argument("--window", type=float, default=60.0, metavar="SECONDS",
                   help="window for hot loops and conflict storms (default 60, as analyze)")
    p.add_argument("--hot-min", type=int, default=10, help="writes within a window that make a hot loop (default 10)")
    p.set_defaults(func=run_compare)


def split_ref(ref: str) -> tuple[str, str | None]:
    """``rec.db:2`` -> ("rec.db", "2"); a path that exists as given keeps its colons."""
    if os.path.exists(ref) or ":" not in ref:
        return ref, None
    path, _, session = ref.rpartition(":")
    return path, session or None


def run_compare(args: argparse.Namespace) -> int:
    import asyncio

    checks = tuple(c.strip() for c in args.fail_on.split(",") if c.strip())
    if not args.settle >= 0 or not args.window > 0 or args.hot_min < 1:
        raise RecordingError("--settle must be >= 0, --window > 0 and --hot-min >= 1")
    return asyncio.run(_compare(args, checks))


async def _compare(args: argparse.Namespace, checks: tuple[str, ...]) -> int:
    from replay_tui.engine.compare import compare
    from replay_tui.engine.store import Recording

    path_a, ref_a = split_ref(args.a)
    path_b, ref_b = split_ref(args.b)
    rec_a = await Recording.open(path_a)
    try:
        rec_b = await Recording.open(path_b)
        try:
            result = await compare(await rec_a.session(ref_a), await rec_b.session(ref_b), settle_s=args.settle,
                                   window_s=args.window, hot_min=args.hot_min, fail_on=checks)
        finally:
            await rec_b.close()
    finally:
        await rec_a.close()
    if args.json:
        data = msgspec.to_builtins(result)
        for finding, obj in zip(result.findings, data["findings"]):
            obj["verdict"] = finding.verdict
        emit_json(data)
    else:
        emit("\n".join(render(result, checks)))
    return GATE_FAILED if result.failed else 0


def _run_line(label: str, run: Any) -> str:
    span = f"ops {run.after + 1:,}..{run.last:,}" if run.after else f"ops 1..{run.last:,}"
    text = f"{label}  {run.path} session {run.session} ({span}, {run.duration_s:.1f}s)"
    if run.fork:
        text += f"; a fork of {run.fork.get('source')} session {run.fork.get('session')} at op {run.fork.get('seq')}"
    return escape(text)


def render(c: Any, checks: tuple[str, ...]) -> list[str]:
    out = ["compare", _run_line("  A", c.a), _run_line("  B", c.b), ""]
    if c.first is None:
        out.append("FIRST DIVERGENCE: none: the runs make the same requests on every object they share")
    else:
        out.append(f"FIRST DIVERGENCE at +{c.first.offset_s:.2f}s ({c.first.kind})")
        out.append("  " + escape(c.first.text))
    if len(c.divergences) > 1:
        out += ["", f"DIVERGENCES ({len(c.divergences)})"]
        out += [f"  +{d.offset_s:.2f}s  {d.kind:<11} {escape(d.text)}" for d in c.divergences[:20]]
        if len(c.divergences) > 20:
            out.append(f"  ... {len(c.divergences) - 20} more (see --json)")
    out += ["", "WRITES PER OBJECT (successful: a 409 or other error is not counted)"]
    if c.writes:
        rows = [("  OBJECT", "A", "B", "A/min", "B/min")]
        rows += [("  " + escape(w.object), f"{w.a:,}", f"{w.b:,}", f"{w.a_per_min:,.1f}", f"{w.b_per_min:,.1f}")
                 for w in c.writes[:20]]
        out.append(table(rows, right=(1, 2, 3, 4)))
    else:
        out.append("  none")
    out += ["", "HOT LOOPS, 409 STORMS, CYCLES"]
    if not c.findings:
        out.append("  none in either run")
    for f in c.findings:
        out.append(f"  {f.kind:<15} {escape(f.object)}: {f.verdict}")
        if f.in_a:
            out.append(f"    A: {f.a} (op {f.seq_a})")
        if f.in_b:
            out.append(f"    B: {f.b} (op {f.seq_b})")
    out += ["", f"ERRORS BY REASON (error rate A {c.error_rate_a * 100:.1f}%, B {c.error_rate_b * 100:.1f}%)"]
    if c.errors:
        errors = [("  STATUS REASON", "A", "B")] + [(f"  {e.status} {escape(e.reason) or '-'}", f"{e.a:,}",
                                                     f"{e.b:,}") for e in c.errors]
        out.append(table(errors, right=(1, 2)))
    else:
        out.append("  none")
    latency = [("LATENCY", "REQUESTS", "P50", "P95", "P99", "MAX")]
    for label, lat in (("  A", c.latency_a), ("  B", c.latency_b)):
        latency.append((label, f"{lat.requests:,}", fmt_ms(lat.p50_ms), fmt_ms(lat.p95_ms), fmt_ms(lat.p99_ms),
                        fmt_ms(lat.max_ms)))
    out += ["", table(latency, right=(1, 2, 3, 4, 5))]
    if checks:
        out.append("")
        out.append(f"FAIL-ON {','.join(checks)}: " + (f"FAILED: run B has {', '.join(c.failed)}" if c.failed
                                                        else "passed"))
    return out
