"""``replay-tui check``, and what readers say about a damaged recording.

Copies of a real recording (written by the writer) are damaged two ways: deliberately, one
invariant at a time, so ``check`` must name exactly that problem and the readers must say
"the recording is corrupted at op N"; and at random, bytes flipped in random pages, where
every command must either work or fail in one line, and ``check`` must find whatever any
command noticed, and more.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, simple_ops, write_session


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("check") / "rec.db"
    write_session(db, simple_ops(300, error_every=7), keyframe_interval=16)
    write_session(db, simple_ops(80), name="second", keyframe_interval=8)
    return db


def damaged(recording: Path, tmp_path: Path, *sql: str) -> Path:
    """A copy of the recording with some rows changed behind the writer's back."""
    db = tmp_path / "rec.db"
    shutil.copy(recording, db)
    conn = sqlite3.connect(db)
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return db


def test_a_sound_recording_checks_ok(recording: Path) -> None:
    code, out, err = run_cli("check", str(recording))
    assert (code, err) == (0, "")
    assert out == f"{recording}: ok (2 sessions, 380 ops, {out.split(', ')[2].split()[0]} bodies, " \
                  "SQLite integrity check)\n"
    code, out, _ = run_cli("check", str(recording), "--quick", "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["checked"]["ops"] == 380


def test_tables_a_later_release_adds_are_fine(recording: Path, tmp_path: Path) -> None:
    db = damaged(recording, tmp_path, "CREATE TABLE op_stats (session_id INTEGER, n INTEGER)",
                 "INSERT INTO op_stats VALUES (1, 300)")
    assert run_cli("check", str(db))[0] == 0


DAMAGE: dict[str, tuple[list[str], str, str]] = {
    # what is changed, what check says, what `show --at 40` says
    "a missing op": (["DELETE FROM operations WHERE session_id = 1 AND seq = 40"],
                     "session 'test' (id 1): ops 40..40 are missing (seqs jump from 39 to 41)",
                     "no operation at position 40"),
    "text that is not UTF-8": (["UPDATE operations SET verb = CAST(X'7570ff' AS TEXT)"
                                " WHERE session_id = 1 AND seq = 40"],
                               "session 'test' (id 1) op 40: column verb is not UTF-8 text",
                               "the recording is corrupted at op 40 (column verb holds text that is not UTF-8)"),
    "a missing body": (["UPDATE operations SET response_blob = 999999 WHERE session_id = 1 AND seq = 40"],
                       "session 'test' (id 1) op 40: response body 999999 is missing",
                       "the recording is corrupted at op 40 (body 999999 is missing)"),
    "a body that does not decode": (
        ["UPDATE blobs SET codec = 0, data = X'7b226b696e64223a' WHERE id ="
         " (SELECT response_blob FROM operations WHERE session_id = 1 AND seq = 40)"],
        "session 'test' (id 1) op 40: body", "the recording is corrupted at op 40 (body"),
}


@pytest.mark.parametrize("what", sorted(DAMAGE))
def test_check_names_the_damage_and_readers_say_where(recording: Path, tmp_path: Path, what: str) -> None:
    sql, found, shown = DAMAGE[what]
    db = damaged(recording, tmp_path, *sql)
    code, out, err = run_cli("check", str(db))
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert any(line.startswith(f"{db}: {found}") for line in lines), out
    assert lines[-1].startswith(f"{db}: {len(lines) - 1} problem")
    code, _, err = run_cli("show", str(db), "-s", "test", "--at", "40")
    assert code == 1 and err.count("\n") == 1 and shown in err, err
    if what != "a missing op":  # a gap is no damage to a scan: stats still adds up what is there
        code, _, err = run_cli("stats", str(db), "-s", "test")
        assert code in (0, 1) and err.count("\n") <= 1
        if code == 1:
            assert "corrupted at op 40" in err, err


def test_keyframes_must_agree_with_the_versions_before_them(recording: Path, tmp_path: Path) -> None:
    db = damaged(recording, tmp_path,
                 "UPDATE states SET blob_id = (SELECT MIN(id) FROM blobs) WHERE session_id = 2 AND seq ="
                 " (SELECT MIN(seq) FROM states WHERE session_id = 2 AND blob_id IS NOT NULL AND seq > 20)",
                 "UPDATE keyframes SET data = X'28b52ffd00' WHERE session_id = 1 AND seq ="
                 " (SELECT MAX(seq) FROM keyframes WHERE session_id = 1)")
    code, out, _ = run_cli("check", str(db))
    assert code == 1
    assert "session 'second' (id 2): the keyframe at op" in out and "disagrees with the versions before it" in out
    assert "session 'test' (id 1): the keyframe at op" in out and "does not decode" in out


def test_a_version_of_an_object_not_recorded_is_one_line_everywhere(recording: Path, tmp_path: Path) -> None:
    """Found by the random damage below: a state row naming an object id the file does not hold."""
    db = damaged(recording, tmp_path, "UPDATE states SET obj_id = 999999 WHERE session_id = 1 AND seq ="
                 " (SELECT MIN(seq) FROM states WHERE session_id = 1 AND seq >= 40)")
    code, out, _ = run_cli("check", str(db))
    assert code == 1 and "a version names object 999999, which is missing" in out
    for argv in (["diff", "-s", "test", "--from", "1", "--to", "42"], ["diff", "-s", "test", "--from", "1",
                                                                      "--to", "42", "--json"]):
        code, _, err = run_cli(argv[0], str(db), *argv[1:])
        assert code == 1 and err.count("\n") == 1, err
        assert "the recording is corrupted (object id 999999 is used but not recorded)" in err


@pytest.mark.parametrize("content", [b"", b"hello\n", b"SQLite format 3\x00" + bytes(200)])
def test_what_is_no_recording_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    code, out, err = run_cli("check", str(path))
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("replay-tui: error: ")


def test_a_foreign_sqlite_file_is_reported_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a)")
    conn.commit()
    conn.close()
    code, out, _ = run_cli("check", str(path))
    assert code == 1 and "missing tables: meta, sessions, operations" in out


