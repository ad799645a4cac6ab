"""Hot loops and causality links, folded op by op in seq order.

One implementation serves both ways of getting them.  The writer folds every session as
it commits (``engine.committer``: ``rollup_loops`` holds each object's hot-loop record,
``rollup_edges`` the causality graph collapsed to controllers), so ``analysis.hot_loops``
and ``causality.graph`` read O(objects + edges) rows, not O(ops).  A session written
before (or one whose folds were given up after a failed write, see ``Folds.broken``) is
read the old way: its ops are streamed from SQL into the same folds.

* ``ObjectLoop``: one object's successful writes, watch events and reads that brought a
  new version, and reconcile starts: writes and reconciles without a spec change, the
  densest window of them, self-triggered reconciles (triggered by the echo of the object's
  own write).  Folded in the window the analysis uses by default (``LOOP_WINDOW_NS``).
* ``GraphFold``: every reconcile span linked to the span whose write produced the version
  its triggering watch event delivered, aggregated by controller (reconciler + object).
* ``SpanLinks``: the writer's side of the links: it remembers the last ``RING`` ops (the
  version each left its object at), so a span's cause is resolved without a query; a
  trigger further back is looked up in the file.  A cause that may be a write logged
  just after its watch event (Sieve, racing proxies) waits ``ECHO_WINDOW`` ops.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from itertools import islice
from operator import attrgetter, itemgetter
from typing import Any

import msgspec

from replay_tui.engine.format import ADDED, CREATE, DELETE, DELETED, MODIFIED, PATCH, UPDATE, WRITE_VERBS
from replay_tui.engine.schema import OP_COLUMNS

EXAMPLES = 5  # example seqs per finding
LOOP_WINDOW_NS = 60 * 10**9  # the window hot loops are folded in at write time (the analysis's default)
LIVE_SPANS = 16384  # spans remembered as possible parents (a parent is nearly always recent)
ECHO_WINDOW = 16  # ops after a watch event searched for a write logged late (Sieve, racing proxies)
SAMPLE_ROUNDS = 50  # rounds kept per edge
FIELD_SAMPLE = 40  # feedback writes kept per edge (their fields are diffed when a cycle is explained)
RING = 1 << 16  # recent ops the writer remembers for linking spans
ORPHAN_SPANS = 1024  # reconciles of an object not seen yet, kept until it appears
# The writer's folds keep this many objects' loop records and this many causality edges in
# memory (the most recently used); the rest wait in the file (``LoopFold.fetch``,
# ``GraphFold.fetch``), so a day-long recording's memory does not grow with every object it saw.
LOOP_RECORDS = 4096
EDGES_KEPT = 1024
NAMES_KEPT = 8192  # kind/namespace/name -> objects (a reconcile names no object id)

_OBJECT_WRITES = (CREATE, UPDATE, PATCH)
_UPSERTS = frozenset((CREATE, PATCH, UPDATE))  # what an added/modified event can echo
_EVENTS = (ADDED, MODIFIED)


# --- hot loops ------------------------------------------------------------------------------

class HotLoop(msgspec.Struct):
    """An object written or reconciled over and over without its spec changing.

    Where it is: ``first_seq`` .. ``last_seq``, the loop's first and last op (a write, or the
    start of a reconcile, that changed no spec): where the loop starts, the op every output
    points at and the position to fork at.  ``window_first_seq`` .. ``window_last_seq``: the
    densest ``window_s`` of it (``max_in_window`` writes there), inside that range.
    """

    key: str
    obj_id: int
    writes: int  # successful create/update/patch, status subresource included
    writes_without_spec_change: int
    status_writes: int
    reconciles: int
    reconciles_without_spec_change: int
    self_triggered_reconciles: int  # triggered by the watch echo of a write to the object itself
    longest_self_trigger_chain: int  # consecutive such reconciles: the loop feeding itself
    max_in_window: int  # writes without spec change within the densest window
    max_reconciles_in_window: int
    window_s: float
    window_first_seq: int  # the densest window (of writes, or of reconciles when those dominate)
    window_last_seq: int
    writes_per_min: float  # over the object's active span (first to last write/reconcile)
    reconciles_per_min: float
    first_seq: int  # the loop's first op: where it starts
    last_seq: int  # the loop's last op
    example_seqs: list[int]
    changed_fields: list[str] = msgspec.field(default_factory=list)  # between two such writes


class StoredLoop(msgspec.Struct, array_like=True):
    """An object's hot-loop record as the writer stores it (``rollup_loops.data``)."""

    loop: HotLoop
    pair: tuple[int, int] | None  # (blob before, blob after) a write without spec change


