"""``python -m benchmarks --ops N [--json]``: ingest a synthetic session and time reading it.

Without ``--db`` the recording goes to a temporary directory that is removed
afterwards; ``--db PATH`` reuses an existing recording (no ingest) or creates one
there and keeps it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks.harness import run

#: What each figure must reach at 1,000,000 ops on a 2-core machine: (key, limit, "<" or ">=").
TARGETS: tuple[tuple[str, float, str], ...] = (
    ("open_s", 1.0, "<"),
    ("step_ms_p50", 1.0, "<"),
    ("jump_state_ms_p50", 10.0, "<"),
    ("diff_ms_p50", 20.0, "<"),
    ("stats_s", 2.0, "<"),
    ("ingest_ops_per_s", 50_000.0, ">="),
    ("rss_mb", 300.0, "<"),
)

_ROWS = (
    ("ops", "operations", "{:,.0f}"),
    ("ingest_ops_per_s", "ingest (generate + write)", "{:,.0f} ops/s"),
    ("ingest_ops_per_cpu_s", "  per CPU second (all threads)", "{:,.0f} ops/s"),
    ("gen_us_per_op", "  generator alone", "{:.1f} us/op"),
    ("writer_us_per_op", "  writer (ingest - generator)", "{:.1f} us/op"),
    ("ingest_rss_mb", "  ingest peak RSS", "{:.0f} MB"),
    ("db_mb", "recording size", "{:.1f} MB"),
    ("open_s", "open (Recording.open + session + refresh)", "{:.3f} s"),
    ("step_ms_p50", "step +-1 with full op, p50", "{:.2f} ms"),
    ("step_ms_p95", "step +-1 with full op, p95", "{:.2f} ms"),
    ("jump_state_ms_p50", "random jump + snapshot + object, p50", "{:.2f} ms"),
    ("jump_state_ms_p95", "random jump + snapshot + object, p95", "{:.2f} ms"),
    ("diff_ms_p50", "one-object diff between random positions, p50", "{:.2f} ms"),
    ("diff_ms_p95", "one-object diff between random positions, p95", "{:.2f} ms"),
    ("stats_s", "stats, cold connection", "{:.3f} s"),
    ("sqlite_floor_s", "plain sqlite scan of the same columns", "{:.3f} s"),
    ("stats_vs_floor", "stats / floor", "{:.2f}x"),
    ("rss_mb", "reading process peak RSS", "{:.0f} MB"),
)


def check_targets(result: dict[str, Any]) -> list[str]:
    """Keys whose figure misses its 1M-op target (only meaningful at about 1M ops)."""
    missed = []
    for key, limit, how in TARGETS:
        value = result.get(key)
        if value is None:
            continue
        if (how == "<" and not value < limit) or (how == ">=" and not value >= limit):
            missed.append(key)
    return missed


def table(result: dict[str, Any]) -> str:
    limits = {key: (limit, how) for key, limit, how in TARGETS}
    lines = []
    for key, label, fmt in _ROWS:
        if key not in result:
            continue
        line = f"{label:<48} {fmt.format(result[key]):>16}"
        if key in limits:
            limit, how = limits[key]
            ok = result[key] < limit if how == "<" else result[key] >= limit
            line += f"   target {how} {limit:g}  {'ok' if ok else 'MISSED'}"
        lines.append(line)
    lines.append("")
    lines.append("targets are for 1,000,000 ops on a 2-core machine")
    lines.append(f"jump_state = {result.get('jump_state_definition', '')}")
    lines.append(f"load average during the run: {result.get('load_avg_1m', 0):.2f} on {result.get('cpus')} CPUs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations to ingest (default 100000)")
    parser.add_argument("--db", default=None, help="reuse this recording, or create it here and keep it")
    parser.add_argument("--session", default=None, help="session of --db to read (default: the only one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=200, help="random positions per measurement")
    parser.add_argument("--stats-runs", type=int, default=3, help="cold stats runs (median reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.ops < 2:
        parser.error("--ops must be at least 2")
    if args.samples < 1 or args.stats_runs < 1:
        parser.error("--samples and --stats-runs must be at least 1")
    try:
        result = run(ops=args.ops, db=args.db, seed=args.seed, samples=args.samples,
                     stats_runs=args.stats_runs, session_ref=args.session)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result["targets_missed"] = check_targets(result) if result["ops"] >= 1_000_000 else []
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
