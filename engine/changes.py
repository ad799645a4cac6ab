"""The change index: for each new version of an object, the paths in which it differs.

The writer compares each new version with the object's previous one, level by level
on the raw JSON (``msgspec.Raw``: an unchanged subtree costs a byte comparison, never
a decode), down to ``CHANGE_DEPTH`` segments, and stores the ids of the paths that
differ in ``states.changed`` as ``|3|17|42|``.  Paths read as in ``diff``:
``.status.phase``, ``.metadata.labels.app``, and list items by their key field
(``.status.conditions[type=Ready]``, ``.spec.containers[name=web]``), one entry per
key field of ``diff.LIST_KEYS`` the items carry (the items of a list at the last depth
too: ``.status.conditions[type=Ready]``).  An ancestor of a changed path is
recorded too, so a question about ``.status`` is one id, like one about ``.status.phase``.

An object's first version records every path it has, its deletion every path it had.
``changed`` is NULL when the writer could not compare (the previous version is no
longer in its bounded cache): such a version is a candidate for every path.  The index
never misses a change, and names a path only when its value changed: scalars are
compared as values (``1.0`` and ``1.00`` are the same), objects by their members,
lists and the objects at the last level by their bytes (one whose keys were merely
written in another order would be named; the API server writes them in a fixed
order).  Readers that need the values (``when``, ``query``) compare them anyway; a
count (the TUI's filtered timeline) trusts the index for a path it records whole.

Readers (``engine.watch``, ``engine.query``) ask for the versions whose ``changed``
contains a path's id (``watch.candidates_sql``): SQLite filters the object's (or the
session's) version rows with ``instr`` on a covering index, and only those versions
are decompressed and decoded.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from itertools import compress
from operator import ne
from typing import Any

import msgspec

from replay_tui.engine.diff import LIST_KEYS, key_segment, parse_path, selector_value

CHANGE_DEPTH = 2  # path segments recorded (.status.phase: 2), and list items by key one deeper
TREE_CACHE_BYTES = 64 << 20  # previous versions kept (raw JSON size) for comparison

_raw_dict = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode = msgspec.json.Decoder().decode
_OBJECT, _ARRAY = ord("{"), ord("[")
_CONTAINERS = (_OBJECT, _ARRAY)
_SCALAR: Any = ()  # the children of a scalar


_LIST_KEYS = frozenset(LIST_KEYS)
_KEY_FIELDS = re.compile(b'"(?:' + b"|".join(k.encode() for k in LIST_KEYS) + b')"')


class _Node:
    """One JSON value as raw bytes; one level of it decoded on first need, and the
    children compared so far (their own decoded levels, for the next comparison)."""

    __slots__ = ("_keyed", "_kids", "memo", "raw")

    def __init__(self, raw: msgspec.Raw):
        self.raw = raw
        self._kids: Any = None
        self._keyed: dict[str, dict[str, msgspec.Raw]] | None = None
        self.memo: dict[Any, _Node] | None = None

    def kids(self) -> Any:
        """dict[str, Raw] for an object, list[Raw] for an array, () for a scalar."""
        kids = self._kids
        if kids is None:
            raw = self.raw
            first = raw[0] if type(raw) is bytes else memoryview(raw)[0]
            if first == _OBJECT:
                kids = _raw_dict(raw)
            elif first == _ARRAY:
                kids = _raw_list(raw)
            else:
                kids = _SCALAR
            self._kids = kids
        return kids

    def child(self, key: Any, raw: msgspec.Raw) -> _Node:
        """The node of a child (made once, so what is decoded of it is kept)."""
        memo = self.memo
        if memo is None:
            memo = self.memo = {}
        node = memo.get(key)
        if node is None or node.raw is not raw:
            node = memo[key] = _Node(raw)
        return node

    def keyed(self) -> dict[str, dict[str, msgspec.Raw]]:
        """An array's object items by key field and value (the first item wins, as in get_path)."""
        keyed = self._keyed
        if keyed is None:
            keyed = {}
            kids = self.kids()
            if type(kids) is list and _KEY_FIELDS.search(self.raw):  # no key field at all: no decoding
                for item in kids:
                    if memoryview(item)[0] != _OBJECT:
                        continue
                    fields = _raw_dict(item)
                    for field in fields.keys() & _LIST_KEYS:
                        text = selector_value(_decode(fields[field]))
                        if "]" not in text:
                            keyed.setdefault(field, {}).setdefault(text, item)
            self._keyed = keyed
        return keyed


_segments: dict[str, str] = {}


