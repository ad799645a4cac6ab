"""``replay-tui record`` as a user runs it: exit statuses, signals, and every kind of bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replay_tui.cli.main import main
from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess, replay_tui


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emu:
        yield emu


@pytest.fixture()
def kubeconfig(emulator: EmulatorThread, tmp_path: Path) -> Path:
    return emulator.write_kubeconfig(tmp_path / "kubeconfig")


def record(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*replay_tui(), "record", *args], capture_output=True, text=True, timeout=timeout)


def _session(db: Path) -> sqlite3.Row:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM sessions").fetchone()
    finally:
        conn.close()


# --- the operator's exit status is ours -------------------------------------------------------

CLIENT = textwrap.dedent("""
    import sys
    from kubernetes import client, config
    config.load_kube_config()          # the KUBECONFIG the recorder set: its proxy
    client.CoreV1Api().read_namespace("default")
    sys.exit(int(sys.argv[1]))
""")


def test_the_commands_exit_status_is_passed_through(kubeconfig: Path, tmp_path: Path) -> None:
    status = 3
    db = tmp_path / "rec.db"
    done = record("--db", str(db), "--kubeconfig", str(kubeconfig), "--", sys.executable, "-c", CLIENT, str(status))
    assert done.returncode == status, done.stderr
    session = _session(db)
    attrs = json.loads(session["attributes"])
    assert session["source"] == "proxy" and session["ended_ns"] is not None
    assert attrs["exit_status"] == status and attrs["recorded"] == session["op_count"] >= 1
    assert "recorded" in done.stderr.splitlines()[-1]


def test_a_command_killed_by_a_signal_exits_like_a_shell_says(kubeconfig: Path, tmp_path: Path) -> None:
    done = record("--db", str(tmp_path / "rec.db"), "--kubeconfig", str(kubeconfig), "--",
                  sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert done.returncode == 128 + signal.SIGKILL


# --- SIGTERM in the middle of a recording ---------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from kubernetes import client, config
    config.load_kube_config()
    api = client.CoreV1Api()
    with open(sys.argv[1], "a", buffering=1) as log:
        i = 0
        while True:                     # until the recorder passes SIGTERM on
            api.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}"}})
            log.write(f"cm-{i}\\n")     # the operator saw the answer: it must be recorded
            i += 1
""")


def test_sigterm_mid_recording_loses_nothing_the_operator_saw(kubeconfig: Path, tmp_path: Path) -> None:
    db, log = tmp_path / "rec.db", tmp_path / "done.log"
    rec = RecorderProcess(db, kubeconfig, command=[sys.executable, "-c", WRITER, str(log)])
    with rec:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 100):
            time.sleep(0.05)
        status = rec.stop(signal.SIGTERM)
    assert status == 128 + signal.SIGTERM  # the client died of the SIGTERM it was passed
    seen = log.read_text().split()
    assert len(seen) >= 100
    conn = sqlite3.connect(db)
    created = [r[0] for r in conn.execute(
        "SELECT name FROM operations WHERE verb = 'create' AND status = 201 ORDER BY seq")]
    assert created[:len(seen)] == seen  # every acknowledged request, in order
    session = _session(db)
    attrs = json.loads(session["attributes"])
    assert session["ended_ns"] is not None
    assert attrs["recorded"] == session["op_count"] and attrs["dropped"] == 0
    assert attrs["errors"] == {"disk": 0, "encode": 0, "locked": 0}


