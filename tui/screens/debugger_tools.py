"""The debugger's tools for a hunt: jump history, an object's own timeline, copy and hand off,
search in a pane, a diff between any two points, the marks list, field columns, errors that
matter, pane zoom, serving the session to clients, and a compared run beside this one.

``DebuggerTools`` holds these keys' handlers between the core (state, workers, cursor) and the
screen (layout and the other keys); the logic is in the controllers (``tui.control``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import subprocess
import tempfile
from typing import Any

import msgspec
import yaml

from replay_tui.engine.cursor import resolve_position
from replay_tui.engine.textsafe import safe, safe_block, safe_json
from replay_tui.tui.control import objectview
from replay_tui.tui.control.columns import MAX_FIELDS, OPTIONAL, ColumnChoice
from replay_tui.tui.control.comparing import describe, open_compared
from replay_tui.tui.control.detail import CURSOR, End, ends_after_marks_changed
from replay_tui.tui.control.errors import RULE, ExpectedErrors
from replay_tui.tui.control.serving import Serving
from replay_tui.tui.control.timetravel import check_watch_path
from replay_tui.tui.screens.debugger_core import DebuggerCore
from replay_tui.tui.screens.pickers import ColumnsScreen, MarksScreen, SessionPicker
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.diffpane import DiffPane
from replay_tui.tui.widgets.objectheader import ObjectHeader
from replay_tui.tui.widgets.oppane import OpPane
from replay_tui.tui.widgets.pane import Pane
from replay_tui.tui.widgets.statepane import StatePane

ZOOMS = ("-zoom-timeline", "-zoom-op", "-zoom-tabs")
PANE_NAMES = {"op": "the operation pane", "state": "the State pane", "diff": "the Diff pane"}  # by widget id


def object_yaml(obj: Any) -> str:
    """The object as YAML, whole (nothing folded), keys in the order the API server wrote them.

    YAML quotes control characters itself; bidi controls (printable to YAML) are escaped as the
    panes show them, since the text goes to a terminal (the pager, the clipboard)."""
    return safe_block(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False,
                                     width=1 << 16))


def op_json(op: Any) -> str:
    """The operation (request and response) as indented JSON; control and bidi characters as escapes."""
    doc = msgspec.to_builtins(op)
    return msgspec.json.format(safe_json(msgspec.json.encode(doc).decode()).encode(), indent=2).decode() + "\n"


def op_ref(op: Any) -> str:
    """The op's seq and target, as ``replay-tui show --at N -r TARGET`` takes them."""
    target = str(op.key) if op.key else (op.resource or op.kind or "-")
    if op.key and op.subresource:
        target += f"/{op.subresource}"
    return f"{op.seq} {target}"


