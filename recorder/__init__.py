"""Recording operators' API traffic: the recording proxy (any language) and the client hook (Python).

``recorder.recording(db, session=...)`` is the in-process hook for the official
``kubernetes`` client (see ``recorder.hook``); ``replay-tui record`` runs the
recording proxy (see ``recorder.cli`` and ``recorder.proxy``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["recording"]


def __getattr__(name: str) -> Any:
    if name == "recording":  # imported lazily: the CLI loads this package on every start
        from replay_tui.recorder.hook import recording

        return recording
    raise AttributeError(name)
