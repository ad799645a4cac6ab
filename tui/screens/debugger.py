"""The debugger screen: the layout, the keys, and what each key and each message does.

Its state, workers, cursor and panes are in ``DebuggerCore`` (``debugger_core.py``); the
logic behind each key is in the plain-Python controllers (``tui.control``).
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import TabbedContent, TabPane, Tabs

from replay_tui.engine.filters import FilterError, parse
from replay_tui.engine.textsafe import safe
from replay_tui.tui.control import reportjob
from replay_tui.tui.control.detail import CURSOR, End, objects_at
from replay_tui.tui.control.navigation import filter_problem
from replay_tui.tui.control.timetravel import ProvenanceWalk, check_watch_path
from replay_tui.tui.messages import ExtendChain, GoToLink, JumpTo, PaletteChanged, RemoveWatch, ShowCycle
from replay_tui.tui.screens import keys
from replay_tui.tui.screens.debugger_core import LABELS, TABS
from replay_tui.tui.screens.debugger_tools import DebuggerTools
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.pickers import FOLLOW_OP, MarkPicker, ObjectPicker, SessionPicker
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.widgets.analysispanel import AnalysisPanel
from replay_tui.tui.widgets.diffpane import DiffPane
from replay_tui.tui.widgets.keybar import KeyBar
from replay_tui.tui.widgets.objectheader import ObjectHeader
from replay_tui.tui.widgets.oppane import OpPane
from replay_tui.tui.widgets.position import PositionBar
from replay_tui.tui.widgets.statepane import StatePane
from replay_tui.tui.widgets.statspanel import StatsPanel
from replay_tui.tui.widgets.timeline import RowClicked, Timeline
from replay_tui.tui.widgets.watchpanel import WatchPanel
from replay_tui.tui.widgets.whypanel import WhyPanel

NARROW = 120  # below this many columns, tab labels drop their key
DIFF_BACK = "\x00extra"  # the mark picker's "this op's own diff" option


class DebuggerScreen(DebuggerTools):
    """One session of a recording: timeline, position bar, operation pane and tabs."""

    BINDINGS = keys.BINDINGS

    def compose(self) -> ComposeResult:
        yield PositionBar(id="position").data_bind(position=DebuggerScreen.position)
        yield ObjectHeader(id="object-header")
        with Horizontal(id="timelines"):
            yield Timeline(id="timeline")
            other = Timeline(id="timeline-b")
            other.can_focus = False
            other.empty_text = "the compared run"
            yield other
        with Horizontal(id="details"):
            with Vertical(id="op-box"):
                yield OpPane(id="op")
            with TabbedContent(id="tabs", initial="tab-state"):
                for name, pane in (("state", StatePane), ("diff", DiffPane), ("stats", StatsPanel),
                                   ("analysis", AnalysisPanel), ("watches", WatchPanel), ("why", WhyPanel)):
                    with TabPane(LABELS[name][0], id=TABS[name]):
                        yield pane(id=name)
        yield KeyBar(*keys.keybar(self.keymap), id="keys")

    def on_mount(self) -> None:
        self.query_one("#op-box").border_title = "Operation"
        for tabs in self.query(Tabs):
            tabs.can_focus = False
        self.timeline.focus()
        self.query_one(OpPane).show_empty("opening the recording...")
        self.query_one(AnalysisPanel).show_analysis(None)
        self.query_one(StatsPanel).show_stats(None, None)
        self.query_one(WatchPanel).show_watches([], 0)
        self.query_one(WhyPanel).show_empty()
        self.set_interval(0.5, self._background)
        infos = self.session_infos
        if self.session_ref in (None, "") and infos is not None and len(infos) > 1:
            live = [i for i in infos if i.live]
            if self.follow_on_open and len(live) == 1:
                self.open_session(live[0].id)  # --follow: the one session still being recorded
            else:
                self.app.push_screen(SessionPicker(self.db, infos), self._session_picked)
        else:
            self.open_session(self.session_ref)

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW
        tabs = self.query_one(TabbedContent)
        for name, (wide, short) in LABELS.items():
            try:
                tabs.get_tab(TABS[name]).label = short if narrow else wide
            except NoMatches:
                pass

    def on_palette_changed(self, message: PaletteChanged) -> None:
        for widget in self.query("*"):
            changed = getattr(widget, "palette_changed", None)
            if callable(changed):
                changed()

    def _session_picked(self, sid: int | None) -> None:
        if sid is None:
            if self.ses is None:
                self.app.exit(0)
            return
        self.open_session(sid)

    def on_row_clicked(self, message: RowClicked) -> None:
        if self.nav is not None:
            self.goto(self.nav.source.seq_at(message.index))

    def on_jump_to(self, message: JumpTo) -> None:
        if 1 <= message.seq <= self.last:
            self.goto(message.seq, center=True, jump=True)
        else:
            self.tell(f"op {message.seq} is outside the session", "warning")

    def on_remove_watch(self, message: RemoveWatch) -> None:
        self.remove_watch(message.obj_id, message.path)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back_out":  # Esc is free for dialogs and the palette unless there is something to leave
            return True if self.back_out_what() else None
        return True

    # --- moving ---------------------------------------------------------------------------

    def action_step(self, n: int) -> None:
        if self.last:
            self.goto(self.seq + n)

    def action_move(self, n: int) -> None:
        if self.nav is not None and self.last:
            self.goto(self.nav.source.seq_at(max(0, min(self.nav.row() + n, self.nav.source.count - 1))))

    def action_page(self, n: int) -> None:
        self.action_move(n * self.timeline.body_height)

    def action_first(self) -> None:
        nav = self.nav
        if nav is not None and nav.source.count:
            self.goto(nav.source.seq_at(0), center=True, jump=True)

    def action_last(self) -> None:
        nav = self.nav
        if nav is not None and nav.source.count:
            src = nav.source
            # the last match under a filter, not the cursor's own ghost row after it
            target = (int(src.matches[-1]) if src.matches else self.seq) if src.filtered else src.seq_at(src.count - 1)
            self.goto(target, center=True, jump=True)

    def moved_to(self, seq: int | None, why: str = "") -> None:
        """Where a search found the cursor a place: a jump (the history records it)."""
        if seq is not None:
            self.goto(seq, center=True, jump=True)
        if why:
            self.tell(why, "information")

    def action_error(self, direction: int) -> None:
        """The next (previous) error among the rows shown (the filter, an object's timeline),
        skipping the expected ones when they are hidden (!)."""
        nav, start = self.nav, self.seq
        if nav is None or not self.last:
            return
        side = "after" if direction > 0 else "before"
        among = nav.source.filter
        expected = self.expected
        what = "error" if expected is None else "unexpected error"
        where = f" among the ops shown ({among.text})" if among is not None else ""
        self.start("move", lambda: nav.find_error(start, direction > 0, among, expected),
                   lambda seq: self.moved_to(seq, "" if seq else f"no {what} {side} op {start:,}{where}"))

    def action_reconcile(self, direction: int) -> None:
        nav, start = self.nav, self.seq
        if nav is None or not self.last:
            return

        def found(span: Any) -> None:
            if span is None:
                self.tell(f"no reconcile {'after' if direction > 0 else 'before'} op {start:,}", "information")
                return
            target = safe("/".join(p for p in (span.kind, span.namespace, span.name) if p))
            self.moved_to(span.start_seq, f"reconcile #{span.id} {safe(span.reconciler)} {target}")

        self.start("move", lambda: nav.find_reconcile(start, direction > 0), found)

    def action_jump(self) -> None:
        if self.ses is not None:
            self.app.push_screen(PromptScreen(
                "Jump to", placeholder="1234 · 50% · 12:03:04 · +90s · 2024-05-01T10:03:04Z · a mark",
                hint="an op number, a percentage, a time of day (UTC), an offset from the start, "
                     "an ISO time, or a mark name", prompt_id="jump-prompt"),
                lambda text: self.jump_to(text.strip()) if text and text.strip() else None)

    def jump_to(self, text: str) -> None:
        """Jump by what a person types; a mark set here wins over the recording's."""
        mark = self.marks.get(text) if self.marks is not None else None
        if mark is not None:
            if 1 <= mark.seq <= self.last:
                self.goto(mark.seq, center=True, jump=True)
            else:
                self.tell(f"mark {safe(text)!r} is at op {mark.seq}, outside the session")
            return
        if self.nav is not None:
            nav = self.nav
            self.start("move", lambda: nav.resolve(text), self.moved_to)

    # --- the filter -------------------------------------------------------------------------------

    def action_filter(self) -> None:
        if self.nav is None:
            return
        flt = self.nav.source.user_filter
        self.app.push_screen(PromptScreen(
            "Filter the timeline", value=flt.text if flt else "",
            placeholder="verb:update kind:Pod ns:shop name:web-* status:409 latency>1s error, or free text",
            hint="fields: verb kind ns name status reason actor latency reconcile error changed=.status.phase"
                 " · ',' alternatives · '*' wildcard · != negates · empty clears · Esc cancels",
            validate=filter_problem, prompt_id="filter-prompt"),
            lambda text: self.apply_filter(text) if text is not None else None)

    def apply_filter(self, text: str) -> None:
        """Filter the timeline; the cursor stays on its op (a ghost row when the filter hides it)."""
        nav = self.nav
        if nav is None:
            return
        try:
            flt = parse(text) if text.strip() else None
        except FilterError as exc:
            self.tell(str(exc))
            return
        nav.source.set_filter(flt)
        self.timeline.reset()
        self._filter_changed()
        self.goto(self.seq, center=True)
        self.scan()

    def action_clear_filter(self) -> None:
        if self.nav is not None and self.nav.source.user_filter is not None:
            self.apply_filter("")
            self.tell("filter cleared", "information")
        self.timeline.focus()

    # --- marks and diffs ----------------------------------------------------------------------

    def action_mark(self) -> None:
        if self.marks is None or not self.seq:
            self.tell("nothing to mark: the session has no operations", "warning")
            return
        seq = self.seq
        self.app.push_screen(PromptScreen(
            f"Mark op {seq:,} as", value=self.marks.next_name(), placeholder="a name",
            hint="kept beside your state (not in the recording) · ' jumps to a mark · d diffs against one",
            validate=lambda t: ("a mark name cannot be empty or contain spaces", 0)
            if not t.strip() or " " in t.strip() else None, prompt_id="mark-prompt"),
            lambda name: self.set_mark(name.strip(), seq) if name else None)

    def set_mark(self, name: str, seq: int) -> None:
        assert self.marks is not None
        problem = self.marks.set(name, seq)
        self.marks_version += 1
        if problem:
            self.tell(problem, "warning")
        else:
            self.tell(f"mark '{safe(name)}' set at op {seq:,}", "information")
        if self.diff_ends is not None and any(e.kind == "mark" and e.name == name for e in self.diff_ends):
            self.goto(self.seq)

    def action_goto_mark(self) -> None:
        if self.marks is None or not self.marks.all():
            self.tell("no marks yet: m sets one", "warning")
            return
        self.app.push_screen(MarkPicker("Go to mark", self.marks.all(), own=set(self.marks.own)),
                             lambda name: self.jump_to(name) if name else None)

    def action_diff_mark(self) -> None:
        if self.marks is None or not self.marks.all():
            self.tell("no marks yet: m sets one, then d diffs against it", "warning")
            return
        marks = self.marks.all()
        if len(marks) == 1 and self.diff_ends is None:
            self.pick_diff_mark(marks[0].name)
            return
        current = self.diff_ends[0].name if self.diff_ends is not None and self.diff_ends[0].kind == "mark" else None
        self.app.push_screen(MarkPicker(
            "Diff the object (and the whole state) between which mark and the cursor?", marks,
            own=set(self.marks.own), extra="this op's own before → after (no mark)" if self.diff_ends else None,
            current=current), self.pick_diff_mark)

    def pick_diff_mark(self, name: str | None) -> None:
        if name is None:
            return
        self.set_diff_ends(None if name == DIFF_BACK else (End("mark", name), CURSOR))

    def set_diff_ends(self, ends: tuple[End, End] | None) -> None:
        """Diff between these two points (None: each op's own before and after), in the Diff tab."""
        self.diff_ends = ends
        self.state_diff = None
        self.action_show_tab("diff")
        if self.seq:
            self.goto(self.seq)

    # --- objects, folding, tabs, sessions, help -------------------------------------------------

    def action_pick_object(self) -> None:
        ses, seq = self.ses, self.seq
        if ses is None or not seq:
            return
        current = self.pinned if self.pinned is not None else (self.detail.obj_id if self.detail else None)

        def found(objects: Any) -> None:
            self.app.push_screen(ObjectPicker(seq, objects, current), self._object_picked)

        self.start("objects", lambda: objects_at(ses.heavy, seq), found)

    def _object_picked(self, obj_id: int | None) -> None:
        if obj_id is not None:
            self.pinned = None if obj_id == FOLLOW_OP else obj_id
            self.pinned_label = ""
            self.action_show_tab("state")
            self.goto(self.seq)

    def action_toggle_fold(self) -> None:
        self.unfold = not self.unfold
        self.tell("showing everything: huge values and noise fields (managedFields...)" if self.unfold
                  else "folding huge values and noise fields", "information")
        self._stale_tabs = {"state", "diff"}
        self._show_tab_content(keep_scroll=True)
        if self.detail is not None:
            self.query_one(OpPane).show_detail(self.detail, self.start_ns, fold=not self.unfold)

    def on_key(self, event: Any) -> None:
        if event.key == "enter" and self.focused is self.query_one(StatePane):
            event.stop()
            self.action_toggle_fold()

    def action_show_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = TABS[name]
        self._tab_shown(name)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._tab_shown(next((k for k, v in TABS.items() if v == event.pane.id), "state"))

    def _tab_shown(self, name: str) -> None:
        if name == "watches":
            self._show_watches()
            ws = self.watches
            if ws is not None and ws.stale:  # the followed session grew while the tab was hidden
                self.start("watch-refresh", ws.refresh, lambda _: self._show_watches())
        if name == "stats":
            job = self.jobs["stats"]
            self.query_one(StatsPanel).show_stats(job.data, self.cursor_ts, job.error)
        if name == "analysis":
            self.jobs.want("analysis")
            self._background()
        self._show_tab_content(keep_scroll=True)

    def action_pick_session(self) -> None:
        """Open another session, or compare one (of this file or another recording) beside this one."""
        infos = self.session_infos or []
        if self.ses is None:
            return
        self.app.push_screen(SessionPicker(self.db, infos, self.ses.info.id, compare=True,
                                           comparing=self.compared.label if self.compared else None),
                             self._session_chosen)

    def _session_chosen(self, choice: tuple[str, int] | None) -> None:
        if choice is None:
            return
        what, sid = choice
        if what == "open":
            if self.ses is None or sid != self.ses.info.id:
                self.open_session(sid)
        elif what == "compare":
            self.compare_with(self.db, sid)
        elif what == "close":
            self.close_compare()
            self.tell("comparison closed", "information")
        elif what == "file":
            self.app.push_screen(PromptScreen(
                "Compare with a run from which recording?", placeholder="fork.db", prompt_id="compare-prompt",
                hint="a recording file (its session picker follows when it holds several); Esc cancels"),
                lambda text: self.compare_file(text.strip()) if text and text.strip() else None)

    def action_help(self) -> None:
        if not isinstance(self.app.screen, HelpScreen):
            keymap = str(getattr(self.app, "keymap_file", ""))
            self.app.push_screen(HelpScreen(keys.help_rows(self.keymap), keymap=keymap))

    # --- time travel: watched fields, provenance --------------------------------------------------

    def action_watch_field(self) -> None:
        d = self.detail
        if self.watches is None or d is None or d.obj_id is None or d.key is None:
            self.tell("no object at the cursor to watch: move to an op on one, or o picks one", "warning")
            return
        lit = [c.path for c in d.changes if c.kind != "removed"]
        # the field this op changed (what the state pane highlights), bookkeeping under .metadata last
        suggestion = next((p for p in lit if not p.startswith(".metadata")), lit[0] if lit else "")
        obj_id, key = d.obj_id, d.key
        self.app.push_screen(PromptScreen(
            f"Watch a field of {safe(str(key))}", value=suggestion, placeholder=".spec.replicas",
            hint="a path: .metadata.labels.app · .status.conditions[type=Ready].status · .spec.containers[0].image"
                 " · c / C then continue to its next / previous change · 5 shows the Watches tab",
            validate=check_watch_path, prompt_id="watch-prompt"),
            lambda text: self.add_watch(obj_id, text.strip(), key) if text and text.strip() else None)

    def add_watch(self, obj_id: int, path: str, key: Any = None) -> None:
        ws = self.watches
        if ws is None:
            return

        def added(index: Any) -> None:
            if ws is not self.watches:
                return  # built for the previous session
            self._show_watches()
            n = len(index)
            self.tell(f"watching {safe(index.label)}: {n:,} change{'s' if n != 1 else ''} in the session"
                      " · c / C: next / previous change · 5: Watches tab", "information")

        self.start("watch", lambda: ws.add(obj_id, path, key), added, exclusive=False,
                   failed=lambda text: self.tell(f"watch {path!r}: {text}"))

    def remove_watch(self, obj_id: int, path: str) -> None:
        label = self.watches.remove(obj_id, path) if self.watches is not None else None
        if label is not None:
            self.tell(f"stopped watching {safe(label)}", "information")
        self._show_watches()

    def action_remove_watch(self) -> None:
        """x: in the Watches tab, the highlighted watch; elsewhere, say where watches are removed."""
        if self.watches is None or not len(self.watches):
            self.tell("no watched fields: w watches a field of the object in the State tab", "warning")
        elif self._tab() != "watches":
            self.action_show_tab("watches")
            self.tell("x removes the highlighted watch here, in the Watches tab", "information")
        else:
            index = self.query_one(WatchPanel).selected_watch()
            if index is None:
                self.tell("highlight a watch (↑/↓ in the Watches tab), then x removes it", "information")
            else:
                self.remove_watch(index.obj_id, index.path)

    def action_continue_watch(self, direction: int) -> None:
        ws, start = self.watches, self.seq
        if ws is None or not len(ws):
            self.tell("no watched fields: press w to watch a field of the object in the state pane", "warning")
            return
        if not self.last:
            return
        side = "after" if direction > 0 else "before"
        self.start("move", lambda: ws.continue_from(start, direction > 0),
                   lambda found: self.moved_to(found.seq, found.text) if found is not None
                   else self.tell(f"no change of a watched field {side} op {start:,}", "information"))

    def action_provenance(self) -> None:
        """The first p explains the object at the cursor in the Why tab; each further p goes one link back."""
        ses, seq, pinned = self.ses, self.seq, self.pinned
        if ses is None or not seq:
            return
        if self.walk is not None and self.walk.at == seq:
            self._walk_on()
            return

        def explained(result: tuple[Any, int | None]) -> None:
            chain, obj_id = result
            if seq != self.seq:
                return  # the cursor moved on meanwhile
            if chain is None or obj_id is None:
                self.tell(f"op {seq:,} addresses no single object: nothing to explain (o picks an object)", "warning")
            elif not chain.links:
                self.tell(f"no provenance for {safe(chain.object)} at op {seq:,}", "warning")
            else:
                self.walk = ProvenanceWalk(chain, seq, obj_id)
                self.action_show_tab("why")
                self._walk_on()

        self.start("provenance", lambda: ProvenanceWalk.explain(ses.heavy, seq, pinned), explained)

    def _walk_on(self) -> None:
        """The next link back: past the last one of a chain cut at its limit, read further first."""
        walk = self.walk
        assert walk is not None
        i = walk.next_link()
        if i is None:
            if walk.extendable:
                self.on_extend_chain(ExtendChain(), then_step=True)
            else:
                self._show_walk()
                self.query_one(WhyPanel).highlighted = self.query_one(WhyPanel).option_count - 1
            return
        self._go_to_link(i)

    def _go_to_link(self, i: int) -> None:
        walk = self.walk
        if walk is None:
            return
        target = walk.target(i, self.last)
        self._show_walk()
        if target is not None:
            self.goto(target, center=True, jump=True)
            walk.at = self.seq  # (goto forgets a walk the cursor left; it is on the walk's link)

    def _show_walk(self, extending: bool = False) -> None:
        if self.walk is not None:
            self.query_one(WhyPanel).show_chain(self.walk, self.last, extending=extending)

    def on_go_to_link(self, message: GoToLink) -> None:
        if self.walk is not None:
            self._go_to_link(message.index)

    def on_extend_chain(self, message: ExtendChain, then_step: bool = False) -> None:
        walk, ses = self.walk, self.ses
        if walk is None or ses is None or not walk.extendable:
            return
        self._show_walk(extending=True)

        def extended(_: Any) -> None:
            if walk is not self.walk:
                return
            if then_step and walk.next_link() is not None:
                self._walk_on()
            else:
                self._show_walk()

        self.start("provenance", lambda: walk.extend(ses.heavy), extended)

    def on_show_cycle(self, message: ShowCycle) -> None:
        """Enter on a causality cycle (Analysis): its rounds in the Why tab, the cursor on the first round."""
        cycle = message.cycle
        rounds = [r for r in cycle.get("rounds_sample") or [] if isinstance(r, dict)]
        first = rounds[0].get("write_seq") if rounds else cycle.get("first_seq")
        self.walk = None
        panel = self.query_one(WhyPanel)
        panel.show_cycle(cycle, first if isinstance(first, int) else None)
        self.action_show_tab("why")
        panel.focus()  # Enter goes to a round from here
        if rounds:
            panel.highlighted = panel.get_option_index("round-0")
        if isinstance(first, int) and 1 <= first <= self.last:
            self.goto(first, center=True, jump=True)

    # --- follow, report ---------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        if self.ses is None:
            return
        if self.following:
            self.following = False
            self.workers.cancel_group(self, "follow")
            self.tell("stopped following", "information")
            return
        self.start_follow()
        self.tell("following" + (": this session has ended, no new ops will come" if self.ses.ended else
                                 ": new operations appear as they are recorded"), "information")
        self.action_last()

    def action_write_report(self) -> None:
        """Ask where (prefilled); a bad name is caught in the prompt, an existing file needs a yes."""
        if self.ses is None:
            return
        if self.report_writing is not None:
            self.tell(f"a report is already being written to {self.report_writing}", "warning")
            return
        name = self.ses.info.name
        self.app.push_screen(PromptScreen(
            f"Write the report of session {safe(name)!r} to", value=reportjob.default_path(self.db, name),
            placeholder="report.html", validate=lambda text: reportjob.problem(text, self.db),
            prompt_id="report-prompt",
            hint=f"the format follows the extension: {reportjob.reportfile.EXTENSION_LIST}; "
                 f"a relative path is from {reportjob.here()}.  Enter writes, Esc cancels."),
            lambda text: self.write_report(text.strip()) if text and text.strip() else None)