class DebuggerTools(DebuggerCore):
    """Handlers of the hunting keys (see the module docstring)."""

    @property
    def keymap(self) -> dict[str, str]:
        return getattr(self.app, "keymap", {}) or {}

    # --- jump history: ctrl+o back, ctrl+n forward ----------------------------------------------------

    def action_jump_back(self) -> None:
        target = self.history.go_back(self.seq)
        if target is None:
            self.tell("no jump to go back from (jumps: : g G e E ] [ ' p c C >, Enter in a panel)", "information")
            return
        self.goto(target, center=True)
        self.repaint_bar()

    def action_jump_forward(self) -> None:
        target = self.history.go_forward(self.seq)
        if target is None:
            self.tell("nothing to go forward to (^o goes back first)", "information")
            return
        self.goto(target, center=True)
        self.repaint_bar()

    # --- Esc: back out of what is open -----------------------------------------------------------

    def back_out_what(self) -> str:
        """What Esc leaves, innermost first: a search, a zoom, an object's timeline, the filter."""
        pane = self.search_pane
        if pane is not None and pane.search_query:
            return "search"
        if any(self.has_class(z) for z in ZOOMS):
            return "zoom"
        if self.scope is not None:
            return "object"
        if self.nav is not None and self.nav.source.user_filter is not None:
            return "filter"
        return ""

    def action_back_out(self) -> None:
        what = self.back_out_what()
        if what == "search":
            self.clear_search()
        elif what == "zoom":
            self.action_zoom()
        elif what == "object":
            self.leave_object_timeline()
        elif what == "filter":
            self.action_clear_filter()  # type: ignore[attr-defined]

    # --- an object's own timeline (t) -------------------------------------------------------------

    def action_object_timeline(self) -> None:
        d, nav, ses = self.detail, self.nav, self.ses
        if nav is None or ses is None:
            return
        obj_id = self.pinned if self.pinned is not None else (d.obj_id if d is not None else None)
        if obj_id is None:
            self.tell("no object at the cursor: move to an op on one, or o picks one", "warning")
            return
        if self.scope == obj_id:
            self.leave_object_timeline()
            return
        key = d.key if d is not None and d.obj_id == obj_id else None
        label = str(key) if key is not None else f"object {obj_id}"
        self.scope = obj_id
        nav.source.set_scope(objectview.scope(obj_id, key))
        header = self.query_one(ObjectHeader)
        header.show(None, label)
        self.timeline.reset()
        self._filter_changed()
        self.goto(self.seq, center=True)
        self.scan()

        def summarized(summary: objectview.ObjectSummary) -> None:
            if self.scope == obj_id and (summary.complete or self.summary is None):
                self.summary = summary
                header.show(summary, label)

        def overviewed(first: objectview.ObjectSummary) -> None:
            summarized(first)
            if self.scope == obj_id:  # the writers and fields, built on it (seconds at 10M ops)
                self.start("object-summary", lambda: objectview.summarize(ses.heavy, obj_id, first), summarized)

        self.summary = None
        self.start("object-overview", lambda: objectview.overview(ses.heavy, obj_id), overviewed)

    def leave_object_timeline(self) -> None:
        """Every op again, the cursor on the same op."""
        nav = self.nav
        if nav is None or self.scope is None:
            return
        self.scope, self.summary = None, None
        nav.source.set_scope(None)
        self.query_one(ObjectHeader).hide()
        self.timeline.reset()
        self._filter_changed()
        self.goto(self.seq, center=True)
        self.scan()

    # --- copy and hand off: y Y #, v V ----------------------------------------------------------------

    def _text_of(self, what: str) -> tuple[str, str, str] | None:
        """(text, what it is, file suffix) of the object, the op, or its reference; None: nothing there."""
        d = self.detail
        if d is None or d.seq != self.seq:
            self.tell("the operation is still loading", "warning")
            return None
        if what == "object":
            if d.obj is None:
                self.tell(f"no object at op {d.seq:,}" + (" (it does not exist there)" if d.key else
                                                          ": Y copies the operation") , "warning")
                return None
            return object_yaml(d.obj), f"{safe(str(d.key))} at op {d.seq:,} as YAML", ".yaml"
        if what == "op":
            return op_json(d.op), f"op {d.seq:,} ({d.op.verb}) as JSON", ".json"
        ref = op_ref(d.op)
        return ref, safe(ref), ".txt"

    def action_yank(self, what: str) -> None:
        """Copy to the clipboard through the terminal (OSC 52: it works over SSH and in tmux)."""
        found = self._text_of(what)
        if found is None:
            return
        text, label, _ = found
        self.app.copy_to_clipboard(text)
        lines = text.count("\n") + (not text.endswith("\n"))
        self.tell(f"copied {label} to the clipboard ({lines:,} line{'s' if lines != 1 else ''}, {len(text):,} "
                  "characters)", "information")

    def action_pager(self, what: str) -> None:
        """The same text in $PAGER (else $EDITOR, else less), the debugger suspended meanwhile."""
        found = self._text_of(what)
        if found is None:
            return
        text, label, suffix = found
        command = os.environ.get("PAGER") or os.environ.get("EDITOR") or "less"
        try:
            argv = shlex.split(command)
        except ValueError:
            self.tell(f"$PAGER {command!r} cannot be read as a command")
            return
        fd, path = tempfile.mkstemp(prefix="replay-tui-", suffix=suffix)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(safe_block(text))  # a pager prints it to the terminal: nothing raw
            try:
                with self.app.suspend():
                    status = subprocess.call([*argv, path])
            except Exception as exc:  # SuspendNotSupported (no terminal), the command not found
                self.tell(f"cannot open {label} in {argv[0]}: {exc or type(exc).__name__}")
                return
            self.tell(f"{label} shown in {argv[0]}" + (f" (it exited with status {status})" if status else ""),
                      "information" if not status else "warning")
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass

    # --- search in a pane: ctrl+f, n / N --------------------------------------------------------------

    def _search_target(self) -> Pane:
        """The focused pane, else the visible tab's pane (State, Diff), else the operation pane."""
        focused = self.focused
        if isinstance(focused, (OpPane, StatePane, DiffPane)):
            return focused
        tab = self._tab()
        if tab == "state":
            return self.query_one(StatePane)
        if tab == "diff":
            return self.query_one(DiffPane)
        return self.query_one(OpPane)

    def action_find(self) -> None:
        pane = self._search_target()
        where = PANE_NAMES.get(pane.id or "", "")
        old = self.search_pane.search_query if self.search_pane is not None else ""
        self.app.push_screen(PromptScreen(
            f"Find in {where}", value=old, placeholder="text, e.g. lastSync or 409",
            hint="case-insensitive unless you type a capital · n / N: next / previous match · Esc clears it"
                 " · z unfolds huge values (folded text is not searched)", prompt_id="find-prompt"),
            lambda text: self.find(pane, text) if text else None)

    def find(self, pane: Pane, query: str) -> None:
        if self.search_pane is not None and self.search_pane is not pane:
            self.search_pane.clear_search()
        self.search_pane = pane
        n = pane.find(query)
        self.repaint_bar()
        if not n:
            where = PANE_NAMES.get(pane.id or "", "this pane")
            self.tell(f"no match for {query!r} in {where}", "warning")

    def action_find_next(self, step: int) -> None:
        pane = self.search_pane
        if pane is None or not pane.search_query:
            self.tell("no search: ctrl+f finds text in a pane", "information")
            return
        if pane.find_next(step) < 0:
            self.tell(f"no match for {pane.search_query!r} here", "warning")
        self.repaint_bar()

    def clear_search(self) -> None:
        if self.search_pane is not None:
            self.search_pane.clear_search()
        self.search_pane = None
        self.repaint_bar()

    # --- a diff between any two points (D) ------------------------------------------------------------

    def action_diff_range(self) -> None:
        if self.ses is None or not self.seq:
            return
        marks = self.marks.all() if self.marks is not None else []
        if self.diff_ends is not None:
            value = " ".join("." if e.kind == "cursor" else e.name if e.kind == "mark" else str(e.seq)
                             for e in self.diff_ends)
        else:
            value = f"{marks[0].name} ." if marks else "1 ."
        self.app.push_screen(PromptScreen(
            "Diff between two points", value=value, placeholder="a .  ·  120 340  ·  1 50%",
            hint="two points: a mark, an op number, 50%, 12:03:04, +90s, or . for the cursor (it follows the "
                 "cursor); the object at the cursor and the whole state, earlier to later · empty: each op's own",
            validate=lambda t: None if len(t.split()) in (0, 2) else ("give two points, e.g.  a .", 0),
            prompt_id="diff-prompt"), lambda text: self.diff_between(text) if text is not None else None)

    def diff_between(self, text: str) -> None:
        """Diff between the two points ``text`` names (empty: back to each op's own diff)."""
        parts = text.split()
        if not parts:
            self.set_diff_ends(None)  # type: ignore[attr-defined]
            return
        nav, marks = self.nav, self.marks
        if nav is None or len(parts) != 2:
            self.tell("give two points, e.g.  a .  or  120 340")
            return

        async def resolve() -> tuple[End, End]:
            ends = []
            for part in parts:
                if part in (".", "cursor"):
                    ends.append(CURSOR)
                elif marks is not None and marks.get(part) is not None:
                    ends.append(End("mark", part))
                else:
                    ends.append(End("seq", seq=await resolve_position(nav.session, part)))
            return ends[0], ends[1]

        self.start("move", resolve, self.set_diff_ends)  # type: ignore[attr-defined]

    # --- the marks list (M) ------------------------------------------------------------------------

    def action_marks(self) -> None:
        store = self.marks
        if store is None:
            return

        def ask(title: str, value: str, done: Any) -> None:
            self.app.push_screen(PromptScreen(title, value=value, placeholder="a name", prompt_id="rename-prompt",
                                              validate=lambda t: ("a mark name cannot be empty or contain spaces", 0)
                                              if not t.strip() or " " in t.strip() else None), done)

        def changed(renamed: tuple[str, str] | None = None) -> None:
            self.marks_version += 1
            if self.diff_ends is not None:
                self.diff_ends = ends_after_marks_changed(self.diff_ends, store, renamed)
                self.state_diff = None
                self.goto(self.seq)

        self.app.push_screen(MarksScreen(store, self.jump_to, changed, ask))  # type: ignore[attr-defined]

    # --- columns: + - T ----------------------------------------------------------------------------

    def set_columns(self, choice: ColumnChoice) -> None:
        self.columns = choice
        self.timeline.set_choice(choice)
        self.trend = None
        self.load_trend()
        self.repaint_bar()

    def action_add_column(self) -> None:
        if len(self.columns.fields) >= MAX_FIELDS:
            self.tell(f"at most {MAX_FIELDS} field columns: - removes the last one, T chooses", "warning")
            return
        d = self.detail
        lit = [c.path for c in d.changes if c.kind != "removed"] if d is not None else []
        suggestion = next((p for p in lit if not p.startswith(".metadata")), ".status.phase")
        self.app.push_screen(PromptScreen(
            "Add a column showing a field of each row's object", value=suggestion, placeholder=".status.phase",
            hint="a path: .status.phase · .metadata.generation · .status.conditions[type=Ready].status — its "
                 "value right after each op, lit where the op changed it; the bar draws it over the session",
            validate=check_watch_path, prompt_id="column-prompt"),
            lambda text: self.add_column(text.strip()) if text and text.strip() else None)

    def add_column(self, path: str) -> None:
        if check_watch_path(path) is not None:
            self.tell(f"bad field path {path!r}")
            return
        if path in self.columns.fields:
            return
        self.set_columns(dataclasses.replace(self.columns, fields=(*self.columns.fields, path)))
        self.tell(f"column {safe(path)}: each row's object, right after its op (- removes it, T chooses columns)",
                  "information")

    def action_remove_column(self) -> None:
        if not self.columns.fields:
            self.tell("no field column: + adds one", "information")
            return
        gone = self.columns.fields[-1]
        self.set_columns(dataclasses.replace(self.columns, fields=self.columns.fields[:-1]))
        self.tell(f"column {safe(gone)} removed", "information")

    def action_columns(self) -> None:
        def chosen(result: Any) -> None:
            if result is not None:
                values, fields = result
                self.set_columns(ColumnChoice(**values, fields=fields))

        self.app.push_screen(ColumnsScreen(self.columns, list(OPTIONAL)), chosen)

    # --- errors that matter (!) -----------------------------------------------------------------------

    def action_toggle_expected(self) -> None:
        ses = self.ses
        if ses is None:
            return
        if self.expected is not None:
            self.expected = None
            self.timeline.set_expected(())
            self.tell("showing every error again", "information")
        else:
            self.expected = ExpectedErrors(ses.heavy)
            self.tell(f"hiding expected errors from e / E and the count: {RULE}", "information")
            self.classify_errors()
        self.repaint_bar()

    # --- pane zoom (Z) ---------------------------------------------------------------------------------

    def action_zoom(self) -> None:
        """The focused pane fills the screen (the bars stay); again, or Esc, and back."""
        for z in ZOOMS:
            if self.has_class(z):
                self.remove_class(z)
                return
        focused = self.focused
        if focused is self.timeline or focused is None:
            self.add_class("-zoom-timeline")
        elif isinstance(focused, OpPane):
            self.add_class("-zoom-op")
        else:
            self.add_class("-zoom-tabs")

    # --- serving the session to clients (K) -----------------------------------------------------------

    def action_serve(self) -> None:
        ses = self.ses
        if ses is None:
            return
        if self.serving is not None:
            self.stop_serving()
            self.tell("stopped serving: clients' watches ended, the kubeconfig is removed", "information")
            return
        serving = self.serving = Serving(self.db, ses.info.id, self.seq)
        note = self.app.keep_note(f"serving session {safe(ses.info.name)!r} at op {self.seq:,}...")  # type: ignore[attr-defined]

        def started(served: Any) -> None:
            self.app.withdraw(note)  # type: ignore[attr-defined]
            if serving is not self.serving:
                serving.stop()
                return
            self.repaint_bar()
            self.serving_note = self.app.keep_note(  # type: ignore[attr-defined]  # withdrawn when serving stops
                f"serving {served.url} at the cursor (it follows as you move): point any client at it,"
                f" e.g.  KUBECONFIG={served.kubeconfig} kubectl get all -A  · K again stops", timeout=15)

        def failed(text: str) -> None:
            self.app.withdraw(note)  # type: ignore[attr-defined]
            if serving is self.serving:
                self.serving = None
            self.tell(f"cannot serve: {text}")

        self.start("serve", lambda: asyncio.to_thread(serving.start), started, failed=failed)

    # --- a compared run beside this one (S, then c) ---------------------------------------------------

    def compare_file(self, path: str) -> None:
        """Compare with a run of another recording: its session picker first when it holds several."""
        from replay_tui.engine.store import Recording

        async def sessions() -> list[Any]:
            rec = await Recording.open(path)
            try:
                return await rec.sessions()
            finally:
                await rec.close()

        def listed(infos: list[Any]) -> None:
            if not infos:
                self.tell(f"{path}: holds no session")
            elif len(infos) == 1:
                self.compare_with(path, infos[0].id)
            else:
                self.app.push_screen(SessionPicker(path, infos, title=f"Compare with which run of {safe(path)}?"),
                                     lambda sid: self.compare_with(path, sid) if sid is not None else None)

        self.start("compare-open", sessions, listed)

    def compare_with(self, db: str, session: int) -> None:
        ses = self.ses
        if ses is None:
            return
        if db == self.db and session == ses.info.id:
            self.tell("that is the open session: pick another run to compare it with", "warning")
            return
        note = self.app.keep_note("comparing the runs (engine.compare)...")  # type: ignore[attr-defined]

        def done(compared: Any) -> None:
            self.app.withdraw(note)  # type: ignore[attr-defined]
            if self.ses is not ses:
                self.run_worker(compared.close(), exit_on_error=False)
                return
            self.close_compare()
            self.compared = compared
            other = self.timeline_b
            other.add_class("-shown")
            other.set_source(compared.source)
            other.set_diverged(compared.b_seqs())
            self.timeline.set_diverged(compared.a_seqs())
            n = len(compared.divergences)
            first = compared.comparison.first
            self.tell(f"compared with {safe(compared.label)}: {n} divergence{'s' if n != 1 else ''} (≠ on both "
                      f"timelines; > / < go to the next / previous)"
                      + (f"; the first: {safe(describe(first))}" if first is not None else ""), "information")
            self.align_compared(self.seq)
            self.repaint_bar()

        def failed(text: str) -> None:
            self.app.withdraw(note)  # type: ignore[attr-defined]
            self.tell(f"compare: {text}")

        self.start("compare", lambda: open_compared(self.db, ses.info.id, db, session), done, failed=failed)

    def action_divergence(self, step: int) -> None:
        c = self.compared
        if c is None:
            self.tell("no compared run: S picks one (c compares it beside this session)", "information")
            return
        i = c.step(self.seq, step > 0)
        if i is None:
            self.tell(f"no divergence {'after' if step > 0 else 'before'} this one "
                      f"({len(c.divergences)} in all)", "information")
            return
        c.current = i
        d = c.divergences[i]
        c.at_seq = c.anchors[i]  # where the cursor goes (the rows may arrive later)
        self.goto(c.anchors[i], center=True, jump=True)  # its op in run A, or the op at the same time
        self.align_compared(self.seq, d.seq_b)
        self.repaint_bar()

    def on_unmount(self) -> None:
        self.stop_serving()