def _segment(key: str) -> str:
    seg = _segments.get(key)
    if seg is None:
        seg = key_segment(key)
        if len(_segments) < 65536:
            _segments[key] = seg
    return seg


def _same_scalars(a: msgspec.Raw, b: msgspec.Raw) -> bool:
    """Two raw values that are both scalars and equal as JSON values (1 != 1.0 != true)."""
    if memoryview(a)[0] in _CONTAINERS or memoryview(b)[0] in _CONTAINERS:
        return False
    x, y = _decode(a), _decode(b)
    return type(x) is type(y) and x == y


def _walk(old: _Node | None, new: _Node | None, prefix: str, depth: int, out: list[str]) -> None:
    """Record the children (depth ``depth + 1``) in which two different values differ, and recurse."""
    child = depth + 1
    deeper = child < CHANGE_DEPTH
    ok = old.kids() if old is not None else _SCALAR
    nk = new.kids() if new is not None else _SCALAR
    if type(ok) is dict or type(nk) is dict:
        od: dict[str, msgspec.Raw] = ok if type(ok) is dict else {}
        nd: dict[str, msgspec.Raw] = nk if type(nk) is dict else {}
        if od.keys() == nd.keys():  # the usual case: the same keys, a few values differ
            differing: Any = compress(nd, map(ne, map(od.__getitem__, nd), nd.values()))  # in C
            gone: Any = ()
        else:
            differing = [k for k, v in nd.items() if k not in od or od[k] != v]
            gone = [k for k in od if k not in nd]
        for key in differing:
            o, n = od.get(key), nd[key]
            if o is not None and _same_scalars(o, n):
                continue  # another spelling of the same number or string
            path = prefix + _segment(key)
            if not deeper:
                out.append(path)
                _last(old, new, key, o, n, path, out)
                continue
            mark = len(out)
            _walk(None if o is None else old.child(key, o),  # type: ignore[union-attr]
                  new.child(key, n), path, child, out)  # type: ignore[union-attr]
            if len(out) > mark or o is None or not (memoryview(o)[0] == memoryview(n)[0] == _OBJECT):
                out.insert(mark, path)  # (two objects differ only where a member does)
        for key in gone:
            path = prefix + _segment(key)
            out.append(path)
            if deeper:
                _walk(old.child(key, od[key]), None, path, child, out)  # type: ignore[union-attr]
            else:
                _last(old, None, key, od[key], None, path, out)
    if type(ok) is list or type(nk) is list:
        okeyed = old.keyed() if old is not None and type(ok) is list else {}
        nkeyed = new.keyed() if new is not None and type(nk) is list else {}
        if not okeyed and not nkeyed:
            return
        for field in okeyed.keys() | nkeyed.keys():
            oitems = okeyed.get(field, {})
            nitems = nkeyed.get(field, {})
            for value in oitems.keys() | nitems.keys():
                a, b = oitems.get(value), nitems.get(value)
                if a is not None and b is not None and (a == b or _same_scalars(a, b)):
                    continue
                path = f"{prefix}[{field}={value}]"
                out.append(path)
                key = (field, value)
                if deeper:
                    _walk(None if a is None else old.child(key, a),  # type: ignore[union-attr]
                          None if b is None else new.child(key, b), path, child, out)  # type: ignore[union-attr]
                else:
                    _last(old, new, key, a, b, path, out)


def _last(old: _Node | None, new: _Node | None, key: Any, o: msgspec.Raw | None, n: msgspec.Raw | None,
          path: str, out: list[str]) -> None:
    """A value at the last depth recorded differs: when it is a list, its items by key too
    (``.status.conditions[type=Ready]`` one level below ``.status.conditions``), no deeper."""
    if (o is None or memoryview(o)[0] != _ARRAY) and (n is None or memoryview(n)[0] != _ARRAY):
        return
    a = None if o is None or old is None else old.child(key, o)
    b = None if n is None or new is None else new.child(key, n)
    akeyed = a.keyed() if a is not None else {}
    bkeyed = b.keyed() if b is not None else {}
    for field in akeyed.keys() | bkeyed.keys():
        aitems = akeyed.get(field, {})
        bitems = bkeyed.get(field, {})
        for value in aitems.keys() | bitems.keys():
            x, y = aitems.get(value), bitems.get(value)
            if x is None or y is None or not (x == y or _same_scalars(x, y)):
                out.append(f"{path}[{field}={value}]")


