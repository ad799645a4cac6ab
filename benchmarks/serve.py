"""Serving, forking and comparing at scale: ``python -m benchmarks.serve --ops N [--db PATH] [--json]``.

Measures what a user of ``serve``, ``serve --fork`` and ``compare`` waits for (issue 16):

* ``ready_s``: ``replay-tui serve DB`` started as a user starts it (a new process) until its first
  answer (a LIST over HTTPS, with the token of the kubeconfig it wrote); ``python_floor_s``: a new
  interpreter importing what serve imports and doing nothing else (the floor); ``open_s``: the
  server's own part (open the recording, load the state at the position), in-process;
* ``list_ms_p50``: LIST of every object of the most populous kind, and ``get_ms_p50``: a GET of a
  random object, over one keep-alive HTTPS connection to that process; ``version_ms_p50``: the
  smallest answer there is (``/version``), the HTTP floor;
* ``play``: ``--play`` at 100x for ``--play-seconds`` of wall time from the middle of the session,
  one watch per served resource open over HTTP: events received against versions recorded in the
  span played (``lost`` must be 0), and how far behind the play head each arrived (``delay_ms``);
  it keeps up when the worst delay stays under a second;
* ``large_list_ms_p50``: the synthetic state is small (a few hundred objects), so LIST is also
  measured on a server holding ``--large-list`` ConfigMaps of 4 KB (5,000 by default), over HTTP;
* ``fork_seed_s``: a writable server seeded with the state at the last op;
* ``compare_s``: ``compare`` of two runs of ``--compare-ops`` operations (two seeds of the
  generator, written once to ``bench-compare-N.db`` beside ``--db`` and kept).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import yaml

from benchmarks.harness import percentile as _pct
from benchmarks.synth import ingest, max_rss_mb

SPEED = 100.0
TARGETS = {"ready_s": 1.0, "list_ms_p50": 100.0, "large_list_ms_p50": 100.0, "get_ms_p50": 5.0, "fork_seed_s": 2.0,
           "compare_s": 5.0}
IMPORTS = ("import replay_tui.cli.main, replay_tui.cli.serve, replay_tui.server.http, replay_tui.server.replay,"
           " replay_tui.recorder.tls, replay_tui.engine.store, replay_tui.recorder.cli")


# --- a served recording, as a user starts it ---------------------------------------------------------

class Served:
    """``replay-tui serve DB --at POS`` in a new process, and an HTTPS connection to it."""

    def __init__(self, db: str, at: str):
        self.dir = tempfile.mkdtemp(prefix="bench-serve-")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.argv = [sys.executable, "-m", "replay_tui", "serve", db, "--at", at, "--kubeconfig-out", self.kubeconfig]
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: http.client.HTTPSConnection | None = None
        self.token = ""

    def start(self, first_path: str) -> float:
        """Seconds from the process start to its first answer."""
        start = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stderr=subprocess.DEVNULL)
        while not (os.path.exists(self.kubeconfig) and os.path.getsize(self.kubeconfig)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}")
            time.sleep(0.001)
        with open(self.kubeconfig) as f:
            config = yaml.safe_load(f)
        cluster = config["clusters"][0]["cluster"]
        host, port = cluster["server"].split("//", 1)[1].rsplit(":", 1)
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
        self.token = config["users"][0]["user"]["token"]
        status, _ = self.get(first_path)
        if status != 200:
            raise RuntimeError(f"GET {first_path}: {status}")
        return time.perf_counter() - start

    def get(self, path: str) -> tuple[int, bytes]:
        assert self.conn is not None
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)


def _path(rt: Any, ns: str = "", name: str = "") -> str:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if ns and rt.namespaced:
        base += f"/namespaces/{ns}"
    return f"{base}/{rt.plural}" + (f"/{name}" if name else "")


def python_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True)
    return time.perf_counter() - start


# --- in-process parts --------------------------------------------------------------------------------

async def layout(db: str) -> dict[str, Any]:
    """The server's own start (open + state at the last op), and what to ask it for."""
    from replay_tui.engine.store import Recording
    from replay_tui.server.replay import Replay

    start = time.perf_counter()
    rec = await Recording.open(db)
    try:
        ses = await rec.session()
        await ses.refresh()
        replay = await Replay.open(ses, ses.last)
        open_s = time.perf_counter() - start
        server = replay.server
        counts = Counter({rt: len(server.store[rt.key]) for rt in server.types if server.store.get(rt.key)})
        top, n = counts.most_common(1)[0]
        objects = [(rt, ns, name) for rt in counts for (ns, name) in server.store[rt.key]]
        listing = server.list_objects(top, "", {})
        encode = time.perf_counter()
        import msgspec

        size = len(msgspec.json.encode(listing))
        return {"ops": ses.last, "open_s": open_s, "list": _path(top), "list_items": n, "list_bytes": size,
                "encode_ms": (time.perf_counter() - encode) * 1000, "objects": [_path(rt, ns, name) for rt, ns, name
                                                                               in objects],
                "live_objects": len(objects)}
    finally:
        await rec.close()


