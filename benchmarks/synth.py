"""Write one synthetic session: ``python -m benchmarks.synth --ops N --db PATH [--seed S]``.

Prints one line (or, with ``--json``, one JSON object) with the ingest rate and
the writing process's peak RSS, so the harness can run it as a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

from benchmarks.generator import write_session
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.writer import RecordingWriter, SessionWriter


def max_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest(db: str, ops: int, *, seed: int = 0, name: str = "synthetic", process: bool = False) -> dict[str, float]:
    """Generate and write ``ops`` operations; the time covers generation, writing and close.

    ``json_mb`` is what the bodies weigh as the JSON the writer was handed (a raw log of
    them would hold that much), ``db_mb`` what the recording holds on disk."""
    start, cpu_start = time.perf_counter(), _cpu_s()
    sessions: list[SessionWriter] = []
    with RecordingWriter(db, process=process) as writer:
        opened = writer.session

        def session(*args: Any, **kw: Any) -> SessionWriter:
            sessions.append(opened(*args, **kw))
            return sessions[-1]

        writer.session = session  # type: ignore[method-assign]
        session_id = write_session(writer, ops, name=name, seed=seed)
    seconds, cpu = time.perf_counter() - start, _cpu_s() - cpu_start
    size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
    json_bytes = sum(s.json_bytes for s in sessions)
    return {"session": session_id, "ops": ops, "ingest_s": seconds,
            "ingest_ops_per_s": ops / seconds if seconds > 0 else 0.0,
            # CPU seconds of all threads: on a shared machine a steadier figure than wall time.
            "ingest_cpu_s": cpu, "ingest_ops_per_cpu_s": ops / cpu if cpu > 0 else 0.0,
            "db_mb": size / 1e6, "json_mb": json_bytes / 1e6,
            "db_bytes_per_op": size / ops if ops else 0.0, "json_bytes_per_op": json_bytes / ops if ops else 0.0,
            "ingest_rss_mb": max_rss_mb()}


def _cpu_s() -> float:
    """CPU seconds of this process's threads and of its children that ended (the writer process)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, required=True, help="number of operations")
    parser.add_argument("--db", required=True, help="recording file (created, or a session is added)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="synthetic", help="session name")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--writer-process", action="store_true", help="commit in a process of its own")
    args = parser.parse_args(argv)
    if args.ops < 0:
        parser.error("--ops must be >= 0")
    try:
        result = ingest(args.db, args.ops, seed=args.seed, name=args.name, process=args.writer_process)
    except RecordingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.ops} ops into {args.db} (session {result['session']}) in {result['ingest_s']:.2f} s:"
              f" {result['ingest_ops_per_s']:,.0f} ops/s, {result['db_mb']:.1f} MB,"
              f" peak RSS {result['ingest_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
