"""``replay-tui check DB``: is this recording sound?  One line per problem, exit 1 when any.

The checks are ``engine.verify``'s: SQLite's integrity check, then the recording's own
invariants (contiguous seqs, bodies and objects that exist and decode, keyframes that
agree with the versions before them, spans and marks inside their session).
"""

from __future__ import annotations

import sys

from replay_tui.engine import verify
from replay_tui.engine.store import check_file, sqlite_error
from replay_tui.engine.textsafe import safe


def check(db: str, *, quick: bool = False, as_json: bool = False) -> int:
    check_file(db)
    try:  # a file SQLite cannot open at all is one line of error, not a list of problems
        conn = verify.connect(db)
        try:
            conn.execute("SELECT name FROM sqlite_master").fetchall()
        finally:
            conn.close()
    except verify.DB_ERRORS as exc:
        raise sqlite_error(exc, db) from None
    counts: dict[str, int] = {}
    try:
        problems = [safe(line) for line in verify.check(db, quick=quick, counts=counts)]
    except verify.DB_ERRORS as exc:
        raise sqlite_error(exc, db) from None
    def n(what: str, one: str) -> str:
        count = counts.get(what, 0)
        return f"{count:,} {one if count == 1 else what}"
    checked = f"{n('sessions', 'session')}, {n('ops', 'op')}" + ("" if quick else f", {n('bodies', 'body')}")
    if as_json:
        from replay_tui.cli.commands import emit_json
        emit_json({"ok": not problems, "problems": problems, "checked": counts, "quick": quick})
        return 1 if problems else 0
    for line in problems:
        sys.stdout.write(f"{safe(db)}: {line}\n")
    if problems:
        sys.stdout.write(f"{safe(db)}: {len(problems)} problem{'' if len(problems) == 1 else 's'} "
                         f"({checked} checked)\n")
        return 1
    sys.stdout.write(f"{safe(db)}: ok ({checked}, SQLite {'quick' if quick else 'integrity'} check)\n")
    return 0
