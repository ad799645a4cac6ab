"""Field-level diffs of Kubernetes objects, and their inverse (apply).

A change is (path, old, new).  Paths read the way people talk about fields:
``.spec.replicas``, ``.metadata.labels["app.kubernetes.io/name"]``,
``.status.conditions[type=Ready].status``, ``.spec.args[2]``.  Lists of
objects that carry a unique ``name`` (containers, ports, env, volumes), ``type``
(conditions) or similar key are matched by that key, so inserting a container
does not report every later one as changed.  ``MISSING`` stands for a field
that is absent (distinct from JSON null).

Noise (``metadata.managedFields``, ``metadata.resourceVersion``, ...) is left out
by default; pass ``ignore=()`` to see everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from replay_tui.engine.state import Snapshot, object_at, snapshot
from replay_tui.engine.store import Session
from replay_tui.engine.textsafe import safe


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

DEFAULT_IGNORE: tuple[str, ...] = (
    ".metadata.managedFields",
    ".metadata.resourceVersion",
    ".metadata.selfLink",
    '.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
)

LIST_KEYS = ("name", "type", "containerPort", "key", "mountPath", "devicePath", "ip", "uid")

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_encode = msgspec.json.Encoder().encode


def short_value(value: Any, limit: int = 100) -> str:
    """A field's value on one line, as a person reads it in a diff, a watch or a provenance link:
    compact JSON, ``(absent)`` for MISSING, cut at ``limit`` characters with '…', and no control
    character left raw (the value comes from a recording)."""
    if value is MISSING:
        return "(absent)"
    text = safe(_encode(value).decode())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class Change(msgspec.Struct, frozen=True):
    """One field that differs.  ``old``/``new`` are MISSING when the field was added/removed."""

    path: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        return change_kind(self.old, self.new)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "op": self.kind}
        if self.old is not MISSING:
            out["old"] = self.old
        if self.new is not MISSING:
            out["new"] = self.new
        return out


def change_kind(old: Any, new: Any) -> str:
    """'added', 'removed' or 'changed': how a value went from old to new (MISSING: absent)."""
    if old is MISSING:
        return "added"
    if new is MISSING:
        return "removed"
    return "changed"


def key_segment(key: str) -> str:
    return f".{key}" if _PLAIN.match(key) else f"[{msgspec.json.encode(key).decode()}]"


def selector_value(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def list_key(items: Sequence[Any]) -> str | None:
    """The field that identifies the items of a list of objects, if there is one."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for k in LIST_KEYS:
        seen = set()
        for item in items:
            v = item.get(k, MISSING)
            if v is MISSING or isinstance(v, (dict, list)):
                break
            sv = selector_value(v)
            if sv in seen or "]" in sv:
                break
            seen.add(sv)
        else:
            return k
    return None


def diff(old: Any, new: Any, *, ignore: Iterable[str] = DEFAULT_IGNORE, path: str = "") -> list[Change]:
    """Every field that differs between two JSON values, in document order."""
    out: list[Change] = []
    _diff(old, new, path, frozenset(ignore), out)
    return out


def _diff(old: Any, new: Any, path: str, ignore: frozenset[str], out: list[Change]) -> None:
    if path in ignore:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k, v in old.items():
            _diff(v, new.get(k, MISSING), path + key_segment(k), ignore, out)
        for k, v in new.items():
            if k not in old:
                _diff(MISSING, v, path + key_segment(k), ignore, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        # ``==`` alone is too lax (1 == 1.0 == True); equal encodings are the same JSON.
        if old == new and _encode(old) == _encode(new):
            return
        k = list_key(old) if old else None
        if k is not None and new and list_key(new) == k:
            old_ids = [selector_value(i[k]) for i in old]
            new_ids = [selector_value(i[k]) for i in new]
            new_set = set(new_ids)
            kept = [i for i in old_ids if i in new_set]
            old_set = set(old_ids)
            if new_ids == kept + [i for i in new_ids if i not in old_set]:
                by_new = dict(zip(new_ids, new))
                for ident, item in zip(old_ids, old):
                    _diff(item, by_new.get(ident, MISSING), f"{path}[{k}={ident}]", ignore, out)
                for ident, item in zip(new_ids, new):
                    if ident not in old_set:
                        _diff(MISSING, item, f"{path}[{k}={ident}]", ignore, out)
                return
        if len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new)):
                _diff(a, b, f"{path}[{i}]", ignore, out)
            return
        out.append(Change(path, old, new))
        return
    if old is MISSING and new is MISSING:
        return
    if type(old) is not type(new) or old != new:
        out.append(Change(path, old, new))


# --- paths and apply -------------------------------------------------------------

