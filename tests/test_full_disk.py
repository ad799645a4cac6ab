"""A full disk, as the recorder meets it: the operator never notices, the recorder ends cleanly with counts.

The real ``replay-tui record`` runs a real operator (the official Python client making a few
thousand requests) with its recording on a 2 MiB tmpfs when this machine lets us mount one, and
always under a 2 MiB file-size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored so writes fail with
EFBIG, as a quota would).  The client hook (``recorder.recording``) is run under the same limit.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import EmulatorThread
from tests.support.harness import replay_tui

DISK = 2 << 20  # 2 MiB
REQUESTS = 2000
GRACE = 2.0
EXIT_RECORDING_FAILED = 74

OPERATOR = textwrap.dedent("""
    import json, sys, time
    from kubernetes import client, config
    config.load_kube_config()          # the KUBECONFIG the recorder set: its proxy
    api = client.CoreV1Api()
    n, forever = int(sys.argv[1]), sys.argv[2] == "forever"
    pad = "x" * 800
    slowest, ok, i = 0.0, 0, 0
    while forever or i < n:
        start = time.perf_counter()
        api.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}"}, "data": {"k": f"{i}{pad}"}})
        slowest = max(slowest, time.perf_counter() - start)
        ok += 1
        i += 1
    print(json.dumps({"ok": ok, "done": time.time(), "slowest_ms": round(slowest * 1000, 1)}), flush=True)
