"""Is the writer of a session still alive?  A lock the kernel drops when the writer dies.

A session stays open (``ended_ns`` NULL) while it is written.  A writer killed with
``kill -9``, or a machine that lost power, never closes it, so "open" alone cannot say
"still recording".  How we tell, robustly across processes:

* while a session is open for streaming, its writer holds an *open file description*
  lock (Linux ``F_OFD_SETLK``, a read lock) on one byte of the recording's ``-wal`` file,
  at ``LOCK_BASE + session id``.  The kernel releases it when the writer closes the
  session, and whenever the process ends, however it ends: no heartbeat to miss, no
  stale pid to reuse, no timeout to tune;
* a reader asks the kernel (``F_OFD_GETLK``) whether anyone holds that byte.  An open
  session whose byte nobody holds was left by a dead writer: *interrupted*.

Why the ``-wal`` file: SQLite takes no locks on it (its WAL locks are on ``-shm``, its
file locks on the database), so our descriptor on it can open and close without
dropping any lock of SQLite's (closing any descriptor drops the process's POSIX locks
on that file); and a WAL writer always has it: no ``-wal`` means no writer at all.  An
OFD lock belongs to its descriptor, not its process: two sessions written by one
process, or a reader in the writer's process, see each other correctly.

Where OFD locks do not exist (not Linux), or the file is not in WAL mode, nothing can
be told: ``live_sessions`` returns None and readers keep calling an open session
"recording", as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterable

from replay_tui.engine.readonly import is_wal

LOCK_BASE = 1 << 40  # far beyond any byte SQLite writes in the -wal file
_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_FLOCK = "@hhqqi4x"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (Linux layout)


def supported() -> bool:
    return _GETLK is not None and _SETLK is not None


class SessionLock:
    """Held by a writer while its session is open; ``release`` (or process death) drops it."""

    def __init__(self, fd: int | None):
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def hold(path: str, session_id: int) -> SessionLock:
    """Mark ``session_id`` of the recording at ``path`` as being written by this process.

    Call it while the session row is still uncommitted, so no reader ever sees the
    session open without its lock.  Best effort: where it cannot be taken, readers will
    not be able to tell (see the module doc), which is how it was before.
    """
    if not supported():
        return SessionLock(None)
    try:
        fd = os.open(path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return SessionLock(None)
    try:
        fcntl.fcntl(fd, _SETLK, struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET,  # type: ignore[arg-type]
                                             LOCK_BASE + session_id, 1, 0))
    except OSError:
        os.close(fd)
        return SessionLock(None)
    return SessionLock(fd)


def live_sessions(path: str, session_ids: Iterable[int]) -> set[int] | None:
    """Which of these sessions a living writer holds; None when that cannot be told."""
    ids = list(session_ids)
    if not ids:
        return set()
    if not supported() or not is_wal(path):
        return None
    try:
        fd = os.open(path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return set()  # a WAL writer always has its -wal file: no writer at all
    except OSError:
        return None
    try:
        live = set()
        for sid in ids:
            probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, LOCK_BASE + sid, 1, 0)
            answer = fcntl.fcntl(fd, _GETLK, probe)  # type: ignore[arg-type]
            if struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK:
                live.add(sid)
        return live
    except OSError:
        return None
    finally:
        os.close(fd)
