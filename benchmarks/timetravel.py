"""Time-travel queries at scale: ``python -m benchmarks.timetravel --ops N [--db PATH] [--json]``.

Measures what a user of the debugger waits for (issue 6):

* ``build_s``: the first build of an object's change index, for the object with
  the most versions (the synthetic hot loop), the 99th and the 50th percentile
  object by versions (``build_s_hot``: the hot object's Ready condition, the target;
  ``build_s_hot_every_version``: its resourceVersion, which every version changes);
* ``reverse_continue_ms``: after that build, ``watch.change_index(...)`` (a cache
  hit that also checks for new ops) + ``prev(cursor)`` from random cursors;
* ``query first match``: time to the first streamed match of whole-session
  queries, and to the end of the stream;
* ``why_ms``: a provenance chain at random positions;
* ``causality_s``: the whole session's causality graph.

Without ``--db`` a synthetic session of ``--ops`` ops is written to a temporary
directory (removed afterwards); ``--db PATH`` reuses a recording, or creates it
there and keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from typing import Any

from benchmarks.harness import percentile
from benchmarks.synth import ingest, max_rss_mb

QUERIES = (
    "verb=update kind=WebApp",
    "status>=500",
    "latency>2s",
    "verb=update kind=Pod ns=default status>=400 latency>200ms changed=.status.phase",
    "changed=.status.phase",
    "kind=Deployment changed=.spec.replicas",
)
FIELDS = (".metadata.resourceVersion", ".status.conditions[type=Ready].status")
TARGETS = {"reverse_continue_ms_max": 50.0, "build_s_hot": 1.0, "query_first_match_ms_max": 100.0}



async def measure(db: str, *, session_ref: str | None, seed: int, samples: int) -> dict[str, Any]:
    from replay_tui.engine import causality, filters, provenance, query, watch
    from replay_tui.engine.store import Recording

    rng = random.Random(seed)
    out: dict[str, Any] = {}
    rec = await Recording.open(db)
    try:
        session = await rec.session(session_ref)
        await session.refresh()
        out["ops"] = session.last
        counts = [r for r in await rec.fetchall(
            "SELECT obj_id, COUNT(*) n FROM states WHERE session_id = ? GROUP BY obj_id ORDER BY n",
            (session.id,))]
        picks = {"hot": counts[-1], "p99": counts[int(len(counts) * 0.99) - 1],
                 "p50": counts[len(counts) // 2]}
        builds: dict[str, Any] = {}
        for label, (obj_id, versions) in picks.items():
            key = (await session.object_keys([obj_id]))[obj_id]
            for path in FIELDS:
                watch.forget(session)
                start = time.perf_counter()
                index = await watch.change_index(session, obj_id, path)
                seconds = time.perf_counter() - start
                rc: list[float] = []
                for _ in range(samples):
                    pos = rng.randint(1, session.last)
                    t = time.perf_counter()
                    again = await watch.change_index(session, obj_id, path)
                    again.prev(pos)
                    rc.append((time.perf_counter() - t) * 1000)
                builds[f"{label} {path}"] = {
                    "object": str(key), "versions": versions, "changes": len(index), "decoded": index.decoded,
                    "build_s": round(seconds, 3),
                    "reverse_continue_ms_p50": round(percentile(rc, 50), 3),
                    "reverse_continue_ms_max": round(max(rc), 3)}
        out["watch"] = builds
        # The target is for a field a person watches (it changes now and then); a field every
        # version changes (resourceVersion) decodes them all: reported beside it.
        out["build_s_hot"] = builds[f"hot {FIELDS[1]}"]["build_s"]
        out["build_s_hot_every_version"] = builds[f"hot {FIELDS[0]}"]["build_s"]
        out["reverse_continue_ms_max"] = max(v["reverse_continue_ms_max"] for v in builds.values())

        queries: dict[str, Any] = {}
        for text in QUERIES:
            flt = filters.parse(text)
            start = time.perf_counter()
            first = None
            found = 0
            async for matches in query.stream(session, flt):
                if first is None:
                    first = (time.perf_counter() - start) * 1000
                found += len(matches)
            queries[text] = {"first_match_ms": None if first is None else round(first, 1),
                             "whole_session_s": round(time.perf_counter() - start, 3), "matches": found}
        out["queries"] = queries
        firsts = [q["first_match_ms"] for q in queries.values() if q["first_match_ms"] is not None]
        out["query_first_match_ms_max"] = max(firsts) if firsts else None

        why: list[float] = []
        objects = [obj_id for obj_id, _ in counts]
        for _ in range(max(samples // 20, 10)):
            obj_id = rng.choice(objects)
            pos = rng.randint(1, session.last)
            t = time.perf_counter()
            await provenance.explain(session, obj_id, pos)
            why.append((time.perf_counter() - t) * 1000)
        out["why_ms_p50"] = round(percentile(why, 50), 2)
        out["why_ms_max"] = round(max(why), 2)

        start = time.perf_counter()
        graph = await causality.graph(session)
        out["causality_s"] = round(time.perf_counter() - start, 2)
        out["causality"] = {"reconciles": graph.reconciles, "linked": graph.caused_by_writes,
                            "cycles": [{"controllers": c.controllers, "rounds": c.rounds,
                                        "longest_run": c.longest_run} for c in graph.cycles]}
    finally:
        await rec.close()
    out["rss_mb"] = round(max_rss_mb(), 1)
    out["load_avg"] = os.getloadavg()[0]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timetravel",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="ops of the synthetic session")
    parser.add_argument("--db", help="recording to reuse (or create and keep)")
    parser.add_argument("--session", help="session id or name in --db")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1000, help="reverse-continues per field")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or os.path.join(tmp, "timetravel.db")
        ingested = None
        if not os.path.exists(db):
            ingested = ingest(db, args.ops, seed=args.seed)
        result = asyncio.run(measure(db, session_ref=args.session, seed=args.seed, samples=args.samples))
    if ingested:
        result["ingest_s"] = round(ingested["ingest_s"], 1)
    result["targets"] = {k: {"limit": v, "value": result.get(k),
                             "met": result.get(k) is not None and result[k] < v}
                         for k, v in TARGETS.items()}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['ops']:,} ops (load average {result['load_avg']:.1f})")
    for label, w in result["watch"].items():
        print(f"  watch {label:<50} {w['object']} versions {w['versions']:,} changes {w['changes']:,}:"
              f" build {w['build_s']:.3f} s, reverse-continue p50 {w['reverse_continue_ms_p50']:.3f} ms"
              f" max {w['reverse_continue_ms_max']:.3f} ms")
    for text, q in result["queries"].items():
        first = "-" if q["first_match_ms"] is None else f"{q['first_match_ms']:.1f} ms"
        print(f"  query {text:<80} first match {first}, whole session {q['whole_session_s']:.2f} s,"
              f" {q['matches']:,} matches")
    print(f"  why p50 {result['why_ms_p50']} ms, max {result['why_ms_max']} ms")
    print(f"  causality graph {result['causality_s']} s: {result['causality']}")
    print(f"  peak RSS {result['rss_mb']} MB")
    for name, t in result["targets"].items():
        print(f"  target {name} < {t['limit']}: {t['value']} {'met' if t['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
