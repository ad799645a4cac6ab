"""Comparing two runs of an operator: where they first differ, and what one has that the other has not.

Typical pairs: a recording and a run forked from it (``serve --fork``), or two forks of one
recording (the buggy build and the fixed one).  When one run is a fork of the other's session,
the other is compared from the fork point on.

* **Alignment by object.**  Each run's requests on objects (get, create, update, patch, delete)
  are lined up per object, in order.  Two ops correspond when they are the n-th request of each
  run on that object; they *differ* in verb, subresource, status (a 409 where the other run got
  200) or a significant field of the request body.  Noise is ignored as ``diff`` ignores it
  (managedFields, resourceVersion, selfLink, the last-applied annotation) and so is what no two
  runs share: uid, creationTimestamp, generation, and timestamps and UUIDs inside values.  When
  one run has no n-th request on an object, that is a divergence only if it was still running
  ``settle_s`` after the other made it (otherwise the run had simply ended).
* **Alignment by reconcile trigger**, where exact spans exist (the client hook's, Sieve's,
  kubestep's): the k-th reconcile started by a watch event on an object in each run, compared by
  the requests it made (verb, target).  A proxy recording's spans are inferred (a request goes to
  the latest event), too loose to pair with concurrent reconciles: such runs align by object.
* Lists and watches are left out of alignment: their timing follows the client's resync
  periods, not the operator's logic.

The divergences (one per object and per differing reconcile, earliest first) are the
``Comparison.divergences`` list: each names the op to jump to in each run (``seq_a``,
``seq_b``), which is what a second timeline beside the first marks.  ``Comparison.first`` is
the first divergence.  Beside them: per-object write counts and rates, hot loops / 409 storms /
causality cycles found in one run and not the other (``engine.analysis``, ``engine.causality``),
errors by status and reason, and latency percentiles, all over the compared ops.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import msgspec

from replay_tui.engine import analysis, causality
from replay_tui.engine import diff as diffmod
from replay_tui.engine.format import (
    CREATE,
    DELETE,
    EVENT_ERROR,
    GET,
    PATCH,
    READ_VERBS,
    UPDATE,
    WATCH,
    WRITE_VERBS,
    api_group,
    target_label,
)
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.stats import gather_all
from replay_tui.engine.store import Session

SETTLE_S = 1.0
FAIL_ON = ("hot-loop", "conflict-storm", "errors")
_ALIGNED = (GET, CREATE, UPDATE, PATCH, DELETE)
_BODIES = (CREATE, UPDATE, PATCH)
_REQUESTS = (READ_VERBS | WRITE_VERBS) - {WATCH}  # what has a latency (a watch: until its stream opened)
_NOISE_META = frozenset({"resourceVersion", "managedFields", "selfLink", "uid", "creationTimestamp", "generation"})
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_sorted_json = msgspec.json.Encoder(order="sorted").encode
_STREAM = (
    "SELECT seq, ts_ns, duration_ns, verb, api_version, kind, namespace, name, subresource, status, reason,"
    " reconcile, resource, request_blob FROM operations WHERE session_id = ? AND seq > ? ORDER BY seq")
_BATCH = 64  # request pairs per object whose bodies are compared in one round


# --- results ------------------------------------------------------------------------------------

class Run(msgspec.Struct, kw_only=True):
    """One side of a comparison."""

    path: str
    session: str
    session_id: int
    after: int  # compared from the op after this one (a fork point), 0: from the start
    last: int
    ops: int  # compared ops
    duration_s: float
    fork: dict[str, Any] | None = None  # the fork point, when the run is a fork


class Divergence(msgspec.Struct, kw_only=True):
    """A place where the runs differ; ``seq_a``/``seq_b`` are the ops to jump to (None: the run did
    nothing there)."""

    kind: str  # verb | subresource | status | fields | only-a | only-b | reconcile
    object: str
    offset_s: float  # from the start of the compared ops (the earlier side)
    seq_a: int | None
    seq_b: int | None
    a: str  # what run A did there
    b: str
    text: str
    fields: list[str] = msgspec.field(default_factory=list)
    reconcile_a: int | None = None
    reconcile_b: int | None = None


class ObjectWrites(msgspec.Struct, kw_only=True):
    object: str
    a: int
    b: int
    a_per_min: float
    b_per_min: float


class Finding(msgspec.Struct, kw_only=True):
    """A hot loop, 409 storm or causality cycle, and which run has it."""

    kind: str  # hot-loop | conflict-storm | cycle
    object: str
    in_a: bool
    in_b: bool
    a: str = ""
    b: str = ""
    seq_a: int | None = None
    seq_b: int | None = None

    @property
    def verdict(self) -> str:
        return "in both" if self.in_a and self.in_b else "only in A (gone in B)" if self.in_a else "only in B (new)"


class ErrorCount(msgspec.Struct, kw_only=True):
    status: int
    reason: str
    a: int
    b: int


class Latency(msgspec.Struct, kw_only=True):
    requests: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


class Comparison(msgspec.Struct, kw_only=True):
    a: Run
    b: Run
    first: Divergence | None
    divergences: list[Divergence]
    writes: list[ObjectWrites]
    findings: list[Finding]
    errors: list[ErrorCount]
    error_rate_a: float
    error_rate_b: float
    latency_a: Latency
    latency_b: Latency
    failed: list[str] = msgspec.field(default_factory=list)  # --fail-on checks run B fails


# --- noise -------------------------------------------------------------------------------------------

def significant(value: Any, path: tuple[str, ...] = ()) -> Any:
    """A request body with what differs between any two runs taken out (see the module docstring)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if path == ("metadata",) and k in _NOISE_META:
                continue
            if path == ("metadata", "annotations") and k == _LAST_APPLIED:
                continue
            out[k] = significant(v, (*path, k))
        return out
    if isinstance(value, list):
        return [significant(v, path) for v in value]
    if isinstance(value, str):
        return _UUID.sub("<uid>", _TIME.sub("<time>", value))
    return value


