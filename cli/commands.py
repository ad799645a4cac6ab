"""The non-interactive commands: open a recording, read through the engine, print text or JSON."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import yaml

from replay_tui.engine import diff as diffmod
from replay_tui.engine import state
from replay_tui.engine.cursor import resolve_position
from replay_tui.engine.diff import short_value
from replay_tui.engine.format import VERB_ORDER, ObjectKey, Operation, is_path, list_summary
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import CORRUPTED, Recording, Session, at_op
from replay_tui.engine.textsafe import safe, safe_block, safe_json
from replay_tui.engine.units import NO_TIMING, fmt_duration, fmt_elapsed, fmt_latency, fmt_ms, fmt_ts

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(value: Any, indent: int = 2) -> str:
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
    pad = " " * indent
    return "".join(pad + line for line in text.splitlines(keepends=True))


def emit_json(value: Any) -> None:
    sys.stdout.write(safe_json(msgspec.json.encode(msgspec.to_builtins(value)).decode()) + "\n")


def emit(text: str) -> None:
    """Print text output: recorded fields were escaped one by one (``safe``); this is the net
    under them, so no control character of a recording reaches the terminal (engine.textsafe)."""
    print(safe_block(text))


@asynccontextmanager
async def opened(db: str, session: str | None = None) -> AsyncIterator[Session]:
    rec = await Recording.open(db)
    ses: Session | None = None
    try:
        ses = await rec.session(session)
        await ses.refresh()
        yield ses
    except RecordingError as exc:
        # Damage met in a scan says where: the first op of the session that cannot be read.
        if ses is not None and CORRUPTED in str(exc) and f"{CORRUPTED} at op" not in str(exc):
            body = "body" in str(exc)  # then look at the bodies too (slower: on the way to an error only)
            raise at_op(exc, await ses.rec.damaged_op(ses.id, bodies=body)) from None
        raise
    finally:
        await rec.close()


def _session_json(info: Any) -> dict[str, Any]:
    out = msgspec.to_builtins(info)
    out["live"] = info.live
    out["state"] = info.state
    return out


# --- sessions ------------------------------------------------------------------

async def sessions(db: str, *, as_json: bool) -> int:
    rec = await Recording.open(db)
    try:
        infos = await rec.sessions()
    finally:
        await rec.close()
    if as_json:
        emit_json([_session_json(i) for i in infos])
        return 0
    if not infos:
        emit(f"{safe(db)}: no sessions")
        return 0
    rows = [("ID", "NAME", "SOURCE", "OPS", "STARTED (UTC)", "DURATION", "STATE")]
    for i in infos:
        duration = fmt_duration(i.ended_ns - i.started_ns) if i.ended_ns and i.started_ns else "-"
        state = i.state
        if i.interrupted:  # its writer died (killed, crashed): it will never be closed
            state += f", last op {fmt_ts(i.last_op_ns)[:19] if i.last_op_ns else '-'}"
        if i.sample_rate < 1:
            state += f", sampled {i.sample_rate * 100:.4g}%"
        rows.append((str(i.id), safe(i.name), safe(i.source), f"{i.operations:,}", fmt_ts(i.started_ns)[:19],
                     duration, state))
    emit(table(rows))
    return 0


def table(rows: Sequence[tuple[str, ...]], right: Iterable[int] = (3,)) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    right = set(right)
    lines = []
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c]) for c in range(len(r))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# --- show ----------------------------------------------------------------------

def _op_json(op: Operation) -> dict[str, Any]:
    out = msgspec.to_builtins(op)
    out["error"] = op.error
    out["target"] = str(op.key) if op.key else (op.target or None)
    return out


def _label(op: Operation) -> str:
    """The op's object with its group (``Deployment.apps/ns/web``), else its target (a discovery path)."""
    if op.key:
        return f"{op.key}/{op.subresource}" if op.subresource else str(op.key)
    return op.target or "-"


