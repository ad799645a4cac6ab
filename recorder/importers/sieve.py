"""Import Sieve learn traces (``sieve-server.log``) as replay-tui sessions.

Sieve (sieve-project/sieve) instruments controller-runtime and logs, one line
each, a Go log prefix, a tag, then tab-separated fields::

    2022/03/21 01:35:29 learn_server.go:291: [SIEVE-AFTER-READ]<TAB>Get<TAB>true<TAB>...
    [SIEVE-AFTER-READ]    Get, fromCache, type, namespace, name, reconciler, error, {json}
    [SIEVE-AFTER-READ]    List, fromCache, typelist, reconciler, error, {"items": [...]}
    [SIEVE-BEFORE-WRITE]  id
    [SIEVE-AFTER-WRITE]   id, Create|Update|Patch|Delete|..., type, reconciler, error, {json}
    [SIEVE-BEFORE-HEAR]   id, Added|Updated|Deleted|Replaced|Sync, type, {json}
    [SIEVE-AFTER-HEAR]    id
    [SIEVE-BEFORE-RECONCILE] / [SIEVE-AFTER-RECONCILE]   reconciler type, reconcile id

(Older traces lack the from-cache flag and the reconciler columns; both
layouts are read.)  Mapping:

* every AFTER-READ is one ``get``/``list`` op, every AFTER-WRITE one write op
  (``StatusUpdate``/``StatusPatch`` are update/patch of the ``status``
  subresource, ``DeleteAllOf`` a deletecollection), every BEFORE-HEAR one
  watch event (Added -> added, Updated, Replaced and Sync -> modified,
  Deleted -> deleted); BEFORE-WRITE and AFTER-HEAR add nothing;
* the from-cache flag of a read is kept as ``query={"fromCache": "true"}``;
* the error column is the Kubernetes reason (``NoError`` when none): any other
  value makes an error op with that reason, its HTTP status, and a
  ``metav1.Status`` body (the object Sieve logged is then the request);
* Sieve logs objects without kind/apiVersion (typed clients drop them): the
  importer puts them back, as the trace itself says them (objects of the type
  that carry them, or their ``selfLink``; learned in a quick first pass), else
  from a table of built-in kinds, so the replayed state holds the objects as
  the API server returned them, and every op of a type names one kind;
* seq order is line order, and an op's time is its line's: Sieve timestamps
  have one-second resolution, so durations are left unknown (0) rather than
  made up from rounded stamps;
* the actor of a read or write is its reconciler type (none for ``unknown``);
* BEFORE-RECONCILE opens a span for its reconciler type (``Reconcile.reconciler``;
  Sieve's reconcile id is ``Reconcile.source_id``) closed by the AFTER of the
  same reconciler.  Spans of different reconcilers may interleave; ops tagged
  with a reconciler while its span is open carry the span id.  A span starts at
  its first op, its object is the one its first Get reads (controller-runtime
  reconcilers start by reading the object they reconcile), and its trigger is
  the last watch event heard since that reconciler's previous start (None when
  none was: a requeue).  A span without AFTER stays open.

Lines without a tag (the server's own log) are skipped; tagged lines that
cannot be read are counted as malformed with their line numbers, and the
import goes on.  An empty file is an error, and so is a file with no valid
Sieve record: with ``not a Sieve learn trace`` when no line carries a tag.
"""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec

from replay_tui.engine.format import (
    ADDED,
    CREATE,
    DELETE,
    DELETECOLLECTION,
    DELETED,
    GET,
    LIST,
    MODIFIED,
    PATCH,
    UPDATE,
    ObjectMeta,
    Operation,
    decode_head,
    decode_list,
)
from replay_tui.recorder.importers.common import (
    CORE_BY_LOWER_KIND,
    INPUT_ERRORS,
    Bodies,
    ImportFormatError,
    ImportResult,
    LineReader,
    Malformed,
    Progress,
    Tally,
    Target,
    check_input,
    check_op,
    code_for_reason,
    default_session_name,
    describe_input_error,
    feed_lines,
    first_pass,
    match_ns,
    pluralise,
    status_body,
)