_decode_stored = msgspec.msgpack.Decoder(StoredLoop).decode
_encode = msgspec.msgpack.encode


class Window:
    """The most events within any ``width`` ns, and where that densest window lies."""

    __slots__ = ("best", "events", "examples", "first", "last", "width")

    def __init__(self, width: int):
        self.width = width
        self.events: deque[tuple[int, int]] = deque()
        self.best = 0
        self.first = self.last = 0
        self.examples: list[int] = []

    def push(self, ts: int, seq: int) -> None:
        ev = self.events
        ev.append((ts, seq))
        low = ts - self.width
        while ev[0][0] < low:
            ev.popleft()
        n = len(ev)
        if n > self.best:
            self.best = n
            head = ev[0][1]
            self.first, self.last = head, seq
            if n <= EXAMPLES or self.examples[0] != head:
                self.examples = [s for _, s in islice(ev, EXAMPLES)]

    def state(self) -> list[Any]:
        return [self.width, self.best, self.first, self.last, self.examples, [x for e in self.events for x in e]]

    @classmethod
    def restore(cls, state: list[Any]) -> Window:
        width, best, first, last, examples, flat = state
        window = cls(width)
        window.best, window.first, window.last, window.examples = best, first, last, examples
        window.events = deque(zip(flat[::2], flat[1::2]))
        return window