async def show(db: str, session: str | None, at: str, resource: str | None, *, as_json: bool) -> int:
    async with opened(db, session) as ses:
        seq = await resolve_position(ses, at)
        op = await ses.op(seq)
        obj_id: int | None
        key: ObjectKey | None
        if resource:
            obj_id, key = await ses.resolve_object(resource)
        else:
            obj_id = await ses.op_object(seq)
            key = (await ses.object_keys([obj_id]))[obj_id] if obj_id is not None else None
        version = await state.version_at(ses, obj_id, seq) if obj_id is not None else None
        obj = await state.object_at(ses, obj_id, seq) if obj_id is not None else None
        span = await ses.reconcile(op.reconcile) if op.reconcile is not None else None
        start, _ = await ses.time_range()
        if as_json:
            emit_json({
                "session": {"id": ses.id, "name": ses.info.name},
                "seq": seq, "operations": ses.last, "op": _op_json(op),
                "reconcile": msgspec.to_builtins(span) if span else None,
                "resource": str(key) if key else None,
                "version_seq": version.seq if version else None,
                "exists": obj is not None, "object": obj,
            })
            return 0
        out = [f"session {safe(ses.info.name)} ({safe(ses.info.source)}) - op {seq:,} of {ses.last:,}",
               f"  time       {fmt_ts(op.ts_ns)} ({fmt_elapsed(op.ts_ns - start)})",
               f"  verb       {safe(op.verb)} {safe(_label(op))}"
               + (f" ({safe(op.resource)})" if op.resource and not is_path(op.resource) else ""),
               f"  status     {op.status or '-'}" + (f" {safe(op.reason)}" if op.reason else "")
               + (f": {safe(op.message)}" if op.message else "") + ("  [error]" if op.error else ""),
               f"  latency    {fmt_latency(op.verb, op.duration_ns, why=True)}"]
        if span:
            out.append(f"  reconcile  #{span.id} {safe(span.reconciler or '-')} "
                       f"{safe('/'.join(p for p in (span.kind, span.namespace, span.name) if p))} "
                       f"(ops {span.start_seq}..{span.end_seq if span.end_seq is not None else '?'})"
                       + (" [inferred]" if span.inferred else ""))
        if op.actor:
            out.append(f"  actor      {safe(op.actor)}")
        if op.uid or op.resource_version:
            out.append(f"  object     uid={safe(op.uid or '-')} resourceVersion={safe(op.resource_version or '-')}"
                       + (f" generation={op.generation}" if op.generation is not None else ""))
        if op.query:
            out.append("  query      " + " ".join(f"{safe(k)}={safe(v)}" for k, v in op.query.items()))
        if op.request is not None:
            out.append("  request" + (f" ({safe(op.patch_type)})" if op.patch_type else "") + ":")
            out.append(safe_block(to_yaml(op.request, 4).rstrip()))
        if op.response is not None:
            summary = list_summary(op.response)
            if summary:
                out.append(f"  response:  {safe(summary)}")
            elif obj is not None and op.response == obj:
                out.append("  response:  the object below (this op produced that version)")
            else:
                out.append("  response:")
                out.append(safe_block(to_yaml(op.response, 4).rstrip()))
        if key is not None:
            out.append("")
            if obj is None:
                out.append(f"{safe(str(key))} does not exist at op {seq}"
                           + (f" (deleted at op {version.seq})" if version and version.deleted else ""))
            else:
                out.append(f"{safe(str(key))} at op {seq} (version from op {version.seq if version else '?'}):")
                out.append(safe_block(to_yaml(obj, 2).rstrip()))
        emit("\n".join(out))
        return 0


# --- diff ----------------------------------------------------------------------

def _ignore(all_fields: bool, extra: list[str]) -> tuple[str, ...]:
    for path in extra:
        try:
            diffmod.parse_path(path)
        except diffmod.PathError as exc:
            raise RecordingError(str(exc)) from None
    return tuple(extra) if all_fields else diffmod.DEFAULT_IGNORE + tuple(extra)



def _change_lines(changes: list[diffmod.Change], indent: str = "  ") -> list[str]:
    lines = []
    for ch in changes:
        sign = {"added": "+", "removed": "-", "changed": "~"}[ch.kind]
        path = safe(ch.path or ".")
        if ch.kind == "added":
            lines.append(f"{indent}{sign} {path}: {short_value(ch.new)}")
        elif ch.kind == "removed":
            lines.append(f"{indent}{sign} {path}: {short_value(ch.old)}")
        else:
            lines.append(f"{indent}{sign} {path}: {short_value(ch.old)} -> {short_value(ch.new)}")
    return lines


