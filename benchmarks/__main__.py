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

#: What each figure must reach on a 2-core machine, at 1,000,000 and at 10,000,000 ops (issue 15):
#: (key, limit, "<" or ">=", the floor it is measured beside or "").
TARGETS: tuple[tuple[str, float, str, str], ...] = (
    ("ingest_ops_per_s", 50_000.0, ">=", "ingest_floor_ops_per_s"),
    ("ingest_vs_floor", 3.0, "<", ""),
    ("db_bytes_per_op", 780.0, "<", "json_bytes_per_op"),  # 60 % of release 1's 1.3 KB/op
    ("open_s", 1.0, "<", ""),
    ("step_ms_p50", 1.0, "<", ""),
    ("jump_state_ms_p50", 10.0, "<", ""),
    ("diff_ms_p50", 20.0, "<", ""),
    ("stats_s", 1.0, "<", "sqlite_floor_s"),
    ("stats_vs_floor", 0.1, "<", ""),
    ("when_first_s_hot", 0.5, "<", ""),
    ("report_s", 10.0, "<", ""),
    ("rss_mb", 300.0, "<", ""),
)
TARGET_OPS = 1_000_000  # targets are checked from this size up (1M and 10M)

_ROWS = (
    ("ops", "operations", "{:,.0f}"),
    ("ingest_ops_per_s", "ingest (generate + write)", "{:,.0f} ops/s"),
    ("ingest_floor_ops_per_s", "  floor: bare executemany of the same rows", "{:,.0f} ops/s"),
    ("ingest_vs_floor", "  ingest time / floor time", "{:.2f}x"),
    ("ingest_ops_per_cpu_s", "  per CPU second (all threads)", "{:,.0f} ops/s"),
    ("gen_us_per_op", "  generator alone", "{:.1f} us/op"),
    ("writer_us_per_op", "  writer (ingest - generator)", "{:.1f} us/op"),
    ("ingest_rss_mb", "  ingest peak RSS", "{:.0f} MB"),
    ("db_mb", "recording size", "{:.1f} MB"),
    ("db_bytes_per_op", "  bytes per op on disk", "{:,.0f} B"),
    ("json_bytes_per_op", "  raw JSON bodies per op (what a log would hold)", "{:,.0f} B"),
    ("db_vs_json", "  recording / raw JSON", "{:.3f}x"),
    ("open_s", "open (Recording.open + session + refresh)", "{:.3f} s"),
    ("step_ms_p50", "step +-1 with full op, p50", "{:.2f} ms"),
    ("step_ms_p95", "step +-1 with full op, p95", "{:.2f} ms"),
    ("jump_state_ms_p50", "random jump + snapshot + object, p50", "{:.2f} ms"),
    ("jump_state_ms_p95", "random jump + snapshot + object, p95", "{:.2f} ms"),
    ("diff_ms_p50", "one-object diff between random positions, p50", "{:.2f} ms"),
    ("diff_ms_p95", "one-object diff between random positions, p95", "{:.2f} ms"),
    ("stats_s", "stats, cold connection", "{:.3f} s"),
    ("sqlite_floor_s", "  floor: plain sqlite scan of the same columns", "{:.3f} s"),
    ("stats_vs_floor", "  stats / floor", "{:.3f}x"),
    ("when_first_s_hot", "when: first answer, hottest object, conditions[Ready]", "{:.3f} s"),
    ("when_first_s_hot_max", "  the worst of the first answers at random positions", "{:.3f} s"),
    ("when_rv_first_s_hot", "  the same for .metadata.resourceVersion", "{:.3f} s"),
    ("when_rv_first_s_hot_max", "  the worst of its first answers", "{:.3f} s"),
    ("when_full_s_hot", "when: the whole history read (CLI counts, TUI index)", "{:.3f} s"),
    ("when_rv_full_s_hot", "  the same for .metadata.resourceVersion", "{:.3f} s"),
    ("report_s", "report of the whole session", "{:.2f} s"),
    ("rss_mb", "reading process peak RSS", "{:.0f} MB"),
)


def check_targets(result: dict[str, Any]) -> list[str]:
    """Keys whose figure misses its target (only meaningful from TARGET_OPS ops up)."""
    missed = []
    for key, limit, how, _ in TARGETS:
        value = result.get(key)
        if value is None:
            continue
        if (how == "<" and not value < limit) or (how == ">=" and not value >= limit):
            missed.append(key)
    return missed


def table(result: dict[str, Any]) -> str:
    limits = {key: (limit, how, floor) for key, limit, how, floor in TARGETS}
    lines = [f"{'':<56} {'measured':>16}   target          floor"]
    for key, label, fmt in _ROWS:
        if key not in result:
            continue
        line = f"{label:<56} {fmt.format(result[key]):>16}"
        if key in limits:
            limit, how, floor = limits[key]
            ok = result[key] < limit if how == "<" else result[key] >= limit
            line += f"   {how} {limit:<10g} {'ok' if ok else 'MISSED':<6}"
            if floor and floor in result:
                line += f" {result[floor]:,.3f}"
        lines.append(line)
    lines.append("")
    lines.append("targets (issue 15) hold at 1,000,000 and 10,000,000 ops on a 2-core machine")
    for name in ("jump_state", "ingest_floor", "when", "report"):
        lines.append(f"{name} = {result.get(name + '_definition', '')}")
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
    result["targets_missed"] = check_targets(result) if result["ops"] >= TARGET_OPS else []
    result["targets"] = {key: {"limit": limit, "how": how, "value": result.get(key),
                               "floor": result.get(floor) if floor else None}
                         for key, limit, how, floor in TARGETS}
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