SOURCE = "sieve"
EXPECTED = "a Sieve learn trace"
NOT_SIEVE = "not a Sieve learn trace (expected lines tagged [SIEVE-...])"

TAG = b"[SIEVE-"
NO_ERROR = "NoError"
UNKNOWN_RECONCILER = "unknown"
MAX_IGNORED_TAGS = 50

HEAR_VERBS = {"Added": ADDED, "Updated": MODIFIED, "Deleted": DELETED, "Replaced": MODIFIED,
              "Sync": MODIFIED}
WRITE_TYPES = {"Create": (CREATE, ""), "Update": (UPDATE, ""), "Patch": (PATCH, ""),
               "Delete": (DELETE, ""), "DeleteAllOf": (DELETECOLLECTION, ""),
               "StatusUpdate": (UPDATE, "status"), "StatusPatch": (PATCH, "status")}

_TS = re.compile(rb"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_HEAD_KIND = re.compile(rb'^\s*\{\s*"kind"\s*:\s*"([^"]+)"\s*,\s*"apiVersion"\s*:\s*"([^"]+)"')
_ITEM_KIND = re.compile(
    rb'"items"\s*:\s*\[\s*\{\s*"kind"\s*:\s*"([^"]+)"\s*,\s*"apiVersion"\s*:\s*"([^"]+)"')
_SELF_LINK = re.compile(rb'"selfLink"\s*:\s*"(/apis?/[^"]+)"')




class _TypeInfo(msgspec.Struct):
    kind: str
    api_version: str
    resource: str


def _line_ts(prefix: bytes) -> int | None:
    m = _TS.search(prefix)
    return match_ns(m) if m else None


def _self_link_type(link: str) -> tuple[str, str] | None:
    """'/apis/g/v/namespaces/ns/plural/name' -> ('g/v', 'plural')."""
    parts = link.split("/")
    if len(parts) < 4:
        return None
    if parts[1] == "api":
        gv, rest = parts[2], parts[3:]
    elif parts[1] == "apis" and len(parts) >= 5:
        gv, rest = f"{parts[2]}/{parts[3]}", parts[4:]
    else:
        return None
    if not rest:
        return None
    plural = rest[2] if rest[0] == "namespaces" and len(rest) >= 4 else rest[0]
    return gv, plural


class _Types:
    """Sieve resource type ('cassandradatacenter') -> kind, apiVersion, plural.

    Learned from the trace before the import starts, then fixed: every op of a
    type names the same kind and group, so one object is one object.
    """

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[str, str]] = {}
        self.links: dict[str, tuple[str, str]] = {}
        self.resolved: dict[str, _TypeInfo] = {}

    def learn(self, rtype: str, obj: bytes, is_list: bool) -> None:
        if rtype not in self.kinds:
            m = (_ITEM_KIND if is_list else _HEAD_KIND).search(obj, 0, 8192)
            if m:
                self.kinds[rtype] = (m.group(1).decode("utf-8", "replace"),
                                     m.group(2).decode("utf-8", "replace"))
        if rtype not in self.links:
            m = _SELF_LINK.search(obj, 0, 8192)
            if m:
                found = _self_link_type(m.group(1).decode("utf-8", "replace"))
                if found:
                    self.links[rtype] = found

    def resolve(self, rtype: str) -> _TypeInfo:
        info = self.resolved.get(rtype)
        if info is None:
            core = CORE_BY_LOWER_KIND.get(rtype)
            kind, api_version = self.kinds.get(rtype, ("", ""))
            link_gv, plural = self.links.get(rtype, ("", ""))
            kind = kind or (core[0] if core else rtype[:1].upper() + rtype[1:])
            api_version = api_version or link_gv or (core[1] if core else "")
            plural = plural or (core[2] if core else pluralise(rtype))
            info = self.resolved[rtype] = _TypeInfo(kind, api_version, plural)
        return info


class _Record(Exception):
    """A tagged line that cannot be read: its reason."""


def _fields(rest: bytes, n: int) -> list[str]:
    """The tab-separated fields after a tag; the last (the JSON) may contain anything."""
    if rest and not rest.startswith(b"\t"):
        raise _Record("no tab after the tag")
    parts = rest[1:].split(b"\t", n - 1) if rest else []
    try:
        return [p.decode("utf-8") for p in parts]
    except UnicodeDecodeError:
        raise _Record("not UTF-8") from None


