"""The SQLite schema of a recording, its version, and the checks made on open.

One file holds any number of sessions.  Access paths the engine relies on:

* ``operations``: (session_id, seq) unique for stepping and range reads,
  (session_id, ts_ns) for jumps by time, a partial index over errors for
  next/previous error;
* ``states``: one row per new *version* of an object (or its deletion), clustered
  by (session_id, seq) for replaying a range forward from a keyframe, and indexed
  by (session_id, obj_id, seq) for an object's history and its state at any point;
* ``keyframes``: the full object map (object -> version) every N ops, so a jump
  costs O(N) rather than O(position);
* ``blobs``: bodies, content-addressed within a writer (identical bodies stored
  once: a watch event usually repeats the object the write returned);
* ``rollup_*`` (schema 2): aggregates the writer maintains in the same transaction as
  the ops (``engine.rollups``), so statistics and reports read O(buckets), not O(ops);
* ``states.changed`` and ``paths`` (schema 2): the change index, the paths (to
  ``CHANGE_DEPTH`` segments) in which each new version differs from the one before
  (``engine.changes``).

Schema 2 gives each session its own id space for objects and blobs
(``session_id << ID_SHIFT | n``) and paths (keyed by session), so a writer numbers
them without asking the database.  A schema-1 file is read as it is (``Session.format`` says which
queries apply); a writer adding a session to it first upgrades the schema in place
(new tables and columns only: the old sessions keep their rows and are still read
the old way).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2
#: Session formats: 1 = written before rollups and the change index; 2 = with them; 3 = the
#: change index records the members of list items too (``.status.conditions[type=Ready].status``).
FORMAT_V1, FORMAT_V2, FORMAT_V3 = 1, 2, 3
ID_SHIFT = 32  # objects and blobs of session S have ids S << 32 | n
APPLICATION = "replay-tui"


class RecordingError(Exception):
    """A problem with a recording that a user can act on; its message is one line."""


DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    source            TEXT NOT NULL,
    started_ns        INTEGER,
    ended_ns          INTEGER,
    actor             TEXT NOT NULL DEFAULT '',
    cluster           TEXT NOT NULL DEFAULT '',
    attributes        TEXT NOT NULL DEFAULT '{}',
    keyframe_interval INTEGER NOT NULL,
    op_count          INTEGER NOT NULL DEFAULT 0,
    format            INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS objects (
    id        INTEGER PRIMARY KEY,
    api_group TEXT NOT NULL,
    kind      TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_name ON objects (name);
CREATE TABLE IF NOT EXISTS blobs (
    id    INTEGER PRIMARY KEY,
    codec INTEGER NOT NULL,
    data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dictionaries (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    data       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    id               INTEGER PRIMARY KEY,
    session_id       INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    ts_ns            INTEGER NOT NULL,
    duration_ns      INTEGER NOT NULL,
    verb             TEXT NOT NULL,
    api_version      TEXT NOT NULL,
    resource         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    name             TEXT NOT NULL,
    subresource      TEXT NOT NULL,
    uid              TEXT NOT NULL,
    resource_version TEXT NOT NULL,
    generation       INTEGER,
    status           INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    message          TEXT NOT NULL,
    patch_type       TEXT NOT NULL,
    query            TEXT,
    request_blob     INTEGER,
    response_blob    INTEGER,
    actor            TEXT NOT NULL,
    reconcile        INTEGER,
    obj_id           INTEGER,
    dur_bucket       INTEGER NOT NULL,
    error            INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS operations_seq ON operations (session_id, seq);
CREATE INDEX IF NOT EXISTS operations_ts ON operations (session_id, ts_ns);
CREATE INDEX IF NOT EXISTS operations_errors ON operations (session_id, seq) WHERE error = 1;
CREATE TABLE IF NOT EXISTS states (
    session_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    obj_id     INTEGER NOT NULL,
    blob_id    INTEGER,
    changed    TEXT,
    PRIMARY KEY (session_id, seq, obj_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS states_object ON states (session_id, obj_id, seq, blob_id, changed);
CREATE TABLE IF NOT EXISTS paths (
    session_id INTEGER NOT NULL,
    id         INTEGER NOT NULL,
    path       TEXT NOT NULL,
    PRIMARY KEY (session_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS paths_path ON paths (session_id, path);
CREATE TABLE IF NOT EXISTS keyframes (
    session_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS reconciles (
    session_id  INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    reconciler  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    start_seq   INTEGER NOT NULL,
    end_seq     INTEGER,
    start_ns    INTEGER NOT NULL,
    end_ns      INTEGER,
    trigger_seq INTEGER,
    error       TEXT NOT NULL,
    inferred    INTEGER NOT NULL,
    source_id   TEXT NOT NULL,
    PRIMARY KEY (session_id, id)
);
CREATE INDEX IF NOT EXISTS reconciles_start ON reconciles (session_id, start_seq);
CREATE TABLE IF NOT EXISTS marks (
    session_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    note       TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
);
""" + """
CREATE TABLE IF NOT EXISTS rollup_ops (
    session_id  INTEGER NOT NULL,
    verb        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      INTEGER NOT NULL,
    resource    TEXT NOT NULL,
    subresource TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    total_ns    INTEGER NOT NULL,
    max_ns      INTEGER NOT NULL,
    max_seq     INTEGER NOT NULL,
    PRIMARY KEY (session_id, verb, kind, status, resource, subresource, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_time (
    session_id INTEGER NOT NULL,
    level      INTEGER NOT NULL,
    t          INTEGER NOT NULL,
    code       INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    errors     INTEGER NOT NULL,
    max_ns     INTEGER NOT NULL,
    PRIMARY KEY (session_id, level, t, code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_objects (
    session_id    INTEGER NOT NULL,
    obj_id        INTEGER NOT NULL,
    reads         INTEGER NOT NULL,
    watches       INTEGER NOT NULL,
    writes        INTEGER NOT NULL,
    versions      INTEGER NOT NULL,
    gets          INTEGER NOT NULL,
    versions_read INTEGER NOT NULL,
    max_reads     INTEGER NOT NULL,
    max_read_seq  INTEGER NOT NULL,
    writers       BLOB,
    PRIMARY KEY (session_id, obj_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_slowest (
    session_id  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    duration_ns INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_counts (
    session_id INTEGER NOT NULL,
    what       TEXT NOT NULL,
    key        TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (session_id, what, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_loops (
    session_id     INTEGER NOT NULL,
    obj_id         INTEGER NOT NULL,
    max_writes     INTEGER NOT NULL,
    max_reconciles INTEGER NOT NULL,
    data           BLOB NOT NULL,
    PRIMARY KEY (session_id, obj_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_edges (
    session_id INTEGER NOT NULL,
    source     TEXT NOT NULL,
    target     TEXT NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (session_id, source, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_reconcilers (
    session_id INTEGER NOT NULL,
    reconciler TEXT NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (session_id, reconciler)
) WITHOUT ROWID;
"""

