"""The interactive debugger: a Textual app over the engine's public API.

Layout: a position bar, the timeline (one Line-API ScrollView over every op),
and below it the operation pane beside tabs for the object's state, diffs,
statistics and analysis.  The cursor (``self.seq``) lives in the app and moves
synchronously; everything that touches the database runs in an exclusive
worker that posts a message back, on one of four read-only connections:

* ``main``   timeline pages, moves that search (errors, reconciles, jumps), filter scans, follow;
* ``detail`` what the panes show at the cursor (op, object, before/after);
* ``heavy``  whole-state diffs against a mark, the objects for the picker;
* ``stats``  statistics and analysis;

and the session report (``R``) opens a fifth for as long as it is being built.

Holding a step key queues nothing: each press moves the cursor, repaints the
timeline row and the bar at once, and replaces (cancels) the detail worker of
the previous press.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial, wraps
from importlib import resources
from typing import Any

import msgspec
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane, Tabs

from replay_tui.cli import report as reportfile
from replay_tui.cli.commands import opened
from replay_tui.engine import analysis
from replay_tui.engine import diff as diffmod
from replay_tui.engine import provenance as provmod
from replay_tui.engine import report as reportmod
from replay_tui.engine import state as statemod
from replay_tui.engine import stats as statsmod
from replay_tui.engine import watch as watchmod
from replay_tui.engine.cursor import resolve_position
from replay_tui.engine.filters import FilterError, parse
from replay_tui.engine.follow import follow as follow_session
from replay_tui.engine.format import Mark, SessionInfo
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Recording, Session
from replay_tui.tui.marks import MarkStore
from replay_tui.tui.messages import (
    AnalysisReady,
    CyclesReady,
    Detail,
    DetailLoaded,
    FollowTick,
    MatchesFound,
    MoveResolved,
    Notice,
    ObjectsReady,
    ProvenanceReady,
    ReportWritten,
    SessionOpened,
    StateDiffReady,
    StatsReady,
    WatchAdded,
)
from replay_tui.tui.screens.help import HelpScreen
from replay_tui.tui.screens.pickers import FOLLOW_OP, MarkPicker, ObjectPicker, SessionPicker
from replay_tui.tui.screens.prompt import PromptScreen
from replay_tui.tui.source import SCAN_WINDOW, TimelineSource, retrying
from replay_tui.tui.widgets.diffpane import DiffPane
from replay_tui.tui.widgets.oppane import OpPane
from replay_tui.tui.widgets.position import Position, PositionBar
from replay_tui.tui.widgets.statepane import StatePane, short_value
from replay_tui.tui.widgets.statspanel import AnalysisPanel, StatsPanel
from replay_tui.tui.widgets.timeline import Timeline
from replay_tui.tui.widgets.watchpanel import WatchPanel

STATS_DELAY_S = 0.01  # after the first paint: statistics come from the rollups (engine.rollups), milliseconds
STATS_EVERY_S = 2.0  # while following: recompute statistics at most this often
ANALYSIS_EVERY_S = 10.0
STATE_DIFF_DEBOUNCE_S = 0.15
FOLLOW_POLL_S = 0.05  # one index lookup per poll; half of engine.follow's default, for the 500 ms budget

TABS = {"state": "tab-state", "diff": "tab-diff", "stats": "tab-stats", "analysis": "tab-analysis",
        "watches": "tab-watches"}


def _while_shown(handler: Callable[..., None]) -> Callable[..., None]:
    """A worker's result that arrives while the app is closing finds no widgets: drop it."""
    @wraps(handler)
    def wrapper(self: Any, *args: Any) -> None:
        try:
            handler(self, *args)
        except NoMatches:
            pass

    return wrapper


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, RecordingError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


class _Background:
    """One recurring whole-session computation (statistics, analysis, cycles): is it running,
    when did it last start, what did it cost (recomputing a growing recording waits 5x that)."""

    __slots__ = ("cost", "running", "started")

    def __init__(self) -> None:
        self.running = False
        self.started = 0.0
        self.cost = 0.0


