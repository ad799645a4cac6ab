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
from replay_tui.engine.units import (
    NO_TIMING,
    elide,
    fmt_count,
    fmt_duration,
    fmt_elapsed,
    fmt_latency,
    fmt_ms,
    fmt_seqs,
    fmt_ts,
)

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


def table(rows: Sequence[tuple[str, ...]], right: Iterable[int] = (3,), width: int | None = None) -> str:
    """Columns padded to their widest cell; with ``width`` (a terminal's), a last column that would not
    fit loses the middle of its cells (the names go last: they differ at their end)."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    if width is not None and sum(widths) + 2 * (len(widths) - 1) > width:
        last = max(width - sum(widths[:-1]) - 2 * (len(widths) - 1), 12)
        rows = [(*r[:-1], elide(r[-1], last)) for r in rows]
        widths[-1] = min(widths[-1], last)
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
    """``stats`` as text.  In a sampled session every count of requests is an estimate (``~``),
    but the totals when the recorder stored how many requests it saw (``requests_exact``)."""
    from replay_tui.engine.stats import LATENCY_VERBS

    lat = s.get("latency_ms") or {}
    rate = float(s.get("sample_rate", 1.0))
    est = "~" if rate < 1 else ""
    total = "" if s.get("requests_exact", True) else est
    out = [f"session {safe(name)}: {total}{s['operations']:,} operations over {s.get('duration_s', 0):,.1f}s"
           f" ({s.get('ops_per_s', 0):,.1f}/s, peak {est}{s.get('peak_ops_per_s', 0):,.0f}/s)",
           *([f"  {sampling_note(rate, int(s.get('recorded_operations', 0)), None)}"] if rate < 1 else []),
           f"  errors     {est}{s['errors']:,} ({s.get('error_rate', 0) * 100:.2f}%)",
           f"  reconciles {s['reconciles']:,}    watch events {s.get('watch_events', 0):,}",
           f"  latency    p50 {fmt_ms(lat.get('p50'))}  p95 {fmt_ms(lat.get('p95'))}  "
           f"p99 {fmt_ms(lat.get('p99'))}  max {fmt_ms(lat.get('max'))}" if lat.get("count") else
           f"  latency    {NO_TIMING}", ""]
    by_verb = s.get("by_verb") or {}
    lat_verb = s.get("latency_by_verb") or {}
    rows = [("VERB", "COUNT", "P50", "P95", "P99")]
    for verb in [v for v in VERB_ORDER if by_verb.get(v)] + sorted(set(by_verb) - set(VERB_ORDER)):
        lv = lat_verb.get(verb) or {}
        rows.append((safe(verb), f"{est if verb in LATENCY_VERBS else ''}{by_verb[verb]:,}", fmt_ms(lv.get("p50")),
                     fmt_ms(lv.get("p95")), fmt_ms(lv.get("p99"))))
    out.append(table(rows, right=(1, 2, 3, 4)))
    by_kind = s.get("by_kind") or {}
    if by_kind:
        out.append("")
        kinds = [("KIND", "COUNT")] + [(safe(k or "-"), f"{est}{n:,}") for k, n in
                                       sorted(by_kind.items(), key=lambda kv: -kv[1])[:15]]
        out.append(table(kinds, right=(1,)))
    by_status = s.get("by_status") or {}
    if by_status:
        out.append("")
        statuses = [(safe(str(k)) if str(k) != "0" else "-", v) for k, v in sorted(by_status.items())]  # 0: none
        out.append("  status     " + "  ".join(f"{k}:{est if k != '-' else ''}{v:,}" for k, v in statuses))
    top = s.get("top_objects") or {}
    for label in ("by_writes", "by_reads"):
        items = top.get(label) or []
        if items:
            out.append("")
            out.append(f"  top objects {label.replace('_', ' ')}:")
            for item in items[:5]:
                out.append(f"    {safe(str(item.get('key')))}  reads {est}{item.get('reads', 0):,}  "
                           f"writes {est}{item.get('writes', 0):,}")
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
    emit("\n".join(render_analysis(ses.info.name, data, text_width())))
    return 0


# --- the analysis as text: each section with its heading, one line (or a small table) per finding,
# the op to jump to first, as the TUI's Analysis tab and the report show them -----------------------

GUTTER = "  op {:<8} "  # the op a finding points at
LISTED = 10  # findings listed per section (--json has every one)


def text_width() -> int | None:
    """The terminal's width when printing to one (names longer than that lose their middle), else None."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _name(text: Any, width: int | None, indent: int) -> str:
    """A recorded name, whole unless it alone is wider than the terminal (then its middle goes)."""
    name = safe(str(text))
    return elide(name, width - indent) if width is not None else name


