"""End to end: the real ``replay-tui`` command in a real terminal (tmux), driven by keys, read off the screen."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.test_tui_fixture import CONFLICT_SEQ, OPS, make_fixture

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it on CI)")
ROOT = Path(__file__).resolve().parent.parent


def replay_tui() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).parent / "replay-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "replay_tui"]


class Terminal:
    """A detached 160x45 tmux session running one command, on a tmux server of its own."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.name = f"replay-tui-test-{uuid.uuid4().hex[:8]}"
        self.tmux = [str(TMUX), "-L", self.name]  # a private server: nobody else's sessions, no stale env
        # COLUMNS/LINES (set by pytest's terminal) would override the real 160x45 for the app
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        line = f"cd {ROOT} && env -u COLUMNS -u LINES {exports} {' '.join(command)}; sleep 30"
        subprocess.run([*self.tmux, "-f", "/dev/null", "new-session", "-d", "-s", self.name,
                        "-x", "160", "-y", "45", line], check=True)

    def screen(self) -> str:
        out = subprocess.run([*self.tmux, "capture-pane", "-t", self.name, "-p"], capture_output=True, text=True)
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text not in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never went away; the screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)  # only this test's own server


def test_replay_tui_in_a_real_terminal(tmp_path: Path) -> None:
    db = make_fixture(tmp_path / "fx.db")
    term = Terminal([*replay_tui(), str(db)],
                    {"REPLAY_TUI_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color"})
    try:
        term.wait_for(f"op 1 of {OPS}")
        term.wait_for("Deployment/shop/web")  # the rows, read in a worker, arrive
        screen = term.wait_for("q Quit")  # the footer lists the keys (once laid out at 160 columns)
        assert "SEQ" in screen and "LATENCY" in screen
        assert "→/l Step" in screen and "e Next error" in screen and "/ Filter" in screen
        term.keys("e")
        screen = term.wait_for(f"op {CONFLICT_SEQ} of {OPS}")
        assert "409 Conflict" in screen
        term.wait_for("UPDATE  Deployment.apps/shop/web/status")
        term.keys(":")
        term.wait_for("Jump to")
        term.keys("1", "5", "Enter")
        term.wait_for(f"op 15 of {OPS}")
        term.wait_for("500 InternalError")
        term.keys("G")
        term.wait_for(f"op {OPS} of {OPS}")
        term.keys("/")
        term.wait_for("Filter the timeline")
        term.keys("verb:update", "Enter")
        term.wait_for("filter verb:update 3 matches")
        term.keys("Escape")
        term.wait_gone("filter verb:update")
        term.keys("?")
        term.wait_for("jump (:) accepts")  # the help dialog, over the debugger (still seen behind it)
        assert f" of {OPS}" in term.screen()
        term.keys("Escape")
        term.wait_gone("jump (:) accepts")
        term.keys("q")
        term.wait_gone(f"of {OPS}")  # the app is gone, the terminal is back
    finally:
        term.close()


def test_bad_file_in_a_real_terminal_is_one_line(tmp_path: Path) -> None:
    term = Terminal([*replay_tui(), str(tmp_path / "missing.db")], {"TERM": "xterm-256color"})
    try:
        screen = term.wait_for("error:")
        assert "replay-tui: error:" in screen and "no such file" in screen
        assert "Traceback" not in screen
    finally:
        term.close()