""")

SUMMARY = re.compile(r"recording failed: (?P<why>.*?); recorded (?P<recorded>[\d,]+) operations to .*?; "
                     r"(?P<dropped>[\d,]+) dropped, (?P<lost>[\d,]+) lost to errors, of (?P<requests>[\d,]+) "
                     r"requests; (?:(?P<closed>the session is closed with these counts)|the session could "
                     r"not be closed \((?P<why_open>.*)\) and stays open)$")


class Disk:
    """A directory whose files cannot grow past 2 MiB, and how to start a process that writes there."""

    def __init__(self, path: Path, preexec: Callable[[], None] | None):
        self.path, self.preexec = path, preexec


def _file_size_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (DISK, DISK))


@pytest.fixture(params=["tmpfs", "file-size-limit"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    if request.param == "file-size-limit":
        yield Disk(path, _file_size_limit)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}); "
                    "the file-size limit stands in")
    try:
        yield Disk(path, None)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture()
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emu:  # (one per test: each creates the same names)
        yield emu


def _record(disk: Disk, kubeconfig: Path, *args: str, stderr: Any = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen([*replay_tui(), "record", "--db", str(disk.path / "rec.db"), "--kubeconfig",
                             str(kubeconfig), *args], stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=disk.preexec)


def _session(db: Path) -> tuple[int, bool, dict[str, Any], list[int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        op_count, ended, attributes = conn.execute("SELECT op_count, ended_ns IS NOT NULL, attributes FROM sessions"
                                                   ).fetchone()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM operations ORDER BY seq")]
    finally:
        conn.close()
    return op_count, bool(ended), json.loads(attributes), seqs


def _counts(match: re.Match[str]) -> dict[str, int]:
    return {k: int(match[k].replace(",", "")) for k in ("recorded", "dropped", "lost", "requests")}


def test_a_full_disk_ends_the_recorder_cleanly_with_counts_and_the_operator_never_notices(
        disk: Disk, emulator: EmulatorThread, tmp_path: Path) -> None:
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    rec = _record(disk, kubeconfig, "--grace", str(GRACE), "--", sys.executable, "-c", OPERATOR, str(REQUESTS), "n")
    out, err = rec.communicate(timeout=180)
    exited = time.time()
    assert out.strip(), err
    operator = json.loads(out.strip().splitlines()[-1])
    assert operator["ok"] == REQUESTS  # every request answered, none failed
    assert rec.returncode == EXIT_RECORDING_FAILED, err
    took = exited - operator["done"]
    assert took < GRACE + 5, f"the recorder exited {took:.1f}s after the operator (--grace {GRACE:g})"
    lines = err.splitlines()
    assert all(line.startswith("replay-tui: ") for line in lines), err  # no traceback
    match = SUMMARY.search(lines[-1])
    assert match, lines[-1]
    assert re.search(r"database or disk is full|I/O error writing the recording", match["why"])
    counts = _counts(match)
    assert counts["requests"] == REQUESTS
    assert counts["recorded"] + counts["dropped"] + counts["lost"] == REQUESTS
    assert counts["recorded"] > 0 and counts["dropped"] > 0
    op_count, ended, attributes, seqs = _session(disk.path / "rec.db")
    assert seqs == list(range(1, op_count + 1))  # whole: no gap where a batch was lost
    if match["closed"] or disk.preexec:  # (a file-size limit always leaves room: the -wal is checkpointed)
        assert match["closed"] and ended and op_count == counts["recorded"] == attributes["recorded"]
        assert (attributes["dropped"], sum(attributes["errors"].values())) == (counts["dropped"], counts["lost"])
    else:  # a file system without a page left for the session's row (rare: the last commit filled it exactly)
        assert not ended and op_count == counts["recorded"], match["why_open"]
    print(f"full disk ({'RLIMIT_FSIZE' if disk.preexec else 'tmpfs'}): exit {took:.2f}s after the operator, "
          f"{counts}, session {'closed' if ended else 'left open'}, "
          f"operator's slowest call {operator['slowest_ms']} ms")


def test_a_second_sigterm_while_the_rest_is_written_ends_it_at_once_with_the_summary(
        emulator: EmulatorThread, tmp_path: Path) -> None:
    disk = Disk(tmp_path, _file_size_limit)
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        rec = _record(disk, kubeconfig, "--grace", "60", "--", sys.executable, "-c", OPERATOR, "0", "forever",
                      stderr=stderr)
        try:
            deadline = time.monotonic() + 60
            while "recording error" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)  # the disk is full: writes fail and are retried
            assert rec.poll() is None and "recording error" in log.read_text()
            rec.send_signal(signal.SIGTERM)  # the first stops the operator ...
            time.sleep(1.5)  # ... which exits; the recorder retries what is left, for up to 60 s
            assert rec.poll() is None
            start = time.monotonic()
            rec.send_signal(signal.SIGTERM)  # the second ends that
            rec.wait(timeout=30)
            took = time.monotonic() - start
        finally:
            if rec.poll() is None:
                rec.kill()
    assert took < 3.0, f"the second SIGTERM ended the recorder in {took:.1f}s"
    assert rec.returncode == 128 + signal.SIGTERM  # the operator's status: it died of the SIGTERM passed on
    lines = log.read_text().splitlines()
    assert all(line.startswith("replay-tui: ") for line in lines), lines
    match = SUMMARY.search(lines[-1])
    assert match and match["why"].startswith("stopped by SIGTERM before everything was written"), lines[-1]
    counts = _counts(match)
    assert counts["recorded"] + counts["dropped"] + counts["lost"] == counts["requests"] > 0
    op_count, ended, attributes, _ = _session(tmp_path / "rec.db")
    assert match["closed"] and ended and op_count == counts["recorded"]
    assert attributes["exit_status"] == 128 + signal.SIGTERM
    print(f"second SIGTERM during the flush: exit {took:.2f}s after it, {counts}")


HOOKED = textwrap.dedent("""
    import json, resource, signal, sys, time
    from kubernetes import client, config
    from replay_tui import recorder
    config.load_kube_config(sys.argv[1])
    api = client.CoreV1Api()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[4]), int(sys.argv[4])))
    pad = "x" * 800
    slowest = 0.0
    with recorder.recording(sys.argv[2], session="hooked", grace=float(sys.argv[5])) as rec:
        for i in range(int(sys.argv[3])):
            start = time.perf_counter()
            api.create_namespaced_config_map("hooked", {"metadata": {"name": f"cm-{i}"}, "data": {"k": f"{i}{pad}"}})
            slowest = max(slowest, time.perf_counter() - start)
        done = time.time()
    c = rec.counters
    print(json.dumps({"ok": int(sys.argv[3]), "slowest_ms": round(slowest * 1000, 1), "exit_s": time.time() - done,
                      "recorded": c.recorded, "dropped": c.dropped, "lost": c.lost, "failure": rec.failure}))
""")


def test_the_client_hook_on_a_full_disk_never_fails_or_stalls_the_operators_calls(
        emulator: EmulatorThread, tmp_path: Path) -> None:
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    done = subprocess.run([sys.executable, "-c", HOOKED, str(kubeconfig), str(tmp_path / "hook.db"), str(REQUESTS),
                           str(DISK), str(GRACE)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr  # no call failed, and the end of the recording raised nothing
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] == REQUESTS
    assert result["slowest_ms"] < 1000, "no call waited for the disk"
    assert result["exit_s"] < GRACE + 3, f"leaving the recording took {result['exit_s']:.1f}s"
    assert result["recorded"] + result["dropped"] + result["lost"] == REQUESTS
    assert result["recorded"] > 0 and result["dropped"] > 0
    assert re.search(r"database or disk is full|I/O error writing the recording", result["failure"])
    lines = done.stderr.splitlines()
    assert all(line.startswith("replay-tui: ") for line in lines), done.stderr
    assert "recording" in lines[-1] and "failed" in lines[-1] and "the session is closed with these counts" in lines[-1]
    op_count, ended, attributes, seqs = _session(tmp_path / "hook.db")
    assert ended and op_count == result["recorded"] == attributes["recorded"] and seqs == list(range(1, op_count + 1))
    print(f"client hook on a full disk: {result}")
    os.remove(tmp_path / "hook.db")
