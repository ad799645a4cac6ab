"""A recording served as a cluster: the state at a position in an :class:`ApiServer`, and the position
controller that moves it.

``Replay`` is the API a controller (``replay-tui serve --play``, and the TUI keeping the served
position at its cursor) calls:

* ``await replay.seek(seq)``: forward, every version recorded in between is applied in order,
  so open watches receive each as ADDED / MODIFIED / DELETED with its recorded resourceVersion;
  backward, open watches end with ``410 Gone`` (clients re-list, as after an etcd compaction)
  and the state at ``seq`` is loaded;
* ``await replay.play(speed)``: advance in recorded time (``speed`` x real time) until the end of
  the session or ``pause()``; a ``seek`` while playing moves the play head;
* ``replay.position``, ``replay.time_ns`` (the recorded time the server's clock shows: Tables'
  Age, ``now`` for a client), ``replay.on_move`` (callbacks after each move).

Every call runs on the server's event loop; from another thread use ``ServerThread.call``.

Types come from what the recording says: the discovery answers it holds (among its first
``DISCOVERY_SCAN`` ops, where clients discover), then the kinds of the objects it saw (their
plural from the request that carried them), over the kinds every cluster has.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from replay_tui.engine import state
from replay_tui.engine.format import DELETED, ObjectKey, OpRow, is_path
from replay_tui.engine.store import Session
from replay_tui.server.apiserver import ApiServer, crd_types, numeric_rv
from replay_tui.server.discovery import Discovery, types_from_resource_list
from replay_tui.server.resources import BUILTIN, KNOWN, ResourceType, TypeRegistry, plural_of

DISCOVERY_SCAN = 20_000  # ops from the start of a session searched for discovery answers
TICK_S = 0.02  # how often --play moves the position
PLAY_CHUNK = 2000  # ops read ahead by --play
REPLAY_HISTORY = 1000  # events kept per resource for a watch resuming from a resourceVersion (older: 410)


def is_custom(group: str, kind: str) -> bool:
    """A custom resource: a group with a dot that is not one of Kubernetes' own (``*.k8s.io``)."""
    return (group, kind) not in KNOWN and "." in group and not group.endswith("k8s.io")


def type_for(types: TypeRegistry, key: ObjectKey, body: Any, resource: str = "", api_version: str = "") -> ResourceType:
    """The type an object of the recording is served as (registered when it is new)."""
    rt = types.kind(key.group, key.kind)
    if rt is not None:
        return rt
    known = KNOWN.get((key.group, key.kind))
    if known is not None:
        return types.add(known)
    body_version = body.get("apiVersion") if isinstance(body, dict) else None
    version = str(body_version or api_version or "v1").rpartition("/")[2]
    plural = resource if resource and not is_path(resource) and "/" not in resource else plural_of(key.kind)
    return types.add(ResourceType(key.group, version, plural, key.kind, namespaced=bool(key.namespace),
                                  status=True, custom=is_custom(key.group, key.kind)))


async def recorded_discovery(session: Session) -> dict[str, Any]:
    """The discovery answers (path -> document) among the session's first ops, the last of each path."""
    found: dict[str, Any] = {}
    upto = min(session.last, DISCOVERY_SCAN)
    for start in range(1, upto + 1, 5000):
        for row in await session.rows(start, min(5000, upto - start + 1)):
            path = row.resource
            if row.status == 200 and not row.kind and path and (path in ("/version", "/api", "/apis")
                                                                 or path.startswith(("/api/", "/apis/"))):
                op = await session.op(row.seq)
                if isinstance(op.response, dict):
                    found[path.rstrip("/")] = op.response
    return found


async def recorded_types(session: Session) -> tuple[TypeRegistry, dict[str, Any]]:
    """The types a recorded cluster served (the kinds every cluster has, then those its discovery
    answers list), and those answers (path -> document)."""
    types = TypeRegistry(BUILTIN)
    recorded = await recorded_discovery(session)
    for path, doc in recorded.items():
        if path.startswith(("/api/", "/apis/")):
            for rt in types_from_resource_list(doc):
                if rt.key not in types:
                    types.add(ResourceType(rt.group, rt.version, rt.plural, rt.kind, namespaced=rt.namespaced,
                                           status=rt.status, short_names=rt.short_names,
                                           custom=is_custom(rt.group, rt.kind), singular_name=rt.singular_name))
    return types, recorded


async def state_entries(session: Session, seq: int, types: TypeRegistry) -> list[tuple[ResourceType, dict[str, Any]]]:
    """Every object of the state just after op ``seq`` with the type it is served as (types of kinds
    not yet known are registered: CustomResourceDefinitions first, then the others' from the
    request that carried them)."""
    snap = await state.snapshot(session, seq)
    items = [(obj_id, key, body) for obj_id, key, body in await snap.items() if isinstance(body, dict)]
    for _, key, body in items:
        if key.kind == "CustomResourceDefinition":
            for served in crd_types(body):
                if served.key not in types:
                    types.add(served)
    entries = []
    for obj_id, key, body in items:
        rt = types.kind(key.group, key.kind)
        if rt is None:
            resource = ""
            vseq = snap.version_seq(obj_id)
            if vseq:  # the plural the request that brought this version named
                rows = await session.rows(vseq, 1)
                resource = rows[0].resource if rows else ""
            rt = type_for(types, key, body, resource)
        entries.append((rt, body))
    return entries


