"""Pilot tests of ``R``: the debugger writes the open session's report and says where.

They drive ``ReplayApp`` headless on a copy of the bundled demo recording and
check what a user notices: the prompt, the notifications, and the file written.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static
from textual.widgets._toast import Toast

from replay_tui.engine import report as reportmod
from replay_tui.engine.store import Recording
from replay_tui.tui.app import ReplayApp
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.prompt import PromptScreen
from tests.conftest import file_digest
from tests.test_tui_app import SIZE, notices, ready, type_text, until

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db"
SESSION = "buggy-operator"

pytestmark = pytest.mark.skipif(not DEMO.exists(), reason="the demo recording is not bundled")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports land in tmp_path (marks go to the per-test state directory: conftest's state_dir)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copyfile(DEMO, path)
    return path


async def endpoint_labels(db: Path) -> list[str]:
    """The per-endpoint rows the report must show, from the engine (not hard-coded)."""
    rec = await Recording.open(db)
    try:
        data = await reportmod.build(await rec.session(SESSION))
    finally:
        await rec.close()
    assert data.endpoints, "the demo session has endpoints"
    return [e.endpoint for e in data.endpoints]


async def open_prompt(pilot: Any, app: ReplayApp) -> Input:
    await pilot.press("R")
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the report prompt")
    return app.screen.query_one(Input)


def toasts(app: ReplayApp) -> str:
    """The notifications on the screen now, as the user reads them."""
    return "\n".join(str(t.render()) for t in app.screen.query(Toast))


def prompt_error(app: ReplayApp) -> str:
    return str(app.screen.query_one(".prompt-error", Static).render())


async def written(pilot: Any, app: ReplayApp) -> str:
    await until(pilot, lambda: "Report written to" in notices(app) or "report:" in notices(app),
                timeout=30, what="the report")
    return notices(app)


async def test_r_enter_writes_the_html_report_and_says_where(demo_db: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    before = file_digest(demo_db)
    labels = await endpoint_labels(demo_db)
    gate = asyncio.Event()  # holds the build, as a big session would, to see the screen meanwhile
    real_build = reportmod.build

    async def slow_build(ses: Any, **kwargs: Any) -> reportmod.Report:
        await gate.wait()
        return await real_build(ses, **kwargs)

    monkeypatch.setattr(reportmod, "build", slow_build)
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app, 1)
        field = await open_prompt(pilot, app)
        assert field.value == f"demo-{SESSION}-report.html"
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, PromptScreen))
        out = tmp_path / f"demo-{SESSION}-report.html"
        await until(pilot, lambda: f"writing the report of session 'buggy-operator' to {out}" in toasts(app),
                    what="the writing notice")
        await pilot.press("l")  # the debugger keeps answering while the report is built
        await ready(pilot, app, 2)
        assert not out.exists()
        gate.set()
        told = await written(pilot, app)
        assert f"Report written to {out} (" in told and " KiB, " in told and " s)" in told
        await until(pilot, lambda: "Report written to" in toasts(app), what="the written toast")
        assert "writing the report" not in toasts(app)  # withdrawn once the file is there
        assert app.debugger.report_writing is None
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert f"replay-tui report: {SESSION}" in text
    assert "<h2>Endpoints</h2>" in text and "<th>Endpoint</th><th>Count</th>" in text
    for label in labels:
        assert f"<td>{label}</td>" in text
    assert file_digest(demo_db) == before  # writing never touches the recording


async def test_a_md_path_writes_markdown_and_json_writes_json(demo_db: Path, tmp_path: Path) -> None:
    labels = await endpoint_labels(demo_db)
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        field = await open_prompt(pilot, app)
        field.value = "out/report.md"
        (tmp_path / "out").mkdir()
        await pilot.press("enter")
        told = await written(pilot, app)
        assert f"Report written to {tmp_path / 'out' / 'report.md'}" in told
        app.notices.clear()
        field = await open_prompt(pilot, app)
        field.value = str(tmp_path / "report.JSON")
        await pilot.press("enter")
        await written(pilot, app)
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith(f"# replay-tui report: {SESSION}")
    assert "## Endpoints" in md and "| Endpoint | Count |" in md
    assert all(f"| {label} |" in md for label in labels)
    data = json.loads((tmp_path / "report.JSON").read_text())
    assert data["metadata"]["session"] == SESSION
    assert [e["endpoint"] for e in data["endpoints"]] == labels


async def test_a_bad_extension_is_refused_and_nothing_is_written(demo_db: Path, tmp_path: Path) -> None:
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        field = await open_prompt(pilot, app)
        field.value = "report.txt"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)  # stays open, saying what is accepted
        assert ".html, .htm, .md, .markdown or .json" in prompt_error(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PromptScreen))
        # the same path without the prompt (the palette, a script) is an error notification
        app.debugger.write_report("report.txt")
        await pilot.pause()
        assert ("error", "report: report.txt: extension '.txt' is no report format "
                         "(use .html, .htm, .md, .markdown or .json)") in app.notices
        assert "extension '.txt' is no report format" in toasts(app)
        app.debugger.write_report(str(demo_db))
        await pilot.pause()
        assert "extension '.db' is no report format" in notices(app)
    assert {p.name for p in tmp_path.iterdir()} <= {"demo.db", "state"}  # no report.txt, nothing else


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory no file can be created in, also when the tests run as root (who ignores modes)."""
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o555)
    for candidate in (path, Path("/sys")):
        probe = candidate / ".replay-tui-probe"
        try:
            probe.touch()
        except OSError:
            return candidate
        probe.unlink()
    pytest.skip("no unwritable directory here")