def _at(seq: Any) -> str:
    return GUTTER.format(seq) if isinstance(seq, int) and seq > 0 else " " * len(GUTTER.format(""))


def _more(items: list[Any], order: str) -> str:
    """A section's count, saying how many are listed (and in which order)."""
    n = len(items)
    listed = "" if n <= LISTED else f"; the first {LISTED} listed, --json has all"
    return f"{n:,}{listed}" + (f"; {order}" if n > 1 else "")


def _hot_loops(loops: list[dict[str, Any]], width: int | None) -> list[str]:
    out = [f"HOT LOOPS ({_more(loops, 'worst first')})"]
    if not loops:
        return out + ["  none found"]
    pad = " " * len(_at(None))
    for h in loops[:LISTED]:
        writes, quiet = h["writes"], h["writes_without_spec_change"]
        recs, own = h["reconciles"], h["self_triggered_reconciles"]
        out.append(_at(h["first_seq"]) + _name(h["key"], width, len(pad)))
        line = (f"{fmt_count(quiet, 'write')}, none changing the spec" if quiet == writes else
                f"{fmt_count(quiet, 'write')} of {writes:,} without a spec change")
        if h["status_writes"]:
            line += f" ({h['status_writes']:,} to status)"
        line += f", {fmt_count(recs, 'reconcile')}"
        if own:
            line += f", {own:,} started by its own writes ({h['longest_self_trigger_chain']:,} in a row)"
        out.append(f"{pad}{line}; {h['writes_per_min']:,.0f} writes/min")
        fields = [safe(f) for f in h.get("changed_fields") or []]
        if len(fields) > 3:
            fields = [*fields[:3], f"and {len(fields) - 3} more"]
        where = (f"the loop: ops {h['first_seq']}..{h['last_seq']}; densest {h['window_s']:g}s: ops "
                 f"{h['window_first_seq']}..{h['window_last_seq']} ({fmt_count(h['max_in_window'], 'write')}, "
                 f"{fmt_count(h['max_reconciles_in_window'], 'reconcile')})")
        out.append(pad + where + (f"; each write changes only {', '.join(fields)}" if fields else ""))
    return out


def _cycles(cycles: list[dict[str, Any]]) -> list[str]:
    out = [f"CAUSALITY CYCLES ({_more(cycles, 'most rounds first')})"]
    if not cycles:
        return out + ["  none found"]
    pad = " " * len(_at(None))
    for c in cycles[:LISTED]:
        out.append(_at(c["first_seq"]) + safe(str(c["explanation"])))
        out.append(f"{pad}first rounds at ops {fmt_seqs(c['seqs'])}")
    return out


SUB = "    "  # the rows under a sub-heading


def _op(seq: Any) -> str:
    return f"op {seq}" if isinstance(seq, int) and seq > 0 else "-"


def _slow_table(ops: list[dict[str, Any]], width: int | None) -> str:
    rows = [(f"{SUB}OP", "LATENCY", "VERB", "STATUS", "TARGET")]
    rows += [(SUB + _op(op["seq"]), fmt_ms(op["ms"]), safe(op["verb"]), str(op["status"] or "-"),
              safe(op["target"])) for op in ops]
    return table(rows, right=(1, 3), width=width)


def _slow(so: dict[str, Any], width: int | None) -> list[str]:
    if not so.get("timing", True):
        return ["SLOW OPERATIONS", f"  {NO_TIMING}"]
    over = ", ".join(f"{safe(v)} {n:,}" for v, n in (so.get("count_by_verb") or {}).items())
    out = [f"SLOW OPERATIONS ({so['count']:,} over {so['threshold_ms']:,g} ms{': ' + over if over else ''})"]
    slowest = (so.get("slowest") or [])[:LISTED]
    if slowest:
        out += [f"  the {fmt_count(len(slowest), 'slowest request')}:", _slow_table(slowest, width)]
    by_verb = list((so.get("slowest_by_verb") or {}).values())
    if by_verb:
        out += ["  the slowest of each verb:", _slow_table(by_verb, width)]
    return out