class ObjectLoop:
    """Folds one object's writes, new versions and reconcile starts, in seq order."""

    __slots__ = (
        "chain",
        "echoes",
        "epoch",
        "first_seq",
        "first_ts",
        "last_gen",
        "last_seq",
        "last_ts",
        "longest_chain",
        "loop_first",
        "loop_last",
        "nochange",
        "obj_id",
        "pair",
        "prev_blob",
        "rec_epoch",
        "rec_nochange",
        "rec_window",
        "reconciles",
        "self_triggered",
        "stamp",
        "status_writes",
        "write_window",
        "writes",
    )

    def __init__(self, obj_id: int):
        self.obj_id = obj_id
        self.writes = self.nochange = self.status_writes = 0
        self.reconciles = self.rec_nochange = 0
        self.self_triggered = self.chain = self.longest_chain = 0
        self.epoch = 0  # spec changes seen so far
        self.rec_epoch: int | None = None
        self.last_gen: int | None = None
        self.prev_blob: int | None = None
        self.pair: tuple[int, int] | None = None  # (version before, version after) a no-change write
        self.first_seq = self.last_seq = 0
        self.first_ts = self.last_ts = 0
        self.loop_first = self.loop_last = 0  # the first and last write or reconcile without a spec change
        self.write_window: Window | None = None  # made on first use: most objects never need one
        self.rec_window: Window | None = None
        self.echoes: deque[int] = deque(maxlen=8)  # recent watch events that only echoed a version
        self.stamp = 0  # when the record was last used (``LoopFold.clock``): the oldest are evicted

    def _touch(self, seq: int, ts: int) -> None:
        if not self.first_seq:
            self.first_seq, self.first_ts = seq, ts
        self.last_seq, self.last_ts = seq, ts

    def _looped(self, seq: int) -> None:
        if not self.loop_first:
            self.loop_first = seq
        self.loop_last = seq

    def reconcile(self, seq: int, ts: int, trigger: int | None, window_ns: int) -> None:
        """A reconcile of this object started, triggered by op ``trigger`` (None: unknown).

        It is self-triggered when the trigger was a watch event on this object that
        brought no new version: the echo of what the object already was, i.e. our own write.
        """
        self.reconciles += 1
        if trigger is not None and trigger in self.echoes:
            self.self_triggered += 1
            self.chain += 1
            self.longest_chain = max(self.longest_chain, self.chain)
        else:
            self.chain = 0
        if self.rec_epoch is not None and self.rec_epoch == self.epoch:
            self.rec_nochange += 1
            self._looped(seq)
            if self.rec_window is None:
                self.rec_window = Window(window_ns)
            self.rec_window.push(ts, seq)
        self.rec_epoch = self.epoch
        self._touch(seq, ts)

    def op(self, seq: int, ts: int, verb: str, subresource: str, generation: int | None,
           versioned: int, blob: int | None, window_ns: int) -> None:
        """A successful write, a watch event, or a read that brought a new version."""
        if not versioned and (verb in _EVENTS):
            self.echoes.append(seq)
            return
        if verb in (DELETE, DELETED):
            if versioned and blob is None:  # really gone: a re-creation starts afresh
                self.epoch += 1
                self.last_gen = None
                self.prev_blob = None
            return
        changed = verb == CREATE
        if generation is not None:
            changed = changed or (self.last_gen is not None and generation != self.last_gen)
            self.last_gen = generation
        elif self.last_gen is None:
            changed = changed or bool(versioned and subresource != "status")
        if changed:
            self.epoch += 1
        if verb in _OBJECT_WRITES:
            self.writes += 1
            if subresource == "status":
                self.status_writes += 1
            if not changed:
                self.nochange += 1
                self._looped(seq)
                window = self.write_window
                if window is None:
                    window = self.write_window = Window(window_ns)
                best = window.best
                window.push(ts, seq)
                # The fields such a write changes, taken where the loop is densest.
                if versioned and blob is not None and self.prev_blob is not None \
                        and (self.pair is None or window.best > best):
                    self.pair = (self.prev_blob, blob)
            self._touch(seq, ts)
        if versioned and blob is not None:
            self.prev_blob = blob

    @property
    def max_writes(self) -> int:
        return self.write_window.best if self.write_window else 0

    @property
    def max_reconciles(self) -> int:
        return self.rec_window.best if self.rec_window else 0

    def result(self, key: str, window_ns: int) -> HotLoop:
        span_min = max(self.last_ts - self.first_ts, 1_000_000_000) / 60e9
        w = self.write_window if self.max_writes >= self.max_reconciles else self.rec_window
        return HotLoop(
            key=key, obj_id=self.obj_id, writes=self.writes, writes_without_spec_change=self.nochange,
            status_writes=self.status_writes, reconciles=self.reconciles,
            reconciles_without_spec_change=self.rec_nochange,
            self_triggered_reconciles=self.self_triggered, longest_self_trigger_chain=self.longest_chain,
            max_in_window=self.max_writes, max_reconciles_in_window=self.max_reconciles,
            window_s=window_ns / 1e9, window_first_seq=w.first if w else 0,
            window_last_seq=w.last if w else 0,
            writes_per_min=self.writes / span_min, reconciles_per_min=self.reconciles / span_min,
            first_seq=self.loop_first, last_seq=self.loop_last, example_seqs=list(w.examples) if w else [])

    def stored(self, window_ns: int) -> tuple[int, int, bytes]:
        """(most writes in a window, most reconciles in a window, the record) for ``rollup_loops``."""
        return self.max_writes, self.max_reconciles, _encode(StoredLoop(self.result("", window_ns), self.pair))


    def state(self) -> bytes:
        """Everything the fold holds of the object, to be ``restore``d when it is used again."""
        values: list[Any] = []
        for name in _STATE:
            value = getattr(self, name)
            if isinstance(value, Window):
                value = value.state()
            elif isinstance(value, deque):
                value = list(value)
            values.append(value)
        return _encode(values)

    @classmethod
    def restore(cls, data: bytes) -> ObjectLoop:
        loop = cls.__new__(cls)
        for name, value in zip(_STATE, _decode_state(data)):
            setattr(loop, name, value)
        loop.echoes = deque(loop.echoes, maxlen=8)
        if loop.pair is not None:
            loop.pair = (loop.pair[0], loop.pair[1])
        if loop.write_window is not None:
            loop.write_window = Window.restore(loop.write_window)  # type: ignore[arg-type]
        if loop.rec_window is not None:
            loop.rec_window = Window.restore(loop.rec_window)  # type: ignore[arg-type]
        loop.stamp = 0
        return loop