async def test_an_unwritable_directory_is_a_one_line_error(demo_db: Path, tmp_path: Path) -> None:
    locked = unwritable_dir(tmp_path)
    missing = tmp_path / "no-such-dir" / "r.html"
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ready(pilot, app)
            field = await open_prompt(pilot, app)
            field.value = str(locked / "r.html")
            await pilot.press("enter")
            told = await written(pilot, app)
            assert ("error", f"report: {locked / 'r.html'}: cannot write (Permission denied)") in app.notices
            assert f"{locked / 'r.html'}: cannot write" in toasts(app)
            assert "Traceback" not in told and "Report written" not in told
            assert app.debugger.report_writing is None
            # a directory that does not exist is caught in the prompt, before any work
            field = await open_prompt(pilot, app)
            field.value = str(missing)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            assert f"no such directory {missing.parent}" in prompt_error(app)
            await pilot.press("escape")
            await ready(pilot, app)  # still running, still answering
        assert app.return_code in (None, 0)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert not (locked / "r.html").exists() and not missing.parent.exists()


async def test_escape_writes_nothing(demo_db: Path, tmp_path: Path) -> None:
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await open_prompt(pilot, app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PromptScreen))
        await pilot.pause(0.3)
        assert app.debugger.report_writing is None
        assert "report" not in notices(app).lower()
    assert not list(tmp_path.glob("*report*"))


async def test_help_and_palette_list_the_report_command(demo_db: Path, tmp_path: Path) -> None:
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = dict(app.screen.bindings)  # type: ignore[attr-defined]
        assert listed["R"] == "Write report (HTML/Markdown/JSON)"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Write report (HTML/Markdown/JSON)" in titles
        # run from the palette by name: the same prompt as R
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await type_text(pilot, "Write report")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the report prompt")
        assert app.screen.query_one(Input).value == f"demo-{SESSION}-report.html"
        await pilot.press("enter")
        await written(pilot, app)
    assert (tmp_path / f"demo-{SESSION}-report.html").exists()


async def test_a_second_r_while_writing_is_refused(demo_db: Path, tmp_path: Path) -> None:
    app = ReplayApp(str(demo_db), SESSION, persist_marks=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        app.debugger.write_report("a.html")
        app.debugger.write_report("b.html")
        await pilot.pause()
        assert f"a report is already being written to {tmp_path / 'a.html'}" in notices(app)
        await written(pilot, app)
    assert (tmp_path / "a.html").exists() and not (tmp_path / "b.html").exists()
    assert os.path.getsize(tmp_path / "a.html") > 1000