class ReplayApp(App[int]):
    """replay-tui's main screen."""

    # Package data, read through importlib.resources so an installed wheel (or a zip) finds it.
    CSS = resources.files("replay_tui.tui").joinpath("app.tcss").read_text(encoding="utf-8")
    TITLE = "replay-tui"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("right,l", "step(1)", "Step", key_display="→/l"),
        Binding("left,h", "step(-1)", "Back", key_display="←/h"),
        Binding("down,j", "move(1)", "Next row", show=False, key_display="↓/j"),
        Binding("up,k", "move(-1)", "Previous row", show=False, key_display="↑/k"),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("g,home", "first", "First op", show=False, key_display="g"),
        Binding("G,end", "last", "Last op", show=False, key_display="G"),
        Binding("colon", "jump", "Jump", key_display=":"),
        Binding("e", "next_error", "Next error"),
        Binding("E", "prev_error", "Previous error", show=False),
        Binding("right_square_bracket", "next_reconcile", "Next reconcile", show=False, key_display="]"),
        Binding("left_square_bracket", "prev_reconcile", "Previous reconcile", show=False, key_display="["),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter", show=False, key_display="esc"),
        Binding("m", "mark", "Mark"),
        Binding("apostrophe", "goto_mark", "Go to mark", show=False, key_display="'"),
        Binding("d", "diff_mark", "Diff vs mark"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("o", "pick_object", "Pick object", show=False),  # the footer is full at 160 columns
        Binding("z", "toggle_noise", "Show/hide noise fields", show=False),
        Binding("w", "watch_field", "Watch field"),
        Binding("c", "continue_watch(1)", "Next watched change"),
        Binding("C", "continue_watch(-1)", "Previous watched change", show=False),
        Binding("p", "provenance", "Provenance (who made this version)", show=False),
        Binding("1", "show_tab('state')", "State tab", show=False),
        Binding("2", "show_tab('diff')", "Diff tab", show=False),
        Binding("3", "show_tab('stats')", "Stats tab", show=False),
        Binding("4", "show_tab('analysis')", "Analysis tab", show=False),
        Binding("5", "show_tab('watches')", "Watches tab", show=False),
        Binding("S", "pick_session", "Switch session", show=False),
        Binding("R", "write_report", "Write report (HTML/Markdown/JSON)", show=False),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db: str, session: str | int | None = None, *, follow: bool = False,
                 sessions: list[SessionInfo] | None = None, persist_marks: bool = True):
        super().__init__()
        self.db = db
        self.session_ref = session
        self.follow_on_open = follow
        self.session_infos = sessions
        self.persist_marks = persist_marks
        self.main_rec: Recording | None = None
        self.detail_rec: Recording | None = None
        self.heavy_rec: Recording | None = None
        self.stats_rec: Recording | None = None
        self.session: Session | None = None
        self.dses: Session | None = None
        self.hses: Session | None = None
        self.sses: Session | None = None
        self.source: TimelineSource | None = None
        self.marks: MarkStore | None = None
        self.seq = 0
        self.start_ns = 0
        self.following = False
        self.detail: Detail | None = None
        self.detail_key: Any = None
        self.pinned: int | None = None
        self.diff_mark: str | None = None
        self.state_diff: StateDiffReady | None = None
        self.stats_data: dict[str, Any] | None = None
        self.analysis_data: dict[str, Any] | None = None
        self.show_noise = False
        self._snap_pending = False
        self._scan_running = False
        self._stats = _Background()  # statistics, the analysis, the causality cycles: each in a worker
        self._analysis = _Background()
        self._cycles = _Background()
        self._seen_last = 0
        self._ended_watch: Any = None
        self._shown_ended = False
        self._stale_tabs: set[str] = set()
        self._stats_scheduled = False
        self.notices: deque[tuple[str, str]] = deque(maxlen=50)  # (severity, text): what the user was told
        self.watches: watchmod.WatchSet | None = None  # the fields watched (w), over the heavy connection
        self._watch_gen = 0  # bumped per session: a watch built for the previous one is dropped
        self.provenance: dict[str, Any] | None = None  # the chain p walks: {"chain", "i", "at"}
        self.cycles_data: list[dict[str, Any]] | None = None
        self.report_writing: str | None = None  # the path of the report being written (R), if any
        self._report_note: Notification | None = None

    # --- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield PositionBar(id="position")
        yield Timeline(id="timeline")
        with Horizontal(id="details"):
            with Vertical(id="op-box"):
                yield OpPane(id="op")
            with TabbedContent(id="tabs", initial="tab-state"):
                with TabPane("State [1]", id="tab-state"):
                    yield StatePane(id="state")
                with TabPane("Diff [2]", id="tab-diff"):
                    yield DiffPane(id="diff")
                with TabPane("Stats [3]", id="tab-stats"):
                    yield StatsPanel(id="stats")
                with TabPane("Analysis [4]", id="tab-analysis"):
                    yield AnalysisPanel(id="analysis")
                with TabPane("Watches [5]", id="tab-watches"):
                    yield WatchPanel(id="watches")
        yield Footer()

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    def on_mount(self) -> None:
        self.query_one("#op-box").border_title = "Operation"
        for tabs in self.query(Tabs):
            tabs.can_focus = False
        self.timeline.focus()
        self.query_one(OpPane).show_empty("opening the recording...")
        self.query_one(AnalysisPanel).show_analysis(None)
        self.query_one(StatsPanel).show_stats(None, None)
        self.query_one(WatchPanel).show_watches([], 0)
        infos = self.session_infos
        if self.session_ref in (None, "") and infos is not None and len(infos) > 1:
            live = [i for i in infos if i.live]
            if self.follow_on_open and len(live) == 1:
                self.open_session(live[0].id)  # --follow: the one session still being recorded
                return
            self.push_screen(SessionPicker(self.db, infos), self._session_picked)
        else:
            self.open_session(self.session_ref)

    def _session_picked(self, sid: int | None) -> None:
        if sid is None:
            if self.session is None:
                self.exit(0)
            return
        self.open_session(sid)

    # --- opening -------------------------------------------------------------------

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_session(self, ref: str | int | None) -> None:
        try:
            if self.main_rec is None:
                self.main_rec = await Recording.open(self.db)
                self.detail_rec = await self.main_rec.clone()
                self.heavy_rec = await self.main_rec.clone()
                self.stats_rec = await self.main_rec.clone()
            assert self.detail_rec and self.heavy_rec and self.stats_rec
            ses = await self.main_rec.session(ref)
            await ses.refresh()
            self.session_infos = await self.main_rec.sessions()
            dses = await self.detail_rec.session(ses.id)
            hses = await self.heavy_rec.session(ses.id)
            sses = await self.stats_rec.session(ses.id)
            first = await ses.rows(1, 1)
            start_ns = first[0].ts_ns if first else (ses.info.started_ns or 0)
            marks = await ses.marks()
        except Exception as exc:
            self.post_message(Notice(_error_text(exc)))
            return
        self.session, self.dses, self.hses, self.sses = ses, dses, hses, sses
        self.post_message(SessionOpened(ses.info, ses.last, start_ns, marks))

    @_while_shown
    def on_session_opened(self, message: SessionOpened) -> None:
        assert self.session is not None
        for group in ("follow", "scan", "detail", "move", "statediff", "stats", "analysis", "objects",
                      "watch", "provenance", "cycles"):
            self.workers.cancel_group(self, group)  # whatever ran for the previous session
        self._scan_running = self._stats.running = self._analysis.running = self._cycles.running = False
        assert self.hses is not None
        self.watches = watchmod.WatchSet(self.hses)
        self._watch_gen += 1
        self.provenance = None
        self.cycles_data = None
        self._show_watches()
        if self.following:
            self.follow_on_open = True  # keep following, now this session
        self.start_ns = message.start_ns
        self.marks = MarkStore(self.db, message.info.name, message.marks, persist=self.persist_marks)
        if self.marks.load_error:
            self.notify(self.marks.load_error, severity="warning")
        self.source = TimelineSource(self.session)
        self.pinned = None
        self.diff_mark = None
        self.detail = None
        self.stats_data = None
        self.analysis_data = None
        self._stats_scheduled = False
        timeline = self.timeline
        timeline.empty_text = "no operations yet" + (" (following: new ops appear here)" if self.follow_on_open else "")
        timeline.set_source(self.source)
        timeline.set_marks(m.seq for m in self.marks.all())
        self.title = f"replay-tui: {self.db}"
        self.sub_title = message.info.name
        last = message.last
        self._seen_last = last
        if last == 0:
            self.seq = 0
            self.notify(f"session {message.info.name!r} has no operations"
                        + (" yet: waiting for them" if self.follow_on_open or message.info.live else ""),
                        severity="warning")
            self.query_one(OpPane).show_empty("no operations")
            self.query_one(StatePane).show_empty("")
            self.query_one(DiffPane).show_empty("")
            self.update_bar()
        else:
            self._goto(last if self.follow_on_open else 1, center=True)
        if last == 0:
            self.load_stats()
        # otherwise statistics start once the first screen is painted (on_detail_loaded), and analysis
        # once statistics are done: one heavy job at a time, none racing the first paint
        if self.follow_on_open:
            self.follow_on_open = False
            self._start_follow()

    # --- the cursor -------------------------------------------------------------------

    @property
    def last(self) -> int:
        return self.session.last if self.session else 0

    def _goto(self, seq: int, *, center: bool = False) -> None:
        """Move the cursor: repaint the row and the bar now, load the panes in a worker."""
        if self.source is None or self.last == 0:
            return
        seq = max(1, min(seq, self.last))
        self.seq = seq
        if self.provenance is not None and seq != self.provenance["at"]:
            self.provenance = None  # moved elsewhere: the next p explains the new position
        index, exact = self.source.index_of(seq)
        self.timeline.select(index, exact, center=center)
        self.update_bar()
        if self._tab() == "watches":
            self._show_watches()
        self.load_detail(seq, self.pinned, self._diff_mark_obj())
        if self.diff_mark is not None:
            self.load_state_diff()
        if self.stats_data is not None and self._tab() == "stats":
            self.query_one(StatsPanel).show_stats(None, self._cursor_ts())

    def _cursor_ts(self) -> int | None:
        row = self.timeline.row_for_seq(self.seq)
        if row is not None:
            return row.ts_ns
        if self.detail is not None and self.detail.seq == self.seq:
            return self.detail.op.ts_ns
        return None

    def _diff_mark_obj(self) -> Mark | None:
        if self.diff_mark is None or self.marks is None:
            return None
        return self.marks.get(self.diff_mark)

    def _tab(self) -> str:
        active = self.query_one(TabbedContent).active
        return next((k for k, v in TABS.items() if v == active), "state")

    def update_bar(self) -> None:
        src = self.source
        ses = self.session
        marks_here = ", ".join(m.name for m in self.marks.at(self.seq)) if self.marks and self.seq else ""
        pinned = ""
        if self.pinned is not None and self.detail is not None and self.detail.key is not None:
            pinned = str(self.detail.key)
        mark = self._diff_mark_obj()
        in_filter = True
        if src is not None and src.filtered and self.seq:
            in_filter = src.index_of(self.seq)[1]
        self.query_one(PositionBar).show(Position(
            session=ses.info.name if ses else "",
            seq=self.seq, last=self.last, ts_ns=self._cursor_ts(), start_ns=self.start_ns,
            following=self.following, ended=bool(ses and ses.info.ended_ns is not None),
            filter_text=src.filter.text if src and src.filter else "",
            matches=src.count if src and src.filtered else 0,
            scanning=bool(src and src.scanning), in_filter=in_filter, marks_here=marks_here,
            diff_mark=f"'{mark.name}' (op {mark.seq:,})" if mark else "", pinned=pinned))

    # --- actions: moving -------------------------------------------------------------------

    def action_step(self, n: int) -> None:
        if self.last:
            self._goto(self.seq + n)

    def action_move(self, n: int) -> None:
        """Move the timeline selection: with a filter, from match to match."""
        src = self.source
        if src is None or src.count == 0:
            return
        index, exact = src.index_of(self.seq)
        if not exact and src.filtered:
            # index is the first match after the cursor (or the last match)
            if n > 0:
                target = index if src.seq_at(index) > self.seq else index + n
            else:
                target = index + n if src.seq_at(index) > self.seq else index + n + 1
        else:
            target = index + n
        target = max(0, min(target, src.count - 1))
        self._goto(src.seq_at(target))

    def action_page(self, n: int) -> None:
        self.action_move(n * self.timeline.body_height)

    def action_first(self) -> None:
        src = self.source
        if src is not None and src.count:
            self._goto(src.seq_at(0))

    def action_last(self) -> None:
        src = self.source
        if src is not None and src.count:
            self._goto(src.seq_at(src.count - 1))

    def on_timeline_row_clicked(self, message: Timeline.RowClicked) -> None:
        if self.source is not None:
            self._goto(self.source.seq_at(message.index))

    def on_watch_panel_jump_to(self, message: WatchPanel.JumpTo) -> None:
        self.on_analysis_panel_jump_to(message)  # type: ignore[arg-type]

    def on_analysis_panel_jump_to(self, message: AnalysisPanel.JumpTo) -> None:
        if 1 <= message.seq <= self.last:
            self._goto(message.seq, center=True)
        else:
            self.notify(f"op {message.seq} is outside the session", severity="warning")

    @_while_shown
    def on_move_resolved(self, message: MoveResolved) -> None:
        self._goto(message.seq, center=True)
        if message.why:
            self.notify(message.why, timeout=2)

    @work(exclusive=True, group="move", exit_on_error=False)
    async def _search(self, kind: str, forward: bool) -> None:
        ses = self.session
        if ses is None or self.last == 0:
            return
        start = self.seq
        try:
            if kind == "error":
                seq = await retrying(lambda: ses.next_error(start, forward))
                if seq is None:
                    self.post_message(Notice(f"no error {'after' if forward else 'before'} op {start:,}",
                                             "information"))
                    return
                self.post_message(MoveResolved(seq))
            else:
                span = await retrying(lambda: ses.next_reconcile(start, forward))
                if span is None:
                    self.post_message(Notice(f"no reconcile {'after' if forward else 'before'} op {start:,}",
                                             "information"))
                    return
                target = "/".join(p for p in (span.kind, span.namespace, span.name) if p)
                self.post_message(MoveResolved(span.start_seq, f"reconcile #{span.id} {span.reconciler} {target}"))
        except Exception as exc:
            self.post_message(Notice(_error_text(exc)))

    def action_next_error(self) -> None:
        self._search("error", True)

    def action_prev_error(self) -> None:
        self._search("error", False)

    def action_next_reconcile(self) -> None:
        self._search("reconcile", True)

    def action_prev_reconcile(self) -> None:
        self._search("reconcile", False)

    # --- jump -------------------------------------------------------------------------

    def action_jump(self) -> None:
        if self.session is None:
            return
        self.push_screen(PromptScreen(
            "Jump to", placeholder="1234 · 50% · 12:03:04 · +90s · 2024-05-01T10:03:04Z · a mark",
            hint="an op number, a percentage, a time of day (UTC), an offset from the start, "
                 "an ISO time, or a mark name", prompt_id="jump-prompt"), self._jump_entered)

    def _jump_entered(self, text: str | None) -> None:
        if text is None or not text.strip():
            return
        self.jump_to(text.strip())

    def jump_to(self, text: str) -> None:
        """Jump by what a person types; a TUI mark wins over the recording's."""
        if self.marks is not None:
            mark = self.marks.get(text)
            if mark is not None:
                if 1 <= mark.seq <= self.last:
                    self._goto(mark.seq, center=True)
                else:
                    self.notify(f"mark {text!r} is at op {mark.seq}, outside the session", severity="error")
                return
        self._resolve(text)

    @work(exclusive=True, group="move", exit_on_error=False)
    async def _resolve(self, text: str) -> None:
        ses = self.session
        if ses is None:
            return
        try:
            seq = await retrying(lambda: resolve_position(ses, text))
        except Exception as exc:
            self.post_message(Notice(_error_text(exc)))
            return
        self.post_message(MoveResolved(seq))

    # --- filter ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        if self.source is None:
            return
        current = self.source.filter.text if self.source.filter else ""

        def check(text: str) -> tuple[str, int] | None:
            try:
                parse(text)
            except FilterError as exc:
                return exc.short, exc.column
            return None

        self.push_screen(PromptScreen(
            "Filter the timeline", value=current,
            placeholder="verb:update kind:Pod ns:shop name:web-* status:409 latency>1s error, or free text",
            hint="fields: verb kind ns name status reason actor latency reconcile error changed=.status.phase"
                 " · ',' alternatives · '*' wildcard · != negates · empty clears · Esc cancels",
            validate=check, prompt_id="filter-prompt"), self._filter_entered)

    def _filter_entered(self, text: str | None) -> None:
        if text is None:
            return
        self.apply_filter(text)

    def apply_filter(self, text: str) -> None:
        if self.source is None:
            return
        try:
            flt = parse(text) if text.strip() else None
        except FilterError as exc:
            self.notify(str(exc), severity="error")
            return
        self.source.set_filter(flt)
        self.timeline.reset()
        if flt is None:
            self._goto(self.seq, center=True)
            return
        self._snap_pending = True
        self.update_bar()
        self._scan(self.source.generation)

    def action_clear_filter(self) -> None:
        if self.source is not None and self.source.filtered:
            self.apply_filter("")
            self.notify("filter cleared", timeout=2)
        self.timeline.focus()

    @work(exclusive=True, group="scan", exit_on_error=False)
    async def _scan(self, generation: int) -> None:
        src = self.source
        ses = self.session
        if src is None or ses is None or src.filter is None:
            return
        flt = src.filter
        self._scan_running = True
        try:
            lo = src.scanned_to
            while src.generation == generation:
                last = ses.last
                if lo >= last:
                    break
                hi = min(lo + SCAN_WINDOW, last)
                seqs = await src.scan(flt, lo, hi)
                self.post_message(MatchesFound(generation, seqs, hi, hi >= ses.last))
                lo = hi
        except Exception as exc:
            self.post_message(Notice(f"filter: {_error_text(exc)}"))
        finally:
            self._scan_running = False

    @_while_shown
    def on_matches_found(self, message: MatchesFound) -> None:
        src = self.source
        if src is None or message.generation != src.generation:
            return
        old = src.count
        stick = self.following and not self._snap_pending and (
            old == 0 or self.seq >= src.seq_at(old - 1))
        src.add_matches(message.seqs, message.scanned_to)
        self.timeline.grew(old)
        if stick and src.count > old:
            self._goto(src.seq_at(src.count - 1))
            return
        if self._snap_pending and (src.scanned_to >= self.seq or message.done):
            index, exact = src.index_of(self.seq)
            if src.count == 0:
                if message.done:
                    self._snap_pending = False
                    self.notify(f"no op matches {src.filter.text if src.filter else ''!r}", severity="warning")
            else:
                self._snap_pending = False
                if not exact:
                    self._goto(src.seq_at(index), center=True)
                else:
                    self.timeline.select(index, True, center=True)
        elif not self._snap_pending and self.seq:
            index, exact = src.index_of(self.seq)
            self.timeline.select(index, exact)
        self.update_bar()

    # --- marks ------------------------------------------------------------------------------

    def action_mark(self) -> None:
        if self.marks is None or not self.seq:
            self.notify("nothing to mark: the session has no operations", severity="warning")
            return
        suggestion = self.marks.next_name()
        self.push_screen(PromptScreen(
            f"Mark op {self.seq:,} as", value=suggestion, placeholder="a name",
            hint="kept beside your state (not in the recording) · ' jumps to a mark · d diffs against one",
            validate=lambda t: ("a mark name cannot be empty or contain spaces", 0)
            if not t.strip() or " " in t.strip() else None, prompt_id="mark-prompt"), self._mark_entered)

    def _mark_entered(self, name: str | None) -> None:
        if name is None or self.marks is None:
            return
        self.set_mark(name.strip(), self.seq)

    def set_mark(self, name: str, seq: int) -> None:
        assert self.marks is not None
        problem = self.marks.set(name, seq)
        self.timeline.set_marks(m.seq for m in self.marks.all())
        self.update_bar()
        if problem:
            self.notify(problem, severity="warning")
        else:
            self.notify(f"mark '{name}' set at op {seq:,}", timeout=2)
        if self.diff_mark == name:
            self._goto(self.seq)

    def action_goto_mark(self) -> None:
        if self.marks is None or not self.marks.all():
            self.notify("no marks yet: m sets one", severity="warning")
            return
        self.push_screen(MarkPicker("Go to mark", self.marks.all(), own=set(self.marks.own)),
                         self._goto_mark_picked)

    def _goto_mark_picked(self, name: str | None) -> None:
        if name:
            self.jump_to(name)

    def action_diff_mark(self) -> None:
        if self.marks is None or not self.marks.all():
            self.notify("no marks yet: m sets one, then d diffs against it", severity="warning")
            return
        marks = self.marks.all()
        if len(marks) == 1 and self.diff_mark is None:
            self._diff_mark_picked(marks[0].name)
            return
        extra = "this op's own before → after (no mark)" if self.diff_mark else None
        self.push_screen(MarkPicker("Diff the object (and the whole state) against which mark?", marks,
                                    own=set(self.marks.own), extra=extra, current=self.diff_mark),
                         self._diff_mark_picked)

    def _diff_mark_picked(self, name: str | None) -> None:
        if name is None:
            return
        if name == "\x00extra":
            self.diff_mark = None
            self.state_diff = None
        else:
            self.diff_mark = name
            self.state_diff = None
        self.action_show_tab("diff")
        if self.seq:
            self._goto(self.seq)

    # --- objects, noise, tabs, sessions, help ----------------------------------------------------

    def action_pick_object(self) -> None:
        if self.hses is None or not self.seq:
            return
        self._load_objects(self.seq)

    @work(exclusive=True, group="objects", exit_on_error=False)
    async def _load_objects(self, seq: int) -> None:
        ses = self.hses
        assert ses is not None
        try:
            async def go() -> Any:
                snap = await statemod.snapshot(ses, seq)
                return await snap.keys()
            keys = await retrying(go)
        except Exception as exc:
            self.post_message(Notice(_error_text(exc)))
            return
        self.post_message(ObjectsReady(seq, keys))

    @_while_shown
    def on_objects_ready(self, message: ObjectsReady) -> None:
        current = self.pinned if self.pinned is not None else (self.detail.obj_id if self.detail else None)
        self.push_screen(ObjectPicker(message.seq, message.keys, current), self._object_picked)

    def _object_picked(self, obj_id: int | None) -> None:
        if obj_id is None:
            return
        self.pinned = None if obj_id == FOLLOW_OP else obj_id
        self.action_show_tab("state")
        self._goto(self.seq)

    def action_toggle_noise(self) -> None:
        self.show_noise = not self.show_noise
        self.notify("showing managedFields and other noise" if self.show_noise else "hiding noise fields",
                    timeout=2)
        self._stale_tabs.add("state")
        self._show_tab_content(keep_scroll=True)

    def action_show_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = TABS[name]
        if name == "watches":
            self._show_watches()
        if name == "stats":
            self.query_one(StatsPanel).show_stats(self.stats_data, self._cursor_ts())
        self._show_tab_content(keep_scroll=True)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == TABS["stats"]:
            self.query_one(StatsPanel).show_stats(self.stats_data, self._cursor_ts())
        if event.pane.id == TABS["watches"]:
            self._show_watches()
            if self.watches is not None and any(w.upto < self.last for w in self.watches.watches):
                self._refresh_watches()  # the followed session grew while the tab was hidden
        if (event.pane.id == TABS["analysis"] and self.analysis_data is None and not self._analysis.running
                and not self._stats.running and self.sses is not None):
            self.load_analysis()
        self._show_tab_content(keep_scroll=True)

    def action_pick_session(self) -> None:
        infos = self.session_infos or []
        if len(infos) < 2:
            self.notify("this recording has one session", timeout=2)
            return
        self.push_screen(SessionPicker(self.db, infos, self.session.id if self.session else None),
                         self._session_picked)

    def help_bindings(self) -> list[tuple[str, str]]:
        out = []
        seen = set()
        for b in self.BINDINGS:
            assert isinstance(b, Binding)
            if b.action in seen:
                continue
            seen.add(b.action)
            keys = ", ".join(self._key_label(k) for k in b.key.split(","))
            out.append((keys, b.description))
        return out

    @staticmethod
    def _key_label(key: str) -> str:
        names = {"right": "→", "left": "←", "down": "↓", "up": "↑", "colon": ":", "slash": "/",
                 "apostrophe": "'", "right_square_bracket": "]", "left_square_bracket": "[",
                 "question_mark": "?", "escape": "esc"}
        return names.get(key.strip(), key.strip())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_bindings()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action of the debugger in the command palette, under its binding's description."""
        for keys, description in self.help_bindings():
            binding = next(b for b in self.BINDINGS if isinstance(b, Binding) and b.description == description)
            if binding.action == "command_palette":
                continue
            yield SystemCommand(description, f"key: {keys}", partial(self.run_action, binding.action))
        for index in list(self.watches.watches if self.watches is not None else []):
            yield SystemCommand(f"Stop watching {index.label}", "remove the watch (x in the Watches tab)",
                                partial(self.remove_watch, index.obj_id, index.path))
        yield SystemCommand("Clear marks set here", "forget the marks you set (the recording's stay)",
                            self._clear_own_marks)
        yield from super().get_system_commands(screen)

    def _clear_own_marks(self) -> None:
        if self.marks is None:
            return
        for name in list(self.marks.own):
            self.marks.remove(name)
        self.timeline.set_marks(m.seq for m in self.marks.all())
        self.update_bar()

    # --- detail at the cursor --------------------------------------------------------------------

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load_detail(self, seq: int, pinned: int | None, mark: Mark | None) -> None:
        ses = self.dses
        if ses is None:
            return
        try:
            spans = self.source.spans if self.source is not None else None
            detail = await retrying(lambda: self._compute_detail(ses, seq, pinned, mark, spans))
        except Exception as exc:
            self.post_message(Notice(_error_text(exc)))
            return
        self.post_message(DetailLoaded(detail))

    @staticmethod
    async def _compute_detail(ses: Session, seq: int, pinned: int | None, mark: Mark | None,
                              spans: dict[int, Any] | None = None) -> Detail:
        op = await ses.op(seq)
        obj_id = pinned if pinned is not None else await ses.op_object(seq)
        d = Detail(seq=seq, op=op, obj_id=obj_id, pinned=pinned is not None)
        if obj_id is not None:
            d.key = (await ses.object_keys([obj_id])).get(obj_id)
            version = await statemod.version_at(ses, obj_id, seq)
            if version is not None:
                d.version_seq = version.seq
                if version.blob_id is None:
                    d.deleted_at = version.seq
                else:
                    d.obj = await ses.rec.body(version.blob_id)
                if version.seq == seq:
                    d.before = await statemod.object_at(ses, obj_id, seq - 1)
                    if d.before is not None and d.obj is not None:
                        d.changes = diffmod.diff(d.before, d.obj)
            if mark is not None and 1 <= mark.seq <= ses.last:
                d.mark_changes = await diffmod.object_diff(ses, obj_id, mark.seq, seq)
        if mark is not None:
            d.mark = mark
        if op.reconcile is not None:
            known = spans.get(op.reconcile) if spans is not None else None
            d.span = known if known is not None and known.end_seq is not None else await ses.reconcile(op.reconcile)
        return d

    @_while_shown
    def on_detail_loaded(self, message: DetailLoaded) -> None:
        d = message.detail
        if d.seq != self.seq:
            return  # a newer position is on its way
        same_object = self.detail is not None and self.detail.key == d.key and d.key is not None
        self.detail = d
        self.query_one(OpPane).show_detail(d, self.start_ns)
        self._stale_tabs = {"state", "diff"}
        self._show_tab_content(keep_scroll=same_object)
        self.update_bar()
        if self.stats_data is None and not self._stats.running and not self._stats_scheduled:
            self._stats_scheduled = True
            self.set_timer(STATS_DELAY_S, self.load_stats)

    def _show_tab_content(self, *, keep_scroll: bool = False) -> None:
        """Fill the visible tab; the hidden ones are filled when shown (a step renders what is seen)."""
        d = self.detail
        tab = self._tab()
        if d is None or tab not in self._stale_tabs:
            return
        self._stale_tabs.discard(tab)
        if tab == "state":
            self.query_one(StatePane).show_detail(d, show_noise=self.show_noise, keep_scroll=keep_scroll)
        elif tab == "diff":
            self.query_one(DiffPane).show_detail(d, self.state_diff)

    # --- whole-state diff against a mark ------------------------------------------------------------

    @work(exclusive=True, group="statediff", exit_on_error=False)
    async def load_state_diff(self) -> None:
        await asyncio.sleep(STATE_DIFF_DEBOUNCE_S)  # holding a key: only the last position is diffed
        mark = self._diff_mark_obj()
        ses = self.hses
        if mark is None or ses is None or not self.seq:
            return
        a, b = sorted((mark.seq, self.seq))
        try:
            async def go() -> StateDiffReady:
                sd = await diffmod.state_diff(ses, a, b)
                keys = await ses.object_keys([*sd.added, *sd.removed, *sd.changed])
                return StateDiffReady(a, b, sorted(str(keys[i]) for i in sd.added if i in keys),
                                      sorted(str(keys[i]) for i in sd.removed if i in keys),
                                      sorted((str(keys[i]), len(c)) for i, c in sd.changed.items() if i in keys))
            result = await retrying(go)
        except Exception as exc:
            self.post_message(Notice(_error_text(exc)))
            return
        self.post_message(result)

    @_while_shown
    def on_state_diff_ready(self, message: StateDiffReady) -> None:
        self.state_diff = message
        if self.detail is not None and self.detail.seq == self.seq:
            self._stale_tabs.add("diff")
            self._show_tab_content(keep_scroll=True)

    # --- statistics and analysis ------------------------------------------------------------------------

    async def _compute(self, job: _Background, label: str, compute: Callable[[Session], Awaitable[Any]],
                       ready: Callable[[Any, int], Message]) -> None:
        """Run one whole-session computation in the calling worker; report with ``ready`` or a notice."""
        ses = self.sses
        if ses is None:
            return
        job.running = True
        job.started = time.monotonic()
        try:
            data = msgspec.to_builtins(await compute(ses))
        except Exception as exc:
            self.post_message(Notice(f"{label}: {_error_text(exc)}"))
            return
        finally:
            job.running = False
            job.cost = time.monotonic() - job.started
        self.post_message(ready(data, ses.last))

    @work(exclusive=True, group="stats", exit_on_error=False)
    async def load_stats(self) -> None:
        await self._compute(self._stats, "statistics", statsmod.compute, StatsReady)

    @_while_shown
    def on_stats_ready(self, message: StatsReady) -> None:
        self.stats_data = message.data
        self.query_one(StatsPanel).show_stats(message.data, self._cursor_ts())
        if self.analysis_data is None and not self._analysis.running:
            self.load_analysis()

    @work(exclusive=True, group="analysis", exit_on_error=False)
    async def load_analysis(self) -> None:
        await self._compute(self._analysis, "analysis", analysis.analyze, AnalysisReady)

    @_while_shown
    def on_analysis_ready(self, message: AnalysisReady) -> None:
        self.analysis_data = message.data
        self._show_analysis()
        if not self._cycles.running:
            self.load_cycles()  # after the other analysis: seconds at 1M ops, on the same connection

    def _show_analysis(self) -> None:
        if self.analysis_data is None:
            return
        panel = self.query_one(AnalysisPanel)
        highlighted = panel.highlighted
        panel.show_analysis(dict(self.analysis_data, causality_cycles=self.cycles_data))
        if highlighted is not None and highlighted < panel.option_count:
            panel.highlighted = highlighted

    @work(exclusive=True, group="cycles", exit_on_error=False)
    async def load_cycles(self) -> None:
        from replay_tui.engine import causality

        await self._compute(self._cycles, "causality", causality.cycles, CyclesReady)

    @_while_shown
    def on_cycles_ready(self, message: CyclesReady) -> None:
        self.cycles_data = message.cycles
        self._show_analysis()

    # --- time travel: watched fields, provenance ------------------------------------------------

    def _show_watches(self) -> None:
        """Refill the Watches tab from the change indexes (in memory: no query)."""
        ws = self.watches
        self.query_one(WatchPanel).show_watches(ws.values_at(self.seq) if ws is not None else [], self.seq)

    def action_watch_field(self) -> None:
        d = self.detail
        if self.watches is None or d is None or d.obj_id is None or d.key is None:
            self.notify("no object at the cursor to watch: move to an op on one, or o picks one",
                        severity="warning")
            return
        lit = [c.path for c in d.changes if c.kind != "removed"]
        # the field this op changed (what the state pane highlights), bookkeeping under .metadata last
        suggestion = next((p for p in lit if not p.startswith(".metadata")), lit[0] if lit else "")

        def check(text: str) -> tuple[str, int] | None:
            if not text.strip():
                return "type a field path, e.g. .spec.replicas or .status.conditions[type=Ready].status", 0
            try:
                watchmod.check_path(text.strip())
            except watchmod.FieldSpecError as exc:
                return (f"column {exc.column}: {exc.short}" if exc.column else exc.short), exc.column
            return None

        obj_id, key = d.obj_id, d.key
        self.push_screen(PromptScreen(
            f"Watch a field of {key}", value=suggestion, placeholder=".spec.replicas",
            hint="a path: .metadata.labels.app · .status.conditions[type=Ready].status · .spec.containers[0].image"
                 " · c / C then continue to its next / previous change · 5 shows the Watches tab",
            validate=check, prompt_id="watch-prompt"),
            lambda text: self._watch_entered(obj_id, key, text))

    def _watch_entered(self, obj_id: int, key: Any, text: str | None) -> None:
        if text is None or not text.strip():
            return
        self.add_watch(obj_id, text.strip(), key)

    @work(group="watch", exit_on_error=False)
    async def add_watch(self, obj_id: int, path: str, key: Any = None) -> None:
        """Build the field's change index (one streamed pass over the object's versions)."""
        ws, generation = self.watches, self._watch_gen
        if ws is None:
            return
        try:
            index = await retrying(lambda: ws.add(obj_id, path, key=key))
        except (watchmod.FieldSpecError, diffmod.PathError) as exc:
            column = getattr(exc, "column", 0)
            where = f" at column {column}" if column else ""
            self.post_message(Notice(f"bad field path {path!r}{where}: {getattr(exc, 'short', exc)}"))
            return
        except Exception as exc:
            self.post_message(Notice(f"watch: {_error_text(exc)}"))
            return
        self.post_message(WatchAdded(index, generation))

    @_while_shown
    def on_watch_added(self, message: WatchAdded) -> None:
        if message.generation != self._watch_gen:
            return
        self._show_watches()
        index = message.index
        if index is None:
            return  # a refresh while following
        n = len(index)
        self.notify(f"watching {index.label}: {n:,} change{'s' if n != 1 else ''} in the session"
                    " · c / C: next / previous change · 5: Watches tab", timeout=4)

    def remove_watch(self, obj_id: int, path: str) -> None:
        if self.watches is None:
            return
        label = next((w.label for w in self.watches.watches if w.obj_id == obj_id and w.path == path), path)
        if self.watches.remove(obj_id, path):
            self.notify(f"stopped watching {label}", timeout=2)
        self._show_watches()

    def on_watch_panel_remove(self, message: WatchPanel.Remove) -> None:
        self.remove_watch(message.obj_id, message.path)

    def action_continue_watch(self, direction: int) -> None:
        if self.watches is None or not len(self.watches):
            self.notify("no watched fields: press w to watch a field of the object in the state pane",
                        severity="warning")
            return
        if self.last:
            self._continue(direction > 0)

    @work(exclusive=True, group="move", exit_on_error=False)
    async def _continue(self, forward: bool) -> None:
        """Continue (reverse-continue) to the nearest change of any watched field."""
        ws, ses, start = self.watches, self.hses, self.seq
        if ws is None or ses is None:
            return
        try:
            if any(w.upto < ses.last for w in ws.watches):
                await retrying(ws.refresh)  # the followed session grew
            found = ws.step(start, forward)
        except Exception as exc:
            self.post_message(Notice(f"watch: {_error_text(exc)}"))
            return
        if found is None:
            self.post_message(Notice(f"no change of a watched field {'after' if forward else 'before'} op {start:,}",
                                     "information"))
            return
        index, change = found
        self.post_message(MoveResolved(change.seq, f"{index.label}: {short_value(change.old, 40)} -> "
                                                   f"{short_value(change.new, 40)} at op {change.seq:,}"
                                                   f" ({change.verb})"))

    @work(exclusive=True, group="watchrefresh", exit_on_error=False)
    async def _refresh_watches(self) -> None:
        ws, generation = self.watches, self._watch_gen
        if ws is None or not len(ws):
            return
        try:
            await retrying(ws.refresh)
        except Exception:
            return
        self.post_message(WatchAdded(None, generation))

    def action_provenance(self) -> None:
        """The first p explains the object at the cursor; each further p walks one link back."""
        if self.hses is None or not self.seq:
            return
        prov = self.provenance
        if prov is not None and prov["at"] == self.seq:
            self._provenance_step()
            return
        self._explain(self.seq, self.pinned)

    @work(exclusive=True, group="provenance", exit_on_error=False)
    async def _explain(self, seq: int, pinned: int | None) -> None:
        ses = self.hses
        if ses is None:
            return
        try:
            obj_id = pinned if pinned is not None else await retrying(lambda: ses.op_object(seq))
            if obj_id is None:
                self.post_message(Notice(f"op {seq:,} addresses no single object: nothing to explain"
                                         " (o picks an object)", "warning"))
                return
            chain = await retrying(lambda: provmod.explain(ses, obj_id, seq))
        except Exception as exc:
            self.post_message(Notice(f"provenance: {_error_text(exc)}"))
            return
        self.post_message(ProvenanceReady(chain, obj_id, seq))

    @_while_shown
    def on_provenance_ready(self, message: ProvenanceReady) -> None:
        if message.seq != self.seq:
            return  # the cursor moved on meanwhile
        chain = message.chain
        if not chain.links:
            self.notify(f"no provenance for {chain.object} at op {message.seq:,}", severity="warning")
            return
        self.provenance = {"chain": chain, "i": -1, "at": self.seq}
        lines = [f"{n + 1}. {link.text}" for n, link in enumerate(chain.links)]
        self.notify(f"provenance of {chain.object} at op {message.seq:,} (p walks back):\n" + "\n".join(lines),
                    timeout=10)
        self._provenance_step()

    def _provenance_step(self) -> None:
        prov = self.provenance
        assert prov is not None
        links = prov["chain"].links
        i = prov["i"] + 1
        if i >= len(links):
            self.notify(f"end of the chain ({prov['chain'].end}): {links[-1].text}", severity="warning",
                        timeout=4)
            return
        prov["i"] = i
        link = links[i]
        where = "" if link.seq is None else f" → op {link.seq:,}"
        self.notify(f"provenance {i + 1}/{len(links)} [{link.kind}]{where}: {link.text}", timeout=5)
        if link.seq is not None and 1 <= link.seq <= self.last:
            prov["at"] = link.seq
            self._goto(link.seq, center=True)

    # --- follow -----------------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        if self.session is None:
            return
        if self.following:
            self.following = False
            self.workers.cancel_group(self, "follow")
            self.notify("stopped following", timeout=2)
        else:
            self._start_follow()
            ended = self.session.info.ended_ns is not None
            self.notify("following" + (": this session has ended, no new ops will come" if ended else
                                       ": new operations appear as they are recorded"), timeout=3)
            self.action_last()
        self.update_bar()

    def _start_follow(self) -> None:
        self.following = True
        self._follow()
        self.update_bar()
        if self._ended_watch is None:
            self._ended_watch = self.set_interval(0.5, self._watch_ended)

    @_while_shown
    def _watch_ended(self) -> None:
        """The follow loop refreshes the session's end time; show it when recording stops (no query)."""
        ended = bool(self.session and self.session.info.ended_ns is not None)
        if ended != self._shown_ended:
            self._shown_ended = ended
            self.update_bar()

    @work(exclusive=True, group="follow", exit_on_error=False)
    async def _follow(self) -> None:
        ses = self.session
        if ses is None:
            return
        try:
            async for last in follow_session(ses, interval=FOLLOW_POLL_S, stop_when_ended=False):
                self.post_message(FollowTick(last, ses.info.ended_ns is not None))
        except Exception as exc:
            self.post_message(Notice(f"follow stopped: {_error_text(exc)}"))
            self.following = False

    @_while_shown
    def on_follow_tick(self, message: FollowTick) -> None:
        src = self.source
        if src is None or self.session is None:
            return
        last = message.last
        old_last = self._seen_last
        if last <= old_last:
            self.update_bar()
            return
        self._seen_last = last
        for other in (self.dses, self.hses, self.sses):
            if other is not None:
                other.last = last
                other.info.operations = last
                other.info.ended_ns = self.session.info.ended_ns
        if old_last == 0:
            self._refresh_start()
        if src.filtered:
            if not self._scan_running:
                self._scan(src.generation)
            self.update_bar()
        else:
            self.timeline.grew(old_last)
            if self.following and self.seq >= old_last:
                self._goto(last)
            else:
                self.update_bar()
        now = time.monotonic()
        # recompute as the recording grows, but never spend more than a fifth of the time on it
        if not self._stats.running and now - self._stats.started >= max(STATS_EVERY_S, 5 * self._stats.cost):
            self.load_stats()
        if self._tab() == "watches":
            self._refresh_watches()  # c / C catch up by themselves; the shown values need it now
        if not self._analysis.running and now - self._analysis.started >= max(ANALYSIS_EVERY_S,
                                                                              5 * self._analysis.cost):
            self.load_analysis()

    @work(group="open", exit_on_error=False)
    async def _refresh_start(self) -> None:
        ses = self.session
        if ses is None:
            return
        try:
            rows = await retrying(lambda: ses.rows(1, 1))
        except Exception:
            return
        if rows:
            self.start_ns = rows[0].ts_ns
            self.update_bar()

    # --- session report (R) ------------------------------------------------------------------------

    def default_report_path(self) -> str:
        """``<db stem>-<session>-report.html`` in the current directory: a name that says what it holds."""
        stem = os.path.splitext(os.path.basename(self.db))[0]
        name = self.session.info.name if self.session is not None else "session"
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{stem}-{name}").strip("-.") or "session"
        return f"{safe}-report.html"

    def _check_report_path(self, text: str) -> str:
        """The absolute path to write, or RecordingError saying what is wrong with ``text``."""
        if not text.strip():
            raise RecordingError(f"type a file name ending in {reportfile.EXTENSION_LIST}")
        reportfile.format_for(text.strip())
        return reportfile.check_out(text.strip(), self.db)

    def action_write_report(self) -> None:
        """Ask where (prefilled), then write; a bad name is caught in the prompt, before any work."""
        if self.session is None:
            return
        if self.report_writing is not None:
            self.notify(f"a report is already being written to {self.report_writing}", severity="warning")
            return

        def check(text: str) -> tuple[str, int] | None:
            try:
                self._check_report_path(text)
            except RecordingError as exc:
                return str(exc), 0
            return None

        try:
            here = os.getcwd()
        except OSError:  # the directory the app started in was removed
            here = "the current directory"
        self.push_screen(PromptScreen(
            f"Write the report of session {self.session.info.name!r} to", value=self.default_report_path(),
            placeholder="report.html", validate=check, prompt_id="report-prompt",
            hint=f"the format follows the extension: {reportfile.EXTENSION_LIST}; "
                 f"a relative path is from {here}.  Enter writes, Esc cancels."),
            self._report_entered)

    def _report_entered(self, text: str | None) -> None:
        if text is not None and text.strip():
            self.write_report(text.strip())

    def write_report(self, out: str) -> None:
        """Write the open session's report to ``out`` in a worker; what went wrong is a notification."""
        ses = self.session
        if ses is None:
            return
        if self.report_writing is not None:
            self.notify(f"a report is already being written to {self.report_writing}", severity="warning")
            return
        try:
            path = self._check_report_path(out)
            fmt = reportfile.format_for(path)
        except RecordingError as exc:
            self.notify(f"report: {exc}", severity="error", timeout=6)
            return
        self.report_writing = path
        text = f"writing the report of session {ses.info.name!r} to {path}..."
        self.notices.append(("information", text))
        # kept up until the report is written (withdrawn then), however long the build takes
        self._report_note = Notification(text, severity="information", timeout=600, markup=False)
        self.post_message(Notify(self._report_note))
        self._write_report(path, fmt, ses.info.name)

    @work(exclusive=True, group="report", exit_on_error=False)
    async def _write_report(self, path: str, fmt: str, session: str) -> None:
        """On its own read-only connection, so the panes keep answering while it builds."""
        started = time.monotonic()
        try:
            async with opened(self.db, session) as ses:
                data = await reportmod.build(ses)
            # rendering and writing are plain Python: off the event loop, the screen stays live
            size = await asyncio.to_thread(lambda: reportfile.write_text(path, reportfile.render(data, fmt)))
        except Exception as exc:
            self.post_message(ReportWritten(path, error=f"report: {_error_text(exc)}"))
            return
        self.post_message(ReportWritten(path, size=size, seconds=time.monotonic() - started))

    def on_report_written(self, message: ReportWritten) -> None:
        self.report_writing = None
        note, self._report_note = self._report_note, None
        if note is not None:
            try:
                self._unnotify(note)  # Textual has no public call to withdraw one toast
            except (AttributeError, KeyError):
                pass
        if message.error:
            self.notify(message.error, severity="error", timeout=8)
        else:
            self.notify(f"Report written to {message.path} ({message.size / 1024:,.1f} KiB, "
                        f"{message.seconds:.1f} s)", timeout=8)

    # --- notices ------------------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        self.notices.append((str(severity), message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    @_while_shown
    def on_notice(self, message: Notice) -> None:
        severity = message.severity if message.severity in ("information", "warning", "error") else "error"
        self.notify(message.text, severity=severity,
                    timeout=3 if severity == "information" else 6, markup=False)
        if self.session is None and severity == "error":
            self.query_one(OpPane).show_empty(message.text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return True if self.source is not None and self.source.filtered else None
        return True

    async def on_unmount(self) -> None:
        """Stop the workers (a statistics scan may be running) and close the connections after them."""
        self.workers.cancel_all()
        try:
            await asyncio.wait_for(self.workers.wait_for_complete(), timeout=3)
        except Exception:
            pass
        for rec in (self.main_rec, self.detail_rec, self.heavy_rec, self.stats_rec):
            if rec is not None:
                try:
                    await rec.close()
                except Exception:
                    pass


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