# --- random damage ---------------------------------------------------------------------------

COMMANDS = [["sessions"], ["show", "-s", "test", "--at", "50%"], ["show", "-s", "second", "--at", "80"],
            ["diff", "-s", "test", "--from", "1", "--to", "300"], ["stats", "-s", "test"],
            ["analyze", "-s", "second"], ["query", "-s", "test", "status>=400"],
            ["when", "-s", "test", "--field", "ConfigMap/default/obj-1:.data"], ["report", "-s", "second"]]
PAGE = 16384


def _content(path: Path) -> Any:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    conn.text_factory = bytes
    try:
        return [sorted(conn.execute(f"SELECT * FROM {t.decode()}").fetchall(), key=repr)
                for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    finally:
        conn.close()


def test_random_damage_is_one_line_or_nothing_and_check_finds_it(recording: Path, tmp_path: Path) -> None:
    original = recording.read_bytes()
    pristine = _content(recording)
    pages = len(original) // PAGE
    tally = {"unused bytes": 0, "found by check": 0, "found by check only": 0}
    for seed in range(16):
        rng = random.Random(seed)
        data = bytearray(original)
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(1, pages) * PAGE + rng.randrange(PAGE)
            for i in range(at, min(at + rng.randrange(1, 16), len(data))):
                data[i] = rng.randrange(256)
        db = tmp_path / f"damaged-{seed}.db"
        db.write_bytes(bytes(data))
        noticed = []
        for argv in COMMANDS:
            code, _, err = run_cli(argv[0], str(db), *argv[1:])
            assert code in (0, 1), (seed, argv, err)
            assert "internal error" not in err and err.count("\n") <= 1, (seed, argv, err)
            if code == 1:
                assert err.startswith("replay-tui: error: ") and "corrupted" in err, (seed, argv, err)
                noticed.append(argv[0])
        code, out, err = run_cli("check", str(db))
        assert code in (0, 1) and "internal error" not in err, (seed, err)
        if noticed:
            assert code == 1, (seed, noticed, out)  # what any command noticed, check finds
        try:
            unchanged = _content(db) == pristine
        except sqlite3.Error:
            unchanged = False
        if code == 0:
            # Not found: the damage hit bytes no row uses (free space), or changed one value into
            # another valid one (a letter of a name: only a checksum could tell).
            tally["unused bytes"] += unchanged
        else:
            tally["found by check"] += 1
            tally["found by check only"] += not noticed
        for path in tmp_path.iterdir():
            path.unlink()
    # Seeded, so stable: 8 of the 16 copies changed rows (8 hit unused bytes); check found all 8,
    # 7 of them no command had noticed.  Loose bounds, so a new page layout does not break it.
    assert tally["found by check"] >= 4 and tally["found by check"] + tally["unused bytes"] >= 12, tally
    assert tally["found by check only"] >= 2, tally  # damage no other command noticed
