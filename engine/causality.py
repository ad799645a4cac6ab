"""Causality: watch event -> reconcile -> writes -> watch events -> reconcile ...

Every reconcile span with a trigger is linked to its *parent*: the reconcile
whose write produced the version of the object that the triggering watch
event delivered (the same link ``engine.provenance`` walks, computed for all
spans in one streamed query).  Collapsing spans to their *controller key*
(reconciler + reconciled object) gives a small graph; its cycles (strongly
connected components, self-loops included) whose runs go on for many rounds
are hot loops, and each is explained: which reconcile writes what, the fields
those writes change (flip-flopping between a few values, or churning through
new ones: counters, timestamps), how many rounds, the longest unbroken run, and
the ops of the first rounds to jump to.

Memory is bounded: spans stream in start order, and only the last
``LIVE_SPANS`` spans are remembered as possible parents (a parent is nearly
always recent; one further back starts a new run).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from replay_tui.engine import rollups
from replay_tui.engine.diff import DEFAULT_IGNORE, diff
from replay_tui.engine.format import WRITE_VERBS
from replay_tui.engine.loops import (
    ECHO_WINDOW,
    FIELD_SAMPLE,
    LIVE_SPANS,
    SAMPLE_ROUNDS,
    Cause,
    GraphFold,
    Round,
    whole_edge,
)
from replay_tui.engine.provenance import version_at
from replay_tui.engine.store import Session
from replay_tui.engine.watch import jsonable, same

MIN_ROUNDS = 10  # a run of at least this many re-triggered reconciles is a hot loop
__all__ = ["LIVE_SPANS", "SAMPLE_ROUNDS", "Round"]  # (defined with the fold, engine.loops)

# Constants, not user input: inlined so the query has one parameter.
_IN_UPSERTS = "'create', 'patch', 'update'"  # what an added/modified event can echo

# One row per reconcile span, in start order: its trigger, the op that produced the version
# the trigger delivered (a write, when one of ours made it) and, when a watch event
# produced it (added/modified: a DELETED event repeats the last resourceVersion), a write
# with the same resourceVersion logged just after the event.
# ``LIMIT -1`` keeps SQLite from flattening the subquery, which would evaluate the
# correlated lookup once per use instead of once per span.
_SPANS_SQL = f"""
SELECT x.id, x.reconciler, x.kind, x.namespace, x.name, x.start_seq, x.end_seq, x.trigger_seq,
       x.vseq, v.verb, v.error, v.reconcile, v.kind, v.namespace, v.name, v.subresource, v.obj_id,
       CASE WHEN v.verb IN ('added', 'modified') AND x.erv != '' THEN
         (SELECT m.seq FROM operations m WHERE m.session_id = :sid AND m.seq > x.vseq
          AND m.seq <= x.vseq + {ECHO_WINDOW} AND m.obj_id = x.eobj AND m.resource_version = x.erv
          AND m.verb IN ({_IN_UPSERTS}) AND m.error = 0 ORDER BY m.seq LIMIT 1)
       END AS late
FROM (
  SELECT r.id, r.reconciler, r.kind, r.namespace, r.name, r.start_seq, r.end_seq, r.trigger_seq,
         e.obj_id AS eobj, e.resource_version AS erv,
         (SELECT s.seq FROM states s WHERE s.session_id = :sid AND s.obj_id = e.obj_id
          AND s.seq <= e.seq ORDER BY s.seq DESC LIMIT 1) AS vseq
  FROM reconciles r LEFT JOIN operations e ON e.session_id = :sid AND e.seq = r.trigger_seq
  WHERE r.session_id = :sid ORDER BY r.start_seq LIMIT -1
) x LEFT JOIN operations v ON v.session_id = :sid AND v.seq = x.vseq
"""


class FieldChurn(msgspec.Struct, kw_only=True):
    """A field the loop's writes keep changing."""

    path: str
    changes: int  # among the sampled writes
    distinct: int  # distinct values seen
    pattern: str  # flip-flop (returns to earlier values) | churn (always new) | once
    values: list[Any]  # the first few values, in order


class Edge(msgspec.Struct, kw_only=True):
    """Reconciles of ``source`` whose writes started reconciles of ``target``."""

    source: str
    target: str
    count: int
    longest_run: int
    first_seq: int
    last_seq: int


class Cycle(msgspec.Struct, kw_only=True):
    """A hot loop: controllers re-triggering each other (or themselves) round after round."""

    controllers: list[str]  # "reconciler kind/ns/name", in the order the loop runs
    reconcilers: list[str]
    objects: list[str]
    rounds: int  # re-triggered reconciles inside the loop
    runs: int  # separate runs (a requeue, an error or an unrelated trigger breaks a run)
    longest_run: int
    first_seq: int
    last_seq: int
    writes: list[dict[str, Any]]  # the feedback writes: {verb, target, count}
    fields: list[FieldChurn]
    rounds_sample: list[Round]
    seqs: list[int]  # ops of the sampled rounds (writes, events, reconcile starts), sorted
    explanation: str


