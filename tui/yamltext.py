"""Objects as YAML-looking Rich text, each line knowing its field path, so changed fields can be lit.

Paths are spelt as ``engine.diff`` spells them (``.spec.replicas``,
``.metadata.labels["app.kubernetes.io/name"]``, ``.status.conditions[type=Ready].status``,
``.spec.args[2]``); a line is highlighted when its path, or one of its
parents, is among the changed paths.  Lists of keyed objects are matched both
by key and by index, as the diff may use either.

Keys and values come from a recording: every one passes through ``textsafe`` (no control
character reaches the terminal raw), and styles are palette roles (``replay.yaml.key``),
never colours.  Huge values (a base64 certificate) are folded to their first line until
the user unfolds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec
from rich.text import Span, Text

from replay_tui.engine.diff import key_segment, list_key
from replay_tui.engine.textsafe import safe

KEY = "replay.yaml.key"
STRING = "replay.yaml.string"
NUMBER = "replay.yaml.number"
CONST = "replay.yaml.const"
DIM = "replay.dim"
CHANGED = "replay.changed"
ADDED = "replay.added"
MARK_CHANGED = "replay.sign.changed"
MARK_ADDED = "replay.sign.added"
MAX_LINES = 4000
FOLD_CHARS = 200  # a longer scalar is folded (z unfolds)
FOLD_LINES = 8  # a longer block scalar is folded

_PLAIN = re.compile(r"[A-Za-z0-9_./@][A-Za-z0-9_./@ :-]*\Z")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "~", ""}
_NUMBERLIKE = re.compile(r"[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?\Z")


def scalar(value: Any) -> tuple[str, str]:
    """A scalar as YAML shows it, and its role."""
    if value is None:
        return "null", CONST
    if isinstance(value, bool):
        return ("true" if value else "false"), CONST
    if isinstance(value, (int, float)):
        return str(value), NUMBER
    if isinstance(value, str):
        if (_PLAIN.match(value) and value.lower() not in _RESERVED and not _NUMBERLIKE.match(value)
                and ": " not in value and not value.endswith(":") and not value.endswith(" ")):
            return value, STRING
        return safe(msgspec.json.encode(value).decode()), STRING
    return safe(msgspec.json.encode(value).decode()), STRING


def _selector(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


#: Part of a line: its text and its role ("": none).  A line is made once from its parts (one Text,
#: its spans laid out here) rather than grown a piece at a time: a 400-line body is ~3x cheaper.
Part = tuple[str, str]
_DASH: tuple[Part, ...] = (("- ", DIM),)
_COLON: Part = (":", "")


def _folded(n: int, what: str) -> Part:
    return f" … ({n:,} {what} folded: z shows them)", DIM


class _Renderer:
    def __init__(self, changed: dict[str, str], hidden: Iterable[str], max_lines: int, fold: bool):
        self.changed = changed  # path -> "changed" | "added"
        self.hidden = set(hidden)
        self.lines: list[Text] = []
        self.max_lines = max_lines
        self.fold = fold
        self.truncated = 0
        self.lit = 0
        self.folded = 0

    def mark_of(self, paths: tuple[str, ...], inherited: str | None) -> str | None:
        if inherited:
            return inherited
        for p in paths:
            kind = self.changed.get(p)
            if kind:
                return kind
        return None

    def emit(self, indent: int, head: tuple[Part, ...], rest: tuple[Part, ...], mark: str | None,
             dim_tail: int = 0) -> None:
        """One line: the change sign, the indent, the parts; its last ``dim_tail`` characters dimmed
        over their own role (a fold note inside a value)."""
        if len(self.lines) >= self.max_lines:
            self.truncated += 1
            return
        spans: list[Span] = []
        if mark == "added":
            texts = ["+ "]
            spans.append(Span(0, 2, MARK_ADDED))
        elif mark == "changed":
            texts = ["~ "]
            spans.append(Span(0, 2, MARK_CHANGED))
        else:
            texts = ["  "]
        texts.append("  " * indent)
        at = 2 + 2 * indent
        for text, style in (*head, *rest):
            if text:
                texts.append(text)
                if style:
                    spans.append(Span(at, at + len(text), style))
                at += len(text)
        if dim_tail:
            spans.append(Span(at - dim_tail, at, DIM))
        if mark:
            self.lit += 1
            if at > 2:
                spans.append(Span(2, at, ADDED if mark == "added" else CHANGED))
        self.lines.append(Text("".join(texts), spans=spans))

    @property
    def full(self) -> bool:
        return len(self.lines) >= self.max_lines

    def count(self, value: Any, paths: tuple[str, ...], *, dash: bool) -> int:
        """The lines ``node`` would write for ``value`` under a head, without making them: what a
        truncated object only counts (a 400-line cut of a 6,000-line list costs its 400 lines)."""
        if self.hidden and any(p in self.hidden for p in paths):
            return 1
        if isinstance(value, dict) and value:
            n = 0 if dash else 1  # a list item's first key shares the dash's line
            for k, v in value.items():
                sub = tuple(p + key_segment(str(k)) for p in paths) if self.hidden else paths
                n += self.count(v, sub, dash=False)
            return n
        if isinstance(value, list) and value:
            n = 1
            k = list_key(value) if self.hidden else None
            for i, item in enumerate(value):
                sub = paths
                if self.hidden:
                    sub = tuple(p + f"[{i}]" for p in paths)
                    if k is not None:
                        sub = (sub + tuple(p + f"[{k}={_selector(item[k])}]" for p in paths))[:8]
                n += self.count(item, sub, dash=True)
            return n
        if isinstance(value, str) and "\n" in value.rstrip("\n"):
            parts = len(value.splitlines())
            return 3 if self.fold and parts > FOLD_LINES else 1 + parts  # folded: its first line and a note
        return 1

    def node(self, value: Any, paths: tuple[str, ...], indent: int, head: tuple[Part, ...] | None, *,
             dash: bool = False, inherited: str | None = None, child_indent: int | None = None) -> None:
        """One value under ``head`` ("key:" or a list dash); nested lines go at ``child_indent``."""
        if self.full and head is not None:
            self.truncated += self.count(value, paths, dash=dash)
            return
        mark = self.mark_of(paths, inherited)
        inner = indent + 1 if child_indent is None else child_indent
        if any(p in self.hidden for p in paths):
            size = len(value) if isinstance(value, (list, dict)) else len(str(value))
            what = "entries" if isinstance(value, (list, dict)) else "characters"
            self.emit(indent, head or (), ((f" ({size:,} {what} hidden: z shows them)", DIM),), mark)
            self.folded += 1
            return
        if isinstance(value, dict) and value:
            if dash:
                self.mapping(value, paths, indent, mark, item=True)
                return
            if head is not None:
                self.emit(indent, head, (), mark)
                indent = inner
            self.mapping(value, paths, indent, mark, item=False)
            return
        if isinstance(value, list) and value:
            if head is not None:
                self.emit(indent, head, (), mark)
                indent = inner
            k = list_key(value)
            for i, item in enumerate(value):
                sub = tuple(p + f"[{i}]" for p in paths)
                if k is not None:
                    sub = (sub + tuple(p + f"[{k}={_selector(item[k])}]" for p in paths))[:8]
                if self.full:
                    self.truncated += self.count(item, sub, dash=True)
                    continue
                self.node(item, sub, indent, _DASH, dash=True, inherited=mark)
            return
        gap = " " if head is not None and not dash else ""
        if isinstance(value, str) and "\n" in value.rstrip("\n"):
            block = "|" if value.endswith("\n") else "|-"
            parts = value.splitlines()
            shown = parts[:1] if self.fold and len(parts) > FOLD_LINES else parts
            rest = _folded(len(parts) - 1, "more lines") if len(shown) < len(parts) else None
            self.emit(indent, head or (), ((gap + block, DIM),), mark)
            for part in shown:
                self.emit(inner, (), ((safe(part), STRING),), mark)
            if rest is not None:
                self.folded += 1
                self.emit(inner, (), (rest,), mark)
            return
        if isinstance(value, dict):
            text, style = "{}", DIM
        elif isinstance(value, list):
            text, style = "[]", DIM
        else:
            text, style = scalar(value)
        if self.fold and len(text) > FOLD_CHARS:
            self.folded += 1
            note = _folded(len(text) - 60, "more characters")[0]
            self.emit(indent, head or (), ((gap + text[:60] + note, style),), mark, dim_tail=len(note))
            return
        self.emit(indent, head or (), ((gap + text, style),), mark)

    def mapping(self, value: dict[str, Any], paths: tuple[str, ...], indent: int, mark: str | None,
                *, item: bool) -> None:
        """A mapping's keys; as a list item, the first key shares the dash's line."""
        for n, (k, v) in enumerate(value.items()):
            if self.full:
                sub = tuple(p + key_segment(str(k)) for p in paths) if self.hidden else paths
                self.truncated += self.count(v, sub, dash=False)
                continue
            name = (safe(str(k)), KEY)
            head = (("- " if n == 0 else "  ", DIM), name, _COLON) if item else (name, _COLON)
            sub = tuple(p + key_segment(str(k)) for p in paths)
            self.node(v, sub, indent, head, inherited=mark,
                      child_indent=indent + 2 if item else indent + 1)


def render_lines(obj: Any, changed: dict[str, str] | None = None, *, hidden: Iterable[str] = (),
                 max_lines: int = MAX_LINES, fold: bool = False) -> tuple[list[Text], int]:
    """The object as YAML, one Text per line; returns (lines, number of highlighted lines).

    ``hidden`` paths show only their size; with ``fold``, huge values show their start.
    """
    r = _Renderer(changed or {}, hidden, max_lines, fold)
    r.node(obj, ("",), 0, None)
    if r.truncated:
        r.lines.append(Text(f"  ... {r.truncated:,} more lines", DIM))
    return r.lines, r.lit
