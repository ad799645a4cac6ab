"""End to end: the real ``replay-tui`` command in a real terminal (tmux), driven by keys, read off the screen."""

from __future__ import annotations

import re
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

    def __init__(self, command: list[str], env: dict[str, str], size: tuple[int, int] = (160, 45)):
        self.name = f"replay-tui-test-{uuid.uuid4().hex[:8]}"
        self.tmux = [str(TMUX), "-L", self.name]  # a private server: nobody else's sessions, no stale env
        # COLUMNS/LINES (set by pytest's terminal) would override the real 160x45 for the app
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        line = f"cd {ROOT} && env -u COLUMNS -u LINES {exports} {' '.join(command)}; sleep 30"
        subprocess.run([*self.tmux, "-f", "/dev/null", "new-session", "-d", "-s", self.name,
                        "-x", str(size[0]), "-y", str(size[1]), line], check=True)

    def screen(self, escapes: bool = False) -> str:
        """What the terminal shows; with ``escapes``, the colours and attributes as sequences too."""
        out = subprocess.run([*self.tmux, "capture-pane", "-t", self.name, "-p", *(["-e"] if escapes else [])],
                             capture_output=True, text=True)
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


def side_files_gone(directory: Path, keep: set[str], timeout: float = 10.0) -> list[str]:
    """The directory's names once only ``keep`` is left (or what is there when time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(p.name for p in directory.iterdir())
        if set(names) <= keep or time.monotonic() > deadline:
            return names
        time.sleep(0.1)


def test_quitting_leaves_no_side_files_beside_a_wal_recording(tmp_path: Path) -> None:
    """Reading never leaves files beside a recording: the TUI's connections (four, and the
    statistics and analysis reading on theirs) close so that SQLite removes -wal and -shm."""
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    db = make_fixture(rec_dir / "st.db")  # a WAL-mode recording, as the proxy writes them
    assert sorted(p.name for p in rec_dir.iterdir()) == ["st.db"]
    term = Terminal([*replay_tui(), str(db)],
                    {"REPLAY_TUI_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color"})
    try:
        term.wait_for(f"op 1 of {OPS}")
        term.wait_for("Deployment/shop/web")
        assert sorted(p.name for p in rec_dir.iterdir()) == ["st.db", "st.db-shm", "st.db-wal"]  # while open
        term.keys("3")
        term.wait_for("p95")
        term.keys("4")
        term.wait_for("HOT LOOPS")
        term.keys("q")
        term.wait_gone(f"of {OPS}")
        assert side_files_gone(rec_dir, {"st.db"}) == ["st.db"]
    finally:
        term.close()


def _xterm(n: int) -> tuple[int, int, int]:
    """The RGB of an xterm-256 colour index (16-231: the 6x6x6 cube, 232-255: greys)."""
    if n >= 232:
        return (8 + 10 * (n - 232),) * 3
    if n >= 16:
        levels = (0, 95, 135, 175, 215, 255)
        n -= 16
        return levels[n // 36], levels[n // 6 % 6], levels[n % 6]
    return (0, 0, 0) if n in (0, 16) else (255, 255, 255) if n in (7, 15) else (n, n + 1, n + 2)  # a base colour


def colours(screen: str) -> dict[str, list[tuple[int, int, int]]]:
    """The foreground and background colours of an escaped capture (true colour or 256), and reverse."""
    out: dict[str, list[tuple[int, int, int]]] = {"fg": [], "bg": [], "reverse": []}
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen):
        p = [int(x) for x in params.split(";") if x]
        i = 0
        while i < len(p):
            if p[i] in (38, 48) and i + 2 < len(p) and p[i + 1] == 5:
                out["fg" if p[i] == 38 else "bg"].append(_xterm(p[i + 2]))
                i += 3
            elif p[i] in (38, 48) and i + 4 < len(p) and p[i + 1] == 2:
                out["fg" if p[i] == 38 else "bg"].append((p[i + 2], p[i + 3], p[i + 4]))
                i += 5
            else:
                if p[i] == 7:
                    out["reverse"].append((0, 0, 0))
                i += 1
    return out


@pytest.mark.parametrize("env, size", [({"NO_COLOR": "1"}, (80, 24)),
                                       ({"REPLAY_TUI_THEME": "textual-light"}, (160, 45))],
                         ids=["no-color-80x24", "light-160x45"])
def test_no_color_small_terminal_and_light_theme(tmp_path: Path, env: dict[str, str], size: tuple[int, int]) -> None:
    db = make_fixture(tmp_path / "fx.db")
    term = Terminal([*replay_tui(), str(db)], {"REPLAY_TUI_STATE_DIR": str(tmp_path / "state"),
                                                "TERM": "xterm-256color", **env}, size)
    try:
        term.wait_for(f"op 1 of {OPS}")
        term.wait_for("Deployment/shop")
        term.keys("e")
        screen = term.wait_for(f"op {CONFLICT_SEQ} of {OPS}")
        assert "409" in screen and "Analysis" in screen and "Watches" in screen  # every tab label fits
        assert "? Help" in screen and "q Quit" in screen
        drawn = colours(term.screen(escapes=True))
        if "NO_COLOR" in env:  # grey only: red, green and blue equal in every colour drawn
            assert drawn["fg"] and all(r == g == b for r, g, b in drawn["fg"] + drawn["bg"])
            assert drawn["reverse"]  # the cursor row: reverse video
        else:  # a light background under most of the screen
            assert drawn["bg"] and sum(sum(c) > 600 for c in drawn["bg"]) > len(drawn["bg"]) / 2
        term.keys("q")
        term.wait_gone(f"of {OPS}")
    finally:
        term.close()


def test_the_demo_opens_on_the_session_asked_for(tmp_path: Path) -> None:
    term = Terminal([*replay_tui(), "demo", "-s", "buggy-operator"], {"REPLAY_TUI_STATE_DIR": str(tmp_path / "state"),
                                                                       "TERM": "xterm-256color"})
    try:
        screen = term.wait_for("op 1 of 487")  # straight in, no session picker
        assert "buggy-operator" in screen
        term.keys("q")
        term.wait_gone("op 1 of 487")
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
