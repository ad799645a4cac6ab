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


# --- the hunting panels (issue 17) ------------------------------------------------------------------------

async def test_object_timeline_with_its_header_and_the_why_chain(fixture_db: Path) -> None:
    """t: one object's own ops under its header; p: the provenance chain as a list in the Why tab."""
    from replay_tui.tui.widgets.whypanel import WhyPanel

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("8")
        await ready(pilot, app, 8)
        await pilot.press("t")
        await until(pilot, lambda: app.debugger.summary is not None and app.debugger.summary.complete
                    and not app.debugger.nav.source.scanning)
        await pilot.press("p")
        why = app.query_one(WhyPanel)
        await until(pilot, lambda: app.debugger._tab() == "why" and "end of the chain" in why.text)
        await snapshot(pilot, app, "object-why")


async def test_two_point_diff_side_by_side_zoomed_at_120x30(fixture_db: Path) -> None:
    """D between two ops, the Diff pane zoomed: side by side needs the width a zoom gives."""
    from textual.widgets import Input

    from replay_tui.tui.screens.prompt import PromptScreen
    from replay_tui.tui.widgets.diffpane import DiffPane

    app = ReplayApp(str(fixture_db), persist_marks=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot, app, 1)
        app.debugger.jump_to("9")
        await ready(pilot, app, 9)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "2 ."
        await pilot.press("enter")
        diff = app.query_one(DiffPane)
        await until(pilot, lambda: "whole state, op 2 → op 9" in diff.body_text)
        diff.focus()
        await pilot.press("Z")
        await until(pilot, lambda: any("┃" in line for line in diff.lines))
        await snapshot(pilot, app, "diff-two-points")
