"""The benchmark: ingest a synthetic session, then time what a user of the debugger waits for.

Each phase runs in a fresh subprocess so that one phase's memory and caches do
not flatter another: ``ingest`` (generate + write, its own peak RSS), ``gen``
(the generator alone, to tell its share of the ingest time), and ``read`` (open,
step, jump, diff, stats, the plain-sqlite floor; its peak RSS is ``rss_mb``).

Run as ``python -m benchmarks``; ``python -m benchmarks.harness read --db PATH``
runs one phase and prints its JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.synth import max_rss_mb

JUMP_STATE_DEFINITION = (
    "Cursor.goto(random seq) + state.snapshot(session, seq) + state.object_at(session, obj, seq)"
    " of the op's object (a random live object when the op has none)")
STEP_DEFINITION = "Cursor.step(+1 or -1) at a random seq + session.op(seq) with bodies decoded"
DIFF_DEFINITION = (
    "diff.object_diff(session, obj, a, b): obj of a random state row (objects weighted by how"
    " often they change), a and b random positions")
STATS_DEFINITION = "await engine.stats.compute(session) on a freshly opened Recording (median of runs)"
FLOOR_DEFINITION = (
    "plain sqlite3: SELECT verb, kind, status, dur_bucket, duration_ns, ts_ns, error, obj_id over the"
    " session's rowid range, iterated in Python, fresh connection (median of runs)")
INGEST_FLOOR_DEFINITION = (
    "benchmarks.floor: every row of the recording inserted by bare executemany into a fresh file with the"
    " same schema and pragmas, in as many transactions as the writer committed (only inserts and commits timed)")
WHEN_FIELD = ".status.conditions[type=Ready].status"
WHEN_POSITIONS = 20  # further first answers (after or before a random position) on the unread index
WHEN_DEFINITION = (
    f"HOT:{WHEN_FIELD}, cold: watch.watch(build=False) + after(N) (the first answer: what a continue"
    " needs; the versions around N are read, not the object's history), HOT = the object with the most"
    " versions, N random; when_full = then update(), reading its whole history (what replay-tui when"
    " needs for its counts, and the TUI's index for c/C); when_rv = the same for .metadata.resourceVersion"
    " (a field every version changes: the whole history decodes all of them); _max: the worst of"
    f" {WHEN_POSITIONS + 1} first answers (after or before random positions)")
REPORT_DEFINITION = "await engine.report.build(session) on a freshly opened Recording (what replay-tui report computes)"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in percent (every benchmark reports its figures this way)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def _timed_ms(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000


async def read_phase(db: str, *, session_ref: str | None, samples: int, seed: int,
                     stats_runs: int) -> dict[str, Any]:
    """Every reading measurement, on one process (its peak RSS is reported)."""
    from replay_tui.engine import report, state, stats, watch
    from replay_tui.engine.cursor import Cursor
    from replay_tui.engine.diff import object_diff
    from replay_tui.engine.store import Recording

    rng = random.Random(seed)
    out: dict[str, Any] = {}

    start = time.perf_counter()
    rec = await Recording.open(db)
    session = await rec.session(session_ref)
    await session.refresh()
    out["open_s"] = time.perf_counter() - start
    last = session.last
    if last < 2:
        await rec.close()
        raise SystemExit("the session has fewer than 2 ops; nothing to measure")
    try:
        cursor = Cursor(session)

        step_ms = []
        for _ in range(samples * 5):
            cursor.seq = rng.randint(2, last - 1)
            direction = 1 if rng.random() < 0.5 else -1

            async def step(direction: int = direction) -> None:
                seq = cursor.step(direction)
                await session.op(seq)
            step_ms.append(await _timed_ms(step))

        jump_ms = []
        for _ in range(samples):
            target = rng.randint(1, last)

            async def jump(target: int = target) -> None:
                seq = cursor.goto(target)
                snap = await state.snapshot(session, seq)
                obj = await session.op_object(seq)
                if obj is None and snap.versions:
                    obj = rng.choice(list(snap.versions))
                if obj is not None:
                    await state.object_at(session, obj, seq)
            jump_ms.append(await _timed_ms(jump))

        diff_ms = []
        present = 0
        for _ in range(samples):
            row = await rec.fetchone(
                "SELECT obj_id FROM states WHERE session_id = ? AND seq >= ? ORDER BY seq LIMIT 1",
                (session.id, rng.randint(1, last)))
            if row is None:
                row = await rec.fetchone(
                    "SELECT obj_id FROM states WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
                    (session.id,))
            if row is None:
                break
            obj, a, b = row[0], rng.randint(1, last), rng.randint(1, last)

            async def one_diff(obj: int = obj, a: int = a, b: int = b) -> None:
                await object_diff(session, obj, a, b)
            diff_ms.append(await _timed_ms(one_diff))
            if await state.version_at(session, obj, min(a, b)) is not None:
                present += 1
        id_range = await rec.fetchone(
            "SELECT MIN(id), MAX(id) FROM operations WHERE session_id = ?", (session.id,))
        session_id = session.id
    finally:
        await rec.close()

    when_s: list[float] = []
    when_rv_s: list[float] = []
    full_s: dict[str, float] = {}
    for field, sink in ((WHEN_FIELD, when_s), (".metadata.resourceVersion", when_rv_s)):
        cold = await Recording.open(db)
        try:
            s = await cold.session(session_ref)
            row = await cold.fetchone(
                "SELECT obj_id FROM states INDEXED BY states_object WHERE session_id = ? GROUP BY obj_id"
                " ORDER BY COUNT(*) DESC LIMIT 1", (s.id,))
            assert row is not None
            key = (await s.object_keys([row[0]]))[row[0]]
            position = rng.randint(1, s.last)
            start = time.perf_counter()
            index = await watch.watch(s, f"{key}:{field}", build=False)
            await index.after(position)
            sink.append(time.perf_counter() - start)
            scanned = index.scanned
            for _ in range(WHEN_POSITIONS):  # more positions, the index still unread: the spread
                position = rng.randint(1, s.last)
                start = time.perf_counter()
                await (index.after(position) if rng.random() < 0.5 else index.before(position))
                sink.append(time.perf_counter() - start)
            start = time.perf_counter()
            await index.update()
            full_s[field] = time.perf_counter() - start
            out[f"when_hot_object{'' if field == WHEN_FIELD else '_rv'}"] = {
                "object": str(key), "versions": index.versions, "first_answer_decoded": scanned,
                "decoded": index.decoded, "changes": len(index)}
        finally:
            await cold.close()

    async def cold_runs(runs: int, work: Callable[[Any], Awaitable[Any]]) -> list[float]:
        """Seconds ``work(session)`` takes, each run on a freshly opened recording."""
        took = []
        for _ in range(runs):
            cold = await Recording.open(db)
            try:
                s = await cold.session(session_ref)
                start = time.perf_counter()
                await work(s)
                took.append(time.perf_counter() - start)
            finally:
                await cold.close()
        return took

    report_s = await cold_runs(1 if last >= 2_000_000 else 2, report.build)
    stats_s = await cold_runs(stats_runs, stats.compute)

    floor_s = []
    for _ in range(stats_runs):
        conn = sqlite3.connect(f"file:{os.path.abspath(db)}?mode=ro", uri=True)
        try:
            start = time.perf_counter()
            cur = conn.execute(
                "SELECT verb, kind, status, dur_bucket, duration_ns, ts_ns, error, obj_id"
                " FROM operations WHERE id BETWEEN ? AND ? AND +session_id = ?",
                (id_range[0], id_range[1], session_id))  # type: ignore[index]
            sum(1 for _row in cur)  # the floor: a bare scan of the same rows
            floor_s.append(time.perf_counter() - start)
        finally:
            conn.close()

    out.update({
        "session_ops": last,
        "step_ms_p50": percentile(step_ms, 50), "step_ms_p95": percentile(step_ms, 95),
        "jump_state_ms_p50": percentile(jump_ms, 50), "jump_state_ms_p95": percentile(jump_ms, 95),
        "diff_ms_p50": percentile(diff_ms, 50), "diff_ms_p95": percentile(diff_ms, 95),
        "diff_samples_with_object": present,
        "stats_s": statistics.median(stats_s),
        "sqlite_floor_s": statistics.median(floor_s),
        "when_first_s_hot": when_s[0], "when_rv_first_s_hot": when_rv_s[0],
        "when_first_s_hot_max": max(when_s), "when_rv_first_s_hot_max": max(when_rv_s),
        "when_full_s_hot": full_s[WHEN_FIELD], "when_rv_full_s_hot": full_s[".metadata.resourceVersion"],
        "report_s": min(report_s),
        "samples": samples,
        "rss_mb": max_rss_mb(),
    })
    out["stats_vs_floor"] = out["stats_s"] / out["sqlite_floor_s"] if out["sqlite_floor_s"] else 0.0
    return out


def gen_phase(ops: int, seed: int) -> dict[str, Any]:
    """The generator alone, into a sink that keeps nothing: its share of the ingest time."""
    from benchmarks import generator as synth

    class _Sink:
        id = 0

        def __init__(self) -> None:
            self.seq = 0
            self.spans = 0

        def append(self, op: Any) -> int:
            self.seq += 1
            return self.seq

        def begin_reconcile(self, *args: Any, **kw: Any) -> int:
            self.spans += 1
            return self.spans

        def end_reconcile(self, *args: Any, **kw: Any) -> None:
            pass

        def close(self) -> None:
            pass

        def abort(self) -> None:
            pass

    class _Writer:
        def session(self, *args: Any, **kw: Any) -> _Sink:
            return _Sink()

    start, cpu_start = time.perf_counter(), time.process_time()
    synth.write_session(_Writer(), ops, seed=seed)  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"gen_ops": ops, "gen_us_per_op": seconds / ops * 1e6 if ops else 0.0,
            "gen_cpu_us_per_op": cpu / ops * 1e6 if ops else 0.0}


def _subprocess(args: list[str]) -> dict[str, Any]:
    """Run a phase in a fresh interpreter; its last stdout line is its JSON."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"{' '.join(args[:3])} failed: {tail[-1] if tail else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(*, ops: int, db: str | None, seed: int, samples: int, stats_runs: int,
        session_ref: str | None = None) -> dict[str, Any]:
    """The whole benchmark; returns the flat result dict (see ``python -m benchmarks --help``)."""
    import shutil
    import tempfile

    created_dir = None
    result: dict[str, Any] = {"ops": ops, "seed": seed}
    reuse = db is not None and os.path.exists(db)
    if db is None:
        created_dir = tempfile.mkdtemp(prefix="replay-tui-bench-")
        db = os.path.join(created_dir, "bench.db")
    try:
        if reuse:
            result["reused_db"] = db
            result["db_mb"] = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p)) / 1e6
        else:
            ingest = _subprocess(["-m", "benchmarks.synth", "--ops", str(ops), "--db", db,
                                  "--seed", str(seed), "--json"])
            ingest.pop("session", None)
            result.update(ingest)
            gen_ops = min(ops, 100_000)
            gen = _subprocess(["-m", "benchmarks.harness", "gen", "--ops", str(gen_ops),
                               "--seed", str(seed)])
            result.update(gen)
            per_op = 1e6 / result["ingest_ops_per_s"] if result["ingest_ops_per_s"] else 0.0
            result["writer_us_per_op"] = max(0.0, per_op - gen["gen_us_per_op"])
            result["writer_ops_per_s"] = 1e6 / result["writer_us_per_op"] if result["writer_us_per_op"] else 0.0
            floor = _subprocess(["-m", "benchmarks.floor", "--db", db])
            result["ingest_floor_s"] = floor["ingest_floor_s"]
            result["ingest_floor_ops_per_s"] = ops / floor["ingest_floor_s"] if floor["ingest_floor_s"] else 0.0
            result["ingest_vs_floor"] = result["ingest_s"] / floor["ingest_floor_s"] if floor["ingest_floor_s"] else 0.0
            result["db_vs_json"] = result["db_mb"] / result["json_mb"] if result.get("json_mb") else 0.0
        read_args = ["-m", "benchmarks.harness", "read", "--db", db, "--samples", str(samples),
                     "--seed", str(seed), "--stats-runs", str(stats_runs)]
        if session_ref:
            read_args += ["--session", session_ref]
        read = _subprocess(read_args)
        if reuse:
            result["ops"] = read["session_ops"]
        result.update(read)
        result.update({
            "step_definition": STEP_DEFINITION, "jump_state_definition": JUMP_STATE_DEFINITION,
            "diff_definition": DIFF_DEFINITION, "stats_definition": STATS_DEFINITION,
            "sqlite_floor_definition": FLOOR_DEFINITION, "ingest_floor_definition": INGEST_FLOOR_DEFINITION,
            "when_definition": WHEN_DEFINITION, "report_definition": REPORT_DEFINITION, "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        })
    finally:
        if created_dir is not None:
            shutil.rmtree(created_dir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness")
    sub = parser.add_subparsers(dest="phase", required=True)
    read = sub.add_parser("read", help="time the reading side on an existing recording")
    read.add_argument("--db", required=True)
    read.add_argument("--session", default=None)
    read.add_argument("--samples", type=int, default=200)
    read.add_argument("--seed", type=int, default=0)
    read.add_argument("--stats-runs", type=int, default=3)
    gen = sub.add_parser("gen", help="time the synthetic generator alone")
    gen.add_argument("--ops", type=int, required=True)
    gen.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.phase == "read":
        out = asyncio.run(read_phase(args.db, session_ref=args.session, samples=args.samples,
                                     seed=args.seed, stats_runs=args.stats_runs))
    else:
        out = gen_phase(args.ops, args.seed)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
