"""The interactive debugger: a Textual app that holds what is global and opens the debugger screen.

The app owns the recording's connections, the palette (theme colours for the debugger's
roles, see ``theme``) and the notifications log; ``DebuggerScreen`` owns the layout, the
keys and what they do; the logic is in ``tui.control``, plain Python.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Iterable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App, SystemCommand
from textual.notifications import Notification, Notify
from textual.screen import Screen

from replay_tui.engine.format import SessionInfo
from replay_tui.engine.store import Recording
from replay_tui.tui import theme
from replay_tui.tui.control import heap
from replay_tui.tui.control.connections import Connections
from replay_tui.tui.control.keymap import keymap_path, load_keymap
from replay_tui.tui.control.marks import state_dir
from replay_tui.tui.messages import PaletteChanged
from replay_tui.tui.screens import keys
from replay_tui.tui.screens.debugger import DebuggerScreen
from replay_tui.tui.screens.prompt import PromptScreen

THEME_ENV = "REPLAY_TUI_THEME"  # a theme to start with (any of ctrl+p → Theme)


class ReplayApp(App[int]):
    """replay-tui's debugger."""

    # Package data, read through importlib.resources so an installed wheel (or a zip) finds it.
    CSS = resources.files("replay_tui.tui").joinpath("app.tcss").read_text(encoding="utf-8")
    TITLE = "replay-tui"
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, db: str, session: str | int | None = None, *, follow: bool = False,
                 sessions: list[SessionInfo] | None = None, persist_marks: bool = True):
        super().__init__()
        self.db = db
        self.conns = Connections(db)
        self.notices: deque[tuple[str, str]] = deque(maxlen=50)  # (severity, text): what the user was told
        # the user's keymap (tui.control.keymap): every key of the debugger, by its binding id
        self.keymap, self.keymap_problems = load_keymap(keys.ids())
        self.keymap_file = keymap_path()
        self.debugger = DebuggerScreen(self.conns, db, session, follow=follow, sessions=sessions,
                                       persist_marks=persist_marks)
        self._palette: Any = None
        self._install_palette()

    def get_default_screen(self) -> Screen[Any]:
        return self.debugger

    def on_key(self, event: events.Key) -> None:
        """A key that reached the app while a prompt is on top was typed for it (a burst of keys
        sent before the prompt showed): the prompt takes it, in order."""
        if isinstance(self.screen, PromptScreen):
            self.screen.take_key(event)

    def on_mount(self) -> None:
        heap.hold()
        self.theme_changed_signal.subscribe(self, lambda _: self._palette_changed())
        wanted = os.environ.get(THEME_ENV, "")
        if wanted in self.available_themes:
            self.theme = wanted
        if self.keymap:
            self.set_keymap(self.keymap)
        for problem in self.keymap_problems:
            self.notify(problem, severity="warning", timeout=10, markup=False)

    # --- the palette ------------------------------------------------------------------

    def _install_palette(self) -> None:
        """The current theme's colours for every role, on the console Rich renders with."""
        if self._palette is not None:
            self.console.pop_theme()
        self._palette = theme.rich_theme(self.get_css_variables(), no_color=self.no_color)
        self.console.push_theme(self._palette)

    def _palette_changed(self) -> None:
        self._install_palette()
        for screen in self.screen_stack:
            screen.post_message(PaletteChanged())

    # --- notifications ---------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification is logged (for tests and the report of what the user saw);
        Textual's own (ctrl+c's hint) keep their markup, ours pass ``markup=False``."""
        self.notices.append((str(severity), message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def keep_note(self, text: str, timeout: float = 600) -> Notification:
        """A notification that can be withdrawn (a long job in progress; what stops being true)."""
        self.notices.append(("information", text))
        note = Notification(text, severity="information", timeout=timeout, markup=False)
        self.post_message(Notify(note))
        return note

    def withdraw(self, note: Notification | None) -> None:
        if note is not None:
            try:
                self._unnotify(note)  # Textual has no public call to withdraw one toast
            except (AttributeError, KeyError):
                pass

    # --- the command palette --------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action of the debugger, under its key's description; Textual's own, with a
        screenshot that lands where the user can find it."""
        dbg = self.debugger
        for b in keys.bindings(self.keymap):
            if b.action != "app.quit":
                yield SystemCommand(b.description, f"key: {keys.shown_key(b)}  (id {b.id})",
                                    partial(dbg.run_action, b.action))
        for index in dbg.watches.indexes if dbg.watches is not None else []:
            yield SystemCommand(f"Stop watching {index.label}", "remove the watch (x in the Watches tab)",
                                partial(dbg.remove_watch, index.obj_id, index.path))
        yield SystemCommand("Clear marks set here", "forget the marks you set (the recording's stay)",
                            self._clear_own_marks)
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                yield SystemCommand("Screenshot", "save an SVG of the screen (in the current directory)",
                                    lambda: self.set_timer(0.1, self.save_screen))
            else:
                yield command

    def save_screen(self) -> None:
        """The screenshot, saved in the current directory (else beside the recording, else the
        state directory), and a notification naming the file; never a silent failure."""
        places = [Path.cwd() if os.access(".", os.W_OK) else None, Path(self.db).resolve().parent, state_dir()]
        for place in places:
            if place is None:
                continue
            try:
                place.mkdir(parents=True, exist_ok=True)
                path = self.save_screenshot(path=str(place))
            except OSError:
                continue
            self.notify(f"screenshot saved to {path}", timeout=6, markup=False)
            return
        self.notify("screenshot not saved: no writable directory (current, recording's, state)",
                    severity="error", markup=False)

    def _clear_own_marks(self) -> None:
        marks = self.debugger.marks
        if marks is not None:
            for name in list(marks.own):
                marks.remove(name)
            self.debugger.marks_version += 1

    async def on_unmount(self) -> None:
        """Stop the workers (a statistics scan may be running) and close the connections after them."""
        self.debugger.stop_serving()
        self.workers.cancel_all()
        try:
            await asyncio.wait_for(self.workers.wait_for_complete(), timeout=3)
        except Exception:
            pass
        await self.conns.close()
        compared, self.debugger.compared = self.debugger.compared, None
        if compared is not None:  # the compared run's connection (its thread would keep the process alive)
            await compared.close()
        heap.restore()


async def _preflight(db: str, session: str | None) -> list[SessionInfo]:
    """Fail on the command line, in one line, before any screen opens."""
    rec = await Recording.open(db)
    try:
        infos = await rec.sessions()
        if session not in (None, ""):
            await rec.session(session)
        elif not infos:
            await rec.session(None)  # raises: the recording holds no sessions
        return infos
    finally:
        await rec.close()


def run_app(db: str, session: str | None, *, follow: bool) -> int:
    """Open the debugger on a recording; RecordingError (bad file, unknown session) before any screen."""
    infos = asyncio.run(_preflight(db, session))
    app = ReplayApp(db, session, follow=follow, sessions=infos)
    app.run()
    return int(app.return_code or 0)