_STATE = tuple(name for name in ObjectLoop.__slots__ if name != "stamp")
_decode_state = msgspec.msgpack.Decoder(list[Any]).decode


def stored_loop(data: bytes) -> StoredLoop:
    return _decode_stored(data)


class LoopFold:
    """Every object's ``ObjectLoop`` (or only ``candidates``'), and the map from a reconcile's
    kind/namespace/name to the objects it may be about (reconciles name no API group)."""

    def __init__(self, window_ns: int, candidates: set[int] | None = None):
        self.window_ns = window_ns
        self.candidates = candidates
        self.loops: dict[int, ObjectLoop] = {}
        self.by_name: dict[tuple[str, str, str], list[int]] = {}
        self.touched: set[int] = set()
        # The writer's: the state of an object's record it evicted (None: none).
        self.fetch: Callable[[int], bytes | None] | None = None
        self.clock = 0
        self.evicted = False
        # The writer's: the objects of a kind/namespace/name ``by_name`` no longer holds.
        self.find: Callable[[tuple[str, str, str]], list[int]] | None = None
        self.names_evicted = False
        # Reconciles of a kind/namespace/name no object has had yet (the writer learns objects
        # as they come): replayed to the first object that has it.
        self._orphans: OrderedDict[tuple[str, str, str], list[tuple[int, int, int | None]]] = OrderedDict()

    def _loop(self, obj_id: int) -> ObjectLoop | None:
        loop = self.loops.get(obj_id)
        if loop is None:
            if self.candidates is not None and obj_id not in self.candidates:
                return None
            data = self.fetch(obj_id) if self.evicted and self.fetch is not None else None
            loop = self.loops[obj_id] = ObjectLoop.restore(data) if data is not None else ObjectLoop(obj_id)
        self.touched.add(obj_id)
        return loop

    def settled(self) -> None:
        """The touched records are stored: they are the most recently used."""
        self.clock += 1
        clock, loops = self.clock, self.loops
        for obj_id in self.touched:
            loops[obj_id].stamp = clock
        self.touched.clear()

    def evict(self, keep: int) -> list[tuple[int, bytes]]:
        """Past ``keep`` records (after ``settled``), the least recently used go down to half of
        it: their (obj_id, state), for ``fetch`` to give back."""
        loops = self.loops
        if len(loops) <= keep:
            return []
        order = sorted(loops.values(), key=attrgetter("stamp"))
        gone = order[:len(order) - keep // 2]
        for loop in gone:
            del loops[loop.obj_id]
        self.evicted = True
        return [(loop.obj_id, loop.state()) for loop in gone]

    def evict_names(self, keep: int) -> None:
        """Past ``keep`` names (their objects stored), the first learnt go down to half of it."""
        by_name = self.by_name
        if len(by_name) > keep:
            for key in list(islice(by_name, len(by_name) - keep // 2)):
                del by_name[key]
            self.names_evicted = True

    def _ids(self, key: tuple[str, str, str]) -> list[int] | None:
        ids = self.by_name.get(key)
        if ids is None and self.names_evicted and self.find is not None:
            found = self.find(key)
            if found:
                ids = self.by_name[key] = found
        return ids

    def object(self, obj_id: int, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        ids = self._ids(key)
        if ids is None:
            self.by_name[key] = [obj_id]
        else:
            ids.append(obj_id)
        for seq, ts, trigger in self._orphans.pop(key, ()):
            loop = self._loop(obj_id)
            if loop is not None:
                loop.reconcile(seq, ts, trigger, self.window_ns)

    def reconcile(self, seq: int, ts: int, kind: str, namespace: str, name: str, trigger: int | None,
                  *, learning: bool = False) -> None:
        """A reconcile of kind/namespace/name started (``learning``: objects are still being
        learnt, so one not known yet is remembered for when it appears)."""
        if not name:
            return
        ids = self._ids((kind, namespace, name))
        if not ids:
            if learning:
                kept = self._orphans.setdefault((kind, namespace, name), [])
                kept.append((seq, ts, trigger))
                if len(kept) > ORPHAN_SPANS:
                    del kept[0]
                while len(self._orphans) > ORPHAN_SPANS:
                    self._orphans.popitem(last=False)
            return
        for oid in ids:
            loop = self._loop(oid)
            if loop is not None:
                loop.reconcile(seq, ts, trigger, self.window_ns)

    def op(self, seq: int, ts: int, obj_id: int, verb: str, subresource: str, generation: int | None,
           versioned: int, blob: int | None) -> None:
        loop = self.loops.get(obj_id)
        if loop is None:
            loop = self._loop(obj_id)
            if loop is None:
                return
        else:
            self.touched.add(obj_id)
        loop.op(seq, ts, verb, subresource, generation, versioned, blob, self.window_ns)


# --- causality ------------------------------------------------------------------------------

class Round(msgspec.Struct, kw_only=True):
    """One turn of a loop: a write, the event it caused, the reconcile that event started."""

    write_seq: int
    trigger_seq: int
    reconcile: int
    start_seq: int
    end_seq: int | None


class EdgeFold(msgspec.Struct):
    """Reconciles of one controller whose writes started reconciles of another (``rollup_edges.data``)."""

    count: int = 0
    longest: int = 0
    first: int = 0
    last: int = 0
    runs: int = 0
    writes: list[tuple[str, str, int]] = msgspec.field(default_factory=list)  # (verb, target, n)
    sample: list[Round] = msgspec.field(default_factory=list)
    field_seqs: list[tuple[int, int]] = msgspec.field(default_factory=list)  # (write seq, obj_id)


_decode_edge = msgspec.msgpack.Decoder(EdgeFold).decode


class EdgeCounts(msgspec.Struct):
    """An ``EdgeFold`` without its writes and samples (msgpack skips them undecoded): what the
    graph of a whole session needs of every edge; the rest is read for the edges of its loops."""

    count: int = 0
    longest: int = 0
    first: int = 0
    last: int = 0
    runs: int = 0


_decode_counts = msgspec.msgpack.Decoder(EdgeCounts).decode


class _Edge:
    __slots__ = ("count", "field_seqs", "first", "last", "last_span", "longest", "runs", "sample", "stamp",
                 "writes")

    def __init__(self) -> None:
        self.count = 0
        self.longest = 0
        self.first = 0
        self.last = 0
        self.last_span = 0  # the span that set ``last`` (its end moves it)
        self.runs = 0
        self.stamp = 0  # when it was last changed (``GraphFold.clock``): the oldest are evicted
        self.writes: Counter[tuple[str, str]] = Counter()
        self.sample: list[Round] = []
        self.field_seqs: list[tuple[int, int]] = []

    def stored(self) -> EdgeFold:
        return EdgeFold(count=self.count, longest=self.longest, first=self.first, last=self.last, runs=self.runs,
                        writes=[(v, t, n) for (v, t), n in self.writes.items()], sample=self.sample,
                        field_seqs=self.field_seqs)

    @classmethod
    def load(cls, fold: EdgeFold | EdgeCounts) -> _Edge:
        edge = cls()
        edge.count, edge.longest, edge.first, edge.last, edge.runs = (
            fold.count, fold.longest, fold.first, fold.last, fold.runs)
        if isinstance(fold, EdgeFold):
            edge.writes = Counter({(v, t): n for v, t, n in fold.writes})
            edge.sample, edge.field_seqs = list(fold.sample), list(fold.field_seqs)
        return edge


def controller(reconciler: str, kind: str, namespace: str, name: str) -> str:
    target = "/".join(p for p in (kind, namespace, name) if p) or "-"
    return f"{reconciler or '-'} {target}"


def target(kind: str, namespace: str, name: str, subresource: str) -> str:
    text = "/".join(p for p in (kind, namespace, name) if p)
    return f"{text}/{subresource}" if subresource else text


# The write that caused a span: (seq, verb, span that made it, kind, namespace, name, subresource, obj_id).
Cause = tuple[int, str, int | None, str, str, str, str, int | None]


class GraphFold:
    """Reconcile spans in start order, each linked to the span that caused it, collapsed to
    controllers: edges (parent controller -> child controller) with their runs."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.names: list[str] = []
        self.live: OrderedDict[int, tuple[int, int]] = OrderedDict()  # span id -> (controller, run depth)
        self.edges: dict[tuple[int, int], _Edge] = {}
        self.total = self.triggered = self.linked = 0
        self.dirty: set[tuple[int, int]] = set()
        # Linked spans not ended yet: span id -> (its edge, its round in the edge's sample or None)
        self._open: OrderedDict[int, tuple[tuple[int, int], Round | None]] = OrderedDict()
        # The writer's: the stored ``rollup_edges`` data of an edge it evicted (None: none).
        self.fetch: Callable[[str, str], bytes | None] | None = None
        self.clock = 0
        self.evicted = False

    def _key(self, label: str) -> int:
        k = self.keys.get(label)
        if k is None:
            k = self.keys[label] = len(self.names)
            self.names.append(label)
        return k

    def span(self, rid: int, reconciler: str, kind: str, namespace: str, name: str, start: int,
             end: int | None, trigger: int | None, cause: Cause | None) -> None:
        """The next span in start order; ``cause`` the write its trigger delivered (None: none)."""
        self.total += 1
        k = self._key(controller(reconciler, kind, namespace, name))
        depth = 1
        if trigger is not None:
            self.triggered += 1
        parent = cause[2] if cause is not None else None
        if parent is not None and cause is not None:
            self.linked += 1
            known = self.live.get(parent)
            if known is not None:
                wseq, wverb, _, wkind, wns, wname, wsub, wobj = cause
                pk, pdepth = known
                depth = pdepth + 1
                edge_key = (pk, k)
                agg = self.edges.get(edge_key)
                if agg is None and self.evicted and self.fetch is not None:
                    data = self.fetch(self.names[pk], self.names[k])
                    if data is not None:
                        agg = self.edges[edge_key] = whole_edge(data)
                if agg is None:
                    agg = self.edges[edge_key] = _Edge()
                    agg.first = wseq
                agg.count += 1
                agg.last = end if end is not None else start
                agg.last_span = rid
                agg.longest = max(agg.longest, depth)
                if pdepth == 1:
                    agg.runs += 1
                agg.writes[(wverb, target(wkind, wns, wname, wsub))] += 1
                sampled = None
                if len(agg.sample) < SAMPLE_ROUNDS and trigger is not None:
                    sampled = Round(write_seq=wseq, trigger_seq=trigger, reconcile=rid, start_seq=start,
                                    end_seq=end)
                    agg.sample.append(sampled)
                if len(agg.field_seqs) < FIELD_SAMPLE and wobj is not None:
                    agg.field_seqs.append((wseq, wobj))
                self.dirty.add(edge_key)
                if end is None:
                    self._open[rid] = (edge_key, sampled)
                    if len(self._open) > LIVE_SPANS:
                        self._open.popitem(last=False)
        self.live[rid] = (k, depth)
        if len(self.live) > LIVE_SPANS:
            self.live.popitem(last=False)

    def ended(self, rid: int, end: int) -> None:
        """A linked span folded before its end is known ended at ``end``."""
        linked = self._open.pop(rid, None)
        if linked is None:
            return
        edge_key, sampled = linked
        agg = self.edges.get(edge_key)
        if agg is None:
            return
        if agg.last_span == rid:
            agg.last = end
        if sampled is not None:
            sampled.end_seq = end
        self.dirty.add(edge_key)

    def settled(self) -> None:
        """The changed edges are stored: they are the most recently used."""
        self.clock += 1
        clock, edges = self.clock, self.edges
        for key in self.dirty:
            edges[key].stamp = clock
        self.dirty.clear()

    def evict(self, keep: int) -> None:
        """Past ``keep`` edges (after ``settled``: all stored), the least recently changed go down
        to half of it, but for those a span not ended yet will change (``fetch`` gives them back)."""
        edges = self.edges
        if len(edges) <= keep:
            return
        pinned = {key for key, _ in self._open.values()}
        order = sorted((edge.stamp, key) for key, edge in edges.items() if key not in pinned)
        for _, key in order[:len(edges) - keep // 2]:
            del edges[key]
            self.evicted = True

    def rows(self, sid: int, edges: set[tuple[int, int]]) -> list[tuple[Any, ...]]:
        """``rollup_edges`` rows of these edges."""
        names = self.names
        return [(sid, names[a], names[b], _encode(self.edges[(a, b)].stored())) for a, b in edges]

    def load(self, rows: list[tuple[str, str, bytes]]) -> None:
        """Edges the writer folded (``rollup_edges`` rows), their counts only: ``whole_edge``
        reads the rest of one (a 10M-op session's 18,000 edges whole took 250 MB)."""
        for source, dest, data in rows:
            self.edges[(self._key(source), self._key(dest))] = _Edge.load(_decode_counts(data))


def whole_edge(data: bytes) -> _Edge:
    """A stored edge (``rollup_edges.data``) with its writes and samples."""
    return _Edge.load(_decode_edge(data))


# --- the writer's side of the links -----------------------------------------------------------

# A remembered op: (the columns of its operations row ``SpanLinks`` reads, the seq of the
# version its object had after it (None: none)).
_Op = tuple[tuple[Any, ...], int | None]
# A span waiting to be folded: [rid, reconciler, kind, namespace, name, start, trigger,
# cause, seq from which it can be folded, (eobj, erv, vseq) while a late write may still come].
_Waiting = list[Any]


class SpanLinks:
    """Resolves each span's cause from the ops seen (``RING`` of them; further back, from the
    file through ``conn``) and folds the spans into a ``GraphFold`` in start order.

    ``columns``: where an op row has (obj_id, verb, error, reconcile, kind, namespace, name,
    subresource, resource_version)."""

    def __init__(self, conn: sqlite3.Connection, sid: int, columns: tuple[int, ...]):
        self.conn = conn
        self.sid = sid
        self.graph = GraphFold()
        self.graph.fetch = self._stored_edge
        self.ring: dict[int, _Op] = {}
        self.version: dict[int, int] = {}  # obj_id -> seq of its current version
        self.seq = 0  # the last op seen
        self.waiting: deque[_Waiting] = deque()
        # The ring keeps only these columns of an op row, in this order.
        self._pick = itemgetter(*columns)
        (self._obj, self._verb, self._error, self._reconcile, self._kind, self._namespace, self._name,
         self._sub, self._rv) = range(len(columns))
        self._select = (
            f"SELECT {', '.join('o.' + OP_COLUMNS[c] for c in columns)}, (SELECT s.seq FROM states s"
            " WHERE s.session_id = o.session_id AND s.obj_id = o.obj_id AND s.seq <= o.seq ORDER BY s.seq DESC"
            " LIMIT 1) FROM operations o WHERE session_id = ? AND seq = ? AND obj_id IS NOT NULL")

    def op(self, seq: int, obj_id: int | None, row: tuple[Any, ...]) -> None:
        """Op ``seq`` (after its versions were recorded with ``versioned``); ops on no object
        trigger nothing and cause nothing: they are not kept."""
        ring = self.ring
        if obj_id is not None:
            ring[seq] = (self._pick(row), self.version.get(obj_id))
        ring.pop(seq - RING, None)
        self.seq = seq
        if self.waiting and self.waiting[0][8] <= seq:
            self._fold_ready()

    def versioned(self, obj_id: int, seq: int) -> None:
        self.version[obj_id] = seq

    def _stored_edge(self, source: str, dest: str) -> bytes | None:
        row = self.conn.execute("SELECT data FROM rollup_edges WHERE session_id = ? AND source = ? AND target = ?",
                                (self.sid, source, dest)).fetchone()
        return row[0] if row is not None else None

    def _cause(self, seq: int, row: tuple[Any, ...]) -> Cause:
        return (seq, row[self._verb], row[self._reconcile], row[self._kind], row[self._namespace], row[self._name],
                row[self._sub], row[self._obj])

    def begin(self, rid: int, reconciler: str, kind: str, namespace: str, name: str, start: int,
              trigger: int | None) -> None:
        """A span begins (before the op ``start``); it is folded once its cause is known."""
        waiting: _Waiting = [rid, reconciler, kind, namespace, name, start, trigger, None, 0, None]
        if trigger is not None:
            e = self._op(trigger)
            erow, vseq = e if e is not None else ((), None)
            if vseq is not None:
                v = self._op(vseq)
                if v is not None:
                    vrow = v[0]
                    if vrow[self._verb] in WRITE_VERBS and not vrow[self._error]:
                        waiting[7] = self._cause(vseq, vrow)
                    elif vrow[self._verb] in _EVENTS and erow[self._rv]:
                        waiting[8] = vseq + ECHO_WINDOW
                        waiting[9] = (erow[self._obj], erow[self._rv], vseq)
        self.waiting.append(waiting)
        if waiting[8] <= self.seq:
            self._fold_ready()

    def end(self, rid: int, end: int) -> None:
        for waiting in self.waiting:
            if waiting[0] == rid:
                waiting.append(end)  # (folded with its end)
                return
        self.graph.ended(rid, end)

    def finish(self) -> None:
        """The session is complete: fold what still waits with the ops there are."""
        self._fold_ready(everything=True)

    def _fold_ready(self, everything: bool = False) -> None:
        waiting, seq, graph = self.waiting, self.seq, self.graph
        obj, rv, verb, error = self._obj, self._rv, self._verb, self._error
        while waiting and (everything or waiting[0][8] <= seq):
            w = waiting.popleft()
            if w[9] is not None:  # an event delivered it: a write of ours logged just after?
                eobj, erv, vseq = w[9]
                for s in range(vseq + 1, min(vseq + ECHO_WINDOW, seq) + 1):
                    m = self._op(s)
                    if m is not None:
                        mrow = m[0]
                        if mrow[obj] == eobj and mrow[rv] == erv and mrow[verb] in _UPSERTS and not mrow[error]:
                            w[7] = self._cause(s, mrow)
                            break
            end = w[10] if len(w) > 10 else None
            graph.span(w[0], w[1], w[2], w[3], w[4], w[5], end, w[6], w[7])

    def _op(self, seq: int) -> _Op | None:
        """A remembered op on an object; one the ring no longer holds is read from the file."""
        op = self.ring.get(seq)
        if op is not None or seq > self.seq - RING:
            return op
        row = self.conn.execute(self._select, (self.sid, seq)).fetchone()
        return (tuple(row[:-1]), row[-1]) if row is not None else None
