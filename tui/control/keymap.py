"""The user's keymap file: every key of the debugger can be rebound by its binding id.

``$REPLAY_TUI_KEYMAP``, else ``$XDG_CONFIG_HOME/replay-tui/keymap.toml`` (default
``~/.config/replay-tui/keymap.toml``), read once at start.  Each line gives a binding id
(the help screen lists them; ``replay.step``, ``replay.jump-back``...) the keys it takes,
as Textual names them, comma-separated or as a list::

    'replay.step' = 'right,l,space'
    'replay.jump-forward' = ['ctrl+n', 'alt+right']

A file that cannot be read, or a line that names no binding, is reported in one line and
the rest is applied: a typo never keeps the debugger from opening.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

ENV = "REPLAY_TUI_KEYMAP"


def keymap_path() -> Path:
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "replay-tui" / "keymap.toml"


def load_keymap(known: Iterable[str], path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """(binding id -> keys, problems): what the file asks for among the ``known`` ids."""
    path = path or keymap_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"keymap {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})"]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"keymap {path}: not TOML ({exc})"]
    known = set(known)
    keymap: dict[str, str] = {}
    problems = []
    for bid, keys in _flat(data):
        if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
            keys = ",".join(keys)
        if bid not in known:
            problems.append(f"keymap {path}: no key has the id {bid!r} (the help screen lists them)")
        elif not isinstance(keys, str) or not all(k.strip() for k in keys.split(",")):
            problems.append(f"keymap {path}: {bid} takes keys such as \"ctrl+n\" or [\"l\", \"right\"]")
        else:
            keymap[bid] = ",".join(k.strip() for k in keys.split(","))
    return keymap, problems


def _flat(data: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    """``replay.step = "l"`` unquoted is TOML for a table ``replay`` holding ``step``: the same id."""
    out: list[tuple[str, object]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_flat(value, f"{prefix}{key}."))
        else:
            out.append((prefix + key, value))
    return out