def _record_type(tag: bytes, rest: bytes) -> tuple[str, bytes, bool] | None:
    """(resource type, object JSON, is a list) of a line carrying an object; for the first pass."""
    parts = rest[1:].split(b"\t")
    if tag == b"[SIEVE-BEFORE-HEAR]" and len(parts) >= 4:
        return parts[2].decode("utf-8", "replace"), parts[-1], False
    if tag == b"[SIEVE-AFTER-WRITE]" and len(parts) >= 5:
        return parts[2].decode("utf-8", "replace"), parts[-1], False
    if tag == b"[SIEVE-AFTER-READ]" and len(parts) >= 4:
        new = parts[1] in (b"true", b"false")
        rtype = (parts[2] if new else parts[1]).decode("utf-8", "replace")
        if parts[0] == b"List":
            return (rtype[:-4] if rtype.endswith("list") else rtype), parts[-1], True
        return rtype, parts[-1], False
    return None


def _split_tag(line: bytes) -> tuple[int, bytes, bytes] | None:
    """(index of the tag, tag, what follows it) or None for an untagged line."""
    i = line.find(TAG)
    if i < 0:
        return None
    j = line.find(b"]", i)
    if j < 0:
        return i, b"", b""
    return i, line[i:j + 1], line[j + 1:].rstrip(b"\r\n")


def prescan(path: str, bar: Progress | None = None) -> tuple[_Types, int]:
    """First pass: types' kinds and groups, and how many lines carry a Sieve tag."""
    types = _Types()
    tagged = 0
    with LineReader(path) as reader:
        for _, line in reader:
            if bar is not None and bar.enabled:
                bar.update(reader.position, None)
            split = _split_tag(line)
            if split is None:
                continue
            tagged += 1
            _, tag, rest = split
            found = _record_type(tag, rest) if rest.startswith(b"\t") else None
            if found:
                types.learn(*found)
    return types, tagged


class _Pending(msgspec.Struct):
    source_id: str
    ts_ns: int
    trigger_seq: int | None


