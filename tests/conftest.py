"""Shared test helpers: write real recordings with RecordingWriter, open them read-only.

Recordings in tests are written by the real writer (never hand-made SQL), so a
test exercises the same files a user gets.  Helpers are plain functions (usable
from hypothesis tests, which run their own event loop) plus async fixtures
that close what they open.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import changes, committer
from replay_tui.engine.format import Operation
from replay_tui.engine.schema import FORMAT_V2
from replay_tui.engine.store import Recording, Session
from replay_tui.engine.writer import RecordingWriter, SessionWriter

#: A fixed start time (2023-11-14 22:13:20 UTC) so time jumps are predictable.
T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000

#: An item of a session script: an operation to append, or a call on the
#: SessionWriter (begin/end a reconcile, set a mark, flush...).
Step = Operation | Callable[[SessionWriter], Any]


# --- Kubernetes-shaped bodies ----------------------------------------------------

def k8s_object(kind: str, name: str, namespace: str = "default", *, api_version: str = "v1",
               rv: int | str = 1, uid: str | None = None, generation: int | None = None,
               labels: dict[str, str] | None = None, finalizers: list[str] | None = None,
               deleting: bool = False, **fields: Any) -> dict[str, Any]:
    """An object as the API server returns it (kind and apiVersion first, like a GET)."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["uid"] = uid or f"uid-{kind}-{namespace}-{name}".lower()
    meta["resourceVersion"] = str(rv)
    if generation is not None:
        meta["generation"] = generation
    if labels:
        meta["labels"] = dict(labels)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = "2023-11-14T22:15:00Z"
    body: dict[str, Any] = {"kind": kind, "apiVersion": api_version, "metadata": meta}
    body.update(fields)
    return body