class Graph(msgspec.Struct, kw_only=True):
    """The session's causality graph, collapsed to controllers, and its cycles."""

    reconciles: int
    triggered: int  # spans with a recorded trigger
    caused_by_writes: int  # spans whose trigger delivered a write of another (or the same) span
    edges: list[Edge]
    cycles: list[Cycle]


async def graph(session: Session, *, min_rounds: int = MIN_ROUNDS, folded: bool = True) -> Graph:
    """Link every reconcile to the one that caused it; aggregate by controller; find the loops.

    The writer folds the links as it commits (``engine.loops``): then the graph is read as
    it is.  A session written before (or ``folded=False``) streams its spans and resolves
    each one's cause in SQL, into the same fold."""
    total = await rollups.count(session, "causality", "reconciles") if folded else None
    stored = total is not None and bool(await rollups.count(session, "loops", "window_ns"))
    if stored:
        fold = GraphFold()
        async for rows in session.rec.stream(
                "SELECT source, target, data FROM rollup_edges WHERE session_id = ?", (session.id,), size=1024):
            fold.load(rows)
        fold.total = total or 0
        fold.triggered = await rollups.count(session, "causality", "triggered") or 0
        fold.linked = await rollups.count(session, "causality", "linked") or 0
    else:
        fold = await _fold_spans(session)
    names = fold.names
    # One order whichever way the graph was folded: by first link, then by controller.
    edges = dict(sorted(fold.edges.items(), key=lambda kv: (kv[1].first, names[kv[0][0]], names[kv[0][1]])))
    edge_list = [Edge(source=names[a], target=names[b], count=agg.count, longest_run=agg.longest,
                      first_seq=agg.first, last_seq=agg.last)
                 for (a, b), agg in sorted(edges.items(), key=lambda kv: -kv[1].count)]
    components = _components(len(names), edges)
    # Each component's own edges, in one pass over the edges (a session has thousands of both).
    member = {node: i for i, component in enumerate(components) for node in component}
    inners: list[dict[tuple[int, int], Any]] = [{} for _ in components]
    for (a, b), agg in edges.items():
        i = member.get(a)
        if i is not None and member.get(b) == i:
            inners[i][(a, b)] = agg
    cycles = []
    for component, inner in zip(components, inners):
        if not inner:
            continue
        longest = max(agg.longest for agg in inner.values())
        if longest < min_rounds:
            continue
        if stored:  # (loaded as counts: the cycle's own edges are read whole)
            for a, b in inner:
                row = await session.rec.fetchone(
                    "SELECT data FROM rollup_edges WHERE session_id = ? AND source = ? AND target = ?",
                    (session.id, names[a], names[b]))
                if row is not None:
                    inner[(a, b)] = whole_edge(row[0])
        cycles.append(await _cycle(session, [names[i] for i in _order(component, inner)], inner))
    cycles.sort(key=lambda c: (-c.rounds, c.first_seq))
    return Graph(reconciles=fold.total, triggered=fold.triggered, caused_by_writes=fold.linked, edges=edge_list,
                 cycles=cycles)


async def _fold_spans(session: Session) -> GraphFold:
    fold = GraphFold()
    async for rows in session.rec.stream(_SPANS_SQL, {"sid": session.id}, size=4096):
        for (rid, reconciler, kind, namespace, name, start, end, trigger, wseq, wverb, werror, parent,
             wkind, wns, wname, wsub, wobj, late) in rows:
            cause: Cause | None = None
            if wverb in WRITE_VERBS and not werror:
                if wseq is not None:
                    cause = (wseq, wverb, parent, wkind, wns, wname, wsub, wobj)
            elif late is not None:  # a write logged after the event it caused (rare: Sieve)
                row = await session.rec.fetchone(
                    "SELECT seq, verb, reconcile, kind, namespace, name, subresource, obj_id"
                    " FROM operations WHERE session_id = ? AND seq = ?", (session.id, late))
                if row is not None:
                    cause = tuple(row)
            fold.span(rid, reconciler, kind, namespace, name, start, end, trigger, cause)
    return fold


async def cycles(session: Session, *, min_rounds: int = MIN_ROUNDS) -> list[Cycle]:
    """Only the hot loops (what ``replay-tui analyze`` reports)."""
    return (await graph(session, min_rounds=min_rounds)).cycles