def _event_key(kind: str, obj: dict[str, Any]) -> str:
    """What identifies an event: the object and its resourceVersion (a deletion: the object, deleted)."""
    meta = obj.get("metadata") or {}
    version = "DELETED" if kind == "DELETED" else meta.get("resourceVersion", "")
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}@{version}"


async def watch_client(urls: list[str], out: str) -> None:
    """The watching clients of the play benchmark, in a process of their own (as kubectl would be): every
    event's resourceVersion and the monotonic time it arrived, written to ``out`` at SIGTERM."""
    import signal

    import aiohttp

    received: list[tuple[str, float]] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def read(http_client: aiohttp.ClientSession, url: str) -> None:
        async with http_client.get(url) as resp:
            async for line in resp.content:
                event = json.loads(line)
                received.append((_event_key(event["type"], event["object"]), time.monotonic()))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http_client:
        readers = [asyncio.ensure_future(read(http_client, url)) for url in urls]
        print("watching", flush=True)
        await stop.wait()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    with open(out, "w") as f:
        json.dump(received, f)


async def _busy_start(ses: Any, span_s: float, max_gap_s: float = 30.0) -> int:
    """A position from the middle on after which ``span_s`` of recorded time pass without a pause longer
    than ``max_gap_s`` (the generator's rare very slow calls leave such pauses: nothing to play)."""
    start = ses.last // 2
    begin_ns = last_ns = None
    seq = start
    while seq <= ses.last:
        rows = await ses.rows(seq, 5000)
        if not rows:
            break
        for row in rows:
            if begin_ns is None or row.ts_ns - last_ns > max_gap_s * 1e9:  # type: ignore[operator]
                start, begin_ns = row.seq, row.ts_ns
            last_ns = row.ts_ns
            if row.ts_ns - begin_ns >= span_s * 1e9:
                return start
        seq += 5000
    return ses.last // 2


async def play(db: str, seconds: float) -> dict[str, Any]:
    """--play at 100x from the middle: every recorded version delivered to the open watches, in time."""
    import gc
    import signal

    from replay_tui.engine import state
    from replay_tui.engine.store import Recording
    from replay_tui.server.http import ApiHandler, loopback_socket
    from replay_tui.server.http import Served as Listening
    from replay_tui.server.replay import Replay

    rec = await Recording.open(db)
    out = tempfile.mktemp(prefix="bench-watch-")
    try:
        ses = await rec.session()
        await ses.refresh()
        replay = await Replay.open(ses, await _busy_start(ses, seconds * SPEED))
        gc.freeze()  # as serve does once the state is loaded
        listening = Listening(ApiHandler(replay.server))
        host, port = await listening.start(loopback_socket())
        rv = replay.server.rv
        urls = [f"http://{host}:{port}{_path(rt)}?watch=true&resourceVersion={rv}" for rt in replay.server.types]
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.serve", "--watch-client", out, *urls, stdout=subprocess.PIPE)
        assert client.stdout is not None
        await client.stdout.readline()  # watching
        while sum(len(w) for w in replay.server.watchers.values()) < len(urls):
            await asyncio.sleep(0.01)
        first_seq, start_ns = replay.position, replay.time_ns
        wall = time.monotonic()
        player = asyncio.ensure_future(replay.play(SPEED))
        await asyncio.sleep(seconds)
        replay.pause()
        await player
        last_seq = replay.position
        await asyncio.sleep(1.0)  # what is on its way
        client.send_signal(signal.SIGTERM)
        await client.wait()
        await listening.close()
        with open(out) as f:
            received = [(rv, at) for rv, at in json.load(f)]
        expected: Counter[str] = Counter()
        when: dict[str, int] = {}
        async for batch in state.changes(ses, first_seq, last_seq):
            for ch in batch:
                obj = ch.body or {"kind": ch.key.kind, "metadata": {"namespace": ch.key.namespace, "name": ch.key.name}}
                key = _event_key("DELETED" if ch.body is None else "MODIFIED", obj)
                expected[key] += 1
                when[key] = ch.ts_ns
        count = sum(expected.values())
        delays = [max(0.0, at - (wall + (when[key] - start_ns) / 1e9 / SPEED)) * 1000
                  for key, at in received if key in when]
        got = Counter(key for key, _ in received)
        return {"speed": SPEED, "wall_s": seconds, "recorded_s": round((replay.time_ns - start_ns) / 1e9, 1),
                "ops_played": last_seq - first_seq, "versions": count, "events": len(received),
                "lost": sum((expected - got).values()),
                "delay_ms_p50": round(_pct(delays, 50), 1) if delays else 0.0,
                "delay_ms_p99": round(_pct(delays, 99), 1) if delays else 0.0,
                "delay_ms_max": round(max(delays), 1) if delays else 0.0,
                "keeps_up": bool(delays) and max(delays) < 1000}
    finally:
        await rec.close()
        if os.path.exists(out):
            os.unlink(out)


