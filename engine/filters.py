"""Filters over operations: a small text language compiled to SQL.

    verb=update,patch kind=Pod ns=default name=web-* status>=400 status=4xx
    latency>200ms reason=Conflict actor=kopf error reconcile=12 timeout
    path=/apis* discovery discovery=false

Terms are separated by spaces and all must hold.  ``field:value`` is the same as
``field=value``; ``!=`` negates; ``<``, ``<=``, ``>``, ``>=`` compare numbers
(status, latency, reconcile, generation).  A comma lists alternatives.  ``*`` in
a value is a wildcard.  A bare word matches kind, namespace, name, reason or
message, case-insensitively.  ``discovery`` (a keyword) keeps the requests on no
resource (discovery, ``/version``, ``/openapi/v2``), ``discovery=false`` hides them,
and ``path=`` matches their path.  Errors say which token is wrong and where.

``changed=PATH`` (``changed=.status.phase``, ``changed=.spec.replicas,.metadata.labels``)
keeps ops that gave some object a new value at PATH; it reads bodies, so
``Filter.sql`` only narrows it down: ``find`` and ``count`` (and
``engine.query``) apply it exactly.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from replay_tui.engine.format import VERBS
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Session

SCAN_WINDOW = 65536  # ops per query while searching, so a search can be cancelled between windows

_FIELDS = {
    "verb": "verb", "kind": "kind", "ns": "namespace", "namespace": "namespace", "name": "name",
    "status": "status", "code": "status", "latency": "duration_ns", "duration": "duration_ns",
    "reason": "reason", "actor": "actor", "reconcile": "reconcile", "subresource": "subresource",
    "resource": "resource", "generation": "generation", "error": "error", "message": "message",
    "uid": "uid", "seq": "seq",
}
_NUMERIC = {"status", "duration_ns", "reconcile", "generation", "seq"}
_CASELESS = {"kind", "resource", "reason", "verb"}
_TERM = re.compile(r"(?P<field>[A-Za-z_]+)(?P<op>!=|>=|<=|=|:|>|<)(?P<value>.*)\Z")
_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>ns|us|µs|ms|s|m)?\Z")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000}


class FilterError(RecordingError):
    """A filter expression that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, expression: str, column: int):
        super().__init__(f"{message} (column {column}: {expression!r})")
        self.expression = expression
        self.column = column
        self.short = message


