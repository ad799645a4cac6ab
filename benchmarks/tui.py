"""``python -m benchmarks.tui --ops N [--db PATH] [--json]``: how the debugger feels at scale.

Measured headless (``App.run_test``, 160x45), each part in a fresh process:

* ``launch_s``: from starting the process (interpreter, imports included) to the
  first paint with rows in the timeline and the panes filled for op 1;
* ``step_ms_p50/p95``: a step key pressed, until the timeline and the position
  bar are repainted (``step_bar_ms_*``) and until every pane shows the new op
  (``step_ms_*``, the figure with the 50 ms budget); one press at a time, once
  statistics and analysis are done; ``step_busy_ms_*``: the same in the first
  seconds, while they are still being computed beside it;
* ``held_key_settle_ms``: 30 presses sent without waiting (a held key), then the
  time until the screen shows the last position: work does not queue up;
* ``page_ms_p50``: page down until every visible row is painted;
* ``jump_ms_p50``: a jump to a random percentage until rows and panes show it;
* ``follow_ms_p50/max``: another process commits one op every 200 ms to a live
  session of ``--follow-ops`` ops; the time from its commit until the app shows it
  as the current op (follow mode, cursor at the end);
* ``stats_visible_s``: from starting the process to the statistics being in the app
  (the stats tab filled from the rollups);
* ``changed_count_s``: the filter ``changed=.status.phase`` applied, until the
  timeline holds its full count (the whole session scanned through the change index).

``--load`` runs the launch part beside one busy-loop process (``python -c 'while True:
pass'``), so that the app has one core and the other is busy, as on a developer's
machine running something else.

Targets at 1,000,000 ops: launch < 1.5 s, step p50 < 50 ms and p95 < 50 ms (under load),
follow max < 500 ms, statistics visible < 1 s, the changed= count < 2 s.
Without ``--db`` the recordings go to a temporary directory removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from benchmarks.harness import percentile

SIZE = (160, 45)
TARGETS = (("launch_s", 1.5), ("step_ms_p50", 50.0), ("step_ms_p95", 50.0), ("follow_ms_max", 500.0),
           ("stats_visible_s", 1.0), ("changed_count_s", 2.0))
CHANGED_FILTER = "changed=.status.phase"
LOAD = "one busy-loop process (python -c 'while True: pass') beside the app: the other core is busy"



def _run_child(args: list[str], timeout: float = 900) -> tuple[dict[str, Any], float]:
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.tui", *args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args[:2]} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), started


# --- children -------------------------------------------------------------------------

async def _settled(pilot: Any, app: Any, seq: int, timeout: float = 30.0) -> None:
    """Every pane shows ``seq`` and the screen has been repainted."""
    deadline = time.monotonic() + timeout
    while app.debugger.detail is None or app.debugger.detail.seq != seq or app.debugger.seq != seq:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the panes never showed op {seq}")
        await asyncio.sleep(0.001)
    await pilot._wait_for_screen()


async def _rows_painted(pilot: Any, timeline: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        top = round(timeline.scroll_y)
        count = timeline.source.count if timeline.source else 0
        visible = range(top, min(top + timeline.body_height, count))
        if count and all(timeline.row_at(i) is not None for i in visible):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the timeline rows never arrived")
        await asyncio.sleep(0.001)
    await pilot._wait_for_screen()


def _send(app: Any, key: str) -> None:
    """A key as the terminal driver delivers it (Pilot.press adds idle waits of its own, 40 ms+)."""
    from textual import events

    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    app._driver.send_message(event)


async def _cursor_at(pilot: Any, app: Any, seq: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while app.debugger.seq != seq:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cursor never reached op {seq}")
        await asyncio.sleep(0.0005)
    await pilot._wait_for_screen()


async def child_launch(db: str, steps: int, seed: int) -> dict[str, Any]:
    from replay_tui.tui.app import ReplayApp, _preflight
    from replay_tui.tui.widgets.timeline import Timeline

    out: dict[str, Any] = {}
    infos = await _preflight(db, None)  # what run_app does before the screen opens
    app = ReplayApp(db, None, sessions=infos, persist_marks=False)

    async def stats_seen() -> None:
        while getattr(app, "debugger", None) is None or app.debugger.jobs["stats"].data is None:
            await asyncio.sleep(0.002)
        out["stats_at"] = time.time()

    async with app.run_test(size=SIZE) as pilot:
        watcher = asyncio.ensure_future(stats_seen())
        timeline = app.query_one(Timeline)
        await _rows_painted(pilot, timeline)
        await _settled(pilot, app, 1)
        out["painted_at"] = time.time()
        out["ops"] = app.debugger.last
        busy = []  # steps right after launch, while statistics and analysis are computed beside them
        for i in range(min(steps, 20)):
            t = time.perf_counter()
            _send(app, "l")
            await _settled(pilot, app, 2 + i)
            busy.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.01)
        out["step_busy_ms"] = busy
        # statistics and analysis run in the background after launch; measure steps once they are done
        t0 = time.monotonic()
        jobs = app.debugger.jobs
        while jobs["stats"].data is None and time.monotonic() - t0 < 120:
            await asyncio.sleep(0.05)
        out["stats_ready_s"] = time.monotonic() - t0
        await watcher
        while jobs.running() and time.monotonic() - t0 < 300:  # analysis and causality cycles after them
            await asyncio.sleep(0.05)
        rng = random.Random(seed)
        start = rng.randrange(1, max(app.debugger.last - steps - 2, 2))
        app.debugger.jump_to(str(start))
        await _settled(pilot, app, start)
        await _rows_painted(pilot, timeline)
        bar_ms, pane_ms = [], []
        for i in range(steps):
            key = "l" if i % 4 != 3 else "h"
            target = app.debugger.seq + (1 if key == "l" else -1)
            t = time.perf_counter()
            _send(app, key)
            await _cursor_at(pilot, app, target)
            bar_ms.append((time.perf_counter() - t) * 1000)
            await _settled(pilot, app, target)
            pane_ms.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.01)  # a person does not press faster than this
        out["step_bar_ms"] = bar_ms
        out["step_ms"] = pane_ms
        target = app.debugger.seq + 30
        t = time.perf_counter()
        for _ in range(30):
            _send(app, "l")
        await _settled(pilot, app, target)
        out["held_key_settle_ms"] = (time.perf_counter() - t) * 1000
        page_ms = []
        for _ in range(10):
            before = app.debugger.seq
            t = time.perf_counter()
            _send(app, "pagedown")
            while app.debugger.seq == before:
                await asyncio.sleep(0.0005)
            await _rows_painted(pilot, timeline)
            await _settled(pilot, app, app.debugger.seq)
            page_ms.append((time.perf_counter() - t) * 1000)
        out["page_ms"] = page_ms
        jump_ms = []
        for _ in range(10):
            pct = rng.randrange(1, 100)
            t = time.perf_counter()
            app.debugger.jump_to(f"{pct}%")
            expected = max(1, round(app.debugger.last * pct / 100))
            await _settled(pilot, app, expected)
            await _rows_painted(pilot, timeline)
            jump_ms.append((time.perf_counter() - t) * 1000)
        out["jump_ms"] = jump_ms
        nav = app.debugger.nav
        assert nav is not None
        t = time.perf_counter()
        app.debugger.apply_filter(CHANGED_FILTER)
        while nav.source.filter is None or nav.source.scanning:
            await asyncio.sleep(0.002)
        out["changed_count_s"] = time.perf_counter() - t
        out["changed_count"] = nav.source.base_count
        _send(app, "q")
    return out


WRITER = r"""
import sys, time
from benchmarks import generator as synth
from replay_tui.engine.format import Operation
from replay_tui.engine.writer import RecordingWriter, SessionWriter