def _components(n: int, edges: dict[tuple[int, int], Any]) -> list[set[int]]:
    """Strongly connected components with an edge inside (self-loops count), iteratively."""
    out_edges: dict[int, list[int]] = {}
    for a, b in edges:
        out_edges.setdefault(a, []).append(b)
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    result: list[set[int]] = []
    counter = 0
    for root in list(out_edges):
        if root in index:
            continue
        work = [(root, iter(out_edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(out_edges.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.add(member)
                    if member == node:
                        break
                if len(comp) > 1 or (node, node) in edges:
                    result.append(comp)
    return result


def _order(component: set[int], inner: dict[tuple[int, int], Any]) -> list[int]:
    """The controllers of a loop in the order it runs, starting with the busiest edge's source."""
    start = max(inner.items(), key=lambda kv: kv[1].count)[0][0]
    order = [start]
    nxt = {a: b for (a, b), _ in sorted(inner.items(), key=lambda kv: kv[1].count)}
    node = start
    while len(order) < len(component):
        node = nxt.get(node, node)
        if node in order:
            break
        order.append(node)
    order += sorted(component - set(order))
    return order


async def _cycle(session: Session, controllers: list[str], inner: dict[tuple[int, int], Any]) -> Cycle:
    writes: Counter[tuple[str, str]] = Counter()
    sample: list[Round] = []
    field_seqs: list[tuple[int, int]] = []
    for agg in inner.values():
        writes.update(agg.writes)
        sample.extend(agg.sample)
        field_seqs.extend(agg.field_seqs)
    sample.sort(key=lambda r: r.start_seq)
    sample = sample[:SAMPLE_ROUNDS]
    field_seqs.sort()
    fields = await _fields(session, field_seqs[:FIELD_SAMPLE])
    rounds = sum(agg.count for agg in inner.values())
    longest = max(agg.longest for agg in inner.values())
    runs = sum(agg.runs for agg in inner.values())
    reconcilers = sorted({c.split(" ", 1)[0] for c in controllers})
    objects = [c.split(" ", 1)[1] for c in controllers]
    write_list = [{"verb": verb, "target": target, "count": n} for (verb, target), n in writes.most_common(10)]
    seqs = sorted({s for r in sample for s in (r.write_seq, r.trigger_seq, r.start_seq)})
    what = ", ".join(f"{w['verb']} {w['target']}" for w in write_list[:3]) or "writes"
    loop = " -> ".join(controllers + [controllers[0]])
    field_text = ", ".join(f"{f.path} ({f.pattern})" for f in fields[:4]) or "no field differs (no-op writes)"
    explanation = (f"{loop}: its writes ({what}) come back as watch events that start the next reconcile;"
                   f" {rounds:,} rounds in {runs:,} run(s), the longest {longest:,} in a row;"
                   f" changing {field_text}")
    return Cycle(controllers=controllers, reconcilers=reconcilers, objects=objects, rounds=rounds,
                 runs=runs, longest_run=longest, first_seq=min(agg.first for agg in inner.values()),
                 last_seq=max(agg.last for agg in inner.values()), writes=write_list, fields=fields,
                 rounds_sample=sample, seqs=seqs, explanation=explanation)


async def _body_at(session: Session, obj_id: int, seq: int) -> Any:
    v = await version_at(session, obj_id, seq)
    return None if v is None or v.blob_id is None else await session.rec.body(v.blob_id)


async def _fields(session: Session, writes: list[tuple[int, int]]) -> list[FieldChurn]:
    """Which fields the sampled feedback writes change, and how their values move."""
    values: dict[str, list[Any]] = {}
    changes: Counter[str] = Counter()
    for seq, obj_id in writes:
        before = await _body_at(session, obj_id, seq - 1)
        after = await _body_at(session, obj_id, seq)
        if before is None or after is None:  # a create or a delete: no field flips
            continue
        for ch in diff(before, after, ignore=DEFAULT_IGNORE):
            changes[ch.path] += 1
            seen = values.setdefault(ch.path, [ch.old])
            seen.append(ch.new)
    out = []
    for path, n in changes.most_common(12):
        seq_values = values[path]
        distinct: list[Any] = []
        flip = False
        for i, v in enumerate(seq_values):
            if any(same(v, d) for d in distinct):
                if i > 0 and not same(v, seq_values[i - 1]):
                    flip = True
            else:
                distinct.append(v)
        pattern = "once" if n == 1 else ("flip-flop" if flip else "churn")
        out.append(FieldChurn(path=path, changes=n, distinct=len(distinct), pattern=pattern,
                              values=[_preview(v) for v in seq_values[:6]]))
    return out


def _preview(value: Any, limit: int = 80) -> Any:
    """A value as reported: scalars as they are, long strings and containers cut to a preview."""
    value = jsonable(value)
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."
    if isinstance(value, (dict, list)):
        text = msgspec.json.encode(value).decode()
        return value if len(text) <= limit else text[: limit - 3] + "..."
    return value