def status_body(code: int, reason: str, message: str = "", **details: Any) -> dict[str, Any]:
    """A metav1.Status, as the API server sends with errors and some deletes."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success" if code < 400 else "Failure",
                            "message": message or reason, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def list_body(kind: str, items: Sequence[dict[str, Any]], *, api_version: str = "v1",
              rv: int | str = 1, strip: bool = True) -> dict[str, Any]:
    """A KindList response; ``strip`` drops kind/apiVersion from items, as the API server does."""
    if strip:
        items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in items]
    return {"kind": f"{kind}List", "apiVersion": api_version,
            "metadata": {"resourceVersion": str(rv)}, "items": list(items)}


def op_for(verb: str, obj: dict[str, Any] | None = None, *, status: int = 200,
           **fields: Any) -> Operation:
    """An Operation on ``obj`` (kind/apiVersion/namespace/name taken from it unless given)."""
    if obj is not None and obj.get("kind") not in (None, "Status") and not obj["kind"].endswith("List"):
        meta = obj.get("metadata", {})
        fields.setdefault("kind", obj["kind"])
        fields.setdefault("api_version", obj.get("apiVersion", ""))
        fields.setdefault("namespace", meta.get("namespace", ""))
        fields.setdefault("name", meta.get("name", ""))
    return Operation(verb=verb, status=status, **fields)


# --- writing and opening ----------------------------------------------------------

def write_session(path: str | os.PathLike[str], steps: Iterable[Step], *, name: str = "test",
                  source: str = "synthetic", close: bool = True, **session_kwargs: Any) -> str:
    """Append one session to the recording at ``path`` (created if needed); returns its name.

    ``steps`` are Operations (appended; ``ts_ns`` defaults to T0 + i seconds so
    times are deterministic) or callables receiving the SessionWriter.
    """
    with RecordingWriter(path) as writer:
        sw = writer.session(name, source, **session_kwargs)
        i = 0
        for step in steps:
            if isinstance(step, Operation):
                if step.ts_ns <= 0:
                    step.ts_ns = T0 + i * SECOND
                i += 1
                sw.append(step)
            else:
                step(sw)
        if close:
            sw.close()
        else:
            sw.flush()
        return sw.name


def simple_ops(n: int, *, kind: str = "ConfigMap", namespace: str = "default",
               error_every: int = 0) -> list[Operation]:
    """``n`` ops on a handful of objects: creates, then updates, with a 409 every ``error_every``."""
    ops: list[Operation] = []
    for i in range(n):
        name = f"obj-{i % 5}"
        obj = k8s_object(kind, name, namespace, rv=i + 1, data={"i": str(i)})
        if error_every and i % error_every == error_every - 1:
            ops.append(op_for("update", obj, status=409, reason="Conflict",
                              request=obj, response=status_body(409, "Conflict")))
        elif i < 5:
            ops.append(op_for("create", obj, status=201, request=obj, response=obj))
        else:
            ops.append(op_for("update", obj, request=obj, response=obj))
    return ops


def file_digest(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


async def read_everything(rec: Recording) -> int:
    """Touch every read path of the engine once per session; returns how many ops were read.

    Used to show that reading changes nothing and that damaged files fail cleanly.
    """
    from replay_tui.engine import diff, filters, state

    total = 0
    for info in await rec.sessions():
        session = await rec.session(info.id)
        await session.refresh()
        await session.marks()
        await session.reconcile_count()
        await session.next_reconcile(0)
        await session.time_range()
        await session.next_error(0)
        await session.rows(1, session.last)
        for seq in range(1, session.last + 1):
            await session.op(seq)
            total += 1
        objects = [r[0] for r in await rec.fetchall("SELECT id FROM objects ORDER BY id")]
        for seq in range(0, session.last + 1, max(1, session.last // 8)):
            snap = await state.snapshot(session, seq)
            await snap.keys()
            for obj_id in snap.versions:
                await snap.get(obj_id)
        for obj_id in objects:
            await state.history(session, obj_id)
            if session.last:
                await diff.object_diff(session, obj_id, 0, session.last)
        if session.last:
            await diff.state_diff(session, 0, session.last)
            await filters.count(session, filters.parse("error"))
            await filters.find(session, 0, filters.parse("verb=update status>=400"))
        async for _ in rec.stream("SELECT seq FROM operations WHERE session_id = ?", (info.id,)):
            pass
    return total


@pytest.fixture
async def open_recording() -> Any:
    """``await open_recording(path)`` -> Recording; every one opened is closed after the test."""
    opened: list[Recording] = []

    async def opener(path: str | os.PathLike[str]) -> Recording:
        rec = await Recording.open(path)
        opened.append(rec)
        return rec

    yield opener
    for rec in opened:
        await rec.close()


@pytest.fixture
async def session_of(open_recording: Callable[[str | os.PathLike[str]], Awaitable[Recording]],
                     tmp_path: Path) -> Any:
    """``await session_of(steps, **writer_kwargs)`` -> Session of a fresh one-session recording."""
    counter = 0

    async def make(steps: Iterable[Step], **kwargs: Any) -> Session:
        nonlocal counter
        counter += 1
        path = tmp_path / f"rec-{counter}.db"
        name = write_session(path, steps, **kwargs)
        rec = await open_recording(path)
        return await rec.session(name)

    return make


# --- random operation streams and their reference model -----------------------------
#
# A stream is a list of *descriptions* (plain tuples hypothesis can shrink);
# ``build_stream`` turns them into Operations plus the effect each must have on
# object state according to the documented rules, written independently of
# the writer:
#
# * a 2xx create/update/patch/get, and an ADDED/MODIFIED watch event, make the
#   returned object the current version (a new version only if it differs);
# * a 2xx list makes every item current (items come without kind/apiVersion);
#   objects missing from a list are NOT deleted;
# * a 2xx delete, a DELETED event and a GET answered 404 delete the object
#   (a tombstone only if it existed), except a delete answered with the object
#   still carrying finalizers and a deletionTimestamp: that is a new version;
# * failures (409, 404 on writes, 403 lists), watch/bookmark/error events change nothing.

from hypothesis import strategies as st  # noqa: E402

from replay_tui.engine.format import ObjectKey, api_group  # noqa: E402

#: (kind, apiVersion, namespace, name) of the objects streams play with.
STREAM_OBJECTS: tuple[tuple[str, str, str, str], ...] = (
    ("ConfigMap", "v1", "default", "a"),
    ("ConfigMap", "v1", "default", "b"),
    ("ConfigMap", "v1", "other", "a"),
    ("Deployment", "apps/v1", "default", "web"),
    ("Deployment", "apps/v1", "other", "web"),
    ("Namespace", "v1", "", "other"),
)

Effect = tuple[str, ObjectKey, Any]  # ("set", key, body) or ("del", key, None)


def stream_key(index: int) -> ObjectKey:
    kind, av, ns, name = STREAM_OBJECTS[index]
    return ObjectKey(api_group(av), kind, ns, name)


def stream_body(index: int, variant: int, *, terminating: bool = False) -> dict[str, Any]:
    """Bodies repeat across a stream (few variants), so unchanged versions occur."""
    kind, av, ns, name = STREAM_OBJECTS[index]
    return k8s_object(kind, name, ns, api_version=av, rv=variant % 3 + 1,
                      finalizers=["example.com/cleanup"] if terminating else None,
                      deleting=terminating, spec={"v": variant // 3})


_ACTIONS = (
    "create", "create-409", "update", "update-409", "patch", "patch-status", "patch-404",
    "get", "get-404", "delete-status", "delete-object", "delete-empty", "delete-finalizers",
    "delete-404", "added", "modified", "deleted", "bookmark", "watch-error", "watch", "list",
    "list-403", "list-empty",
)


@st.composite
def stream_actions(draw: Any, max_size: int = 30) -> list[tuple[Any, ...]]:
    """A random stream description: (action, object index, body variant, anonymous, list members)."""
    n = draw(st.integers(0, max_size))
    out = []
    for _ in range(n):
        action = draw(st.sampled_from(_ACTIONS))
        index = draw(st.integers(0, len(STREAM_OBJECTS) - 1))
        variant = draw(st.integers(0, 5))
        anonymous = draw(st.booleans())  # leave kind/name to be read from the body
        members = tuple(draw(st.lists(st.tuples(st.integers(0, len(STREAM_OBJECTS) - 1),
                                                st.integers(0, 5)), max_size=4)))
        out.append((action, index, variant, anonymous, members))
    return out


def build_stream(actions: Sequence[tuple[Any, ...]]) -> tuple[list[Operation], list[list[Effect]]]:
    """Operations for a stream description, and the effect on state each must have."""
    ops: list[Operation] = []
    effects: list[list[Effect]] = []
    for action, index, variant, anonymous, members in actions:
        kind, av, ns, name = STREAM_OBJECTS[index]
        key = stream_key(index)
        body = stream_body(index, variant)
        ident = {"kind": kind, "api_version": av, "namespace": ns, "name": name}
        eff: list[Effect] = []
        op: Operation
        if action == "create":
            op = Operation(verb="create", status=201, request=body, response=body, **ident)
            eff = [("set", key, body)]
        elif action == "create-409":
            # Identity only in the request body when anonymous, as some sources record it.
            fields = {} if anonymous else ident
            op = Operation(verb="create", status=409, reason="AlreadyExists", request=body,
                           response=status_body(409, "AlreadyExists"), **fields)
        elif action == "update":
            op = Operation(verb="update", status=200, request=body, response=body, **ident)
            eff = [("set", key, body)]
        elif action == "update-409":
            op = Operation(verb="update", status=409, reason="Conflict", request=body,
                           response=status_body(409, "Conflict"), **ident)
        elif action == "patch":
            op = Operation(verb="patch", status=200, patch_type="application/merge-patch+json",
                           request={"spec": body["spec"]}, response=body, **ident)
            eff = [("set", key, body)]
        elif action == "patch-status":
            op = Operation(verb="patch", status=200, subresource="status",
                           request={"status": {"ok": True}}, response=body, **ident)
            eff = [("set", key, body)]
        elif action == "patch-404":
            op = Operation(verb="patch", status=404, reason="NotFound", request={"spec": {}},
                           response=status_body(404, "NotFound"), **ident)
        elif action == "get":
            op = Operation(verb="get", status=200, response=body, **ident)
            eff = [("set", key, body)]
        elif action == "get-404":
            op = Operation(verb="get", status=404, reason="NotFound",
                           response=status_body(404, "NotFound"), **ident)
            eff = [("del", key, None)]
        elif action == "delete-status":
            op = Operation(verb="delete", status=200,
                           response=status_body(200, "", name=name, kind=kind.lower() + "s"), **ident)
            eff = [("del", key, None)]
        elif action == "delete-object":
            op = Operation(verb="delete", status=200, response=body, **ident)
            eff = [("del", key, None)]
        elif action == "delete-empty":
            op = Operation(verb="delete", status=202, **ident)
            eff = [("del", key, None)]
        elif action == "delete-finalizers":
            terminating = stream_body(index, variant, terminating=True)
            op = Operation(verb="delete", status=200, response=terminating, **ident)
            eff = [("set", key, terminating)]
        elif action == "delete-404":
            op = Operation(verb="delete", status=404, reason="NotFound",
                           response=status_body(404, "NotFound"), **ident)
        elif action in ("added", "modified"):
            op = Operation(verb=action, response=body, **({} if anonymous else ident))
            eff = [("set", key, body)]
        elif action == "deleted":
            op = Operation(verb="deleted", response=body, **({} if anonymous else ident))
            eff = [("del", key, None)]
        elif action == "bookmark":
            op = Operation(verb="bookmark", response={"kind": kind, "apiVersion": av,
                                                      "metadata": {"resourceVersion": "99"}})
        elif action == "watch-error":
            op = Operation(verb="error", response=status_body(410, "Expired"))
        elif action == "watch":
            op = Operation(verb="watch", status=200, kind=kind, api_version=av, namespace=ns,
                           query={"watch": "true"})
        else:  # list, list-403, list-empty: items of this kind (the namespace is ignored)
            items: dict[int, dict[str, Any]] = {}
            for m_index, m_variant in members:
                if STREAM_OBJECTS[m_index][0] == kind:
                    items[m_index] = stream_body(m_index, m_variant)
            if action == "list-empty":
                items = {}
            status = 403 if action == "list-403" else 200
            response = (status_body(403, "Forbidden") if status == 403
                        else list_body(kind, list(items.values()), api_version=av, strip=not anonymous))
            op = Operation(verb="list", status=status, kind="" if anonymous else kind,
                           api_version=av, response=response)
            if status == 200:
                eff = [("set", stream_key(i), b) for i, b in items.items()]
        ops.append(op)
        effects.append(eff)
    return ops, effects


class StreamModel:
    """The naive fold: state after every position, and each object's version history."""

    def __init__(self, effects: Sequence[list[Effect]]):
        import msgspec

        current: dict[ObjectKey, Any] = {}
        self.states: list[dict[ObjectKey, Any]] = [{}]
        self.history: dict[ObjectKey, list[tuple[int, Any]]] = {}
        for seq, eff in enumerate(effects, start=1):
            for what, key, body in eff:
                if what == "set":
                    old = current.get(key)
                    if old is None or msgspec.json.encode(old) != msgspec.json.encode(body):
                        current[key] = body
                        self.history.setdefault(key, []).append((seq, body))
                elif key in current:
                    del current[key]
                    self.history.setdefault(key, []).append((seq, None))
            self.states.append(dict(current))

    def version_seq(self, key: ObjectKey, seq: int) -> int | None:
        """Seq of the version of ``key`` current at ``seq`` (None: absent)."""
        found = None
        for vseq, body in self.history.get(key, []):
            if vseq > seq:
                break
            found = vseq if body is not None else None
        return found


