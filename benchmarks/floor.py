"""The ingest floor: the rows a recording holds, inserted by bare ``executemany`` into the same schema.

``python -m benchmarks.floor --db SRC`` reads every row the writer wrote (every table of
the file), then inserts them into a fresh file created the way the writer creates one
(``engine.writer.open_write``: same schema, indexes and pragmas), in as many
transactions as the writer committed (one per ``--batch`` ops), and times only the
``executemany`` calls and the commits: what SQLite alone costs for these rows, with no
parsing, hashing, compression, change tracking or rollups.  Reading the rows back is
not timed; memory stays bounded (each table is streamed in chunks).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from typing import Any

from replay_tui.engine.writer import DEFAULT_BATCH, open_write

#: Tables the writer fills, in the order it inserts into them within a batch.
TABLES = ("objects", "paths", "dictionaries", "operations", "states", "keyframes", "reconciles", "marks",
          "rollup_ops", "rollup_time", "rollup_counts", "rollup_objects", "rollup_slowest", "rollup_reconcilers",
          "blobs")


def _chunks(conn: sqlite3.Connection, table: str, parts: int) -> Any:
    """The table's rows in ``parts`` chunks (in primary-key order), then empty lists forever."""
    total = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    size = max(1, -(-total // parts))
    cur = conn.execute(f"SELECT * FROM {table}")
    while True:
        rows = cur.fetchmany(size)
        yield rows
        if not rows:
            while True:
                yield []


def _marks(conn: sqlite3.Connection, table: str) -> str:
    return ",".join("?" * len(conn.execute(f"SELECT * FROM {table} LIMIT 0").description))


def insert_floor(src: str, *, batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    """Seconds of bare inserts of every row of ``src`` into a fresh recording."""
    source = sqlite3.connect(f"file:{os.path.abspath(src)}?mode=ro", uri=True)
    ops = source.execute("SELECT COUNT(*) FROM operations").fetchone()[0]
    parts = max(1, -(-ops // batch))
    tables = [t for t in TABLES if source.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (t,)).fetchone()]
    with tempfile.TemporaryDirectory(prefix="replay-tui-floor-", dir=os.path.dirname(os.path.abspath(src))) as tmp:
        dst = open_write(os.path.join(tmp, "floor.db"))
        readers = {t: _chunks(source, t, parts) for t in tables}
        sessions = source.execute("SELECT * FROM sessions").fetchall()
        statements = {t: f"INSERT INTO {t} VALUES ({_marks(source, t)})" for t in tables}
        spent = 0.0
        if sessions:
            start = time.perf_counter()
            dst.executemany(f"INSERT INTO sessions VALUES ({_marks(source, 'sessions')})", sessions)
            spent += time.perf_counter() - start
        for _ in range(parts):
            chunks = {t: next(readers[t]) for t in tables}  # read before the clock starts
            start = time.perf_counter()
            dst.execute("BEGIN IMMEDIATE")
            for t in tables:
                if chunks[t]:
                    dst.executemany(statements[t], chunks[t])
            dst.execute("COMMIT")
            spent += time.perf_counter() - start
        dst.close()
    source.close()
    return {"floor_ops": ops, "ingest_floor_s": spent, "ingest_floor_us_per_op": spent / ops * 1e6 if ops else 0.0,
            "floor_transactions": parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a recording the writer made")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="ops per transaction (the writer's batch)")
    args = parser.parse_args(argv)
    print(json.dumps(insert_floor(args.db, batch=args.batch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