#: Columns of ``operations`` in the order the writer inserts them.
OP_COLUMNS = (
    "session_id", "seq", "ts_ns", "duration_ns", "verb", "api_version", "resource", "kind",
    "namespace", "name", "subresource", "uid", "resource_version", "generation", "status",
    "reason", "message", "patch_type", "query", "request_blob", "response_blob", "actor",
    "reconcile", "obj_id", "dur_bucket", "error",
)

SQLITE_MAGIC = b"SQLite format 3\x00"


def create(conn: sqlite3.Connection) -> None:
    """Create the schema in an empty database, or check an existing one."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "meta" not in tables:
        raise RecordingError("an SQLite database but not a replay-tui recording")
    if "meta" in tables:
        version = check_meta(dict(conn.execute("SELECT key, value FROM meta").fetchall()))
        if version < SCHEMA_VERSION:
            upgrade(conn)
        elif not {"rollup_loops", "rollup_edges"} <= tables:
            add_tables(conn)
        return
    with conn:
        conn.executescript(DDL)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("schema_version", str(SCHEMA_VERSION)), ("application", APPLICATION)],
        )


def add_tables(conn: sqlite3.Connection) -> None:
    """A schema-2 file from before the hot-loop and causality folds gets their (empty) tables; its
    sessions have none of them and are read the old way."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        for statement in DDL.split(";"):
            if statement.strip():
                conn.execute(statement)  # (IF NOT EXISTS)


