"""The capture queue never blocks the operator, and accounts for every operation it is given."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine.schema import RecordingError
from replay_tui.engine.writer import RecordingWriter, SessionWriter
from replay_tui.recorder.capture import Capture, Converter
from replay_tui.recorder.queue import CaptureQueue

CM = b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","namespace":"a","resourceVersion":"1"}}'


class SlowWriter:
    """A session writer that takes its time: what a slow disk looks like to the queue."""

    def __init__(self, inner: SessionWriter, delay: float):
        self.inner, self.delay = inner, delay

    def append(self, op: Any) -> int:
        time.sleep(self.delay)
        return self.inner.append(op)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FailingWriter:
    """A session writer whose commits fail with a given error a given number of times."""

    def __init__(self, inner: SessionWriter, message: str, times: int):
        self.inner, self.message, self.times = inner, message, times

    def flush(self) -> None:
        if self.times:
            self.times -= 1
            raise RecordingError(self.message)  # the real writer keeps the batch for the next flush
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _get(i: int) -> Capture:
    return Capture("GET", f"/api/v1/namespaces/a/configmaps/c{i}", "", 200, time.time_ns(), 1000,
                   response=CM.replace(b'"c"', f'"c{i}"'.encode()), response_type="application/json")


def _session_attrs(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        return json.loads(conn.execute("SELECT attributes FROM sessions").fetchone()[0])


def _ops(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT seq, verb, name FROM operations ORDER BY seq").fetchall()


def test_a_slow_writer_makes_captures_drop_and_be_counted_never_block(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RecordingWriter(db) as w:
        queue = CaptureQueue(SlowWriter(w.session("slow", "proxy"), 0.02), Converter(None),  # type: ignore[arg-type]
                             maxsize=5).start()
        slowest = 0.0
        accepted = 0
        for i in range(200):
            start = time.perf_counter()
            accepted += queue.request(_get(i))
            slowest = max(slowest, time.perf_counter() - start)
        counters = queue.close()
    assert slowest < 0.005, "put() must never wait for the writer"
    assert counters.dropped > 100
    assert counters.recorded == accepted == 200 - counters.dropped
    assert len(_ops(db)) == counters.recorded
    attrs = _session_attrs(db)
    assert (attrs["recorded"], attrs["dropped"]) == (counters.recorded, counters.dropped)
    assert attrs["errors"] == {"disk": 0, "encode": 0, "locked": 0}


def test_operations_are_committed_while_recording(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RecordingWriter(db) as w:
        queue = CaptureQueue(w.session("live", "proxy"), Converter(None), flush_interval=0.05).start()
        for i in range(10):
            queue.request(_get(i))
        deadline = time.monotonic() + 5
        while len(_ops(db)) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_ops(db)) == 10  # a reader (replay-tui --follow) sees them before the end
        queue.close()


def test_watch_chunks_split_anywhere_become_one_event_per_line_in_order(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    lines = [json.dumps({"type": "MODIFIED", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
        "name": "c", "namespace": "a", "resourceVersion": str(10 + i)}}}).encode() + b"\n" for i in range(50)]
    stream = b"".join(lines)
    with RecordingWriter(db) as w:
        queue = CaptureQueue(w.session("watch", "proxy"), Converter(None)).start()
        sid = queue.watch_open(Capture("GET", "/api/v1/namespaces/a/configmaps", "watch=true", 200))
        for start in range(0, len(stream), 37):  # chunk boundaries fall mid-line
            queue.watch_chunk(sid, time.time_ns(), stream[start:start + 37])
        queue.watch_close(sid, time.time_ns())
        queue.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT verb, resource_version FROM operations ORDER BY seq").fetchall()
    assert rows[0] == ("watch", "")
    assert rows[1:] == [("modified", str(10 + i)) for i in range(50)]


def test_dropped_watch_chunks_lose_whole_events_and_count_them(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    lines = [json.dumps({"type": "MODIFIED", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
        "name": "c", "namespace": "a", "resourceVersion": str(100 + i)}}}).encode() + b"\n" for i in range(40)]
    stream = b"".join(lines)
    chunks = [stream[i:i + 50] for i in range(0, len(stream), 50)]
    with RecordingWriter(db) as w:
        queue = CaptureQueue(w.session("lossy", "proxy"), Converter(None), maxsize=6)  # not started yet
        sid = queue.watch_open(Capture("GET", "/api/v1/namespaces/a/configmaps", "watch=true", 200))
        kept = [queue.watch_chunk(sid, time.time_ns(), c) for c in chunks[:12]]
        assert kept.count(False) == 7  # the queue filled up
        queue.start()
        while queue.depth:
            time.sleep(0.01)
        for c in chunks[12:]:
            while queue.depth >= 5:  # no more drops from here on
                time.sleep(0.001)
            assert queue.watch_chunk(sid, time.time_ns(), c)
        queue.watch_close(sid, time.time_ns())
        counters = queue.close()
    with sqlite3.connect(db) as conn:
        rvs = [int(r[0]) for r in conn.execute(
            "SELECT resource_version FROM operations WHERE verb = 'modified' ORDER BY seq")]
        malformed = conn.execute("SELECT COUNT(*) FROM operations WHERE verb = 'error'").fetchone()[0]
    assert malformed == 0, "a resync never glues two halves of different events together"
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    assert counters.dropped > 0 and len(rvs) + counters.dropped == 40
    assert rvs[-1] == 139


@pytest.mark.parametrize("message, category", [
    ("r.db: the recording is locked by another process (try again)", "locked"),
    ("r.db: I/O error reading the recording (was it removed or truncated?)", "disk"),
    ("r.db: database or disk is full", "disk"),
])
def test_writer_errors_are_counted_by_category_and_recording_goes_on(tmp_path: Path, message: str,
                                                                     category: str) -> None:
    db = tmp_path / "r.db"
    with RecordingWriter(db) as w:
        queue = CaptureQueue(FailingWriter(w.session("err", "proxy"), message, 1), Converter(None),  # type: ignore[arg-type]
                             flush_interval=10).start()
        for i in range(5):
            queue.request(_get(i))
        while queue.depth:
            time.sleep(0.01)
        queue._flush()
        for i in range(5, 8):
            queue.request(_get(i))
        counters = queue.close()  # ... the next ones succeed
    assert counters.write_failures == 1  # one failed commit ...
    assert counters.recorded == 8 and counters.errors[category] == 0  # ... and nothing lost: the batch was retried
    assert _session_attrs(db)["write_failures"] == 1
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT seq FROM operations ORDER BY seq")] == list(range(1, 9))


def test_a_capture_that_cannot_be_converted_counts_as_an_encode_error(tmp_path: Path) -> None:
    class Broken(Converter):
        def operation(self, cap: Capture) -> Any:
            if cap.path.endswith("c1"):
                raise ValueError("boom")
            return super().operation(cap)

    db = tmp_path / "r.db"
    with RecordingWriter(db) as w:
        queue = CaptureQueue(w.session("enc", "proxy"), Broken(None)).start()
        for i in range(3):
            queue.request(_get(i))
        counters = queue.close()
    assert counters.errors["encode"] == 1 and counters.recorded == 2
    assert [r[2] for r in _ops(db)] == ["c0", "c2"]


# --- a full disk: one batch held and retried with backoff, never a spin, never a hang ------------

def _full_disk(w: RecordingWriter, spare_pages: int = 8) -> None:
    """The file may grow by a few pages only: SQLite then fails as on a full disk (SQLITE_FULL)."""
    pages = w.conn.execute("PRAGMA page_count").fetchone()[0]
    w.conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def _big(i: int) -> Capture:
    """A capture with a distinct body of 2 KB that does not compress: a few fill the spare pages."""
    body = CM.replace(b'"c"', f'"c{i}"'.encode())[:-1] + b',"data":{"k":"' + os.urandom(1024).hex().encode() + b'"}}'
    return Capture("GET", f"/api/v1/namespaces/a/configmaps/c{i}", "", 200, time.time_ns(), 1000,
                   response=body, response_type="application/json")


def _seqs(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT seq FROM operations ORDER BY seq")]


def _thread_cpu_s(thread: threading.Thread) -> float:
    """CPU seconds (user + system) one thread has used, from /proc (Linux)."""
    fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_full_disk_holds_one_batch_retries_with_backoff_and_never_spins(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    n = 5000
    with RecordingWriter(db) as w:
        session = w.session("full", "proxy")
        queue = CaptureQueue(session, Converter(None), maxsize=500).start()
        for i in range(200):  # some get in before the disk fills
            queue.request(_big(i))
        deadline = time.monotonic() + 10
        while queue.counters.recorded == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        _full_disk(w)
        for i in range(200, n):
            queue.request(_big(i))
            if i % 250 == 0:
                time.sleep(0.01)  # the writer takes some, and fails
        time.sleep(0.5)
        cpu = _thread_cpu_s(queue._thread)  # the writer thread's own CPU: other threads of this
        held = set()                        # process (earlier tests' servers) do not count
        for _ in range(15):
            held.add(queue._unflushed)  # ops the writer holds for the retry
            time.sleep(0.1)
        cpu = _thread_cpu_s(queue._thread) - cpu
        failures = queue.counters.write_failures
        start = time.monotonic()
        counters = queue.close(timeout=0.5, exit_status=0)
        took = time.monotonic() - start
    assert len(held) == 1 and 0 < max(held) <= session.batch + 512, "one batch is held, never a growing one"
    # A spinning writer burns the whole 1.5 s; one that backs off spends only its few retries (each
    # re-writes a held batch of 500 bodies: ~0.1 s apiece on a loaded machine).
    assert cpu < 0.75, f"the writer retries with backoff instead of spinning ({cpu:.2f}s CPU in 1.5s)"
    assert 1 <= failures <= 12
    assert took < 0.5 + 1.0, f"close() ends by its timeout ({took:.1f}s)"
    assert queue.gave_up.endswith("database or disk is full") and queue.finished
    assert counters.recorded + counters.dropped + counters.lost == n  # every capture accounted for
    assert counters.recorded > 0 and counters.errors["disk"] == max(held) and counters.dropped > 0
    attrs = _session_attrs(db)  # the session is closed with the counts (a row's update still fits)
    assert (attrs["recorded"], attrs["dropped"], attrs["errors"]["disk"]) == \
        (counters.recorded, counters.dropped, counters.errors["disk"])
    assert _seqs(db) == list(range(1, counters.recorded + 1))  # contiguous: the lost batch's seqs taken back
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT op_count, ended_ns IS NOT NULL FROM sessions").fetchone() == \
            (counters.recorded, 1)


def test_a_disk_that_frees_up_gets_the_held_batch_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    with RecordingWriter(db) as w:
        queue = CaptureQueue(w.session("freed", "proxy"), Converter(None), maxsize=100).start()
        _full_disk(w, 2)
        accepted = sum(queue.request(_big(i)) for i in range(300))
        deadline = time.monotonic() + 10
        while queue.counters.write_failures < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        w.conn.execute("PRAGMA max_page_count = 1073741823")  # space again
        while queue.counters.recorded == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        accepted += sum(queue.request(_big(i)) for i in range(300, 320))
        counters = queue.close()
    assert counters.write_failures >= 2 and counters.lost == 0 and not queue.gave_up
    assert counters.recorded == accepted and counters.recorded + counters.dropped == 320
    assert _seqs(db) == list(range(1, accepted + 1))
    err = capsys.readouterr().err
    assert err.count("recording error (disk)") == 1 and "recording resumed after" in err


def test_abort_ends_the_retries_at_once_and_still_closes_with_the_counts(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RecordingWriter(db) as w:
        queue = CaptureQueue(w.session("abort", "proxy"), Converter(None), maxsize=100).start()
        _full_disk(w, 2)
        for i in range(300):
            queue.request(_big(i))
        deadline = time.monotonic() + 10
        while queue.counters.write_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        timer = threading.Timer(0.3, queue.abort)  # the second Ctrl-C, while close() retries
        timer.start()
        start = time.monotonic()
        counters = queue.close(timeout=60)
        took = time.monotonic() - start
    assert took < 2.0, f"abort() ended a 60 s close at once ({took:.1f}s)"
    assert counters.recorded + counters.dropped + counters.lost == 300 and counters.lost > 0
    assert queue.gave_up and queue.finished
    assert _session_attrs(db)["errors"]["disk"] == counters.lost


def test_the_queue_is_bounded_in_bytes_and_what_opens_a_watch_or_span_too(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "r.db") as w:
        queue = CaptureQueue(w.session("bound", "proxy"), Converter(None), maxsize=10,
                             max_bytes=5 * len(_big(0).response or b""))  # not started: nothing is taken
        kept = [queue.request(_big(i)) for i in range(8)]
        assert kept == [True] * 5 + [False] * 3  # the byte bound, before the count bound
        assert queue.snapshot()["queue_bytes"] <= queue.max_bytes
        sids = [queue.watch_open(Capture("GET", "/api/v1/pods", "watch=true", 200)) for _ in range(30)]
        assert queue.depth == 2 * queue.maxsize  # openers go beyond a full queue, but not without end
        for sid in sids:
            queue.watch_close(sid, time.time_ns())  # closers always go in
        assert queue.depth == 20 + 30
        counters = queue.start().close()
    assert counters.dropped == 3 + 15  # the requests and watches that found the queue full
    assert counters.recorded == 5 + 15
