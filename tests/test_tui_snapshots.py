"""Snapshot tests of the main screens: an SVG screenshot compared with the one stored in tests/snapshots/.

pytest-textual-snapshot needs syrupy 4.8, which does not support the pinned
pytest 9, so the comparison is done here: ``App.export_screenshot()`` at 160x45
against ``tests/snapshots/NAME.svg``.  After an intended change to what the
screen shows, regenerate them and look at the result before committing::

    REPLAY_TUI_UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/test_tui_snapshots.py

A failing test writes what it saw next to the stored file as ``NAME.actual.svg``
(open both in a browser to compare).  The SVGs are compared byte for byte under
the Textual release that made them (``textual-version.txt``); under another
release only their characters are compared, as styling details may move.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.pickers import SessionPicker
from tests.test_tui_app import SIZE, ready, until
from tests.test_tui_fixture import CONFLICT_SEQ, SCALE_SEQ, make_fixture

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("REPLAY_TUI_UPDATE_SNAPSHOTS") == "1"
VERSION_FILE = SNAPSHOTS / "textual-version.txt"


def _textual_version() -> str:
    from importlib.metadata import version

    return version("textual")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("REPLAY_TUI_STATE_DIR", str(path))
    return path


def _text(svg: str) -> list[str]:
    """The characters of the screenshot, line by line, for a readable failure."""
    lines: dict[str, list[str]] = {}
    for y, chunk in re.findall(r'<text[^>]*y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        lines.setdefault(y, []).append(chunk.replace("&#160;", " ").replace("&amp;", "&")
                                       .replace("&lt;", "<").replace("&gt;", ">"))
    return ["".join(parts) for _, parts in sorted(lines.items(), key=lambda kv: float(kv[0]))]


async def snapshot(pilot: object, app: ReplayApp, name: str) -> None:
    app.clear_notifications()
    await pilot.wait_for_scheduled_animations()  # type: ignore[attr-defined]  # the tab underline slides
    await pilot.pause(0.1)  # type: ignore[attr-defined]
    svg = app.export_screenshot(title="replay-tui")
    path = SNAPSHOTS / f"{name}.svg"
    actual = path.with_suffix(".actual.svg")
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg)
        VERSION_FILE.write_text(_textual_version() + "\n")
        actual.unlink(missing_ok=True)
        return
    if not path.exists():
        actual.parent.mkdir(exist_ok=True)
        actual.write_text(svg)
        pytest.fail(f"no stored snapshot {path}; run with REPLAY_TUI_UPDATE_SNAPSHOTS=1 to create it")
    expected = path.read_text()
    same_release = VERSION_FILE.exists() and VERSION_FILE.read_text().strip() == _textual_version()
    if svg != expected and (same_release or _text(svg) != _text(expected)):
        actual.write_text(svg)
        want, got = _text(expected), _text(svg)
        first = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
        pytest.fail(f"screen differs from {path} (saw {actual}); first differing line {first}:\n"
                    f"  stored: {want[first] if first < len(want) else '<none>'}\n"
                    f"  now:    {got[first] if first < len(got) else '<none>'}")
    actual.unlink(missing_ok=True)


@pytest.fixture
def fixture_db(tmp_path: Path) -> Path:
    return make_fixture(tmp_path / "fx.db")


async def test_main_screen(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to(str(SCALE_SEQ))
        await ready(pilot, app, SCALE_SEQ)
        await snapshot(pilot, app, "main")


async def test_error_row_and_operation(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("e")
        await ready(pilot, app, CONFLICT_SEQ)
        await snapshot(pilot, app, "error")


async def test_filtered_timeline(fixture_db: Path) -> None:
    """The cursor's op (12, a get of the Deployment) stays, as a dim row among the ConfigMap matches."""
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("12")
        await ready(pilot, app, 12)
        app.debugger.apply_filter("kind:ConfigMap")
        await until(pilot, lambda: app.debugger.nav is not None and not app.debugger.nav.source.scanning)
        await ready(pilot, app, 12)
        await snapshot(pilot, app, "filter")


# --- one per theme family: dark (the snapshots above), light, NO_COLOR; and the smallest terminal ------

async def test_light_theme(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.theme = "textual-light"
        await pilot.press("e")
        await ready(pilot, app, CONFLICT_SEQ)
        await snapshot(pilot, app, "error-light")


async def test_no_color(fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("e")
        await ready(pilot, app, CONFLICT_SEQ)
        await snapshot(pilot, app, "error-nocolor")


async def test_80x24(fixture_db: Path) -> None:
    """Tab labels and the key bar fit; the bar drops the date before the session name."""
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("e")
        await ready(pilot, app, CONFLICT_SEQ)
        await snapshot(pilot, app, "narrow")


async def test_diff_against_mark(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.set_mark("before", 2)
        app.debugger.jump_to("12")
        await ready(pilot, app, 12)
        app.debugger.pick_diff_mark("before")
        await until(pilot, lambda: "whole state, op 2" in app.query_one("#diff").body_text)  # type: ignore[attr-defined]
        await snapshot(pilot, app, "diff-mark")


async def test_stats_tab(fixture_db: Path) -> None:
    pytest.importorskip("replay_tui.engine.stats")
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await until(pilot, lambda: app.debugger.jobs["stats"].data is not None)
        app.debugger.jump_to("100")
        await ready(pilot, app, 100)
        await pilot.press("3")
        await snapshot(pilot, app, "stats")


async def test_analysis_tab(fixture_db: Path) -> None:
    pytest.importorskip("replay_tui.engine.analysis")
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        jobs = app.debugger.jobs
        await until(pilot, lambda: jobs["analysis"].data is not None and jobs["cycles"].data is not None)
        await pilot.press("4")
        await snapshot(pilot, app, "analysis")


async def test_help_screen(fixture_db: Path) -> None:
    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await snapshot(pilot, app, "help")


async def test_session_picker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replay_tui.engine.store import Recording

    make_fixture(tmp_path / "two.db", second=True)
    monkeypatch.chdir(tmp_path)  # the picker names the file as given: keep it the same every run
    rec = await Recording.open("two.db")
    infos = await rec.sessions()
    await rec.close()
    app = ReplayApp("two.db", sessions=infos, persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionPicker))
        await snapshot(pilot, app, "sessions")