async def diff(db: str, session: str | None, from_: str, to: str, resource: str | None, *,
               all_fields: bool, extra_ignore: list[str], as_json: bool) -> int:
    ignore = _ignore(all_fields, extra_ignore)
    async with opened(db, session) as ses:
        a = await resolve_position(ses, from_, allow_zero=True)
        b = await resolve_position(ses, to, allow_zero=True)
        if resource:
            obj_id, key = await ses.resolve_object(resource)
            changes = await diffmod.object_diff(ses, obj_id, a, b, ignore=ignore)
            if as_json:
                emit_json({"from": a, "to": b, "resource": str(key),
                           "changes": [c.to_json() for c in changes]})
                return 0
            emit(f"{safe(str(key))}: op {a} -> op {b}: {len(changes)} field(s) changed")
            emit("\n".join(_change_lines(changes)) if changes else "  (no changes)")
            return 0
        sd = await diffmod.state_diff(ses, a, b, ignore=ignore)
        keys = await ses.object_keys([*sd.added, *sd.removed, *sd.changed])
        if as_json:
            emit_json({"from": a, "to": b,
                       "added": sorted(str(keys[i]) for i in sd.added),
                       "removed": sorted(str(keys[i]) for i in sd.removed),
                       "changed": {str(keys[i]): [c.to_json() for c in ch] for i, ch in sd.changed.items()}})
            return 0
        emit(f"op {a} -> op {b}: {len(sd.added)} created, {len(sd.removed)} deleted, "
             f"{len(sd.changed)} changed")
        for i in sd.added:
            emit(f"+ {safe(str(keys[i]))}")
        for i in sd.removed:
            emit(f"- {safe(str(keys[i]))}")
        for i, ch in sd.changed.items():
            emit(f"~ {safe(str(keys[i]))}")
            emit("\n".join(_change_lines(ch, "    ")))
        return 0


# --- stats and analysis ------------------------------------------------------------


async def stats(db: str, session: str | None, *, as_json: bool) -> int:
    from replay_tui.engine import stats as statsmod

    async with opened(db, session) as ses:
        result = await statsmod.compute(ses)
        data = msgspec.to_builtins(result)
    if as_json:
        emit_json(data)
        return 0
    emit("\n".join(render_stats(ses.info.name, data)))
    return 0


def sampling_note(rate: float, recorded: int, sampled_out: int | None) -> str:
    """How much of the traffic the recording holds, in words (shared with ``stats``)."""
    if rate >= 1.0:
        return "not sampled: every request the source saw is in the recording"
    out = f" ({sampled_out:,} left out)" if sampled_out is not None else ""
    return (f"SAMPLED: {rate * 100:.4g}% of non-watch requests recorded{out}, {recorded:,} ops in the file; "
            "request counts are estimates (~), latency percentiles are from the sample")


def render_stats(name: str, s: dict[str, Any]) -> list[str]:
    lat = s.get("latency_ms") or {}
    rate = float(s.get("sample_rate", 1.0))
    approx = "~" if rate < 1 else ""
    out = [f"session {safe(name)}: {approx}{s['operations']:,} operations over {s.get('duration_s', 0):,.1f}s"
           f" ({s.get('ops_per_s', 0):,.1f}/s, peak {s.get('peak_ops_per_s', 0):,.0f}/s)",
           *([f"  {sampling_note(rate, int(s.get('recorded_operations', 0)), None)}"] if rate < 1 else []),
           f"  errors     {s['errors']:,} ({s.get('error_rate', 0) * 100:.2f}%)",
           f"  reconciles {s['reconciles']:,}    watch events {s.get('watch_events', 0):,}",
           f"  latency    p50 {fmt_ms(lat.get('p50'))}  p95 {fmt_ms(lat.get('p95'))}  "
           f"p99 {fmt_ms(lat.get('p99'))}  max {fmt_ms(lat.get('max'))}" if lat.get("count") else
           f"  latency    {NO_TIMING}", ""]
    by_verb = s.get("by_verb") or {}
    lat_verb = s.get("latency_by_verb") or {}
    rows = [("VERB", "COUNT", "P50", "P95", "P99")]
    for verb in [v for v in VERB_ORDER if by_verb.get(v)] + sorted(set(by_verb) - set(VERB_ORDER)):
        lv = lat_verb.get(verb) or {}
        rows.append((safe(verb), f"{by_verb[verb]:,}", fmt_ms(lv.get("p50")), fmt_ms(lv.get("p95")),
                     fmt_ms(lv.get("p99"))))
    out.append(table(rows, right=(1, 2, 3, 4)))
    by_kind = s.get("by_kind") or {}
    if by_kind:
        out.append("")
        kinds = [("KIND", "COUNT")] + [(safe(k or "-"), f"{n:,}") for k, n in
                                       sorted(by_kind.items(), key=lambda kv: -kv[1])[:15]]
        out.append(table(kinds, right=(1,)))
    by_status = s.get("by_status") or {}
    if by_status:
        out.append("")
        out.append("  status     " + "  ".join(f"{safe(str(k))}:{v:,}" for k, v in sorted(by_status.items())))
    top = s.get("top_objects") or {}
    for label in ("by_writes", "by_reads"):
        items = top.get(label) or []
        if items:
            out.append("")
            out.append(f"  top objects {label.replace('_', ' ')}:")
            for item in items[:5]:
                out.append(f"    {safe(str(item.get('key')))}  reads {item.get('reads', 0):,}  "
                           f"writes {item.get('writes', 0):,}")
    return out


