"""The writer's output, row for row: a change that makes ingest cheaper must not change the recording.

A synthetic session (``benchmarks.generator``, a fixed seed) is written in this process and
with the committer in a process of its own; every table's rows are digested, table by table,
and compared with the digests of the recording the writer wrote before its hot path was
reworked (issue #15); the batch size changes none of them.  Excluded: what depends on the
clock or on thread timing, not on the ops: ``marks.created_ns`` (no marks here), and how a
body is compressed (the session's dictionary is trained on a worker thread and used from
whichever batch comes after it is ready): bodies are compared decompressed, and the
``dictionaries`` table not at all.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from benchmarks.generator import write_session
from replay_tui.engine import codec
from replay_tui.engine.schema import FORMAT_V2
from replay_tui.engine.writer import DEFAULT_BATCH, RecordingWriter
from tests.conftest import writing_format

OPS = 20_000
SEED = 7

# sha256 of each table's rows (see ``_digests``) as the writer of main (ea7cb21) wrote them, but for
# the three tables format 3 changed (the change index records list items' members, and says so).
EXPECTED = {
    "blobs": "11222:2b373ed6cd8251a007e0866ec58f09e9c26565d52accaf40f7ab4604a881e1d3",
    "keyframes": "6:da6f0905d096b168005d2cfced91337546e98201f1b26008f6b8c3544031fbdc",
    "marks": "0:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "meta": "2:7d66313966fbb09676fab030778dcea76c34ece2ca0054e43e56849984da8cca",
    "objects": "555:ddd3e4852ce36d6c9b929dafd00e6deff2ab8b0fc9afe77b80660cd7018ffcca",
    "operations": "20000:a2af0b308dfa9ae19cf4fb0137a4ec33cb6aecb65b96117c20a538f997ce06c3",
    "paths": "865:25d025c318dc30ad80da6d25938e23c16bb9981a455af03820d3f457f0ae651e",
    "reconciles": "5149:947bc274eb07733c62225a2f0ae38d28934468172d3bab4e6ea5f656ee5dc593",
    "rollup_counts": "10:12fa2e3d26e0e5f543635feeaab17cdce1ecf54053b9f781cc5a585d739ac884",
    "rollup_edges": "71:c83d225637656a8bebcc91397588f3052f938d394d3e01289f1abec5ff8783e5",
    "rollup_loops": "108:27f49e1a4bb70b4932c414ddefa09f619fcd07b7abffa442efdae52eddbc0bcc",
    "rollup_objects": "555:1b194ded7db07690ba0ccd8ee8512170a0645407d23e8d08f31b595c43fba9f1",
    "rollup_ops": "1789:b68e0c302dcf680e3e071609e98930afd4457028eecebfe5ea90273b0f983965",
    "rollup_reconcilers": "1:f586024f792eca0d21d72442e2ff1beeeb9422d80f479ce67909feaa27611a61",
    "rollup_slowest": "1000:d89ac25bb982cafb417ae2b34180e2254cd9a176e1de07227830bfb667445768",
    "rollup_time": "10485:5041d6f688b56d3b1ca08781e32d4d1d87f41218cff81559c235e0a1b9d25dbd",
    "sessions": "1:c05ce60d4212417aaf62ec3b916d44c3583f7f93593f044d6a9ca0a4cdd0d05a",
    "states": "6387:455881b3bc4a41d7a4f5b83bd6818680ce054c3239e53379df1839dac2d22ea8",
}


# What ea7cb21 wrote in those three: the writer of format 2 (``writing_format``) still writes them.
FORMAT2 = {
    "paths": "847:d8d0473c8655e72a1c532bf4929960ff8645f8c20389747400ca21c6c13a65d1",
    "sessions": "1:ad2e11bbb0e7ee974f0047bbeb90252397e706c69c68b4ce272ddc6662a0b845",
    "states": "6387:5c90128f68fc848792b17737494947707c8eaa6ac1c58879ed7b5527547737ec",
}


def _digests(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dicts = codec.Dictionaries.of(conn)
    out = {}
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for table in tables:
        if table == "dictionaries":
            continue
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        order = ", ".join(str(i + 1) for i in range(len(columns)))
        h = hashlib.sha256()
        n = 0
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
            values = dict(zip(columns, row))
            if table == "blobs":
                values = {"id": values["id"], "data": codec.unpack(values["codec"], values["data"], dicts)}
            elif table == "marks":
                values.pop("created_ns")
            h.update(repr(sorted(values.items())).encode())
            n += 1
        out[table] = f"{n}:{h.hexdigest()}"
    conn.close()
    return out


@pytest.mark.parametrize(("process", "batch"), [(False, DEFAULT_BATCH), (True, DEFAULT_BATCH), (False, 257)],
                         ids=["in-process", "writer-process", "small-batches"])
def test_recording_is_row_for_row_what_it_was(tmp_path: Path, process: bool, batch: int) -> None:
    path = tmp_path / "synth.db"
    with RecordingWriter(path, process=process) as writer:
        write_session(writer, OPS, seed=SEED, batch=batch)
    got = _digests(path)
    assert {t: got.get(t) for t in EXPECTED} == EXPECTED
    assert set(got) == set(EXPECTED)


def test_format_3_adds_the_members_of_list_items_and_changes_nothing_else(tmp_path: Path) -> None:
    """The writer without the members (as format 2 wrote) writes what ea7cb21 wrote, table for table."""
    path = tmp_path / "synth.db"
    with writing_format(FORMAT_V2), RecordingWriter(path) as writer:
        write_session(writer, OPS, seed=SEED)
    assert _digests(path) == {**EXPECTED, **FORMAT2}