_SEGMENT = re.compile(
    r"""\.(?P<key>[A-Za-z_][A-Za-z0-9_-]*)        # .field
      | \[(?P<quoted>"(?:[^"\\]|\\.)*")\]          # ["dotted.key"]
      | \[(?P<index>\d+)\]                         # [3]
      | \[(?P<sel>[A-Za-z_][A-Za-z0-9_]*)=(?P<val>[^\]]*)\]  # [type=Ready]
    """, re.X)


class PathError(ValueError):
    """A field path that does not parse."""


def parse_path(path: str) -> list[tuple[str, Any]]:
    """``.status.conditions[type=Ready].status`` ->
    [('key','status'), ('key','conditions'), ('sel',('type','Ready')), ('key','status')]."""
    segments: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise PathError(f"bad field path {path!r} at column {pos + 1}: {path[pos:pos + 12]!r}")
        if m.group("key") is not None:
            segments.append(("key", m.group("key")))
        elif m.group("quoted") is not None:
            segments.append(("key", msgspec.json.decode(m.group("quoted"))))
        elif m.group("index") is not None:
            segments.append(("index", int(m.group("index"))))
        else:
            segments.append(("sel", (m.group("sel"), m.group("val"))))
        pos = m.end()
    return segments


def get_path(value: Any, path: str | list[tuple[str, Any]]) -> Any:
    """The value at a path, or MISSING."""
    segments = parse_path(path) if isinstance(path, str) else path
    for kind, arg in segments:
        if kind == "key":
            if not isinstance(value, dict) or arg not in value:
                return MISSING
            value = value[arg]
        elif kind == "index":
            if not isinstance(value, list) or arg >= len(value):
                return MISSING
            value = value[arg]
        else:
            if not isinstance(value, list):
                return MISSING
            field, wanted = arg
            value = next((i for i in value if isinstance(i, dict) and field in i
                          and selector_value(i[field]) == wanted), MISSING)
            if value is MISSING:
                return MISSING
    return value


def apply(value: Any, changes: Iterable[Change]) -> Any:
    """The inverse of ``diff``: ``apply(a, diff(a, b, ignore=())) == b``."""
    import copy

    root = {"": copy.deepcopy(value)}
    for ch in changes:
        segments = [("key", "")] + parse_path(ch.path)
        _set(root, segments, ch.new)
    return root[""]


def _set(container: Any, segments: list[tuple[str, Any]], new: Any) -> None:
    kind, arg = segments[0]
    last = len(segments) == 1
    if kind == "key":
        if last:
            if new is MISSING:
                container.pop(arg, None)
            else:
                container[arg] = new
            return
        _set(container[arg], segments[1:], new)
    elif kind == "index":
        if last:
            container[arg] = new
            return
        _set(container[arg], segments[1:], new)
    else:
        field, wanted = arg
        for i, item in enumerate(container):
            if isinstance(item, dict) and field in item and selector_value(item[field]) == wanted:
                if last:
                    if new is MISSING:
                        del container[i]
                    else:
                        container[i] = new
                    return
                _set(item, segments[1:], new)
                return
        if last and new is not MISSING:
            container.append(new)
            return
        raise PathError(f"no list item [{field}={wanted}]")


# --- over a recording -------------------------------------------------------------

async def object_diff(session: Session, obj_id: int, a: int, b: int, *,
                      ignore: Iterable[str] = DEFAULT_IGNORE) -> list[Change]:
    """One object between positions a and b (a missing object diffs as MISSING)."""
    old = await object_at(session, obj_id, a)
    new = await object_at(session, obj_id, b)
    return diff(MISSING if old is None else old, MISSING if new is None else new, ignore=ignore)


class StateDiff(msgspec.Struct):
    """Everything that differs between two positions, object by object."""

    added: list[int]
    removed: list[int]
    changed: dict[int, list[Change]]


async def state_diff(session: Session, a: int, b: int, *,
                     ignore: Iterable[str] = DEFAULT_IGNORE) -> StateDiff:
    """Objects created, deleted and changed between positions a and b."""
    sa: Snapshot = await snapshot(session, a)
    sb: Snapshot = await snapshot(session, b)
    added = sorted(set(sb.versions) - set(sa.versions))
    removed = sorted(set(sa.versions) - set(sb.versions))
    changed: dict[int, list[Change]] = {}
    for obj_id in sorted(set(sa.versions) & set(sb.versions)):
        if sa.versions[obj_id][0] == sb.versions[obj_id][0]:
            continue
        changes = diff(await sa.get(obj_id), await sb.get(obj_id), ignore=ignore)
        if changes:
            changed[obj_id] = changes
    return StateDiff(added=added, removed=removed, changed=changed)