db, ops, count, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
captured = {}
real_close = SessionWriter.close
SessionWriter.close = lambda self, **kw: self.flush()  # keep the session live: it is "still recording"
with RecordingWriter(db) as w:
    real_session = w.session
    def session(*a, **kw):
        s = real_session(*a, **kw)
        captured["s"] = s
        return s
    w.session = session
    synth.write_session(w, ops, name="live", seed=3)
    s = captured["s"]
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        time.sleep(every)
        seq = s.append(Operation(verb="get", kind="ConfigMap", api_version="v1", namespace="bench",
                                 name=f"follow-{i}", status=200, duration_ns=1_000_000,
                                 response={"kind": "ConfigMap", "apiVersion": "v1",
                                           "metadata": {"name": f"follow-{i}", "namespace": "bench"}}))
        s.flush()
        print(seq, time.time(), flush=True)
    real_close(s)
    print("done", flush=True)
"""


async def child_follow(db: str, ops: int, count: int, every: float) -> dict[str, Any]:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db, str(ops), str(count), str(every)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdin is not None and writer.stdout is not None
    if writer.stdout.readline().strip() != "ready":
        raise RuntimeError("the live writer did not start")
    from replay_tui.tui.app import ReplayApp
    from replay_tui.tui.widgets.timeline import Timeline

    commits: dict[int, float] = {}

    def read() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            parts = line.split()
            if len(parts) == 2:
                commits[int(parts[0])] = float(parts[1])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: dict[int, float] = {}
    app = ReplayApp(db, None, follow=True, persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.query_one(Timeline)
        await _settled(pilot, app, ops)
        writer.stdin.write("go\n")
        writer.stdin.flush()
        deadline = time.monotonic() + count * every + 30
        target = ops + count
        while time.monotonic() < deadline and target not in seen:
            # a new op counts as shown once its row is on screen and the cursor (following) is on it or past it
            new = [s for s in range(ops + 1, app.debugger.seq + 1)
                   if s not in seen and timeline.row_for_seq(s) is not None]
            if new:
                await pilot._wait_for_screen()
                now = time.time()
                for s in new:
                    seen[s] = now
            await asyncio.sleep(0.002)
        await pilot.press("q")
    writer.wait(timeout=60)
    reader.join(timeout=5)
    lat = [(seen[s] - commits[s]) * 1000 for s in seen if s in commits]
    missed = [s for s in commits if s not in seen]
    return {"follow_ms": lat, "follow_missed": len(missed), "follow_ops": ops}


# --- parent ---------------------------------------------------------------------------------

def run(ops: int, db: str | None, steps: int, follow_ops: int, follow_count: int, seed: int,
        load: bool = False) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="replay-tui-bench-tui-")
    result: dict[str, Any] = {"ops": ops}
    burner = None
    try:
        if db is None or not os.path.exists(db):
            db = db or os.path.join(tmp, "bench.db")
            subprocess.run([sys.executable, "-m", "benchmarks.synth", "--ops", str(ops), "--db", db,
                            "--seed", str(seed), "--json"], check=True, capture_output=True, timeout=3600)
        else:
            result["reused_db"] = db
        if load:
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            result["load"] = LOAD
        try:
            launch, started = _run_child(["--child", "launch", db, "--steps", str(steps), "--seed", str(seed)])
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        result["ops"] = launch["ops"]
        result["launch_s"] = launch["painted_at"] - started
        result["stats_ready_s"] = launch["stats_ready_s"]
        result["stats_visible_s"] = launch["stats_at"] - started
        result["changed_count_s"] = launch["changed_count_s"]
        result["changed_count"] = launch["changed_count"]
        for key in ("step_ms", "step_bar_ms", "step_busy_ms", "page_ms", "jump_ms"):
            values = launch[key]
            result[f"{key}_p50"] = statistics.median(values)
            result[f"{key}_p95"] = percentile(values, 95)
        result["held_key_settle_ms"] = launch["held_key_settle_ms"]
        if follow_count > 0:
            live = os.path.join(tmp, "live.db")
            follow, _ = _run_child(["--child", "follow", live, "--follow-ops", str(follow_ops),
                                    "--follow-count", str(follow_count)])
            lat = follow["follow_ms"]
            result["follow_ops"] = follow["follow_ops"]
            result["follow_ms_p50"] = statistics.median(lat) if lat else None
            result["follow_ms_max"] = max(lat) if lat else None
            result["follow_missed"] = follow["follow_missed"]
        result["load_avg_1m"] = os.getloadavg()[0]
        result["cpus"] = os.cpu_count()
        if result["ops"] >= 1_000_000:
            result["targets_missed"] = [k for k, limit in TARGETS
                                        if result.get(k) is not None and not result[k] < limit]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tui", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations in the synthetic session")
    parser.add_argument("--db", default=None, help="reuse this recording (or create it here and keep it)")
    parser.add_argument("--steps", type=int, default=60, help="step presses to time")
    parser.add_argument("--follow-ops", type=int, default=None,
                        help="ops already in the live session before following (default: --ops, at most 200000)")
    parser.add_argument("--follow-count", type=int, default=15, help="ops committed while following (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--load", action="store_true", help="keep the other core busy while the app runs")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    follow_ops = args.follow_ops if args.follow_ops is not None else min(args.ops, 200_000)
    if args.child:
        kind, db = args.child
        if kind == "launch":
            out = asyncio.run(child_launch(db, args.steps, args.seed))
        else:
            out = asyncio.run(child_follow(db, follow_ops, args.follow_count, 0.2))
        print(json.dumps(out))
        return 0
    if args.ops < 100:
        parser.error("--ops must be at least 100")
    try:
        result = run(args.ops, args.db, args.steps, follow_ops, args.follow_count, args.seed, args.load)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<24} {value:,.3f}" if isinstance(value, float) else f"{key:<24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