def _errors(ep: dict[str, Any], width: int | None) -> list[str]:
    out = [f"ERROR PATTERNS ({fmt_count(ep['total'], 'error')})"]
    if not ep["total"]:
        return out + ["  none found"]
    storms = ep.get("conflict_storms") or []
    out.append(f"  409 conflict retry storms ({_more(storms, 'most conflicts first')}){':' if storms else ''}")
    if storms:
        storm_rows = [(f"{SUB}FROM", "TO", "CONFLICTS", "OVER", "OBJECT")]
        storm_rows += [(SUB + _op(st["first_seq"]), _op(st["last_seq"]), f"{st['count']:,}",
                        f"{st['duration_s']:,.1f}s", safe(st["key"])) for st in storms[:LISTED]]
        out.append(table(storm_rows, right=(2, 3), width=width))
    groups = ep.get("by_status_reason") or []
    group_rows = [(f"{SUB}STATUS", "REASON", "ERRORS", "FIRST OPS")] + [
        (f"{SUB}{g['status']}", safe(g["reason"] or "-"), f"{g['count']:,}", fmt_seqs(g["example_seqs"], 5))
        for g in groups[:LISTED]]
    out += [f"  by status and reason ({_more(groups, 'most first')}):", table(group_rows, right=(2,), width=width)]
    objects = ep.get("by_object") or []
    object_rows = [(f"{SUB}ERRORS", "FIRST OPS", "OBJECT")] + [
        (f"{SUB}{o['count']:,}", fmt_seqs(o["example_seqs"], 5), safe(o["key"])) for o in objects[:LISTED]]
    out += [f"  by object ({_more(objects, 'most first')}):", table(object_rows, right=(0,), width=width)]
    verbs = ep.get("by_verb") or []
    verb_rows = [(f"{SUB}VERB", "ERRORS", "FIRST OPS")] + [
        (f"{SUB}{safe(v['verb'])}", f"{v['count']:,}", fmt_seqs(v["example_seqs"], 5)) for v in verbs[:LISTED]]
    out += [f"  by verb ({_more(verbs, 'most first')}):", table(verb_rows, right=(1,))]
    return out


def _access(ap: dict[str, Any], width: int | None) -> list[str]:
    out = ["ACCESS PATTERNS"]
    kinds = ap.get("by_kind") or []
    if kinds:
        kind_rows = [(f"{SUB}GETS", "LISTS", "WATCHES", "WRITES", "EVENTS", "READS/WRITE", "LISTS/MIN", "KIND")]
        kind_rows += [(f"{SUB}{k['gets']:,}", f"{k['lists']:,}", f"{k['watches']:,}", f"{k['writes']:,}",
                  f"{k['watch_events']:,}", "-" if k["read_write_ratio"] is None else f"{k['read_write_ratio']:,.2f}",
                  f"{k['lists_per_min']:,.1f}", safe(k["kind"])) for k in kinds]
        out += [f"  by kind ({_more(kinds, 'busiest first')}; EVENTS: watch events):",
                table(kind_rows, right=range(7), width=width)]
    for label, items in (("objects read again while unchanged", ap.get("rereads") or []),
                         ("objects read most", ap.get("most_read") or [])):
        if not items:
            out.append(f"  {label}: none")
            continue
        read_rows = [(f"{SUB}GETS", "VERSIONS", "CACHED", "MOST OF ONE", "ITS VERSION", "OBJECT")]
        read_rows += [(f"{SUB}{r['gets']:,}", f"{r['versions_read']:,}", f"{r['redundant_gets']:,}",
                  f"{r['max_reads_of_one_version']:,}", _op(r["most_read_version_seq"]) if r["most_read_version_seq"]
                  else "before the session", safe(r["key"])) for r in items[:LISTED]]
        out += [f"  {label} ({_more(items, 'most first')}; CACHED: gets its cache had):",
                table(read_rows, right=(0, 1, 2, 3), width=width)]
    return out


def render_analysis(name: str, a: dict[str, Any], width: int | None = None) -> list[str]:
    """Each section under its heading; each finding on a line (or in a small table) starting with the op
    to jump to; names whole unless wider than ``width``; the JSON has every field."""
    sections = [_hot_loops(a.get("hot_loops") or [], width), _cycles(a.get("cycles") or []),
                _slow(a["slow_operations"], width), _errors(a["error_patterns"], width),
                _access(a["access_patterns"], width)]
    out = [f"session {safe(name)}: analysis"]
    for lines in sections:
        out += ["", *lines]
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