def test_without_a_command_it_records_until_interrupted(kubeconfig: Path, tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    with RecorderProcess(db, kubeconfig, session="by-hand") as rec:
        env = dict(os.environ, KUBECONFIG=str(rec.proxy_kubeconfig))
        subprocess.run([sys.executable, "-c", CLIENT, "0"], env=env, check=True, timeout=60)
        assert rec.stop(signal.SIGINT) == 0
    assert "KUBECONFIG=" in rec.stderr
    session = _session(db)
    assert session["name"] == "by-hand" and session["op_count"] >= 1 and session["ended_ns"] is not None


def test_a_cluster_that_goes_away_answers_502_and_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    with EmulatorThread() as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
        rec = RecorderProcess(db, kubeconfig).start()
    try:  # the emulator has stopped: the proxy stays up and says what happened
        env = dict(os.environ, KUBECONFIG=str(rec.proxy_kubeconfig))
        probe = textwrap.dedent("""
            from kubernetes import client, config
            config.load_kube_config()
            try:
                client.CoreV1Api().read_namespace("default")
            except client.ApiException as exc:
                print(exc.status)
        """)
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "502"
        assert rec.stop() == 0
    finally:
        rec.__exit__(None, None, None)
    conn = sqlite3.connect(db)
    status, reason, message = conn.execute("SELECT status, reason, message FROM operations").fetchone()
    assert (status, reason) == (502, "ProxyError") and "cannot reach the cluster" in message


def test_listening_beyond_loopback_warns(kubeconfig: Path, tmp_path: Path) -> None:
    done = record("--db", str(tmp_path / "rec.db"), "--kubeconfig", str(kubeconfig), "--listen", "0.0.0.0:0",
                  "--", sys.executable, "-c", "pass")
    assert done.returncode == 0
    assert "warning: the proxy listens on 0.0.0.0:0, beyond loopback" in done.stderr


# --- bad input: one line, no traceback, nothing recorded ------------------------------------------

@pytest.fixture()
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


BAD_INPUTS = {
    "missing kubeconfig": (["--kubeconfig", "{tmp}/nope"], 1, "kubeconfig {tmp}/nope: no such file"),
    "kubeconfig is not YAML": (["--kubeconfig", "{tmp}/bad"], 1, "not valid YAML"),
    "kubeconfig is not a kubeconfig": (["--kubeconfig", "{tmp}/list"], 1, "not a kubeconfig"),
    "kubeconfig is a directory": (["--kubeconfig", "{tmp}"], 1, "is a directory"),
    "unknown context": (["--kubeconfig", "{kc}", "--context", "prod"], 1,
                        "context 'prod' not found (available: emulator)"),
    "unreachable cluster": (["--kubeconfig", "{tmp}/unreachable"], 1, "cannot reach the cluster at http://127.0.0.1:"),
    "listen without a port": (["--kubeconfig", "{kc}", "--listen", "localhost"], 1, "expected HOST:PORT"),
    "listen on a port out of range": (["--kubeconfig", "{kc}", "--listen", "127.0.0.1:70000"], 1,
                                      "between 0 and 65535"),
    "listen on a port that is not a number": (["--kubeconfig", "{kc}", "--listen", "127.0.0.1:http"], 1,
                                              "the port must be a number"),
    "listen on a busy port": (["--kubeconfig", "{kc}", "--listen", "127.0.0.1:{busy}"], 1, "cannot listen there"),
    "listen on an unknown host": (["--kubeconfig", "{kc}", "--listen", "no-such-host.invalid:0"], 1,
                                  "unknown host"),
    "bad metrics address": (["--kubeconfig", "{kc}", "--metrics", "nowhere"], 1, "--metrics 'nowhere'"),
    "command not found": (["--kubeconfig", "{kc}", "--", "no-such-operator-xyz"], 127,
                          "command not found: no-such-operator-xyz"),
    "command not executable": (["--kubeconfig", "{kc}", "--", "{tmp}/bad"], 126, "command not executable"),
    "db in a missing directory": (["--kubeconfig", "{kc}", "--db", "{tmp}/no/such/dir/rec.db", "--", "true"], 1,
                                  "does not exist"),
    "db is not a recording": (["--kubeconfig", "{kc}", "--db", "{tmp}/bad", "--", "true"], 1,
                              "not an SQLite database"),
    "db is another application's database": (["--kubeconfig", "{kc}", "--db", "{tmp}/foreign.db", "--", "true"], 1,
                                             "{tmp}/foreign.db: an SQLite database but not a replay-tui recording"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_clear_line(case: str, kubeconfig: Path, tmp_path: Path, busy_port: int,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad").write_text("clusters: [\n")
    (tmp_path / "list").write_text("- 1\n- 2\n")
    with contextlib.closing(sqlite3.connect(tmp_path / "foreign.db")) as foreign:
        foreign.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    foreign_bytes = (tmp_path / "foreign.db").read_bytes()
    unreachable = (tmp_path / "unreachable")
    unreachable.write_text(kubeconfig.read_text().replace(
        kubeconfig.read_text().split("server: ")[1].split()[0], f"http://127.0.0.1:{_closed_port()}"))
    args, status, message = BAD_INPUTS[case]
    fill = {"tmp": str(tmp_path), "kc": str(kubeconfig), "busy": str(busy_port)}
    argv = [a.format(**fill) for a in args]
    if "--db" not in argv:
        argv = ["--db", str(tmp_path / "rec.db"), *argv]
    returncode = main(["record", *argv])  # in process: the same code path, without interpreter start-up
    stderr = capsys.readouterr().err
    assert returncode == status
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("replay-tui: error: ")
    assert message.format(**fill) in lines[0]
    assert not (tmp_path / "rec.db").exists()  # checked before anything is recorded
    assert (tmp_path / "foreign.db").read_bytes() == foreign_bytes  # refused, not even switched to WAL mode
