"""Marks set in the TUI: kept in memory and in a sidecar file in the user's state directory.

Reading never modifies a recording, so a mark set while debugging is not
written into it.  It goes to ``$REPLAY_TUI_STATE_DIR`` (default
``$XDG_STATE_HOME/replay-tui``, else ``~/.local/state/replay-tui``), one JSON
file per recording, keyed by session name, and is merged with the marks the
recording itself carries (a TUI mark of the same name wins).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import msgspec

from replay_tui.engine.format import Mark


def state_dir() -> Path:
    explicit = os.environ.get("REPLAY_TUI_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "replay-tui"


class _File(msgspec.Struct):
    db: str = ""
    sessions: dict[str, list[Mark]] = msgspec.field(default_factory=dict)


def sidecar_path(db: str) -> Path:
    real = os.path.realpath(db)
    digest = hashlib.sha256(real.encode()).hexdigest()[:16]
    return state_dir() / "marks" / f"{Path(real).stem}-{digest}.json"


class MarkStore:
    """Every mark of one session: the recording's, then the user's own (which win by name)."""

    def __init__(self, db: str, session: str, recorded: list[Mark], *, persist: bool = True):
        self.db = os.path.realpath(db)
        self.session = session
        self.recorded = list(recorded)
        self.persist = persist
        self.path = sidecar_path(db)
        self.own: dict[str, Mark] = {}
        self.load_error = ""
        if persist:
            self._load()

    def _load(self) -> None:
        try:
            data = msgspec.json.decode(self.path.read_bytes(), type=_File)
        except FileNotFoundError:
            return
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.load_error = f"ignoring the marks file {self.path}: {exc}"
            return
        for mark in data.sessions.get(self.session, []):
            self.own[mark.name] = mark

    def all(self) -> list[Mark]:
        """Every mark by position."""
        merged = {m.name: m for m in self.recorded}
        merged.update(self.own)
        return sorted(merged.values(), key=lambda m: (m.seq, m.name))

    def get(self, name: str) -> Mark | None:
        return self.own.get(name) or next((m for m in self.recorded if m.name == name), None)

    def at(self, seq: int) -> list[Mark]:
        return [m for m in self.all() if m.seq == seq]

    def next_name(self) -> str:
        """A free name for a quick mark: a, b, c, ... then m27, m28, ..."""
        taken = {m.name for m in self.all()}
        for c in "abcdefghijklmnopqrstuvwxyz":
            if c not in taken:
                return c
        n = 27
        while f"m{n}" in taken:
            n += 1
        return f"m{n}"

    def set(self, name: str, seq: int, note: str = "") -> str:
        """Set (or move) a mark; returns an error text when it could not be saved ('' otherwise)."""
        self.own[name] = Mark(name=name, seq=seq, note=note, created_ns=time.time_ns())
        return self.save()

    def remove(self, name: str) -> bool:
        if name in self.own:
            del self.own[name]
            self.save()
            return True
        return False

    def save(self) -> str:
        if not self.persist:
            return ""
        try:
            try:
                data = msgspec.json.decode(self.path.read_bytes(), type=_File)
            except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
                data = _File()
            data.db = self.db
            data.sessions[self.session] = sorted(self.own.values(), key=lambda m: (m.seq, m.name))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(msgspec.json.format(msgspec.json.encode(data)))
            tmp.replace(self.path)
        except OSError as exc:
            return f"mark kept for this run only: cannot write {self.path} ({exc.strerror or exc})"
        return ""
