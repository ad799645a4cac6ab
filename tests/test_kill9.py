"""What ``kill -9`` of the recorder loses: the batch not yet committed, the last ~100 ms, nothing before.

A real operator (the official Python client) creates ConfigMaps through ``replay-tui record`` as
fast as it can and notes each answer it got, with the time; the recorder is killed with SIGKILL
in the middle.  What reached the file must be exactly the first answers the operator got, in
order, and what is missing only the answers of the last moments before the kill.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess

OPERATOR = textwrap.dedent("""
    import os, sys, time
    from kubernetes import client, config
    config.load_kube_config()
    api = client.CoreV1Api()
    with open(sys.argv[1], "w", buffering=1) as log:
        log.write(f"pid {os.getpid()}\\n")
        i = 0
        try:
            while True:
                api.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}"}})
                log.write(f"cm-{i} {time.time_ns()}\\n")   # the operator got its answer
                i += 1
        except Exception:
            pass  # the proxy is gone
""")

KILL_AFTER = 400  # answers before the kill: the recorder is in its steady state
LOSS_BOUND_MS = 1000  # what the test tolerates on a busy machine; the README gives the measured figures


class Loss(NamedTuple):
    answered: int  # requests the operator got an answer to
    recorded: int  # of those, in the file
    window_ms: float  # how far before the kill the first lost answer was given


def kill_under_load(emulator: EmulatorThread, tmp_path: Path, name: str = "kill") -> Loss:
    """Record the operator, SIGKILL the recorder after KILL_AFTER answers; what the file holds."""
    db, log = tmp_path / f"{name}.db", tmp_path / f"{name}.log"
    kubeconfig = emulator.write_kubeconfig(tmp_path / f"{name}.kubeconfig")
    rec = RecorderProcess(db, kubeconfig, command=[sys.executable, "-c", OPERATOR, str(log)])
    with rec:
        deadline = time.monotonic() + 60
        # the log's first line is the operator's pid; the answers follow
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < KILL_AFTER + 1):
            time.sleep(0.01)
        killed_ns = time.time_ns()
        assert rec.proc is not None
        rec.proc.send_signal(signal.SIGKILL)
        rec.proc.wait()
        time.sleep(0.3)  # the operator notices the proxy is gone and stops
    lines = log.read_text().splitlines()
    _, pid = lines[0].split()
    try:
        os.kill(int(pid), signal.SIGKILL)  # (an orphan, if it is still waiting)
    except ProcessLookupError:
        pass
    answered = [(n, int(t)) for n, t in (line.split() for line in lines[1:])]
    conn = sqlite3.connect(db)  # committed batches are there, from the WAL the dead writer left
    try:
        recorded = [r[0] for r in conn.execute(
            "SELECT name FROM operations WHERE verb = 'create' ORDER BY seq")]
        ended, op_count = conn.execute("SELECT ended_ns, op_count FROM sessions").fetchone()
        ops = conn.execute("SELECT COUNT(*), MAX(seq) FROM operations").fetchone()
    finally:
        conn.close()
    assert ended is None  # nobody closed it
    assert op_count == ops[0] == ops[1]  # the committed batches are whole
    assert recorded == [n for n, _ in answered[:len(recorded)]], "the file holds the first answers, in order"
    lost = answered[len(recorded):]
    window = (killed_ns - lost[0][1]) / 1e6 if lost else 0.0
    return Loss(len(answered), len(recorded), window)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emu:
        yield emu


def test_kill_9_loses_only_the_last_moments_before_it(emulator: EmulatorThread, tmp_path: Path) -> None:
    loss = kill_under_load(emulator, tmp_path)
    assert loss.answered >= KILL_AFTER and loss.recorded >= KILL_AFTER // 2
    assert loss.window_ms <= LOSS_BOUND_MS, loss
    print(f"kill -9 under load: {loss.answered - loss.recorded} of {loss.answered} answered requests lost, "
          f"the last {loss.window_ms:.0f} ms before the kill")
