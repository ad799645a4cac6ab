"""Is a recording faithful to what a client did?  Counted without the recorder's help.

Three independent accounts are compared with what ``replay-tui record`` stored:

* the requests the emulator served (its own log, ``KubernetesAPIEmulator.served``), and for
  kubectl also the requests kubectl says it made (``-v=6`` logs every one);
* the event lines each watch stream sent (``KubernetesAPIEmulator.streams``): one op per
  event, in order;
* the emulator's objects at the end: the recording's final state must equal them.

Requests are compared by what identifies them: verb, resource (or a discovery path),
namespace, the name in the URL, subresource.  The verb is worked out here from the method
and URL, with none of the recorder's code.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from replay_tui.engine import state
from replay_tui.engine.store import Recording
from tests.support.emulator import EmulatorThread, KubernetesAPIEmulator


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    """Wait on a condition, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Run:
    """A client recorded under ``replay-tui record``: the recording, the emulator, the exit
    status, and what the client printed (its JSON lines parsed into ``said``)."""

    def __init__(self, db: Path, emu: EmulatorThread, status: int, output: str):
        self.db, self.emu, self.status, self.output = db, emu, status, output
        self.said = [json.loads(line) for line in output.splitlines() if line.startswith("{")]


EVENTS = ("added", "modified", "deleted", "bookmark", "error")
NAMED = ("get", "update", "patch", "delete")  # verbs whose URL names the object

RequestKey = tuple[str, str, str, str, str]  # verb, resource (or path), namespace, name, subresource


def request_key(method: str, url: str) -> RequestKey:
    """What a request was, from its method and URL alone."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    segments = [unquote(s) for s in parts.path.strip("/").split("/") if s]
    if len(segments) >= 2 and segments[0] == "api":
        rest = segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        rest = segments[3:]
    else:
        rest = []
    watch = query.get("watch", [""])[0].lower() in ("true", "1")
    if rest and rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    if not rest:  # discovery, /version, /openapi/v2: no resource
        return "get", parts.path, "", "", ""
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else "", "/".join(rest[2:])
    method = method.upper()
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if verb is None and method == "DELETE":
        verb = "delete" if name else "deletecollection"
    if verb is None:
        verb = "watch" if watch else "get" if name else "list"
    return verb, resource, namespace, name if verb in NAMED else "", sub


def served(emulator: KubernetesAPIEmulator) -> Counter[RequestKey]:
    """The requests a fresh emulator served through the proxy: all but the first, the recorder's own
    ``GET /version`` probe (made directly, before the proxy starts)."""
    assert emulator.served[:1] == [("GET", "/version")], emulator.served[:3]
    return Counter(request_key(method, path) for method, path in emulator.served[1:])


def _rows(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def recorded(db: Path) -> Counter[RequestKey]:
    """The requests the recording holds (watch events left out)."""
    out: Counter[RequestKey] = Counter()
    for r in _rows(db, "SELECT verb, resource, namespace, name, subresource FROM operations ORDER BY seq"):
        if r["verb"] in EVENTS:
            continue
        out[(r["verb"], r["resource"], r["namespace"], r["name"] if r["verb"] in NAMED else "",
             r["subresource"])] += 1
    return out


_KUBECTL_LINE = re.compile(r"round_trippers\.go:\d+\] (GET|POST|PUT|PATCH|DELETE) (https?://\S+) (\d{3}) ")


def kubectl_requests(logs: str) -> Counter[RequestKey]:
    """The requests kubectl logged at ``-v=6`` (one line per request, with the answer's status)."""
    return Counter(request_key(m.group(1), m.group(2)) for m in _KUBECTL_LINE.finditer(logs))


Event = tuple[str, str, str]  # type, name, resourceVersion


def _event(line: bytes) -> Event:
    event = msgspec.json.decode(line)
    obj = event.get("object") or {}
    if obj.get("kind") == "Table":
        rows = obj.get("rows") or []
        obj = (rows[0].get("object") or {}) if len(rows) == 1 else {}
    meta = obj.get("metadata") or {}
    return str(event.get("type", "")).lower(), str(meta.get("name", "")), str(meta.get("resourceVersion", ""))


def sent_events(emulator: KubernetesAPIEmulator) -> dict[str, list[Event]]:
    """The events every watch stream sent, per resource, streams in the order they opened."""
    out: dict[str, list[Event]] = {}
    for path, lines in emulator.streams:
        resource = request_key("GET", path)[1]
        out.setdefault(resource, []).extend(_event(line) for line in lines)
    return out


def recorded_events(db: Path) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for r in _rows(db, "SELECT verb, resource, name, resource_version FROM operations ORDER BY seq"):
        if r["verb"] in EVENTS:
            out.setdefault(r["resource"], []).append((r["verb"], r["name"], r["resource_version"]))
    return out


def _comparable(obj: Any) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj = dict(obj, metadata={k: v for k, v in obj["metadata"].items() if k != "managedFields"})
    return obj


def final_state_mismatches(db: Path, emulator: KubernetesAPIEmulator, call: Any) -> list[str]:
    """Every object the recording knows: its final recorded state against the emulator's object now.

    An object the client saw only as metadata (a Table, PartialObjectMetadata) is compared by
    its metadata: that is all the recording can know.  ``call`` runs a function on the
    emulator's loop (``EmulatorThread.call``).
    """
    async def read() -> tuple[dict[Any, Any], list[Any]]:
        rec = await Recording.open(db)
        try:
            ses = await rec.session()
            snap = await state.snapshot(ses, ses.last)
            live = {key: await snap.get(oid) for oid, key in (await snap.keys()).items()}
            rows = await rec.fetchall(
                "SELECT DISTINCT o.api_group, o.kind, o.namespace, o.name FROM states s JOIN objects o"
                " ON o.id = s.obj_id WHERE s.session_id = ?", (ses.id,))
            return live, rows
        finally:
            await rec.close()

    live, ever = asyncio.run(read())
    live_by_tuple = {(k.group, k.kind, k.namespace, k.name): v for k, v in live.items()}
    types = {(rt.group, rt.kind): rt for rt in emulator.types.values()}
    problems = []
    for group, kind, namespace, name in ever:
        rt = types.get((group, kind))
        if rt is None:
            problems.append(f"{kind}.{group}/{namespace}/{name}: a kind the emulator does not serve")
            continue
        now = call(emulator.get, rt.group, rt.plural, namespace, name)
        mine = live_by_tuple.get((group, kind, namespace, name))
        label = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
        if mine is None and now is None:
            continue
        if mine is None or now is None:
            problems.append(f"{label}: recorded {'absent' if mine is None else 'present'}, the emulator has it "
                            f"{'present' if now is not None else 'absent'}")
            continue
        mine, now = _comparable(mine), _comparable(now)
        if set(mine) <= {"kind", "apiVersion", "metadata"} and set(now) - set(mine):
            mine, now = mine["metadata"], now["metadata"]  # seen as metadata only
        if mine != now:
            problems.append(f"{label}: recorded {mine!r} != emulator {now!r}")
    return problems


def session_attributes(db: Path) -> dict[str, Any]:
    rows = _rows(db, "SELECT attributes FROM sessions ORDER BY id")
    return msgspec.json.decode(rows[-1]["attributes"]) if rows else {}