def large_list(count: int, samples: int = 15) -> dict[str, Any]:
    """LIST of ``count`` ConfigMaps of 4 KB each from an API server holding them, over HTTP."""
    from replay_tui.server.apiserver import ApiServer
    from replay_tui.server.http import ApiHandler, ServerThread

    def make() -> ApiHandler:
        server = ApiServer()
        for i in range(count):
            server.put("", "configmaps", {"metadata": {"name": f"cm-{i:05d}", "namespace": f"ns-{i % 20}",
                                                       "labels": {"app": "bench", "shard": str(i % 10)}},
                                          "data": {"payload": "x" * 4000}})
        return ApiHandler(server)

    with ServerThread(make) as thread:
        conn = http.client.HTTPConnection(thread.host, thread.port, timeout=60)
        times, size = [], 0
        for _ in range(samples):
            t = time.perf_counter()
            conn.request("GET", "/api/v1/configmaps")
            size = len(conn.getresponse().read())
            times.append((time.perf_counter() - t) * 1000)
        conn.close()
    return {"large_list_items": count, "large_list_bytes": size, "large_list_ms_p50": round(_pct(times, 50), 1)}


async def fork_seed(db: str) -> dict[str, Any]:
    from replay_tui.engine.store import Recording
    from replay_tui.server.fork import seed

    rec = await Recording.open(db)
    try:
        ses = await rec.session()
        await ses.refresh()
        start = time.perf_counter()
        server, _ = await seed(ses, ses.last)
        return {"fork_seed_s": time.perf_counter() - start,
                "fork_objects": sum(len(v) for v in server.store.values())}
    finally:
        await rec.close()


async def compare_runs(db: str) -> dict[str, Any]:
    from replay_tui.engine.compare import compare
    from replay_tui.engine.store import Recording

    a, b = await Recording.open(db), await Recording.open(db)
    try:
        start = time.perf_counter()
        result = await compare(await a.session("a"), await b.session("b"))
        return {"compare_s": time.perf_counter() - start, "compare_ops": [result.a.ops, result.b.ops],
                "compare_divergences": len(result.divergences)}
    finally:
        await a.close()
        await b.close()


# --- the benchmark ---------------------------------------------------------------------------------------