# Noise in a body's JSON, found without parsing it: a string that is (or, in JSON inside a string,
# starts) a timestamp, a UUID, and resourceVersion and generation values.
_NOISE_BYTES = re.compile(rb'"(?:\d{4}-\d\d-\d\d[T ][^"]*|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                          rb'[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"|"(?:resourceVersion|generation)":(?:"[^"]*"|\d+)')


def same_body(a: bytes, b: bytes) -> bool:
    """Two request bodies (JSON) carry the same significant fields: equal with the noise masked in the
    bytes (the common case, no parse), else equal once parsed (:func:`significant`; keys in any order)."""
    if a == b or _NOISE_BYTES.sub(b"", a) == _NOISE_BYTES.sub(b"", b):
        return True
    try:
        return _sorted_json(significant(msgspec.json.decode(a))) == _sorted_json(
            significant(msgspec.json.decode(b)))
    except msgspec.DecodeError:
        return False


async def _raw_bodies(session: Session, blob_ids: set[int]) -> dict[int, bytes]:
    """Request bodies as stored JSON, by blob id, 500 to a query."""
    out: dict[int, bytes] = {}
    wanted = sorted(blob_ids)
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        for blob_id, codec_id, data in await session.rec.fetchall(
                f"SELECT id, codec, data FROM blobs WHERE id IN ({','.join('?' * len(part))})", part):
            out[blob_id] = session.rec.unpack_body(blob_id, codec_id, data)
    return out


# --- one run ----------------------------------------------------------------------------------------------

class _Op(msgspec.Struct, array_like=True):
    seq: int
    offset_ns: int
    verb: str
    subresource: str
    status: int
    body: int | None  # the request body's blob (writes)
    reconcile: int | None

    def describe(self, target: str) -> str:
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"op {self.seq} {self.verb} {target}{sub} ({self.status or '-'})"


class _Side:
    """What one run's compared ops add up to."""

    def __init__(self, session: Session, after: int):
        self.session = session
        self.after = after
        self.start_ns = 0
        self.end_ns = 0
        self.ops = 0
        self.requests: list[int] = []  # latencies
        self.errors: Counter[tuple[int, str]] = Counter()
        self.writes: Counter[str] = Counter()
        self.objects: dict[str, list[_Op]] = {}
        self.spans: dict[int, list[tuple[str, str]]] = {}  # reconcile -> its requests (verb, target)

    async def read(self) -> None:
        s = self.session
        if self.after > 0:
            rows = await s.rows(self.after, 1)
            self.start_ns = rows[0].ts_ns if rows else 0
        requests, errors, writes, objects, spans = self.requests, self.errors, self.writes, self.objects, self.spans
        targets: dict[tuple[str, str, str, str], str] = {}
        start_ns = self.start_ns
        async for batch in s.rec.stream(_STREAM, (s.id, self.after), size=5000):
            if not start_ns:
                start_ns = self.start_ns = batch[0][1]
            self.end_ns = max(self.end_ns, max(row[1] for row in batch))
            self.ops += len(batch)
            for (seq, ts, dur, verb, api_version, kind, ns, name, sub, status, reason, reconcile, resource,
                 blob_id) in batch:
                if verb in _REQUESTS:
                    requests.append(dur)
                if status >= 400 or verb == EVENT_ERROR:
                    errors[(status, reason)] += 1
                if not name or not kind or resource.startswith("/"):
                    continue
                target = targets.get((api_version, kind, ns, name))
                if target is None:
                    group = api_group(api_version)
                    target = targets[(api_version, kind, ns, name)] = (
                        f"{kind}.{group}/{ns}/{name}" if group else target_label(kind, ns, name))
                if status < 400 and verb in WRITE_VERBS:
                    writes[target] += 1
                if verb not in _ALIGNED:
                    continue
                ops = objects.get(target)
                if ops is None:
                    ops = objects[target] = []
                ops.append(_Op(seq, ts - start_ns, verb, sub, status, blob_id if verb in _BODIES else None,
                               reconcile))
                if reconcile is not None:
                    spans.setdefault(reconcile, []).append((verb, f"{target}/{sub}" if sub else target))

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    def latency(self) -> Latency:
        values = sorted(self.requests)
        if not values:
            return Latency()

        def pct(q: float) -> float:
            return values[min(len(values) - 1, max(0, int(-(-len(values) * q // 100)) - 1))] / 1e6

        return Latency(requests=len(values), p50_ms=pct(50), p95_ms=pct(95), p99_ms=pct(99), max_ms=values[-1] / 1e6)

    async def triggers(self) -> list[tuple[int, int, int, str]]:
        """(reconcile id, start seq, start offset, "event target") of the compared reconciles that a watch
        event started, exact spans only: inferred ones (a proxy recording's) attribute a request to the
        latest event, so with concurrent reconciles they would pair requests no reconcile made."""
        rows = await self.session.rec.fetchall(
            "SELECT r.id, r.start_seq, r.start_ns, e.verb, e.api_version, e.kind, e.namespace, e.name"
            " FROM reconciles r JOIN operations e ON e.session_id = r.session_id AND e.seq = r.trigger_seq"
            " WHERE r.session_id = ? AND r.start_seq > ? AND r.inferred = 0 ORDER BY r.start_seq",
            (self.session.id, self.after))
        out = []
        for rid, start, start_ns, verb, api_version, kind, ns, name in rows:
            group = api_group(api_version)
            target = f"{kind}.{group}/{ns}/{name}" if group else target_label(kind, ns, name)
            out.append((rid, start, start_ns - self.start_ns, f"{verb} {target}"))
        return out


# --- alignment ---------------------------------------------------------------------------------------------

def _object_divergence(target: str, a: list[_Op], b: list[_Op], a_dur: int, b_dur: int, settle_ns: int,
                       start: int, same: dict[int, bool]) -> tuple[int, Divergence | None, list[int]]:
    """Scan the requests on ``target`` from the ``start``-th on: (where it stopped, the divergence found
    there or None, the indexes whose bodies must be compared first).  ``same``: index -> whether the
    bodies there were found to carry the same fields."""
    unknown: list[int] = []
    for i in range(start, max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x is not None and y is not None:
            kind = ("verb" if x.verb != y.verb else "subresource" if x.subresource != y.subresource
                    else "status" if x.status != y.status else "")
            if not kind and x.body is not None and y.body is not None:
                if i not in same:
                    unknown.append(i)
                    if len(unknown) >= _BATCH:
                        return i, None, unknown
                    continue
                kind = "" if same[i] else "fields"
            elif not kind and (x.body is None) != (y.body is None):
                kind = "fields"
            if not kind:
                continue
            if unknown:  # bodies before it decide first
                return unknown[0], None, unknown
            return i, Divergence(kind=kind, object=target, offset_s=min(x.offset_ns, y.offset_ns) / 1e9,
                                 seq_a=x.seq, seq_b=y.seq, a=x.describe(target), b=y.describe(target),
                                 text=f"{target}: A {x.describe(target)}; B {y.describe(target)}",
                                 reconcile_a=x.reconcile, reconcile_b=y.reconcile), []
        if unknown:
            return unknown[0], None, unknown
        if x is not None:  # B made no i-th request on it
            if x.offset_ns + settle_ns > b_dur:
                return i, None, []  # B had ended by then
            text = f"{target}: A {x.describe(target)}; B did not {_after(i, b_dur - x.offset_ns)}"
            return i, Divergence(kind="only-a", object=target, offset_s=x.offset_ns / 1e9, seq_a=x.seq, seq_b=None,
                                 a=x.describe(target), b="", reconcile_a=x.reconcile, text=text), []
        assert y is not None
        if y.offset_ns + settle_ns > a_dur:
            return i, None, []
        text = f"{target}: B {y.describe(target)}; A did not {_after(i, a_dur - y.offset_ns)}"
        return i, Divergence(kind="only-b", object=target, offset_s=y.offset_ns / 1e9, seq_a=None, seq_b=y.seq,
                             a="", b=y.describe(target), reconcile_b=y.reconcile, text=text), []
    return max(len(a), len(b)), None, unknown


async def _object_divergences(a: _Side, b: _Side, settle_ns: int) -> list[Divergence]:
    """The first divergence on every object, the bodies of corresponding writes compared in rounds of
    batched reads (a round settles up to ``_BATCH`` pairs per object)."""
    found: list[Divergence] = []
    same: dict[str, dict[int, bool]] = {}
    pending = {t: 0 for t in sorted(a.objects.keys() | b.objects.keys())}
    while pending:
        wanted: dict[str, list[int]] = {}
        for target, start in list(pending.items()):
            ops_a, ops_b = a.objects.get(target, []), b.objects.get(target, [])
            _, divergence, unknown = _object_divergence(target, ops_a, ops_b, a.duration_ns, b.duration_ns,
                                                        settle_ns, start, same.setdefault(target, {}))
            if unknown:
                wanted[target] = unknown
                pending[target] = unknown[0]
            else:
                del pending[target]
                if divergence is not None:
                    found.append(divergence)
        if not wanted:
            break
        bodies_a = await _raw_bodies(a.session, {blob for t, ix in wanted.items() for i in ix
                                                 if (blob := a.objects[t][i].body) is not None})
        bodies_b = await _raw_bodies(b.session, {blob for t, ix in wanted.items() for i in ix
                                                 if (blob := b.objects[t][i].body) is not None})
        for target, indexes in wanted.items():
            for i in indexes:
                ba, bb = a.objects[target][i].body, b.objects[target][i].body
                same[target][i] = ba is not None and bb is not None and same_body(bodies_a[ba], bodies_b[bb])
    return found


def _after(requests: int, left_ns: int) -> str:
    made = f"{requests} request{'s' if requests != 1 else ''}"
    return f"(it made {made} on it, and ran {left_ns / 1e9:.1f}s more)"


def _reconcile_divergences(a: _Side, b: _Side, ta: list[tuple[int, int, int, str]],
                           tb: list[tuple[int, int, int, str]]) -> list[Divergence]:
    """The k-th reconcile started by the same trigger in each run, compared by the requests they made."""
    def by_trigger(triggers: list[tuple[int, int, int, str]]) -> dict[str, list[tuple[int, int, int]]]:
        out: dict[str, list[tuple[int, int, int]]] = {}
        for rid, start, offset, trigger in triggers:
            out.setdefault(trigger, []).append((rid, start, offset))
        return out

    ga, gb = by_trigger(ta), by_trigger(tb)
    found = []
    for trigger in ga.keys() & gb.keys():
        for (ra, sa, oa), (rb, sb, ob) in zip(ga[trigger], gb[trigger]):
            reqs_a, reqs_b = Counter(a.spans.get(ra, ())), Counter(b.spans.get(rb, ()))
            if reqs_a == reqs_b:
                continue
            only_a = sorted(f"{v} {t}" for v, t in (reqs_a - reqs_b).elements())
            only_b = sorted(f"{v} {t}" for v, t in (reqs_b - reqs_a).elements())
            found.append(Divergence(
                kind="reconcile", object=trigger.split(" ", 1)[1], offset_s=min(oa, ob) / 1e9, seq_a=sa, seq_b=sb,
                a=", ".join(only_a[:5]) or "nothing more", b=", ".join(only_b[:5]) or "nothing more",
                text=f"reconcile after {trigger}: A's #{ra} (op {sa}) made "
                     + (", ".join(only_a[:3]) or "no more requests") + f"; B's #{rb} (op {sb}) made "
                     + (", ".join(only_b[:3]) or "no more requests"),
                reconcile_a=ra, reconcile_b=rb))
            break  # the first differing reconcile of this trigger
    return found


async def _fields(sa: Session, sb: Session, d: Divergence) -> list[str]:
    """The significant fields two corresponding writes differ in."""
    if d.seq_a is None or d.seq_b is None:
        return []
    oa, ob = await sa.op(d.seq_a), await sb.op(d.seq_b)
    return [c.path or "." for c in diffmod.diff(significant(oa.request), significant(ob.request))][:8]


# --- findings --------------------------------------------------------------------------------------------------

async def _findings(session: Session, after: int, window_s: float,
                    hot_min: int) -> dict[tuple[str, str], tuple[str, int]]:
    """(kind, object) -> (a short description, the op to jump to), for findings that reach past ``after``."""
    out: dict[tuple[str, str], tuple[str, int]] = {}
    window_ns = int(window_s * 1e9)
    for loop in await analysis.hot_loops(session, window_ns=window_ns, hot_min=hot_min):
        if loop.last_seq > after:
            out[("hot-loop", loop.key)] = (
                f"{loop.writes_without_spec_change} writes without a spec change, up to {loop.max_in_window} in "
                f"{window_s:g}s; {loop.reconciles} reconciles", loop.first_seq)
    errors = await analysis.error_patterns(session, window_ns=window_ns)
    for storm in errors.conflict_storms:
        if storm.last_seq > after:
            out[("conflict-storm", storm.key)] = (f"{storm.count} conflicts in {storm.duration_s:.1f}s",
                                                  storm.first_seq)
    for cycle in await causality.cycles(session):
        if cycle.last_seq > after:
            out[("cycle", " -> ".join(cycle.controllers))] = (
                f"{cycle.rounds} rounds, the longest run {cycle.longest_run}", cycle.first_seq)
    return out


# --- the comparison ----------------------------------------------------------------------------------------

def fork_of(run: Session) -> dict[str, Any] | None:
    point = (run.info.attributes or {}).get("fork")
    return point if isinstance(point, dict) else None


def _starts(a: Session, b: Session) -> tuple[int, int]:
    """Where each run is compared from: a run's fork source is compared from the fork point."""
    def is_source(source: Session, fork: Session) -> int:
        point = fork_of(fork)
        if point and os.path.abspath(str(point.get("source", ""))) == os.path.abspath(source.path) \
                and point.get("session") == source.info.name and isinstance(point.get("seq"), int):
            return int(point["seq"])
        return 0

    return is_source(a, b), is_source(b, a)


async def compare(a: Session, b: Session, *, settle_s: float = SETTLE_S, window_s: float = 60.0,
                  hot_min: int = 10, fail_on: tuple[str, ...] = ()) -> Comparison:
    """Run A against run B (see the module docstring); ``fail_on`` names the checks run B must pass."""
    unknown = [f for f in fail_on if f not in FAIL_ON]
    if unknown:
        raise RecordingError(f"--fail-on {','.join(unknown)}: unknown (choose from {', '.join(FAIL_ON)})")
    await a.refresh()
    await b.refresh()
    after_a, after_b = _starts(a, b)
    side_a, side_b = _Side(a, after_a), _Side(b, after_b)
    # Each run on its own connection: SQLite reads one while Python folds the other.
    await gather_all(side_a.read(), side_b.read())
    settle = int(settle_s * 1e9)
    divergences = []
    divergences += await _object_divergences(side_a, side_b, settle)
    divergences += _reconcile_divergences(side_a, side_b, await side_a.triggers(), await side_b.triggers())
    divergences.sort(key=lambda d: (d.offset_s, d.object))
    for d in divergences[:20]:
        if d.kind == "fields":
            d.fields = await _fields(a, b, d)
            d.text += " - they differ in " + ", ".join(d.fields)

    minutes_a = max(side_a.duration_ns, 1_000_000_000) / 60e9
    minutes_b = max(side_b.duration_ns, 1_000_000_000) / 60e9
    writes = [ObjectWrites(object=t, a=side_a.writes[t], b=side_b.writes[t], a_per_min=side_a.writes[t] / minutes_a,
                           b_per_min=side_b.writes[t] / minutes_b)
              for t in side_a.writes.keys() | side_b.writes.keys()]
    writes.sort(key=lambda w: (-max(w.a, w.b), w.object))

    fa, fb = await gather_all(_findings(a, after_a, window_s, hot_min), _findings(b, after_b, window_s, hot_min))
    findings = [Finding(kind=k, object=o, in_a=(k, o) in fa, in_b=(k, o) in fb, a=fa.get((k, o), ("", 0))[0],
                        b=fb.get((k, o), ("", 0))[0], seq_a=fa[(k, o)][1] if (k, o) in fa else None,
                        seq_b=fb[(k, o)][1] if (k, o) in fb else None) for k, o in sorted(fa.keys() | fb.keys())]

    errors = [ErrorCount(status=s, reason=r, a=side_a.errors[(s, r)], b=side_b.errors[(s, r)])
              for s, r in side_a.errors.keys() | side_b.errors.keys()]
    errors.sort(key=lambda e: (-max(e.a, e.b), e.status, e.reason))
    rate_a = sum(side_a.errors.values()) / max(len(side_a.requests), 1)
    rate_b = sum(side_b.errors.values()) / max(len(side_b.requests), 1)

    failed = []
    if "hot-loop" in fail_on and any(f.in_b for f in findings if f.kind in ("hot-loop", "cycle")):
        failed.append("hot-loop")
    if "conflict-storm" in fail_on and any(f.in_b for f in findings if f.kind == "conflict-storm"):
        failed.append("conflict-storm")
    if "errors" in fail_on and (rate_b > rate_a or any(e.b and not e.a for e in errors)):
        failed.append("errors")

    def run(side: _Side, s: Session) -> Run:
        return Run(path=s.path, session=s.info.name, session_id=s.id, after=side.after, last=s.last, ops=side.ops,
                   duration_s=side.duration_ns / 1e9, fork=fork_of(s))

    return Comparison(a=run(side_a, a), b=run(side_b, b), first=divergences[0] if divergences else None,
                      divergences=divergences, writes=writes, findings=findings, errors=errors,
                      error_rate_a=rate_a, error_rate_b=rate_b, latency_a=side_a.latency(),
                      latency_b=side_b.latency(), failed=failed)