async def object_ids(rec: Recording) -> dict[ObjectKey, int]:
    """Every object the recording knows, by key (each session names its own: one-session files)."""
    rows = await rec.fetchall("SELECT id, api_group, kind, namespace, name FROM objects")
    return {ObjectKey(r[1], r[2], r[3], r[4]): r[0] for r in rows}


async def object_keys(rec: Recording) -> dict[int, ObjectKey]:
    """The key of every object id of the recording (any session)."""
    rows = await rec.fetchall("SELECT id, api_group, kind, namespace, name FROM objects")
    return {r[0]: ObjectKey(r[1], r[2], r[3], r[4]) for r in rows}


# --- the command line, in process ------------------------------------------------------

def run_cli(*argv: str) -> tuple[int, str, str]:
    """``replay-tui ARGV...`` run in this process: (exit status, stdout, stderr).

    The same ``main`` the console script runs, minus a process start: fast enough for
    tests that run a command hundreds of times (fuzzing, damaged copies).
    """
    import contextlib
    import io

    from replay_tui.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's marks, history and keymap are its own, never the user's (``~/.config``)."""
    path = tmp_path / "state"
    monkeypatch.setenv("REPLAY_TUI_STATE_DIR", str(path))
    monkeypatch.setenv("REPLAY_TUI_KEYMAP", str(tmp_path / "no-keymap.toml"))
    return path


@pytest.fixture
def fixture_db(tmp_path: Path) -> Path:
    """The TUI tests' small recording (tests/test_tui_fixture.py)."""
    from tests.test_tui_fixture import make_fixture

    return make_fixture(tmp_path / "fx.db")


@contextlib.contextmanager
def writing_format(fmt: int) -> Iterator[None]:
    """The writer (in this process) as it was for session format ``fmt``: format 2 recorded list
    items in the change index but not their members, and path ids in decimal (recordings made
    before format 3)."""
    with pytest.MonkeyPatch.context() as mp:
        if fmt == FORMAT_V2:
            mp.setattr(changes, "_members", lambda x, y, path, out: out.append(path))
            mp.setattr(changes.ChangeTracker, "fmt", FORMAT_V2)
            mp.setattr(committer, "FORMAT_V3", FORMAT_V2)
        yield