def top_rv(entries: list[tuple[ResourceType, dict[str, Any]]]) -> int:
    """The highest resourceVersion among objects (where the next one continues from)."""
    return max((numeric_rv((b.get("metadata") or {}).get("resourceVersion")) or 0 for _, b in entries), default=0)


class Replay:
    """A recorded session served at a position (see the module docstring)."""

    def __init__(self, session: Session, server: ApiServer, discovery: Discovery):
        self.session = session
        self.server = server
        self.discovery = discovery
        self.position = 0
        self.time_ns = 0
        self.on_move: list[Callable[[int], None]] = []
        self.applied = 0  # versions applied by forward moves (events offered to watches)
        self._lock = asyncio.Lock()
        self._play: tuple[float, int, float] | None = None  # (wall start, recorded start ns, speed)
        self._paused = asyncio.Event()
        self._first_ns = 0

    @classmethod
    async def open(cls, session: Session, at: int, *, read_only_message: str = "") -> Replay:
        """A read-only server holding the session's state just after op ``at``."""
        session.check_position(at, allow_zero=True)
        types, recorded = await recorded_types(session)
        server = ApiServer(types, writable=False, read_only_message=read_only_message or
                           "replay-tui serve is read-only", default_namespace=False, history=REPLAY_HISTORY)
        self = cls(session, server, Discovery(server.types, verbs=("get", "list", "watch"), recorded=recorded))
        self._first_ns = (await session.time_range())[0]
        server.clock = self.clock
        await self._load(at)
        return self

    def clock(self) -> float:
        """The server's time: the recorded time of the position (moving with it while playing)."""
        if self._play is not None and not self._paused.is_set():
            wall, start_ns, speed = self._play
            return (start_ns + (time.monotonic() - wall) * speed * 1e9) / 1e9
        return self.time_ns / 1e9

    async def _time_of(self, seq: int) -> int:
        if seq <= 0:
            return self._first_ns
        rows = await self.session.rows(seq, 1)
        return rows[0].ts_ns if rows else self._first_ns

    async def _load(self, seq: int) -> None:
        """The whole state at ``seq`` (a backward move: open watches end with 410 Gone)."""
        entries = await state_entries(self.session, seq, self.server.types)
        self.server.reset(entries, rv=max(top_rv(entries), 1), gone=(
            f"the served recording moved back in time (to op {seq}): list again"))
        self.position = seq
        self.time_ns = await self._time_of(seq)

    async def _forward(self, seq: int) -> None:
        # The versions decoded here are plain trees that reference counting frees; the cyclic collector
        # would only walk the whole served state again and again (it triples the cost of a batch).
        collecting = gc.isenabled()
        gc.disable()
        try:
            async for batch in state.changes(self.session, self.position, seq):
                for ch in batch:
                    rt = type_for(self.server.types, ch.key, ch.body, ch.resource, ch.api_version)
                    if isinstance(ch.body, dict) or ch.body is None:
                        rv = ch.resource_version if ch.body is None and ch.verb == DELETED else ""
                        self.server.apply_recorded(rt, ch.key.namespace, ch.key.name, ch.body, rv, ch.raw)
                        self.applied += 1
                    self.position = ch.seq
                    self.time_ns = ch.ts_ns
        finally:
            if collecting:
                gc.enable()
        self.position = seq
        self.time_ns = await self._time_of(seq)

    async def seek(self, seq: int) -> int:
        """Serve the state just after op ``seq`` (clamped to the session); returns the position."""
        await self.session.refresh()
        seq = max(0, min(seq, self.session.last))
        async with self._lock:
            if seq > self.position:
                await self._forward(seq)
            elif seq < self.position:
                await self._load(seq)
            if self._play is not None:
                self._play = (time.monotonic(), self.time_ns, self._play[2])
        for callback in self.on_move:
            callback(self.position)
        return self.position

    async def play(self, speed: float = 1.0) -> int:
        """Advance in recorded time at ``speed`` x real time until the end (or :meth:`pause`): every tick,
        to the last op (in seq order) that started at or before the play head."""
        if not speed > 0:
            raise ValueError("speed must be above 0")
        self._paused.clear()
        self._play = (time.monotonic(), self.time_ns, speed)
        ahead: deque[OpRow] = deque()  # the next ops, read in seq order a chunk at a time
        try:
            while not self._paused.is_set():
                wall, start_ns, rate = self._play
                head = start_ns + int((time.monotonic() - wall) * rate * 1e9)
                if not ahead or ahead[0].seq != self.position + 1:  # (a seek may have moved it)
                    ahead = deque(await self.session.rows(self.position + 1, PLAY_CHUNK))
                seq = self.position
                while ahead and ahead[0].ts_ns <= head:
                    seq = ahead.popleft().seq
                    if not ahead:
                        ahead = deque(await self.session.rows(seq + 1, PLAY_CHUNK))
                if seq > self.position:
                    async with self._lock:
                        await self._forward(seq)
                    for callback in self.on_move:
                        callback(self.position)
                if not ahead:
                    await self.session.refresh()
                    if self.position >= self.session.last and self.session.info.ended_ns is not None:
                        break
                try:
                    await asyncio.wait_for(self._paused.wait(), TICK_S)
                except TimeoutError:
                    pass
        finally:
            self._play = None
        return self.position

    def pause(self) -> None:
        self._paused.set()

    @property
    def playing(self) -> bool:
        return self._play is not None and not self._paused.is_set()