async def analyze(db: str, session: str | None, *, slow_ms: float, window_s: float, hot_min: int,
                  as_json: bool) -> int:
    from replay_tui.engine import analysis, causality

    async with opened(db, session) as ses:
        result = await analysis.analyze(ses, slow_ms=slow_ms, window_s=window_s, hot_min=hot_min)
        data = msgspec.to_builtins(result)
        # Causality cycles: controllers re-triggering themselves or each other (engine.causality).
        data["cycles"] = msgspec.to_builtins(await causality.cycles(ses))
    if as_json:
        emit_json(data)
        return 0
    emit("\n".join(render_analysis(ses.info.name, data)))
    return 0


def _brief(value: Any, limit: int = 160) -> str:
    if value in ({}, []):
        return "none"
    if isinstance(value, dict):
        text = ", ".join(f"{safe(str(k))}={_brief(v, 40)}" for k, v in value.items()
                         if not isinstance(v, (list, dict)) or k in ("seqs", "examples", "example_seqs"))
    elif isinstance(value, list):
        text = ",".join(_brief(v, 20) for v in value[:6]) + ("..." if len(value) > 6 else "")
    else:
        text = safe(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_analysis(name: str, a: dict[str, Any]) -> list[str]:
    """Each section's entries, one line each; the JSON has every field."""
    out = [f"session {safe(name)}: analysis"]
    for section in ("hot_loops", "cycles", "slow_operations", "error_patterns", "access_patterns"):
        value = a.get(section)
        out.append("")
        out.append(section.replace("_", " ").upper())
        if not value:
            out.append("  none found")
            continue
        if section == "cycles":  # engine.causality.Cycle: one explanation each, and where to look
            for item in value[:10]:
                out.append(f"  {safe(str(item['explanation']))}")
                out.append(f"    first rounds at ops {_brief(item['seqs'])}")
            continue
        if isinstance(value, list):
            for item in value[:10]:
                out.append("  " + _brief(item))
            if len(value) > 10:
                out.append(f"  ... {len(value) - 10} more (see --json)")
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, list):
                    out.append(f"  {safe(str(k))}: {len(v)}")
                    for item in v[:5]:
                        out.append("    " + _brief(item))
                elif isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()):
                    out.append(f"  {safe(str(k))}:")
                    for name, item in list(v.items())[:10]:
                        out.append(f"    {safe(str(name))}: {_brief(item)}")
                else:
                    out.append(f"  {safe(str(k))}: {_brief(v)}")
    return out


# --- interactive ---------------------------------------------------------------------

def ensure_demo(path: Path) -> Path:
    """The bundled demo recording (real kopf operators recorded through the proxy)."""
    if not path.exists():
        raise RecordingError(f"{path}: the demo recording is missing; regenerate it with "
                             "'python fixtures/make_demo.py'")
    return path


def open_interactive(db: str, session: str | None, *, follow: bool) -> int:
    """The debugger: bad input fails in one line before any screen opens (see run_app)."""
    from replay_tui.tui.app import run_app

    return int(run_app(db, session, follow=follow))