def changed_paths(old: bytes, new: bytes) -> list[str]:
    """The paths (to CHANGE_DEPTH segments) in which two JSON documents differ, parents first."""
    out: list[str] = []
    if bytes(old) != bytes(new):
        _walk(_Node(msgspec.Raw(old)), _Node(msgspec.Raw(new)), "", 0, out)
    return out


class ChangeTracker:
    """The writer's side: each live object's latest version (decoded as far as compared)
    and the session's path ids.  Bounded: past ``max_bytes`` of cached JSON the least
    recently changed objects are forgotten (their next version is recorded as unknown)."""

    def __init__(self, first_id: int, max_bytes: int = TREE_CACHE_BYTES):
        self.paths: dict[str, int] = {}
        self.next_id = first_id
        self.fresh: list[tuple[int, str]] = []  # paths numbered since the last commit
        self._trees: OrderedDict[int, _Node] = OrderedDict()
        self._seen: set[int] = set()  # objects that have a version (live or evicted from the cache)
        self._bytes = 0
        self.max_bytes = max_bytes

    def raw(self, obj_id: int) -> bytes | None:
        """The JSON of the object's latest version, while it is cached."""
        node = self._trees.get(obj_id)
        return bytes(node.raw) if node is not None else None

    def version(self, obj_id: int, data: bytes | None) -> str | None:
        """The ``changed`` text of a new version of ``obj_id`` (``data`` None: its deletion): the
        paths it changes; for a first version every path it has, for a deletion every path
        the object had.  None when it cannot be told (the previous version is not cached)."""
        trees = self._trees
        old = trees.pop(obj_id, None)
        if old is not None:
            self._bytes -= len(old.raw)
        first = obj_id not in self._seen
        if data is not None:
            new = _Node(data)  # type: ignore[arg-type]  # bytes: one level decodes as Raw views of it
            trees[obj_id] = new
            self._bytes += len(data)
            self._seen.add(obj_id)
            while self._bytes > self.max_bytes and len(trees) > 1:
                _, gone = trees.popitem(last=False)
                self._bytes -= len(gone.raw)
        else:
            new = None
            self._seen.discard(obj_id)  # re-created later: a first version again
        if old is None and not first:
            return None
        out: list[str] = []
        if old is None or new is None or old.raw != new.raw:
            _walk(old, new, "", 0, out)
        if not out:
            return "|"
        ids = self.paths
        parts = []
        for path in out:
            pid = ids.get(path)
            if pid is None:
                pid = ids[path] = self.next_id
                self.next_id += 1
                self.fresh.append((pid, path))
            parts.append(str(pid))
        return "|" + "|".join(parts) + "|"

    def forget(self, obj_id: int) -> None:
        old = self._trees.pop(obj_id, None)
        if old is not None:
            self._bytes -= len(old.raw)

    def committed(self) -> list[tuple[int, str]]:
        """The paths numbered since the last call: rows for ``paths`` in this transaction."""
        fresh, self.fresh = self.fresh, []
        return fresh

    def rolled_back(self, fresh: list[tuple[int, str]]) -> None:
        """A transaction failed: its path numbers are void, and the cached versions may be
        ones that were never committed, so none of them is trusted."""
        for _, path in fresh:
            self.paths.pop(path, None)
        self._trees.clear()
        self._bytes = 0  # (_seen stays: an object seen before is no first version when retried)


# --- readers ------------------------------------------------------------------------------

def format_path(segments: list[tuple[str, Any]]) -> str:
    """Segments (``diff.parse_path``) as the index spells them."""
    out = []
    for kind, arg in segments:
        if kind == "key":
            out.append(_segment(arg))
        elif kind == "index":
            out.append(f"[{arg}]")
        else:
            out.append(f"[{arg[0]}={arg[1]}]")
    return "".join(out)


def index_path(path: str) -> str:
    """The indexed path a field path is looked up by: the path itself when it has at most
    CHANGE_DEPTH segments (and a list item by key one deeper), else its ancestor at that
    depth; cut before a list index (``[2]``: items are indexed by key only) or a selector
    on a field that is no list key.
    '' means the index cannot narrow it down (every version is a candidate)."""
    kept = []
    for depth, (kind, arg) in enumerate(parse_path(path)[:CHANGE_DEPTH + 1]):
        if kind == "index" or (kind == "sel" and arg[0] not in LIST_KEYS):
            break
        if depth == CHANGE_DEPTH and kind != "sel":
            break  # below the last depth only list items are recorded
        kept.append((kind, arg))
    return format_path(kept)


def token(path_id: int) -> str:
    """What ``instr(changed, ...)`` looks for."""
    return f"|{path_id}|"