def measure(db: str, *, compare_db: str, play_seconds: float, samples: int, seed: int,
            large: int) -> dict[str, Any]:
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    info = asyncio.run(layout(db))
    out.update(ops=info["ops"], open_s=round(info["open_s"], 3), live_objects=info["live_objects"],
               list_items=info["list_items"], list_bytes=info["list_bytes"],
               list_encode_ms=round(info["encode_ms"], 2))
    floors, readies = [], []
    for _ in range(3):
        floors.append(python_floor())
        served = Served(db, "100%")
        try:
            readies.append(served.start(info["list"]))
        finally:
            if len(readies) < 3:
                served.stop()
    out["python_floor_s"] = round(min(floors), 3)
    out["ready_s"] = round(min(readies), 3)
    out["ready_s_max"] = round(max(readies), 3)
    try:
        lists, gets, versions = [], [], []
        for _ in range(max(samples // 10, 5)):
            t = time.perf_counter()
            status, body = served.get(info["list"])
            lists.append((time.perf_counter() - t) * 1000)
            assert status == 200 and len(json.loads(body)["items"]) == info["list_items"]
        for _ in range(samples):
            path = rng.choice(info["objects"])
            t = time.perf_counter()
            status, _ = served.get(path)
            gets.append((time.perf_counter() - t) * 1000)
            assert status == 200, path
            t = time.perf_counter()
            served.get("/version")
            versions.append((time.perf_counter() - t) * 1000)
    finally:
        served.stop()
    out.update(list_ms_p50=round(_pct(lists, 50), 2), list_ms_p95=round(_pct(lists, 95), 2),
               get_ms_p50=round(_pct(gets, 50), 3), get_ms_p95=round(_pct(gets, 95), 3),
               version_ms_p50=round(_pct(versions, 50), 3))
    out["play"] = asyncio.run(play(db, play_seconds))
    out.update(large_list(large))
    for part in (asyncio.run(fork_seed(db)), asyncio.run(compare_runs(compare_db))):
        out.update({k: round(v, 3) if isinstance(v, float) else v for k, v in part.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="ops of the synthetic session")
    parser.add_argument("--db", help="recording to reuse (or create and keep)")
    parser.add_argument("--compare-ops", type=int, default=100_000,
                        help="ops of each run compared (capped at --ops; default 100,000)")
    parser.add_argument("--play-seconds", type=float, default=0.0,
                        help="wall seconds of --play at 100x (default 10, or 1 below 100,000 ops)")
    parser.add_argument("--samples", type=int, default=300, help="GETs (and a tenth as many LISTs)")
    parser.add_argument("--large-list", type=int, default=0,
                        help="ConfigMaps in the large LIST (default 5,000, or 500 below 100,000 ops)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--watch-client", nargs="+", metavar=("OUT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.watch_client:
        asyncio.run(watch_client(args.watch_client[1:], args.watch_client[0]))
        return 0
    compare_ops = min(args.compare_ops, args.ops)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or os.path.join(tmp, "serve.db")
        if not os.path.exists(db):
            ingest(db, args.ops, seed=args.seed)
        compare_db = os.path.join(os.path.dirname(os.path.abspath(db)) if args.db else tmp,
                                  f"bench-compare-{compare_ops}.db")
        if not os.path.exists(compare_db):
            ingest(compare_db, compare_ops, seed=args.seed, name="a")
            ingest(compare_db, compare_ops, seed=args.seed + 1, name="b")
        play_s = args.play_seconds or (10.0 if args.ops >= 100_000 else 1.0)
        result = measure(db, compare_db=compare_db, play_seconds=play_s, samples=args.samples, seed=args.seed,
                         large=args.large_list or (5000 if args.ops >= 100_000 else 500))
    result["rss_mb"] = round(max_rss_mb(), 1)
    result["load_avg"] = os.getloadavg()[0]
    result["targets"] = {k: {"limit": v, "value": result.get(k), "met": result.get(k) is not None and result[k] < v}
                         for k, v in TARGETS.items()}
    p = result["play"]
    result["targets"]["play_100x"] = {"limit": "no event lost, each within 1 s of the play head",
                                      "value": {"lost": p["lost"], "delay_ms_max": p["delay_ms_max"]},
                                      "met": p["lost"] == 0 and p["keeps_up"]}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['ops']:,} ops, {result['live_objects']:,} objects at the last op (load average "
          f"{result['load_avg']:.1f})")
    print(f"  ready {result['ready_s']} s (max {result['ready_s_max']}; python floor {result['python_floor_s']} s; "
          f"open {result['open_s']} s)")
    print(f"  LIST {result['list_items']:,} objects ({result['list_bytes']:,} bytes) p50 {result['list_ms_p50']} ms;"
          f" GET p50 {result['get_ms_p50']} ms; /version p50 {result['version_ms_p50']} ms")
    print(f"  play {p['speed']:g}x for {p['wall_s']} s ({p['recorded_s']} s recorded, {p['ops_played']:,} ops): "
          f"{p['events']:,} events of {p['versions']:,} versions, {p['lost']} lost; delay p50 {p['delay_ms_p50']} ms,"
          f" p99 {p['delay_ms_p99']} ms, max {p['delay_ms_max']} ms")
    print(f"  LIST of {result['large_list_items']:,} ConfigMaps ({result['large_list_bytes']:,} bytes) p50 "
          f"{result['large_list_ms_p50']} ms")
    print(f"  fork seeded in {result['fork_seed_s']} s ({result['fork_objects']:,} objects)")
    print(f"  compare {result['compare_ops']} ops in {result['compare_s']} s ({result['compare_divergences']} "
          "divergences)")
    for name, t in result["targets"].items():
        print(f"  target {name} < {t['limit']}: {t['value']} {'met' if t['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