class Filter(msgspec.Struct, frozen=True):
    """A compiled filter: the source text and its SQL condition over ``operations``."""

    text: str
    sql: str
    params: tuple[Any, ...]
    # changed=PATH terms: each a tuple of alternative paths.  Checked against bodies
    # (engine.query), not in SQL: ``sql`` alone then matches a superset.
    changed: tuple[tuple[str, ...], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.text.strip()

    @property
    def exact(self) -> bool:
        """True when ``sql`` alone decides a match (no changed= term)."""
        return not self.changed


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


def _number(column: str, raw: str, expr: str, col: int) -> list[tuple[str, list[Any]]] | int:
    """A numeric value; status accepts 4xx (a range); latency accepts units."""
    if column == "status" and re.fullmatch(r"[1-5]xx", raw):
        lo = int(raw[0]) * 100
        return [("status BETWEEN ? AND ?", [lo, lo + 99])]
    if column == "duration_ns":
        m = _DURATION.match(raw)
        if not m:
            raise FilterError(f"bad latency {raw!r} (use e.g. 200ms, 1.5s, 800us)", expr, col)
        n = int(float(m.group("n")) * _UNITS[m.group("unit") or "ms"])
    elif not re.fullmatch(r"-?\d+", raw):
        raise FilterError(f"{raw!r} is not a number", expr, col)
    else:
        n = int(raw)
    if not -2**63 <= n < 2**63:  # SQLite integers are 64-bit
        raise FilterError(f"{raw!r} is out of range", expr, col)
    return n


def _alternatives(value: str, col: int) -> list[tuple[str, int]]:
    """The comma-separated alternatives of a value, each with its 1-based column."""
    out = []
    for part in value.split(","):
        out.append((part, col))
        col += len(part) + 1
    return out


def _glob(value: str) -> str:
    """A case-sensitive wildcard pattern: only ``*`` is special."""
    return value.replace("[", "[[]").replace("?", "[?]")


def parse(expression: str) -> Filter:
    """Compile a filter expression; raises FilterError pointing at the bad token."""
    clauses: list[str] = []
    changed: list[tuple[str, ...]] = []
    params: list[Any] = []
    for m in re.finditer(r"\S+", expression):
        token, col = m.group(), m.start() + 1
        tm = _TERM.match(token)
        if tm is None:
            if token[0] in "=!<>:":
                raise FilterError(f"{token!r} has no field before its operator"
                                  " (write field<op>value without spaces, e.g. status>=400)",
                                  expression, col)
            low = token.lower()
            if low in ("error", "errors", "failed"):
                clauses.append("error = 1")
                continue
            if low == "discovery":
                clauses.append(_PATH_SQL)
                continue
            if low in VERBS:
                clauses.append("verb = ?")
                params.append(low)
                continue
            pattern = f"%{_like(low)}%"
            clauses.append("(lower(name) LIKE ? ESCAPE '\\' OR lower(kind) LIKE ? ESCAPE '\\' OR"
                           " lower(namespace) LIKE ? ESCAPE '\\' OR lower(reason) LIKE ? ESCAPE '\\'"
                           " OR lower(message) LIKE ? ESCAPE '\\')")
            params.extend([pattern] * 5)
            continue
        field, op, value = tm.group("field").lower(), tm.group("op"), tm.group("value")
        op_col = col + len(field)
        value_col = op_col + len(op)
        if field == "changed":
            changed.append(_changed(value, op, expression, op_col, value_col))
            clauses.append(_CHANGED_SQL)
            continue
        if field in ("path", "discovery"):
            clauses.append(_path_term(field, op, value, expression, op_col, value_col, params))
            continue
        column = _FIELDS.get(field)
        if column is None:
            raise FilterError(f"unknown field {field!r} (fields: "
                              f"{', '.join(sorted(set(_FIELDS) | {'changed', 'path', 'discovery'}))})",
                              expression, col)
        if value == "":
            raise FilterError(f"{field}{op} needs a value", expression, col)
        op = "=" if op == ":" else op
        if column == "error":
            truth = value.lower() in ("1", "true", "yes", "y")
            if not truth and value.lower() not in ("0", "false", "no", "n"):
                raise FilterError(f"error takes true or false, not {value!r}", expression, value_col)
            if op not in ("=", "!="):
                raise FilterError(f"error takes = or !=, not {op}", expression, op_col)
            clauses.append("error = ?" if op == "=" else "error != ?")
            params.append(int(truth))
            continue
        if column in _NUMERIC:
            if op in ("=", "!="):
                alts: list[str] = []
                for raw, raw_col in _alternatives(value, value_col):
                    n = _number(column, raw, expression, raw_col)
                    if isinstance(n, list):
                        alts.append(n[0][0])
                        params.extend(n[0][1])
                    else:
                        alts.append(f"{column} = ?")
                        params.append(n)
                cond = "(" + " OR ".join(alts) + ")"
                # != also keeps ops where the field is absent (NULL reconcile/generation).
                clauses.append(cond if op == "=" else f"NOT COALESCE({cond}, 0)")
            else:
                n = _number(column, value, expression, value_col)
                if isinstance(n, list):
                    raise FilterError(f"{op} takes a number, not a range", expression, value_col)
                clauses.append(f"{column} {op} ?")
                params.append(n)
            continue
        if op not in ("=", "!="):
            raise FilterError(f"{field} is text: use = or !=, not {op}", expression, op_col)
        alts = []
        for raw, raw_col in _alternatives(value, value_col):
            if column == "verb" and raw.lower() not in VERBS:
                raise FilterError(f"unknown verb {raw!r}", expression, raw_col)
            if column in _CASELESS:
                alts.append(f"lower({column}) LIKE ? ESCAPE '\\'")
                params.append(_like(raw.lower()))
            elif "*" in raw:
                alts.append(f"{column} GLOB ?")
                params.append(_glob(raw))
            else:
                alts.append(f"{column} = ?")
                params.append(raw)
        cond = "(" + " OR ".join(alts) + ")"
        clauses.append(cond if op == "=" else f"NOT {cond}")
    return Filter(text=expression.strip(), sql=" AND ".join(clauses) or "1", params=tuple(params),
                  changed=tuple(changed))


def object_ops(obj_id: int, label: str) -> Filter:
    """The ops of one object: the requests naming it, its watch events, and the ops that recorded a new
    version of it (a list whose answer carried it changed).  The version lookup is one primary-key
    probe of ``states`` per op, made only where the writer can have recorded another object's version:
    a list, or an op naming no single object (a Table or PartialObjectMetadataList it carried); every
    other op's versions are of its own object.  So it scans at nearly the speed of a plain filter."""
    return Filter(text=label, params=(int(obj_id), int(obj_id)),
                  sql="(obj_id = ? OR ((obj_id IS NULL OR verb = 'list') AND EXISTS (SELECT 1 FROM states st"
                      " WHERE st.session_id = operations.session_id AND st.seq = operations.seq AND st.obj_id = ?)))")


def both(a: Filter | None, b: Filter | None) -> Filter | None:
    """Ops matching ``a`` and ``b`` (either may be None: no condition); the text is ``b``'s when it has one."""
    if a is None or a.empty:
        return b
    if b is None or b.empty:
        return a
    return Filter(text=b.text, sql=f"({a.sql}) AND ({b.sql})", params=(*a.params, *b.params),
                  changed=(*a.changed, *b.changed))


# Requests on no resource (discovery, /version, /openapi/v2): the recorders keep their path in
# ``resource``, which for every other op is a plural name.
_PATH_SQL = "resource GLOB '/*'"


def _path_term(field: str, op: str, value: str, expression: str, op_col: int, value_col: int,
               params: list[Any]) -> str:
    """``path=/apis*`` (paths of requests on no resource, ``*`` a wildcard, commas alternatives) or
    ``discovery=true|false``; ``!=`` keeps every other op, resource requests included."""
    if op not in ("=", ":", "!="):
        raise FilterError(f"{field} takes = or !=, not {op}", expression, op_col)
    if value == "":
        raise FilterError(f"{field}{op} needs a value", expression, op_col - len(field))
    if field == "discovery":
        truth = value.lower() in ("1", "true", "yes", "y")
        if not truth and value.lower() not in ("0", "false", "no", "n"):
            raise FilterError(f"discovery takes true or false, not {value!r}", expression, value_col)
        return _PATH_SQL if truth == (op != "!=") else f"NOT {_PATH_SQL}"
    alts = []
    for raw, raw_col in _alternatives(value, value_col):
        if not raw.startswith(("/", "*")):
            raise FilterError(f"path= takes a request path such as /apis/apps/v1 or /apis*, not {raw!r}",
                              expression, raw_col)
        alts.append("resource GLOB ?" if "*" in raw else "resource = ?")
        params.append(_glob(raw) if "*" in raw else raw)
    cond = f"({_PATH_SQL} AND ({' OR '.join(alts)}))"
    return cond if op != "!=" else f"NOT {cond}"


# Ops that can give an object a new version: the SQL side of changed=PATH.
_CHANGED_SQL = "verb IN ('get', 'list', 'create', 'update', 'patch', 'delete', 'added', 'modified', 'deleted')"


def _changed(value: str, op: str, expression: str, op_col: int, value_col: int) -> tuple[str, ...]:
    """The field paths of a changed= term, each checked (errors point into the path)."""
    from replay_tui.engine.diff import PathError, parse_path

    if op not in ("=", ":"):
        raise FilterError(f"changed takes =, not {op}", expression, op_col)
    if not value:
        raise FilterError(f"changed{op} needs a value", expression, op_col - len("changed"))
    paths = []
    for raw, raw_col in _alternatives(value, value_col):
        if not raw or raw[0] not in ".[":
            raise FilterError(f"changed= takes a field path such as .status.phase, not {raw!r}",
                              expression, raw_col)
        try:
            parse_path(raw)
        except PathError as exc:
            m = re.search(r"at column (\d+)", str(exc))
            raise FilterError(f"bad field path {raw!r}", expression,
                              raw_col + int(m.group(1)) - 1 if m else raw_col) from None
        paths.append(raw)
    return tuple(paths)


async def find(session: Session, seq: int, flt: Filter, forward: bool = True) -> int | None:
    """The next (or previous) op after ``seq`` matching the filter, scanning window by window."""
    if flt.changed:
        from replay_tui.engine import query
        return await query.find(session, seq, flt, forward)
    last = session.last
    if forward:
        lo = seq
        while lo < last:
            hi = min(lo + SCAN_WINDOW, last)
            row = await session.rec.fetchone(
                f"SELECT seq FROM operations WHERE session_id = ? AND seq > ? AND seq <= ?"
                f" AND ({flt.sql}) ORDER BY seq LIMIT 1", (session.id, lo, hi, *flt.params))
            if row:
                return int(row[0])
            lo = hi
    else:
        hi = min(seq, last + 1)
        while hi > 1:
            lo = max(hi - SCAN_WINDOW, 1)
            row = await session.rec.fetchone(
                f"SELECT seq FROM operations WHERE session_id = ? AND seq >= ? AND seq < ?"
                f" AND ({flt.sql}) ORDER BY seq DESC LIMIT 1", (session.id, lo, hi, *flt.params))
            if row:
                return int(row[0])
            hi = lo
    return None


async def count(session: Session, flt: Filter) -> int:
    if flt.changed:
        from replay_tui.engine import query
        return await query.count(session, flt)
    row = await session.rec.fetchone(
        f"SELECT COUNT(*) FROM operations WHERE session_id = ? AND ({flt.sql})",
        (session.id, *flt.params))
    return int(row[0]) if row else 0
