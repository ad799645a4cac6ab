"""The session report written from the debugger (``R``): where it goes, and writing it.

The format follows the file's extension, as ``replay-tui report --out`` does.  A bad name is
refused before any work, an existing file is only replaced once the user said so, and the
build runs on a connection of its own so the panes keep answering meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass

from replay_tui.cli import report as reportfile
from replay_tui.engine import report as reportmod
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording


@dataclass
class Written:
    path: str
    size: int
    seconds: float


def default_path(db: str, session: str) -> str:
    """``<db stem>-<session>-report.html`` in the current directory: a name that says what it holds."""
    stem = os.path.splitext(os.path.basename(db))[0]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{stem}-{session}").strip("-.") or "session"
    return f"{name}-report.html"


def check(text: str, db: str) -> str:
    """The absolute path to write, or RecordingError saying what is wrong with ``text``."""
    if not text.strip():
        raise RecordingError(f"type a file name ending in {reportfile.EXTENSION_LIST}")
    reportfile.format_for(text.strip())
    return reportfile.check_out(text.strip(), db)


def problem(text: str, db: str) -> tuple[str, int] | None:
    """For the prompt: what is wrong with the name typed (message, column), or None."""
    try:
        check(text, db)
    except RecordingError as exc:
        return str(exc), 0
    return None


def here() -> str:
    try:
        return os.getcwd()
    except OSError:  # the directory the app started in was removed
        return "the current directory"


async def write(db: str, session_id: int, path: str) -> Written:
    """Build the report on its own read-only connection and write it (rendering off the event loop)."""
    started = time.monotonic()
    fmt = reportfile.format_for(path)
    rec = await Recording.open(db)
    try:
        data = await reportmod.build(await rec.session(session_id))
    finally:
        await rec.close()
    size = await asyncio.to_thread(lambda: reportfile.write_text(path, reportfile.render(data, fmt)))
    return Written(path, size, time.monotonic() - started)
