"""The change index: for each new version of an object, the paths in which it differs.

The writer compares each new version with the object's previous one, level by level
on the raw JSON (``msgspec.Raw``: an unchanged subtree costs a byte comparison, never
a decode), down to ``CHANGE_DEPTH`` segments, and stores the ids of the paths that
differ in ``states.changed`` as ``|3|h|2A|`` (ids in base 64, ``id_text``; decimal before
format 3).  Paths read as in ``diff``: ``.status.phase``, ``.metadata.labels.app``, and
list items by their key field (``.status.conditions[type=Ready]``,
``.spec.containers[name=web]``), one entry per key field of ``diff.LIST_KEYS`` the items
carry (the items of a list at the last depth too), and one level below such an item its
members (``.status.conditions[type=Ready].status``: sessions of format 3; format 2
stopped at the item, so a condition's status was looked up by the whole condition).  An
ancestor of a changed path is recorded too, so a question about ``.status`` is one id,
like one about ``.status.phase``.

An object's first version records every path it has, its deletion every path it had,
down to list items (not their members, for which the row's leading ``|*|`` stands: an
item keyed by a name or uid of its own would otherwise give each object paths of its own).
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
from replay_tui.engine.schema import FORMAT_V3

CHANGE_DEPTH = 2  # path segments recorded (.status.phase: 2), and list items by key one deeper
TREE_CACHE_BYTES = 64 << 20  # previous versions kept (raw JSON size) for comparison

_raw_dict = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode = msgspec.json.Decoder().decode
_OBJECT, _ARRAY, _QUOTE = ord("{"), ord("["), ord('"')
_CONTAINERS = (_OBJECT, _ARRAY)
_SCALAR: Any = ()  # the children of a scalar
_NO_KEYS: dict[str, dict[str, msgspec.Raw]] = {}
_NO_ITEMS: dict[str, msgspec.Raw] = {}

_LIST_KEYS = frozenset(LIST_KEYS)
_KEY_FIELDS = re.compile(b'"(?:' + b"|".join(k.encode() for k in LIST_KEYS) + b')"')


class _ItemKeys(msgspec.Struct):
    """The key fields of a list item (``diff.LIST_KEYS``), decoded in one pass over the list."""

    name: Any = msgspec.UNSET
    type: Any = msgspec.UNSET
    containerPort: Any = msgspec.UNSET
    key: Any = msgspec.UNSET
    mountPath: Any = msgspec.UNSET
    devicePath: Any = msgspec.UNSET
    ip: Any = msgspec.UNSET
    uid: Any = msgspec.UNSET


assert tuple(_ItemKeys.__struct_fields__) == LIST_KEYS
_item_keys = msgspec.json.Decoder(list[_ItemKeys]).decode
_astuple = msgspec.structs.astuple
_UNSET = msgspec.UNSET


def _kids(raw: Any) -> Any:
    """dict[str, Raw] for an object, list[Raw] for an array, () for a scalar."""
    first = memoryview(raw)[0]
    if first == _OBJECT:
        return _raw_dict(raw)
    if first == _ARRAY:
        return _raw_list(raw)
    return _SCALAR


def _keyed(raw: Any, items: list[msgspec.Raw]) -> dict[str, dict[str, msgspec.Raw]]:
    """An array's object items by key field and value (the first item wins, as in get_path);
    ``raw`` has a key field somewhere (``_KEY_FIELDS``)."""
    keyed: dict[str, dict[str, msgspec.Raw]] = {}
    try:
        keys: list[Any] = _item_keys(raw)
    except msgspec.ValidationError:  # items that are no objects: take the objects one by one
        keys = []
        for item in items:
            try:
                keys.append(msgspec.json.decode(item, type=_ItemKeys))
            except msgspec.ValidationError:
                keys.append(None)
    for item, found in zip(items, keys):
        if found is None:
            continue
        for field, value in zip(LIST_KEYS, _astuple(found)):
            if value is _UNSET:
                continue
            text = value if type(value) is str else selector_value(value)
            if "]" not in text:
                by_value = keyed.get(field)
                if by_value is None:
                    keyed[field] = {text: item}
                elif text not in by_value:
                    by_value[text] = item
    return keyed


class _Doc:
    """One version of an object as the tracker keeps it: its JSON, its members (decoded once),
    and what was decoded of them for a comparison (kept for the next one)."""

    __slots__ = ("memo", "raw", "top")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.top: dict[str, msgspec.Raw] = _members_of(raw)  # ({} for no object: the writer's versions are)
        self.memo: dict[Any, Any] = {}

    def kids(self, key: Any, raw: Any) -> Any:
        """The decoded member ``key`` (a str: a top-level member; a pair: one below)."""
        memo = self.memo
        kids = memo.get(key)
        if kids is None:
            kids = memo[key] = _kids(raw)
        return kids

    def keyed(self, key: Any, raw: Any) -> dict[str, dict[str, msgspec.Raw]]:
        memo = self.memo
        mkey = (key, None)
        keyed = memo.get(mkey)
        if keyed is None:
            # (no key field anywhere in it: its items need not be decoded)
            keyed = memo[mkey] = _keyed(raw, self.kids(key, raw)) if _KEY_FIELDS.search(raw) else _NO_KEYS
        return keyed


#: Leads the ``changed`` of a version that lists every path it has (an object's first version)
#: or had (its deletion), down to list items: their members are not listed (``implied_by``).
EVERY = "|*|"

_ID_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"  # (no "|")
_ID_VALUES = {ch: i for i, ch in enumerate(_ID_DIGITS)}

_segments: dict[str, str] = {}


def _segment(key: str) -> str:
    seg = _segments.get(key)
    if seg is None:
        seg = key_segment(key)
        if len(_segments) < 65536:
            _segments[key] = seg
    return seg


def _same_scalar(a: msgspec.Raw, b: msgspec.Raw, first: int) -> bool:
    """``_same_scalars`` for two scalars, ``first`` the first byte of ``a``."""
    if first == _QUOTE:
        x, y = bytes(a), bytes(b)
        if b"\\" not in x and b"\\" not in y:
            return False  # two strings without escapes: different bytes, different strings
    u, v = _decode(a), _decode(b)
    return type(u) is type(v) and u == v


def _differing(od: dict[str, msgspec.Raw], nd: dict[str, msgspec.Raw]) -> tuple[Any, Any]:
    """The keys whose values differ (or that only ``nd`` has), and the keys only ``od`` has."""
    if od.keys() == nd.keys():  # the usual case: the same keys, a few values differ
        return compress(nd, map(ne, map(od.__getitem__, nd), nd.values())), ()  # in C
    return [k for k, v in nd.items() if k not in od or od[k] != v], [k for k in od if k not in nd]


def _items(okeyed: dict[str, dict[str, msgspec.Raw]], nkeyed: dict[str, dict[str, msgspec.Raw]],
           prefix: str, out: list[str]) -> None:
    """Record the list items (by key) that differ between two keyed lists (in the order the new
    list has them, then those only the old one has: the same input gives the same path ids)."""
    for field, nitems in nkeyed.items():
        oitems = okeyed.get(field, _NO_ITEMS)
        for value, y in nitems.items():
            x = oitems.get(value)
            if x is None or x != y:  # (items are objects: compared by their bytes)
                _members(x, y, f"{prefix}[{field}={value}]", out)
        for value, x in oitems.items():
            if value not in nitems:
                _members(x, None, f"{prefix}[{field}={value}]", out)
    for field, oitems in okeyed.items():
        if field not in nkeyed:
            for value, x in oitems.items():
                _members(x, None, f"{prefix}[{field}={value}]", out)


def _members_of(raw: Any) -> dict[str, msgspec.Raw]:
    """An object's members, undecoded; {} for None or for JSON that is no object."""
    if raw is None:
        return {}
    try:
        return _raw_dict(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return {}


def _members(x: msgspec.Raw | None, y: msgspec.Raw | None, path: str, out: list[str]) -> None:
    """Record a list item that differs (``path``) and the members in which its two versions differ
    (either None: every member the other has), one level below: ``[type=Ready].status``."""
    out.append(path)
    od, nd = _members_of(x), _members_of(y)
    differing, gone = _differing(od, nd)
    for sub in differing:
        a, b = od.get(sub), nd[sub]
        if a is not None:
            fa, fb = memoryview(a)[0], memoryview(b)[0]
            if fa not in _CONTAINERS and fb not in _CONTAINERS and _same_scalar(a, b, fa):
                continue
        out.append(path + (_segments.get(sub) or _segment(sub)))
    for sub in gone:
        out.append(path + _segment(sub))


def _level2(old: _Doc | None, new: _Doc | None, key: str, o: Any, n: Any, prefix: str,
            out: list[str]) -> None:
    """Record what differs one level below the top-level member ``key`` (``o`` and ``n``
    its raw values, None where absent), and list items by key at the level below that."""
    ok = old.kids(key, o) if o is not None else _SCALAR  # type: ignore[union-attr]
    nk = new.kids(key, n) if n is not None else _SCALAR  # type: ignore[union-attr]
    tok, tnk = type(ok), type(nk)
    if tok is dict or tnk is dict:
        od: dict[str, msgspec.Raw] = ok if tok is dict else {}
        nd: dict[str, msgspec.Raw] = nk if tnk is dict else {}
        differing, gone = _differing(od, nd)
        for sub in differing:
            a, b = od.get(sub), nd[sub]
            fb = memoryview(b)[0]
            if a is not None:
                fa = memoryview(a)[0]
                if fa not in _CONTAINERS and fb not in _CONTAINERS and _same_scalar(a, b, fa):
                    continue
            else:
                fa = 0
            path = prefix + (_segments.get(sub) or _segment(sub))
            out.append(path)
            if fb == _ARRAY or fa == _ARRAY:
                _items(old.keyed((key, sub), a) if fa == _ARRAY else _NO_KEYS,  # type: ignore[union-attr]
                       new.keyed((key, sub), b) if fb == _ARRAY else _NO_KEYS, path, out)  # type: ignore[union-attr]
        for sub in gone:
            a = od[sub]
            path = prefix + _segment(sub)
            out.append(path)
            if memoryview(a)[0] == _ARRAY:
                _items(old.keyed((key, sub), a), _NO_KEYS, path, out)  # type: ignore[union-attr]
    if tok is list or tnk is list:
        _items(old.keyed(key, o) if tok is list else _NO_KEYS,  # type: ignore[union-attr]
               new.keyed(key, n) if tnk is list else _NO_KEYS, prefix, out)  # type: ignore[union-attr]


def _compare(old: _Doc | None, new: _Doc | None) -> list[str]:
    """The paths (to CHANGE_DEPTH segments, and list items by key one deeper) in which two
    versions differ (either None: every path the other has), parents first."""
    out: list[str] = []
    ot = old.top if old is not None else {}
    nt = new.top if new is not None else {}
    differing, gone = _differing(ot, nt)
    for key in differing:
        o, n = ot.get(key), nt[key]
        if o is not None:
            fo, fn = memoryview(o)[0], memoryview(n)[0]
            path = _segments.get(key) or _segment(key)
            if fo not in _CONTAINERS and fn not in _CONTAINERS:
                if not _same_scalar(o, n, fo):
                    out.append(path)
                continue
            mark = len(out)
            out.append(path)
            _level2(old, new, key, o, n, path, out)
            if len(out) == mark + 1 and fo == fn == _OBJECT:
                out.pop()  # two objects differ only where a member does
            continue
        path = _segment(key)
        out.append(path)
        _level2(None, new, key, None, n, path, out)
    for key in gone:
        path = _segment(key)
        out.append(path)
        _level2(old, None, key, ot[key], None, path, out)
    return out


def _everything(doc: _Doc) -> list[str]:
    """Every path a version has, parents first, down to list items: what ``_compare`` gives
    against nothing but the items' members, which the row's ``EVERY`` mark stands for (an item
    keyed by a name or uid of its own, an ownerReference, would give each object paths of its own)."""
    out: list[str] = []
    append = out.append
    for key, raw in doc.top.items():
        path = _segments.get(key) or _segment(key)
        append(path)
        first = memoryview(raw)[0]
        if first == _OBJECT:
            for sub, value in doc.kids(key, raw).items():
                below = path + (_segments.get(sub) or _segment(sub))
                append(below)
                if memoryview(value)[0] == _ARRAY:
                    for field, items in doc.keyed((key, sub), value).items():
                        out.extend([f"{below}[{field}={v}]" for v in items])
        elif first == _ARRAY:
            for field, items in doc.keyed(key, raw).items():
                out.extend([f"{path}[{field}={v}]" for v in items])
    return out


def changed_paths(old: bytes, new: bytes) -> list[str]:
    """The paths (to CHANGE_DEPTH segments) in which two JSON documents differ, parents first."""
    if bytes(old) == bytes(new):
        return []
    return _compare(_Doc(bytes(old)), _Doc(bytes(new)))


class ChangeTracker:
    """The writer's side: each live object's latest version (decoded as far as compared)
    and the session's path ids.  Bounded: past ``max_bytes`` of cached JSON the least
    recently changed objects are forgotten (their next version is recorded as unknown)."""

    fmt = FORMAT_V3  # the session format it writes (``id_text``)

    def __init__(self, first_id: int, max_bytes: int = TREE_CACHE_BYTES):
        self.paths: dict[str, int] = {}
        self._texts: dict[str, str] = {}  # path -> its id as written in ``changed``
        self.next_id = first_id
        self.fresh: list[tuple[int, str]] = []  # paths numbered since the last commit
        self._trees: OrderedDict[int, _Doc] = OrderedDict()
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
            new = _Doc(data)
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
        every = old is None or new is None
        if old is None:
            out = _everything(new) if new is not None else []
        elif new is None:
            out = _everything(old)
        else:
            out = _compare(old, new) if old.raw != new.raw else []
        if not out:
            return "|"
        texts = self._texts
        ids = "|".join([texts.get(path) or self._number(path) for path in out])
        return (EVERY if every and self.fmt >= FORMAT_V3 else "|") + ids + "|"

    def _number(self, path: str) -> str:
        pid = self.paths[path] = self.next_id
        self.next_id += 1
        self.fresh.append((pid, path))
        text = self._texts[path] = id_text(pid, self.fmt)
        return text

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
            self._texts.pop(path, None)
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


def index_path(path: str, fmt: int = FORMAT_V3) -> str:
    """The indexed path a field path is looked up by, in a session of format ``fmt``: the path
    itself when the index records it (at most CHANGE_DEPTH segments, a list item by key one
    deeper, and from format 3 the members of such an item), else its deepest ancestor that it
    records; cut before a list index (``[2]``: items are indexed by key only) or a selector
    on a field that is no list key.
    '' means the index cannot narrow it down (every version is a candidate)."""
    kept: list[tuple[str, Any]] = []
    for kind, arg in parse_path(path):
        if kind == "index" or (kind == "sel" and arg[0] not in LIST_KEYS):
            break
        depth, in_item = len(kept), bool(kept) and kept[-1][0] == "sel"
        if kind == "sel":
            if depth > CHANGE_DEPTH or in_item:
                break  # the items of a list down to the last depth, not the items of an item
        elif depth >= CHANGE_DEPTH and not (in_item and fmt >= FORMAT_V3):
            break  # below the last depth only list items (and their members) are recorded
        kept.append((kind, arg))
        if kind == "key" and in_item:
            break  # a member of an item: nothing below it is recorded
    return format_path(kept)


def implied_by(path: str, fmt: int) -> str | None:
    """For an indexed path that is a member of a list item (``index_path``), the item's path,
    whose listing in a row marked ``EVERY`` (an object's first version, its deletion) stands
    for the member; None for any other path."""
    if fmt < FORMAT_V3:
        return None
    segments = parse_path(path)
    if len(segments) >= 2 and segments[-1][0] == "key" and segments[-2][0] == "sel":
        return format_path(segments[:-1])
    return None


def id_text(path_id: int, fmt: int = FORMAT_V3) -> str:
    """A path id as ``changed`` spells it: in base 64 from format 3 (digits first, so 1-9 read
    as themselves; ~1 byte a token less: the index holds each token twice, table and index),
    in decimal before."""
    if fmt < FORMAT_V3:
        return str(path_id)
    out = []
    while True:
        path_id, digit = divmod(path_id, 64)
        out.append(_ID_DIGITS[digit])
        if not path_id:
            return "".join(reversed(out))


def id_of(text: str, fmt: int) -> int:
    """``id_text`` read back."""
    if fmt < FORMAT_V3:
        return int(text)
    n = 0
    for ch in text:
        n = n * 64 + _ID_VALUES[ch]
    return n


def token(path_id: int, fmt: int = FORMAT_V3) -> str:
    """What ``instr(changed, ...)`` looks for."""
    return f"|{id_text(path_id, fmt)}|"