class SieveImporter:
    """Streams one Sieve learn trace into one session."""

    def __init__(self, sw: Any, types: _Types, malformed: Malformed, bodies: Bodies | None = None):
        self.sw = sw
        self.types = types
        self.malformed = malformed
        self.bodies = bodies if bodies is not None else Bodies()
        self.tally = Tally()
        self.last_ts = 0
        self.tagged = 0
        self.untagged = 0
        self.ignored_tags: dict[str, int] = {}
        self.waiting: dict[str, _Pending] = {}  # reconciler -> BEFORE seen, no op yet
        self.open: dict[str, tuple[int, _Pending]] = {}  # reconciler -> (span id, ...)
        self.last_event_seq = 0
        self.event_mark: dict[str, int] = {}  # reconciler -> last event seq at its previous start
        self.reconciles = 0
        self.unclosed = 0
        self.unmatched_ends = 0
        self.handlers = {
            b"[SIEVE-AFTER-READ]": self._read,
            b"[SIEVE-BEFORE-WRITE]": lambda lineno, ts, rest: None,
            b"[SIEVE-AFTER-WRITE]": self._write,
            b"[SIEVE-BEFORE-HEAR]": self._hear,
            b"[SIEVE-AFTER-HEAR]": lambda lineno, ts, rest: None,
            b"[SIEVE-BEFORE-RECONCILE]": self._before_reconcile,
            b"[SIEVE-AFTER-RECONCILE]": self._after_reconcile,
        }

    # --- lines -------------------------------------------------------------------------

    def line(self, lineno: int, line: bytes) -> None:
        split = _split_tag(line)
        if split is None:
            if line.strip():
                self.untagged += 1
            return
        self.tagged += 1
        i, tag, rest = split
        if not tag:
            self.malformed.add(lineno, "unterminated [SIEVE-...] tag")
            return
        ts = _line_ts(line[:i])
        if ts is not None:
            self.last_ts = ts
        handler = self.handlers.get(tag)
        if handler is None:
            name = tag.decode("utf-8", "replace")
            if name in self.ignored_tags or len(self.ignored_tags) < MAX_IGNORED_TAGS:
                self.ignored_tags[name] = self.ignored_tags.get(name, 0) + 1
            return
        try:
            handler(lineno, self.last_ts, rest)
        except _Record as exc:
            self.malformed.add(lineno, f"{tag.decode()} {exc}")
        except INPUT_ERRORS as exc:  # bad bytes, deep nesting, numbers out of range
            self.malformed.add(lineno, f"{tag.decode('utf-8', 'replace')} {describe_input_error(exc)}")

    # --- objects -----------------------------------------------------------------------

    def _object(self, raw: str, info: Any) -> tuple[bytes, ObjectMeta]:
        """The object JSON with kind/apiVersion put back when Sieve dropped them, redacted."""
        data = self._checked(raw.encode("utf-8"), info, "object")
        try:
            head = decode_head(data)
        except msgspec.ValidationError as exc:
            raise _Record(f"object is not a Kubernetes object ({describe_input_error(exc)})") from None
        if not head.kind and not head.apiVersion and data.startswith(b"{"):
            prefix = msgspec.json.encode({"kind": info.kind, "apiVersion": info.api_version})
            data = prefix[:-1] + (b"," if data[1:].strip() != b"}" else b"") + data[1:]
        elif not head.kind or not head.apiVersion:
            obj = msgspec.json.decode(data)
            obj.setdefault("kind", info.kind)
            if not obj.get("apiVersion"):
                obj["apiVersion"] = info.api_version
            data = msgspec.json.encode(obj)
        return data, head.metadata or ObjectMeta()

    def _list(self, raw: str, info: _TypeInfo) -> bytes:
        data = self._checked(raw.encode("utf-8"), info, "list")
        try:
            head = decode_list(data)
        except msgspec.ValidationError as exc:
            raise _Record(f"not a Kubernetes list ({describe_input_error(exc)})") from None
        if not head.kind and not head.apiVersion and data.startswith(b"{"):
            prefix = msgspec.json.encode({"kind": info.kind + "List", "apiVersion": info.api_version})
            data = prefix[:-1] + (b"," if data[1:].strip() != b"}" else b"") + data[1:]
        return data

    def _checked(self, data: bytes, info: _TypeInfo, what: str) -> bytes:
        """JSON a reader can decode, its Secret values redacted (a Secret's type is ``secret``)."""
        out = self.bodies(data, secret=info.resource == "secrets" and info.api_version == "v1", what=what)
        assert out is not None
        return out

    # --- ops -------------------------------------------------------------------------------

    def _append(self, op: Operation) -> int:
        seq = self.sw.append(check_op(op))
        self.tally.count(op.verb, op.error)
        return seq

    def _error(self, op: Operation, error: str, info: _TypeInfo, name: str) -> dict[str, Any]:
        op.status = code_for_reason(error)
        op.reason = error
        what = f"{info.resource}.{info.api_version.rpartition('/')[0]}" if "/" in info.api_version \
            else info.resource
        if error == "NotFound":
            op.message = f'{what} "{name}" not found'
        elif error == "AlreadyExists":
            op.message = f'{what} "{name}" already exists'
        else:
            op.message = f"{error or 'unknown error'} ({what} {name})".strip()
        return status_body(op.status, error, op.message, kind=info.resource, name=name)

    def _read(self, lineno: int, ts: int, rest: bytes) -> None:
        first = _fields(rest, 2)
        if not first or first[0] not in ("Get", "List"):
            raise _Record(f"unknown read {first[0] if first else ''!r} (expected Get or List)")
        new = len(first) > 1 and first[1].split("\t", 1)[0] in ("true", "false")
        if first[0] == "Get":
            f = _fields(rest, 8 if new else 6)
            if len(f) != (8 if new else 6):
                raise _Record(f"Get has {len(f)} fields, expected {8 if new else 6}")
            if new:
                _, cache, rtype, namespace, name, reconciler, error, obj = f
            else:
                _, rtype, namespace, name, error, obj = f
                cache, reconciler = "", UNKNOWN_RECONCILER
            info = self.types.resolve(rtype)
            op = Operation(verb=GET, ts_ns=ts, api_version=info.api_version, resource=info.resource,
                           kind=info.kind, namespace=namespace, name=name,
                           actor=self._actor(reconciler))
            if error == NO_ERROR:
                op.status = 200
                op.response, _ = self._object(obj, info)
            else:
                self._object(obj, info)  # still must be readable
                op.response = self._error(op, error, info, name)
        else:
            f = _fields(rest, 6 if new else 4)
            if len(f) != (6 if new else 4):
                raise _Record(f"List has {len(f)} fields, expected {6 if new else 4}")
            if new:
                _, cache, rtype, reconciler, error, obj = f
            else:
                _, rtype, error, obj = f
                cache, reconciler = "", UNKNOWN_RECONCILER
            rtype = rtype[:-4] if rtype.endswith("list") else rtype
            info = self.types.resolve(rtype)
            op = Operation(verb=LIST, ts_ns=ts, api_version=info.api_version, resource=info.resource,
                           kind=info.kind, actor=self._actor(reconciler))
            body = self._list(obj, info)
            if error == NO_ERROR:
                op.status = 200
                op.response = body
            else:
                op.response = self._error(op, error, info, "")
        if cache:
            op.query = {"fromCache": cache}
        op.reconcile = self._span(reconciler, op)
        self._append(op)

    def _write(self, lineno: int, ts: int, rest: bytes) -> None:
        f = _fields(rest, 6)
        if len(f) == 6:
            _, wtype, rtype, reconciler, error, obj = f
        else:
            f = _fields(rest, 5)
            if len(f) != 5:
                raise _Record(f"has {len(f)} fields, expected 6")
            _, wtype, rtype, error, obj = f
            reconciler = UNKNOWN_RECONCILER
        mapped = WRITE_TYPES.get(wtype)
        if mapped is None:
            raise _Record(f"unknown write type {wtype!r}")
        verb, subresource = mapped
        info = self.types.resolve(rtype)
        body, meta = self._object(obj, info)
        op = Operation(verb=verb, ts_ns=ts,
                       api_version=info.api_version, resource=info.resource, kind=info.kind,
                       namespace=meta.namespace,
                       name="" if verb == DELETECOLLECTION else meta.name,
                       subresource=subresource, actor=self._actor(reconciler))
        if error != NO_ERROR:
            op.request = body
            op.response = self._error(op, error, info, op.name)
        elif verb in (DELETE, DELETECOLLECTION):
            op.status = 200
            op.request = body  # what the operator deleted; the API answer is not in the trace
        else:
            op.status = 201 if verb == CREATE else 200
            op.response = body
        op.reconcile = self._span(reconciler, op)
        self._append(op)

    def _hear(self, lineno: int, ts: int, rest: bytes) -> None:
        f = _fields(rest, 4)
        if len(f) != 4:
            raise _Record(f"has {len(f)} fields, expected 4")
        _, etype, rtype, obj = f
        verb = HEAR_VERBS.get(etype)
        if verb is None:
            raise _Record(f"unknown event type {etype!r}")
        info = self.types.resolve(rtype)
        body, meta = self._object(obj, info)
        op = Operation(verb=verb, ts_ns=ts, api_version=info.api_version, resource=info.resource,
                       kind=info.kind, namespace=meta.namespace, name=meta.name, response=body)
        self.last_event_seq = self._append(op)

    # --- reconcile spans -----------------------------------------------------------------

    @staticmethod
    def _actor(reconciler: str) -> str:
        return "" if reconciler == UNKNOWN_RECONCILER else reconciler

    def _begin(self, reconciler: str, pending: _Pending, op: Operation | None) -> int:
        target = op if op is not None and op.verb == GET else None
        rid = self.sw.begin_reconcile(
            reconciler, kind=target.kind if target else "",
            namespace=target.namespace if target else "", name=target.name if target else "",
            trigger_seq=pending.trigger_seq, source_id=pending.source_id, ts_ns=pending.ts_ns or None)
        self.open[reconciler] = (rid, pending)
        self.reconciles += 1
        return rid

    def _span(self, reconciler: str, op: Operation) -> int | None:
        if reconciler in ("", UNKNOWN_RECONCILER):
            return None
        opened = self.open.get(reconciler)
        if opened is not None:
            return opened[0]
        pending = self.waiting.pop(reconciler, None)
        if pending is not None:
            return self._begin(reconciler, pending, op)
        return None

    def _before_reconcile(self, lineno: int, ts: int, rest: bytes) -> None:
        f = _fields(rest, 2)
        if not f or not f[0]:
            raise _Record("no reconciler")
        reconciler = f[0]
        source_id = f[1].strip() if len(f) > 1 else ""
        if reconciler in self.open or reconciler in self.waiting:
            self.unclosed += 1
            self._close(reconciler, ts, error="no [SIEVE-AFTER-RECONCILE] in the trace")
        mark = self.event_mark.get(reconciler, 0)
        trigger = self.last_event_seq if self.last_event_seq > mark else None
        self.event_mark[reconciler] = self.last_event_seq
        self.waiting[reconciler] = _Pending(source_id, ts, trigger)

    def _after_reconcile(self, lineno: int, ts: int, rest: bytes) -> None:
        f = _fields(rest, 2)
        if not f or not f[0]:
            raise _Record("no reconciler")
        if not self._close(f[0], ts):
            self.unmatched_ends += 1

    def _close(self, reconciler: str, ts: int, error: str = "") -> bool:
        pending = self.waiting.pop(reconciler, None)
        if pending is not None:  # a span without ops
            self._begin(reconciler, pending, None)
        opened = self.open.pop(reconciler, None)
        if opened is None:
            return False
        self.sw.end_reconcile(opened[0], error=error, ts_ns=ts or None)
        return True

    def finish(self) -> None:
        """Spans still waiting for their first op at the end begin there (and stay open)."""
        for reconciler, pending in list(self.waiting.items()):
            self._begin(reconciler, pending, None)
        self.waiting.clear()

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = self.tally.attributes()
        attrs.update(reconciles=self.reconciles, malformed=self.malformed.count,
                     malformed_lines=self.malformed.lines, untagged_lines=self.untagged,
                     **self.bodies.attributes())
        if self.ignored_tags:
            attrs["ignored_tags"] = dict(self.ignored_tags)
        if self.unclosed:
            attrs["reconciles_without_end"] = self.unclosed
        if self.unmatched_ends:
            attrs["reconcile_ends_without_start"] = self.unmatched_ends
        open_spans = len(self.open)
        if open_spans:
            attrs["open_reconciles"] = open_spans
        return attrs