def upgrade(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2, in place, for a writer about to add a session: new tables and columns.

    The old sessions keep their rows (``sessions.format`` stays 1 for them, so they are
    read the old way).  ``objects`` loses its UNIQUE key (in schema 2 each session names
    its own objects), which SQLite can only do by copying the table: it holds one row per
    object, not per op.
    """
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        version = int(dict(conn.execute("SELECT key, value FROM meta").fetchall())["schema_version"])
        if version >= SCHEMA_VERSION:
            return  # another writer got there first
        conn.execute("ALTER TABLE sessions ADD COLUMN format INTEGER NOT NULL DEFAULT 1")
        conn.execute("ALTER TABLE states ADD COLUMN changed TEXT")
        conn.execute("CREATE TABLE objects_v2 (id INTEGER PRIMARY KEY, api_group TEXT NOT NULL,"
                     " kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL)")
        conn.execute("INSERT INTO objects_v2 SELECT id, api_group, kind, namespace, name FROM objects")
        conn.execute("DROP TABLE objects")
        conn.execute("ALTER TABLE objects_v2 RENAME TO objects")
        for statement in DDL.split(";"):
            if statement.strip():
                conn.execute(statement)  # the new tables and indexes (IF NOT EXISTS)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def check_meta(meta: dict[str, str]) -> int:
    """Refuse files that are not ours or come from a newer release; the schema version."""
    if meta.get("application") != APPLICATION:
        raise RecordingError("an SQLite database but not a replay-tui recording")
    raw = meta.get("schema_version", "")
    try:
        version = int(raw)
    except ValueError:
        raise RecordingError(f"unknown recording schema version {raw!r}") from None
    if version > SCHEMA_VERSION:
        raise RecordingError(
            f"recording has schema version {version}, newer than this replay-tui understands "
            f"({SCHEMA_VERSION}); upgrade replay-tui"
        )
    if version < 1:
        raise RecordingError(f"unknown recording schema version {version}")
    return version


# SQLite's extended codes for a write that failed (a short write, EFBIG past RLIMIT_FSIZE, ENOSPC on
# -shm): said as a failed write, not as a damaged file.
_WRITE_ERRORS = frozenset({"SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE",
                           "SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_SHMMAP", "SQLITE_IOERR_DIR_FSYNC"})


def describe_sqlite_error(exc: BaseException, path: str) -> str:
    """Turn an sqlite3 error into one line a user can act on."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return f"{path}: the recording is locked by another process (try again)"
    if "not a database" in low or "file is encrypted" in low:
        return f"{path}: not an SQLite database"
    if "malformed" in low or "corrupt" in low:
        return f"{path}: the recording is corrupted ({text})"
    if "unable to open" in low:
        return f"{path}: cannot open the recording ({text})"
    if "no such table" in low or "no such column" in low:
        return f"{path}: the recording is incomplete or of another schema ({text})"
    if "disk i/o" in low and getattr(exc, "sqlite_errorname", "") in _WRITE_ERRORS:
        return f"{path}: I/O error writing the recording (the disk is full, a file size limit was reached, " \
               "or the disk failed)"
    if "disk i/o" in low:
        return f"{path}: I/O error reading the recording (was it removed or truncated?)"
    return f"{path}: {text}"
