"""A session report: the facts a team shares after a debugging session, gathered once.

Built only from the engine's own reads: ``stats.compute`` (summary, timeline),
``analysis.analyze`` (hot loops, 409 storms), ``causality.cycles``, the latest
``state.snapshot`` (owner references for the object graph) and the writer's
rollups (per endpoint, per reconciler, per object: ``engine.rollups``).  Nothing
loads a whole session, and the object graph reads at most ``GRAPH_NODES`` bodies.  Rendering (Markdown,
HTML) lives in ``cli.report``; ``msgspec.to_builtins(Report)`` is the JSON.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec

from replay_tui.engine import analysis, causality, rollups, state
from replay_tui.engine.format import EVENT_ERROR, target_label
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.stats import LATENCY_VERBS, Histogram, Latency, Stats, Timeline, compute, request_scale
from replay_tui.engine.store import Session
from replay_tui.engine.textsafe import safe

GRAPH_NODES = 50  # objects drawn in the Mermaid graph (the most written first)
SECRET_SCAN = 200  # Secrets whose bodies are searched for redaction markers
REDACTION_MARKER = "redacted:hmac-sha256:"  # recorder.redact.MARKER_PREFIX (engine may not import it)



class Metadata(msgspec.Struct):
    session: str
    session_id: int
    source: str
    actor: str
    cluster: str
    namespaces: list[str]
    started_ns: int | None
    ended_ns: int | None
    first_ns: int
    last_ns: int
    duration_s: float
    recorder: str  # "proxy", "client-hook", or the importer's source
    recorder_version: str  # "" when the recording does not say
    attributes: dict[str, Any]
    state: str = "closed"  # "recording", "interrupted" (its writer died) or "closed"


class Summary(msgspec.Struct):
    operations: int
    requests: int
    watch_events: int
    reconciles: int
    errors: int
    error_rate: float
    latency_ms: Latency
    ops_per_s: float
    peak_ops_per_s: float
    sample_rate: float = 1.0  # < 1: request counts are estimates (recorded / rate)
    recorded_operations: int = 0
    sampled_out: int | None = None  # requests the recorder counted but left out (None: not stored)


class Endpoint(msgspec.Struct):
    """Ops sharing verb, resource and subresource, e.g. ``PATCH reports/status``."""

    endpoint: str
    verb: str
    resource: str
    subresource: str
    count: int  # an estimate in a sampled session (recorded / rate)
    errors: int
    avg_ms: float
    p95_ms: float
    max_ms: float
    max_seq: int  # the slowest op of the endpoint
    slow: bool  # p95 over the threshold (requests only: a watch lasts as long as its stream)
    recorded: int = 0  # ops of this endpoint in the recording


class SlowestOp(msgspec.Struct):
    seq: int
    verb: str
    target: str
    ms: float
    reconcile: int


class ReconcilerProfile(msgspec.Struct):
    reconciler: str
    reconciles: int
    failed: int
    cycle_ms: Latency  # end_ns - start_ns of the closed spans
    slowest_op: SlowestOp | None
    time_by_verb: dict[str, float]  # share (0..1) of request time inside its cycles
    bottleneck: str  # the verb with the largest share


class Finding(msgspec.Struct):
    """A hot loop, a 409 storm or a causality cycle, with the op to jump to."""

    kind: str  # "hot loop" | "409 storm" | "cycle"
    target: str
    detail: str
    seq: int


class Security(msgspec.Struct):
    redaction: bool | None  # None: the recording does not say
    # values the recorder or importer replaced (attribute redacted_values); for an older recording
    # without it, the markers in the Secrets of the latest state (None: not searched)
    redacted_values: int | None
    secret_ops: int
    namespaces: list[str]
    listen: str  # "" when not recorded
    loopback_only: bool | None


class GraphEdge(msgspec.Struct):
    source: str
    target: str
    label: str


class ObjectGraph(msgspec.Struct):
    nodes: list[str]
    edges: list[GraphEdge]
    writes_by_kind: dict[str, dict[str, int]]  # reconciler -> kind -> writes
    truncated: bool
    mermaid: str


class Report(msgspec.Struct):
    metadata: Metadata
    summary: Summary
    slow_ms: float
    endpoints: list[Endpoint]
    reconcilers: list[ReconcilerProfile]
    findings: list[Finding]
    security: Security
    graph: ObjectGraph
    timeline: Timeline


async def build(session: Session, *, slow_ms: float = 1000.0, window_s: float = 60.0,
                hot_min: int = 10) -> Report:
    """The whole report of one session."""
    stats = await compute(session)
    found = await analysis.analyze(session, slow_ms=slow_ms, window_s=window_s, hot_min=hot_min)
    loops = await causality.cycles(session)
    namespaces = await rollups.namespaces(session)
    return Report(
        metadata=_metadata(session, stats, namespaces),
        summary=Summary(operations=stats.operations, requests=stats.requests,
                        watch_events=stats.watch_events, reconciles=stats.reconciles, errors=stats.errors,
                        error_rate=stats.error_rate, latency_ms=stats.latency_ms, ops_per_s=stats.ops_per_s,
                        peak_ops_per_s=stats.peak_ops_per_s, sample_rate=stats.sample_rate,
                        recorded_operations=stats.recorded_operations,
                        sampled_out=_int_attr(session, "sampled_out")),
        slow_ms=slow_ms,
        endpoints=await endpoints(session, slow_ms=slow_ms),
        reconcilers=await reconcilers(session),
        findings=_findings(found, loops),
        security=await _security(session, namespaces),
        graph=await object_graph(session),
        timeline=stats.timeline,
    )


def _metadata(session: Session, stats: Stats, namespaces: list[str]) -> Metadata:
    info = session.info
    attrs = dict(info.attributes or {})
    version = attrs.get("recorder_version") or attrs.get("version") or ""
    return Metadata(session=info.name, session_id=info.id, source=info.source, actor=info.actor,
                    cluster=info.cluster, namespaces=namespaces, started_ns=info.started_ns,
                    ended_ns=info.ended_ns, first_ns=stats.first_ns, last_ns=stats.last_ns,
                    duration_s=stats.duration_s or _span_s(info.started_ns, info.ended_ns),
                    recorder=str(attrs.get("recorder") or info.source),
                    recorder_version=str(version), attributes=attrs, state=info.state)


def _int_attr(session: Session, name: str) -> int | None:
    value = (session.info.attributes or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _span_s(started_ns: int | None, ended_ns: int | None) -> float:
    """A session without ops still has a recorded start and end."""
    return (ended_ns - started_ns) / 1e9 if started_ns and ended_ns and ended_ns > started_ns else 0.0


def endpoint_label(verb: str, resource: str, subresource: str) -> str:
    path = f"{resource}/{subresource}" if subresource else resource
    return f"{verb.upper()} {path or '(no resource)'}"


async def endpoints(session: Session, *, slow_ms: float) -> list[Endpoint]:
    """One row per (verb, resource, subresource), busiest first; latency from the bucket histogram."""
    hists: dict[tuple[str, str, str], Histogram] = {}
    errors: dict[tuple[str, str, str], int] = {}
    max_seq: dict[tuple[str, str, str], tuple[int, int]] = {}
    for g in await rollups.op_groups(session):
        key = (g.verb, g.resource, g.subresource)
        hists.setdefault(key, Histogram()).add(g.bucket, g.n, g.total_ns or 0, g.max_ns or 0)
        if g.status >= 400 or g.verb == EVENT_ERROR:
            errors[key] = errors.get(key, 0) + g.n
        best = max_seq.get(key)
        if best is None or (g.max_ns, -g.max_seq) > (best[0], -best[1]):
            max_seq[key] = (g.max_ns, g.max_seq)
    scale = request_scale(session.info.sample_rate)
    out = []
    for key, hist in hists.items():
        verb, resource, sub = key
        lat = hist.latency()
        request = verb in LATENCY_VERBS
        w = scale if request else 1.0
        out.append(Endpoint(endpoint=endpoint_label(verb, resource, sub), verb=verb, resource=resource,
                            subresource=sub, count=round(hist.count * w), errors=round(errors.get(key, 0) * w),
                            avg_ms=lat.mean, p95_ms=lat.p95, max_ms=lat.max, max_seq=max_seq[key][1],
                            slow=request and lat.p95 >= slow_ms, recorded=hist.count))
    out.sort(key=lambda e: (-e.count, e.endpoint))
    return out


async def reconcilers(session: Session) -> list[ReconcilerProfile]:
    """Per reconciler: spans, cycle-time percentiles, its slowest op, request time per verb."""
    docs = await rollups.reconcilers(session)
    out = []
    for name in sorted((n for n, d in docs.items() if d.spans), key=lambda n: (-docs[n].spans, n)):
        doc = docs[name]
        hist = Histogram()
        for bucket, (n, total, mx) in doc.cycle.items():
            hist.add(bucket, n, total, mx)
        spent = doc.verbs
        whole = sum(spent.values())
        shares = {v: t / whole for v, t in sorted(spent.items(), key=lambda kv: -kv[1])} if whole else {}
        slowest = None
        if doc.slowest:
            mx, seq, verb, kind, ns, obj, sub, rid = doc.slowest
            slowest = SlowestOp(seq=seq, verb=verb, target=target_label(kind, ns, obj, sub, ""), ms=mx / 1e6,
                                reconcile=rid)
        out.append(ReconcilerProfile(
            reconciler=name, reconciles=doc.spans, failed=doc.failed,
            cycle_ms=hist.latency() if hist.count else Latency(), slowest_op=slowest, time_by_verb=shares,
            bottleneck=next(iter(shares), "")))
    return out


def _findings(found: analysis.Analysis, loops: list[causality.Cycle]) -> list[Finding]:
    out = [Finding(kind="hot loop", target=h.key,
                   detail=f"{h.writes} writes ({h.writes_without_spec_change} without a spec change),"
                          f" {h.reconciles} reconciles; the loop runs from op {h.first_seq} to {h.last_seq},"
                          f" densest {h.window_s:g}s at ops {h.window_first_seq}..{h.window_last_seq}"
                          f" ({h.max_in_window} writes, {h.max_reconciles_in_window} reconciles)",
                   seq=h.first_seq) for h in found.hot_loops]
    out += [Finding(kind="409 storm", target=s.key,
                    detail=f"{s.count} conflicts in {s.duration_s:.1f}s (ops {s.first_seq}..{s.last_seq})",
                    seq=s.first_seq) for s in found.error_patterns.conflict_storms]
    out += [Finding(kind="cycle", target=" -> ".join(c.controllers), detail=c.explanation, seq=c.first_seq)
            for c in loops]
    return out


async def _security(session: Session, namespaces: list[str]) -> Security:
    attrs = session.info.attributes or {}
    redaction = attrs.get("redacted")
    secret_ops = sum(g.n for g in await rollups.op_groups(session) if g.resource == "secrets")
    counted = attrs.get("redacted_values")
    redacted_values: int | None = int(counted) if isinstance(counted, int) else None
    if redacted_values is None and secret_ops:
        redacted_values = await _count_markers(session)
    listen = str(attrs.get("listen") or "")
    return Security(redaction=redaction if isinstance(redaction, bool) else None,
                    redacted_values=redacted_values if secret_ops or counted is not None else 0,
                    secret_ops=secret_ops, namespaces=namespaces, listen=listen,
                    loopback_only=_loopback(listen) if listen else None)


def _loopback(listen: str) -> bool | None:
    host = listen.rpartition(":")[0].strip("[]") if ":" in listen else listen
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return None


async def _count_markers(session: Session) -> int:
    """Redaction markers in the Secrets of the latest state (at most SECRET_SCAN of them)."""
    snap = await state.snapshot(session, session.last)
    keys = await snap.keys()
    n = 0
    for obj_id in [o for o, k in keys.items() if k.kind == "Secret"][:SECRET_SCAN]:
        body = await snap.get(obj_id)
        for field in ("data", "stringData"):
            values = body.get(field) if isinstance(body, dict) else None
            if isinstance(values, dict):
                n += sum(1 for v in values.values() if isinstance(v, str) and v.startswith(REDACTION_MARKER))
    return n


async def object_graph(session: Session, *, limit: int = GRAPH_NODES) -> ObjectGraph:
    """The most written objects, their owners (latest state) and the reconcilers writing them."""
    written = await rollups.top_objects(session, "writes DESC, obj_id", limit + 1, (), "writes > 0")
    truncated = len(written) > limit
    chosen = [r.obj_id for r in written[:limit]]
    keys = await session.object_keys(chosen)
    labels = {o: str(keys[o]) if o in keys else f"#{o}" for o in chosen}
    nodes = list(labels.values())
    edges: list[GraphEdge] = []
    if session.last:
        snap = await state.snapshot(session, session.last)
        for obj_id in chosen:
            body = await snap.get(obj_id)
            refs = body.get("metadata", {}).get("ownerReferences") if isinstance(body, dict) else None
            for ref in refs if isinstance(refs, list) else []:
                if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
                    continue
                ns = keys[obj_id].namespace if obj_id in keys else ""
                owner = f"{ref['kind']}/{ns}/{ref['name']}" if ns else f"{ref['kind']}/{ref['name']}"
                owner = next((n for n in nodes if _same_object(n, owner)), owner)
                if owner not in nodes:
                    if len(nodes) >= limit + limit // 5:
                        truncated = True
                        continue
                    nodes.append(owner)
                edges.append(GraphEdge(source=owner, target=labels[obj_id], label="owns"))
    docs = await rollups.reconcilers(session)
    writes_by_kind = {name: dict(doc.writes_by_kind) for name, doc in sorted(docs.items()) if doc.writes_by_kind}
    by_object = await rollups.writers(session, chosen)
    for name, obj_id, n in sorted((name, obj_id, n) for obj_id, names in by_object.items()
                                  for name, n in names.items()):
        reconciler = f"reconciler {name}"
        if reconciler not in nodes:
            nodes.append(reconciler)
        edges.append(GraphEdge(source=reconciler, target=labels[obj_id], label=f"writes {n}"))
    return ObjectGraph(nodes=nodes, edges=edges, writes_by_kind=writes_by_kind, truncated=truncated,
                       mermaid=mermaid(nodes, edges))


def _same_object(label: str, owner: str) -> bool:
    """``Report.example.com/default/daily`` names the owner ``Report/default/daily``."""
    kind, _, rest = label.partition("/")
    okind, _, orest = owner.partition("/")
    return rest == orest and kind.split(".")[0] == okind


def mermaid(nodes: list[str], edges: list[GraphEdge]) -> str:
    """``graph LR`` text: objects as boxes, reconcilers as stadiums; labels stripped of quotes."""
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}

    def clean(text: str) -> str:  # and no control character of a recorded name (engine.textsafe)
        return "".join(c for c in safe(text) if c not in '"`<>[]{}()|')

    lines = ["graph LR"]
    for n, i in ids.items():
        if n.startswith("reconciler "):
            lines.append(f'  {i}(["{clean(n.removeprefix("reconciler "))}"])')
        else:
            lines.append(f'  {i}["{clean(n)}"]')
    for e in edges:
        if e.source in ids and e.target in ids:
            lines.append(f"  {ids[e.source]} -->|{clean(e.label)}| {ids[e.target]}")
    return "\n".join(lines)


def check_slow_ms(slow_ms: float) -> None:
    if not slow_ms >= 0:
        raise RecordingError(f"--slow-ms must be >= 0 (got {slow_ms})")