def import_sieve(path: str, db: str, *, session: str | None = None,
                 progress: bool | None = None, redact: bool = True) -> ImportResult:
    """Import a Sieve learn trace into a new session of recording ``db`` (atomically)."""
    size = check_input(path, EXPECTED)
    types, bar = first_pass(path, size, prescan, _Types, NOT_SIEVE, progress)
    name = session or default_session_name(path)
    attributes: dict[str, Any] = {"source_file": os.path.abspath(path), "source_bytes": size,
                                  "format": "sieve learn trace"}
    malformed = Malformed()
    with Target(db) as target, target.session(name, SOURCE, attributes) as sw:
        importer = SieveImporter(sw, types, malformed, Bodies(redact))
        feed_lines(path, size, importer, bar)
        if importer.tally.ops == 0 and importer.reconciles == 0:
            if importer.tagged == 0:
                raise ImportFormatError(f"{path}: {NOT_SIEVE}")
            raise ImportFormatError(
                f"{path}: no valid Sieve record ({malformed.count} malformed lines; first: "
                f"{malformed.describe_first()})")
        attrs = importer.attributes()
        sw.close(**attrs)
        return ImportResult(db=db, session=sw.name, session_id=sw.id, source=path,
                            ops=importer.tally.ops, verbs=dict(importer.tally.verbs),
                            reconciles=importer.reconciles, errors=importer.tally.errors,
                            malformed=malformed.count, malformed_lines=list(malformed.lines),
                            redacted=importer.bodies.redacted)
