"""Opening a recording to read it, without writing to it or leaving files beside it.

A WAL-mode SQLite file needs a ``-wal`` and a ``-shm`` file to be read.  Opened with
``mode=ro``, SQLite creates them when they are missing and, being read-only, never
removes them: every reader of a finished recording would leave two files behind.
So the way in depends on what is there:

* a ``-wal`` exists: a writer has the file open (or crashed with it open).  Read with
  ``mode=ro``: the files are the writer's, and a reader neither creates nor touches them;
* no ``-wal``, the file and its directory writable: nobody is writing.  Open with
  ``mode=rw``, made read-only by SQLite itself: ``PRAGMA query_only`` and an authorizer
  that refuses every statement that writes (and turning ``query_only`` off); the caller
  installs both before anything else (:func:`lock_down`).  SQLite creates the side files
  for this connection and, as the last connection to close, removes them again.  Closing
  checkpoints an empty WAL, which writes nothing to the recording.  (Should a writer
  start and finish while we read, our close folds its WAL into the file, as that writer
  would have.)  Only for WAL files: a rollback-journal file opened read-write could have
  a hot journal rolled back, which is a write;
* no ``-wal`` and a directory we cannot write (a read-only mount, someone else's files):
  ``immutable=1``, since the side files could not be created anyway.

A ``-wal`` this process made, through a reading connection it still holds open, is no
writer's: a second reader (the TUI keeps four, a report or an analysis opens one more) opens
the file the same way, read-write under the same lock-down.  Opened ``mode=ro`` it could
never remove the side files, and a read-write connection closing before it would not be the
last: the files would stay.  :func:`hold` / :func:`release` keep that count, per file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse

SQLITE_HEADER = 100
_WAL_VERSION = 2  # file format write/read version bytes (offsets 18, 19) of a WAL database


def is_wal(path: str) -> bool:
    """The file's header says WAL mode (False when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[18] == _WAL_VERSION and head[19] == _WAL_VERSION


# Files this process reads through read-write (locked-down) connections: (device, inode) -> count.
_held: dict[tuple[int, int], int] = {}
_held_lock = threading.Lock()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def hold(path: str) -> tuple[int, int] | None:
    """A read-write reading connection to ``path`` is open: its side files are ours."""
    ident = _identity(path)
    if ident is not None:
        with _held_lock:
            _held[ident] = _held.get(ident, 0) + 1
    return ident


def release(ident: tuple[int, int] | None) -> None:
    """That connection is closed."""
    if ident is None:
        return
    with _held_lock:
        n = _held.get(ident, 0) - 1
        if n > 0:
            _held[ident] = n
        else:
            _held.pop(ident, None)


def held(path: str) -> bool:
    """This process has ``path`` open read-write to read it (so a ``-wal`` may be its own)."""
    ident = _identity(path)
    with _held_lock:
        return ident is not None and ident in _held


def same_file(recording: str, other: str) -> bool:
    """Writing ``other`` would write ``recording``: the same path, a symbolic or hard link to it, or
    (``other`` not existing yet) a path through a directory that links to the recording's."""
    try:
        if os.path.samefile(recording, other):  # same device and inode, symbolic links followed
            return True
    except OSError:  # one of them does not exist (yet)
        pass
    return os.path.realpath(recording) == os.path.realpath(other)


def read_uri(path: str, *, immutable: bool = False) -> str:
    """The ``file:`` URI to read ``path`` with (see the module doc).  The caller must run
    ``PRAGMA query_only = 1`` first thing on the connection."""
    base = "file:" + urllib.parse.quote(os.path.abspath(path))
    if immutable:
        return base + "?mode=ro&immutable=1"
    if held(path):  # the -wal beside it is our own reader's: read as it does
        return base + "?mode=rw"
    if os.path.exists(path + "-wal"):
        return base + "?mode=ro"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.access(directory, os.W_OK):
        return base + "?mode=ro&immutable=1"
    if is_wal(path) and os.access(path, os.W_OK):
        return base + "?mode=rw"
    return base + "?mode=ro"


# What a reader may do: read, in transactions, with pragmas that only read or that tighten.
_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                      sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_RECURSIVE})
_SETTABLE_PRAGMAS = frozenset({"busy_timeout", "cache_size", "mmap_size", "temp_store"})
# Pragmas whose argument names what to read, not a value to set.
_READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
                           "integrity_check", "quick_check", "foreign_key_check", "foreign_key_list"})


def authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    """SQLite authorizer of a reading connection: every write, and ``query_only = 0``, refused."""
    if action in _ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if arg2 is None or name in _SETTABLE_PRAGMAS or name in _READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        if name == "query_only" and arg2.strip().lower() in ("1", "on", "true", "yes"):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def lock_down(conn: sqlite3.Connection) -> None:
    """Make a connection opened with :func:`read_uri` unable to write (sync ``sqlite3``)."""
    conn.execute("PRAGMA query_only = 1")
    conn.set_authorizer(authorizer)
