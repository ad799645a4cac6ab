"""``replay-tui when``, ``why`` and ``query``: the time-travel questions on the command line.

    when   DB --field KIND/NS/NAME:PATH [--before N | --after N] [--all]
           the ops at which a field changed (one, or all on a side of a position)
    why    DB --at N [--resource KIND/NS/NAME] [--field PATH]
           the chain that produced an object's version (or a field's value) at N
    query  DB EXPR [--limit N]
           the ops matching a filter expression, printed as they are found

Text by default, ``--json`` for machines.  A bad expression or field prints
the expression with a caret under the offending column (two lines) and exits 1.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from replay_tui.cli.commands import emit, emit_json, opened, table
from replay_tui.engine import provenance, watch
from replay_tui.engine import query as querymod
from replay_tui.engine.cursor import resolve_position
from replay_tui.engine.diff import short_value
from replay_tui.engine.filters import FilterError, parse
from replay_tui.engine.format import OpRow
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Session
from replay_tui.engine.textsafe import safe, safe_json
from replay_tui.engine.units import fmt_elapsed, fmt_latency

PROG = "replay-tui"


def caret_error(what: str, expression: str, column: int, message: str) -> int:
    """Two lines on stderr: the expression, then a caret under ``column`` and the message."""
    prefix = f"{PROG}: error: bad {what}: "
    line = expression.replace("\n", " ")
    col = min(max(column, 1), len(line) + 1)
    sys.stderr.write(f"{prefix}{line}\n{' ' * (len(prefix) + col - 1)}^ {message}\n")
    return 1



# --- when ------------------------------------------------------------------------------

async def when(db: str, session: str | None, field: str, *, before: str | None, after: str | None,
               all_changes: bool, as_json: bool) -> int:
    try:
        ref = watch.parse_field(field)
    except watch.FieldSpecError as exc:
        return caret_error("field", exc.expression or field, exc.column, exc.short)
    async with opened(db, session) as ses:
        index = await watch.watch(ses, ref)
        if before is not None:
            pos = await resolve_position(ses, before, allow_zero=True)
            if all_changes:
                changes = index.changes(0, pos)
            else:
                one = index.last(pos)
                changes = [one] if one else []
            scope = f"at or before op {pos}"
        elif after is not None:
            pos = await resolve_position(ses, after, allow_zero=True)
            if all_changes:
                changes = index.changes(pos)
            else:
                one = index.next(pos)
                changes = [one] if one else []
            scope = f"after op {pos}"
        else:
            changes = index.changes()
            scope = "in the session"
        writers: list[provenance.Writer | str | None] = []
        for c in changes:
            if len(writers) >= MAX_ATTRIBUTED:
                writers.append("?")
            else:
                writers.append(await provenance.written_by(ses, index.obj_id, c.seq))
        if as_json:
            emit_json([dict(c.to_json(), write=_writer_json(w)) for c, w in zip(changes, writers)])
            return 0
        start, _ = await ses.time_range()
        label = safe(f"{index.key}:{ref.path or '.'}")
        if not changes:
            emit(f"{label}: no change {scope} ({index.versions:,} versions of the object,"
                 f" {index.decoded:,} of them read)")
            return 0
        emit(f"{label}: {len(changes):,} change(s) {scope} "
             f"({len(index):,} in all, over {index.versions:,} versions)")
        rows = [("SEQ", "ELAPSED", "VERB", "WRITTEN BY", "OLD -> NEW")]
        for c, w in zip(changes, writers):
            rows.append((str(c.seq), fmt_elapsed(c.ts_ns - start) if c.ts_ns else "-", safe(c.verb or "-"),
                         _writer_text(w), f"{short_value(c.old)} -> {short_value(c.new)}"
                         + (" (object deleted)" if c.deleted else "")))
        emit(table(rows, right=()))
        return 0


MAX_ATTRIBUTED = 2000  # changes whose write is looked up (each a lookup or two)


def _short(text: str, limit: int = 32) -> str:
    """Long actors (Go reconciler types) keep their distinctive end."""
    return text if len(text) <= limit else "..." + text[-(limit - 3):]


def _writer_text(w: provenance.Writer | str | None) -> str:
    if w is None:
        return "another client"
    if isinstance(w, str):
        return "-"
    text = f"op {w.seq} {safe(w.verb)}"
    if w.reconcile is not None:
        text += f" (reconcile #{w.reconcile})"  # not "patch #4": which reconcile, as `why` names it
    return text + (f" {_short(safe(w.actor))}" if w.actor else "")


def _writer_json(w: provenance.Writer | str | None) -> Any:
    if isinstance(w, str):
        return None
    return msgspec.to_builtins(w) if w is not None else "external"


# --- why -------------------------------------------------------------------------------

async def why(db: str, session: str | None, at: str, resource: str | None, field: str | None, *,
              max_links: int, as_json: bool) -> int:
    path = None
    if field is not None:
        path = field.strip()
        if path == ".":
            path = ""
        try:
            watch.check_path(path, path, 1)
        except watch.FieldSpecError as exc:
            return caret_error("field path", path, exc.column, exc.short)
    async with opened(db, session) as ses:
        seq = await resolve_position(ses, at, allow_zero=True)
        if resource:
            obj_id, _ = await ses.resolve_object(resource)
        else:
            obj = await ses.op_object(seq) if seq > 0 else None
            if obj is None:
                raise RecordingError(f"op {seq} addresses no single object: name one with --resource")
            obj_id = obj
        chain = await provenance.explain(ses, obj_id, seq, path=path, max_links=max_links)
        if as_json:
            emit_json({"session": {"id": ses.id, "name": ses.info.name}, "resource": chain.object,
                       "at": seq, "path": path, "end": chain.end,
                       "links": [msgspec.to_builtins(link) for link in chain.links]})
            return 0
        what = f"{chain.object}:{path or '.'}" if path is not None else chain.object
        emit(f"why {safe(what)} at op {seq}")
        for link in chain.links:
            where = f"op {link.seq}" if link.seq is not None else "-"
            emit(f"  {safe(link.kind):<12} {where:<12} {safe(link.text)}")
        return 0


# --- query -----------------------------------------------------------------------------

def _row_text(row: OpRow, start: int, keys: dict[int, Any], fields: list[querymod.FieldMatch]) -> str:
    status = str(row.status) if row.status else "-"
    text = (f"{row.seq:>9}  {fmt_elapsed(row.ts_ns - start):>12}  {safe(row.verb):<8} "
            f"{safe(row.target or '-'):<48} {status:>4}{' ' + safe(row.reason) if row.reason else ''}  "
            f"{fmt_latency(row.verb, row.duration_ns):>7}"
            + (f"  #{row.reconcile}" if row.reconcile is not None else ""))
    for f in fields:
        text += (f"\n{'':>11}{safe(str(keys.get(f.obj_id, f.obj_id)))}:{safe(f.path)}: "
                 f"{short_value(f.old)} -> {short_value(f.new)}")
    return text


def _row_json(row: OpRow, keys: dict[int, Any], fields: list[querymod.FieldMatch]) -> bytes:
    out: dict[str, Any] = {
        "seq": row.seq, "ts_ns": row.ts_ns, "duration_ns": row.duration_ns, "verb": row.verb,
        "kind": row.kind, "namespace": row.namespace, "name": row.name, "subresource": row.subresource,
        "status": row.status, "reason": row.reason, "reconcile": row.reconcile, "error": row.error,
        "target": row.target}
    if fields:
        out["changed"] = [dict(f.to_json(), object=str(keys.get(f.obj_id, f.obj_id))) for f in fields]
    return msgspec.json.encode(out)


async def run_query(db: str, session: str | None, expression: str, *, limit: int | None,
                    as_json: bool) -> int:
    try:
        flt = parse(expression)
    except FilterError as exc:
        return caret_error("query", exc.expression, exc.column, exc.short)
    if limit is not None and limit < 1:
        raise RecordingError("--limit must be at least 1")
    out = sys.stdout
    async with opened(db, session) as ses:
        start, _ = await ses.time_range()
        found = 0
        if as_json:
            out.write("[")
        async for matches in querymod.stream(ses, flt, limit=limit):
            keys = await _keys(ses, matches)
            if as_json:
                out.write("".join(("\n" if found + i == 0 else ",\n")
                                  + safe_json(_row_json(m.row, keys, m.fields).decode())
                                  for i, m in enumerate(matches)))
            else:
                out.write("".join(_row_text(m.row, start, keys, m.fields) + "\n" for m in matches))
            found += len(matches)
            out.flush()
        if as_json:
            out.write("\n]\n" if found else "]\n")
        else:
            out.write(f"-- {found:,} match(es) for {safe(flt.text or '(everything)')}"
                      + (f" (stopped at --limit {limit})" if limit is not None and found >= limit else "")
                      + "\n")
        out.flush()
    return 0


async def _keys(ses: Session, matches: list[querymod.Match]) -> dict[int, Any]:
    ids = {f.obj_id for m in matches for f in m.fields}
    return await ses.object_keys(list(ids)) if ids else {}
