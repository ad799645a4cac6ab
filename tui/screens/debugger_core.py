"""The debugger screen's core: its state, its workers, the cursor and what the panes show.

``DebuggerScreen`` (``debugger.py``) adds the layout, the keys and their handlers; this base
class holds what they share.  The logic lives in plain-Python controllers (``tui.control``):
this wires them to widgets.  The cursor moves synchronously (the row and the bar repaint at
once); everything that reads the database runs in a worker (``start``), whose result or
failure comes back through one handler, ``on_worker_state_changed``.  Holding a step key
queues nothing: each press replaces the detail worker of the previous one.  The ops around the
cursor are read ahead (``DetailCache``): a step onto one draws its panes in the timeline's own
frame, with no read.  The position bar
is computed from the reactive state below, so no code has to remember to repaint it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual.css.query import NoMatches
from textual.notifications import Notification
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import TabbedContent
from textual.worker import Worker, WorkerState

from replay_tui.engine.schema import RecordingError
from replay_tui.engine.textsafe import safe
from replay_tui.tui.control import heap, reportjob
from replay_tui.tui.control.background import STATS_DELAY_S, Background, compute
from replay_tui.tui.control.columns import ColumnChoice, Trend, trend
from replay_tui.tui.control.comparing import Compared, describe
from replay_tui.tui.control.connections import Connections, SessionSet
from replay_tui.tui.control.detail import (
    CURSOR,
    Detail,
    DetailCache,
    DetailKey,
    End,
    StateDiff,
    compute_detail,
    compute_state_diff,
    diff_ends,
)
from replay_tui.tui.control.errors import RULE, ExpectedErrors
from replay_tui.tui.control.history import JumpHistory
from replay_tui.tui.control.marks import MarkStore
from replay_tui.tui.control.navigation import Navigator
from replay_tui.tui.control.objectview import ObjectSummary
from replay_tui.tui.control.serving import Serving
from replay_tui.tui.control.timetravel import ProvenanceWalk, Watches
from replay_tui.tui.messages import FollowTick, MatchesFound
from replay_tui.tui.screens.prompt import ConfirmScreen
from replay_tui.tui.widgets.analysispanel import AnalysisPanel
from replay_tui.tui.widgets.diffpane import DiffPane
from replay_tui.tui.widgets.oppane import OpPane, op_lines
from replay_tui.tui.widgets.position import Position
from replay_tui.tui.widgets.statepane import StatePane, state_lines
from replay_tui.tui.widgets.statspanel import StatsPanel
from replay_tui.tui.widgets.timeline import Timeline
from replay_tui.tui.widgets.watchpanel import WatchPanel
from replay_tui.tui.widgets.whypanel import WhyPanel

STATE_DIFF_DEBOUNCE_S = 0.15
TREND_DEBOUNCE_S = 0.15
TABS = {"state": "tab-state", "diff": "tab-diff", "stats": "tab-stats", "analysis": "tab-analysis",
        "watches": "tab-watches", "why": "tab-why"}
LABELS = {"state": ("State [1]", "State"), "diff": ("Diff [2]", "Diff"), "stats": ("Stats [3]", "Stats"),
          "analysis": ("Analysis [4]", "Analysis"), "watches": ("Watches [5]", "Watches"), "why": ("Why [6]", "Why")}
NARROW = 120  # below this many columns, tab labels drop their key


def error_text(exc: BaseException) -> str:
    """One line for the user: a recording's problem as the engine words it, anything else named."""
    if isinstance(exc, RecordingError):
        return safe(str(exc))
    return f"internal error: {type(exc).__name__}: {safe(str(exc))}"


class DebuggerCore(Screen[None]):
    """One session of a recording: the state behind the timeline, the bar, the panes and the tabs."""

    seq: var[int] = var(0)
    last: var[int] = var(0)
    following: var[bool] = var(False)
    ended: var[bool] = var(True)
    session_name: var[str] = var("")
    start_ns: var[int] = var(0)
    cursor_ts: var[int | None] = var(None)
    filter_state: var[tuple[str, int, bool]] = var(("", 0, False))
    marks_version: var[int] = var(0)
    diff_ends: var[tuple[End, End] | None] = var(None)
    pinned_label: var[str] = var("")
    scope_label: var[str] = var("")
    bar_version: var[int] = var(0)  # bumped when what the bar shows changed outside the vars above
    position: var[Position] = var(Position)

    def __init__(self, conns: Connections, db: str, session: str | int | None = None, *, follow: bool = False,
                 sessions: list[Any] | None = None, persist_marks: bool = True):
        super().__init__()
        self.conns, self.db = conns, db
        self.session_ref, self.follow_on_open = session, follow
        self.session_infos = sessions
        self.persist_marks = persist_marks
        self.ses: SessionSet | None = None
        self.nav: Navigator | None = None
        self.marks: MarkStore | None = None
        self.jobs = Background()
        self.watches: Watches | None = None
        self.walk: ProvenanceWalk | None = None
        self.detail: Detail | None = None
        self.details = DetailCache()  # read lately or ahead: a step onto one paints the panes with no read
        self._queued: tuple[DetailKey, Detail] | None = None  # a cached Detail to show after the keys already sent
        self.state_diff: StateDiff | None = None
        self.pinned: int | None = None
        self.history = JumpHistory()
        self.scope: int | None = None  # the object whose own timeline is shown (t)
        self.summary: ObjectSummary | None = None
        self.columns = ColumnChoice()
        self.trend: Any = None  # the first field column's change index for the cursor's object
        self.expected: ExpectedErrors | None = None  # with expected errors hidden (!)
        self.serving: Serving | None = None  # serving this session to clients (K)
        self.serving_note: Notification | None = None  # "serving at ...", withdrawn when it stops
        self.compared: Compared | None = None  # a second run beside this one
        self.search_pane: Any = None  # the pane the last ctrl+f searched
        self.unfold = False
        self.report_writing: str | None = None
        self._stale_tabs: set[str] = set()
        self._pending: dict[Worker[Any], tuple[Callable[[Any], None], Callable[[str], None] | None]] = {}
        self._tick_pending = False
        self._report_note: Any = None

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    # --- the bar ------------------------------------------------------------------------

    def compute_position(self) -> Position:
        nav, marks, seq = self.nav, self.marks, self.seq
        text, matches, scanning = self.filter_state
        _ = self.bar_version  # (read: a bump recomputes the bar)
        ses = self.ses
        interrupted = ses.info.last_op_ns or 0 if ses is not None and ses.info.interrupted else None
        serving = self.serving.served if self.serving is not None else None
        return Position(
            session=self.session_name, seq=seq, last=self.last, ts_ns=self.cursor_ts, start_ns=self.start_ns,
            following=self.following, ended=self.ended, filter_text=text, matches=matches, scanning=scanning,
            in_filter=nav is None or not seq or nav.source.in_filter(seq),
            marks_here=", ".join(m.name for m in marks.at(seq)) if marks and seq else "",
            diff_mark=self._diff_label(), pinned=self.pinned_label,
            back_to=self.history.peek_back(seq) if seq else None,
            forward_to=self.history.peek_forward(seq) if seq else None,
            scope=self.scope_label, interrupted_ns=interrupted, errors=self._errors_text(),
            trend=self._trend(), serving=serving.url if serving is not None else "",
            kubeconfig=str(serving.kubeconfig) if serving is not None else "",
            compare=self._compare_text(), search=self._search_text())

    def _diff_label(self) -> str:
        ends = self.diff_ends
        if ends is None:
            return ""
        names = []
        for end in ends:
            at = end.at(self.seq, self.marks)
            names.append(f"'{end.name}' (op {at:,})" if end.kind == "mark" and at is not None else end.label)
        if ends[1] == CURSOR:
            return names[0]
        return f"{names[0]} ↔ {names[1]}"

    def _errors_text(self) -> str:
        ex = self.expected
        if ex is None:
            return ""
        if not ex.done:
            return f"errors: classifying... (hiding {RULE})"
        return f"errors {ex.shown:,} of {ex.total:,} (hiding {len(ex.expected):,} expected: {RULE})"

    def _trend(self) -> Trend | None:
        index, d = self.trend, self.detail
        if index is None or d is None or d.obj_id != index.obj_id or not self.columns.fields \
                or index.path != self.columns.fields[0]:
            return None
        return trend(index, self.last, self.seq)

    def _compare_text(self) -> str:
        c = self.compared
        if c is None:
            return ""
        found = c.at(self.seq)
        if 0 <= c.current < len(c.divergences) and c.at_seq == self.seq:
            found = (c.current, c.divergences[c.current])  # the one > / < went to
        n = len(c.divergences)
        if found is not None:
            return f"≠ {found[0] + 1}/{n} vs {c.label}: {describe(found[1])}"
        return f"compared with {c.label}: {n} divergence{'s' if n != 1 else ''}" + (" (> next)" if n else "")

    def _search_text(self) -> str:
        pane = self.search_pane
        if pane is None or not pane.search_query:
            return ""
        where = {"op": "Operation", "state": "State", "diff": "Diff"}.get(pane.id or "", pane.id or "")
        if not pane.matches:
            return f"find {pane.search_query!r} in {where}: no match"
        return f"find {pane.search_query!r} in {where}: {pane.current + 1}/{len(pane.matches)} (n / N)"

    def _filter_changed(self) -> None:
        src = self.nav.source if self.nav else None
        if src is None or not src.filtered:
            self.filter_state = ("", 0, False)
            self.scope_label = ""
            return
        n, scanning = len(src.matches), src.scanning
        user = src.user_filter
        self.filter_state = (user.text, n, scanning) if user is not None else ("", 0, False)
        if src.scope is not None:
            counted = "" if user is not None else f": {n:,} op{'s' if n != 1 else ''}" + (
                " (scanning...)" if scanning else "")
            self.scope_label = src.scope.text + counted
        else:
            self.scope_label = ""

    def watch_marks_version(self) -> None:
        if self.marks is not None:
            self.timeline.set_marks(m.seq for m in self.marks.all())

    def repaint_bar(self) -> None:
        self.bar_version += 1

    # --- workers: one way to start them, one way their results and failures come back --------

    def start(self, job: str, work: Callable[[], Awaitable[Any]], done: Callable[[Any], None], *,
              failed: Callable[[str], None] | None = None, group: str | None = None,
              exclusive: bool = True) -> Worker[Any]:
        """Run ``work`` in a worker.  ``done(result)`` runs on the UI thread when it succeeds;
        ``failed(one line)`` when it raises (by default, a notification saying which job failed)."""
        async def run() -> Any:  # (``work()`` is called once the worker starts: one replaced first never makes it)
            return await work()

        worker: Worker[Any] = self.run_worker(run, name=job, group=group or job, exclusive=exclusive,
                                              exit_on_error=False)
        self._pending[worker] = (done, failed)
        return worker

    def running(self, job: str) -> bool:
        return any(w.name == job for w in self._pending)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's end is handled: its result, its failure, or its cancellation."""
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        done, failed = self._pending.pop(worker, (None, None))
        try:
            if event.state == WorkerState.SUCCESS and done is not None:
                done(worker.result)
            elif event.state == WorkerState.ERROR and worker.error is not None:
                text = error_text(worker.error)
                if failed is not None:
                    failed(text)
                else:
                    where = {"timeline-pages": "timeline", "detail": "", "open": "", "move": ""}.get(worker.name,
                                                                                                    worker.name)
                    self.tell(f"{where}: {text}" if where else text)
            elif event.state == WorkerState.CANCELLED and worker.name in self.jobs.jobs:
                self.jobs.cancelled(worker.name)
        except NoMatches:
            pass  # a result that arrives while the app is closing finds no widgets

    def tell(self, text: str, severity: str = "error") -> None:
        """A notification of plain text (never markup): what went wrong, or what happened."""
        self.app.notify(text, severity=severity,  # type: ignore[arg-type]
                        timeout=3 if severity == "information" else 6, markup=False)

    # --- opening a session -------------------------------------------------------------------

    def open_session(self, ref: str | int | None) -> None:
        async def go() -> tuple[SessionSet, list[Any]]:
            return await self.conns.open_session(ref), await self.conns.sessions()

        self.start("open", go, self._session_opened, failed=self._open_failed)

    def _open_failed(self, text: str) -> None:
        self.tell(text)
        if self.ses is None:
            self.query_one(OpPane).show_empty(text)

    def _session_opened(self, result: tuple[SessionSet, list[Any]]) -> None:
        ses, self.session_infos = result
        heap.release()  # the previous session's objects may be garbage now
        for worker in list(self._pending):
            if worker.name != "open":
                worker.cancel()  # whatever ran for the previous session
        self.stop_serving()
        self.close_compare()
        self.ses, self.nav = ses, Navigator(ses.main)
        self.jobs = Background()
        self.watches = Watches(ses.heavy)
        self.walk = self.detail = self.state_diff = self.pinned = None
        self.details.clear()
        self.diff_ends, self.pinned_label = None, ""
        self.history = JumpHistory()
        self.scope, self.summary, self.scope_label = None, None, ""
        self.trend = None
        self.expected = ExpectedErrors(ses.heavy) if self.expected is not None else None
        self.query_one(WhyPanel).show_empty()
        if self.following:
            self.follow_on_open = True  # keep following, now this session
        self.marks = MarkStore(self.db, ses.info.name, ses.marks, persist=self.persist_marks)
        if self.marks.load_error:
            self.tell(self.marks.load_error, "warning")
        self.session_name, self.start_ns, self.last, self.ended = ses.info.name, ses.start_ns, ses.last, ses.ended
        self.app.title = f"replay-tui: {safe(self.db)}"
        self.app.sub_title = safe(ses.info.name)
        timeline = self.timeline
        timeline.empty_text = "no operations yet" + (" (following: new ops appear here)" if self.follow_on_open else "")
        timeline.set_source(self.nav.source)
        timeline.set_choice(self.columns)
        timeline.set_expected(())
        self.hide_object_header()
        self.marks_version += 1
        self._filter_changed()
        self._show_watches()
        for name in ("stats", "analysis"):
            self._show_job(name)
        if ses.last == 0:
            self.seq = 0
            self.tell(f"session {safe(ses.info.name)!r} has no operations"
                          + (" yet: waiting for them" if self.follow_on_open or ses.info.live else ""), "warning")
            self.query_one(OpPane).show_empty("no operations")
            self.query_one(StatePane).show_empty("")
            self.query_one(DiffPane).show_empty("")
            self._painted()
        else:
            self.goto(ses.last if self.follow_on_open else 1, center=True)
        if self.follow_on_open:
            self.follow_on_open = False
            self.start_follow()
        if self.expected is not None:
            self.classify_errors()

    # --- the cursor -----------------------------------------------------------------------

    def goto(self, seq: int, *, center: bool = False, jump: bool = False) -> None:
        """Move the cursor: repaint the row and the bar now, load the panes in a worker.

        The single place the cursor moves.  ``jump``: a jump (not a step), which the jump history
        records (ctrl+o goes back to where it came from)."""
        nav = self.nav
        if nav is None or nav.last == 0:
            return
        count, origin = nav.source.count, self.seq
        seq = nav.goto(seq)
        if jump:
            self.history.jumped(origin, seq)
        if self.walk is not None and seq != self.walk.at:
            self.walk = None  # moved elsewhere: the next p explains the new position
        moved = nav.source.count != count  # the cursor's ghost row came or went
        if moved:
            self.timeline.update_count()
        self.timeline.select(nav.row(), center=center, moved=moved)
        row = self.timeline.row_for_seq(seq)
        self.set_reactive(DebuggerCore.cursor_ts, row.ts_ns if row is not None else None)
        self.seq = seq  # one repaint of the bar, with the time above
        if self._tab() == "watches":
            self._show_watches()
        self.load_detail()
        if self.diff_ends is not None:
            self.load_state_diff()
        if self._tab() == "stats":
            job = self.jobs["stats"]
            self.query_one(StatsPanel).show_stats(None, self.cursor_ts, job.error)
        if self.serving is not None:
            self.serving.follow(seq)
        if self.compared is not None:
            self.align_compared(seq)

    def _tab(self) -> str:
        active = self.query_one(TabbedContent).active
        return next((k for k, v in TABS.items() if v == active), "state")

    # --- what the panes show at the cursor ----------------------------------------------------

    def detail_key(self, seq: int) -> DetailKey:
        ends = diff_ends(self.diff_ends, seq, self.marks) if self.diff_ends is not None else None
        return seq, self.pinned, ends, self.ses.last if self.ses is not None else 0

    def load_detail(self) -> None:
        """What the panes show at the cursor: from the cache at once, else read in a worker."""
        ses, nav = self.ses, self.nav
        if ses is None or nav is None:
            return
        key = self.detail_key(self.seq)
        cached = self.details.get(key)
        if cached is not None:
            self._show_soon(key, cached)
            return
        self._stop_prefetch()  # its reads would go before this one on the connection
        seq, pinned, ends, _ = key
        spans = nav.source.spans

        def loaded(d: Detail) -> None:
            if ses is self.ses:
                self.details.put(key, d)
            self._detail_loaded(d)

        self.start("detail", lambda: compute_detail(ses.detail, seq, pinned, ends, spans), loaded,
                   failed=self._detail_failed)

    def _show_soon(self, key: DetailKey, d: Detail) -> None:
        """Show a cached Detail after the keys already queued (a held key's burst paints the panes
        once, for where it stopped); the timeline and the bar have moved already."""
        first = self._queued is None
        self._queued = key, d
        if first:
            self.app.call_later(self._show_queued)

    def _show_queued(self) -> None:
        queued, self._queued = self._queued, None
        if queued is not None and queued[0] == self.detail_key(self.seq):
            self._detail_loaded(queued[1])  # else the cursor moved on, and a worker reads where it went

    def _prefetch(self) -> None:
        """Read the cursor's neighbours ahead (the next two, the one before), once the screen is
        painted: the next step is drawn at once, even when it comes before the last read ended."""
        ses, nav, d = self.ses, self.nav, self.detail
        if ses is None or nav is None or d is None or d.seq != self.seq:
            return
        wanted = [(n, self.detail_key(n)) for n in (self.seq + 1, self.seq - 1, self.seq + 2) if 1 <= n <= ses.last]
        wanted = [(n, key) for n, key in wanted if key not in self.details]
        if not wanted:
            return
        spans = nav.source.spans

        async def go() -> None:
            for n, key in wanted:
                detail = await compute_detail(ses.detail, n, key[1], key[2], spans)
                if ses is not self.ses:
                    return
                self.details.put(key, detail)  # each as it comes: a step may come before the next
                self.call_later(self._prepare, detail)  # its lines, after what is queued (a key goes first)

        self.start("prefetch", go, lambda _: None, failed=lambda _: None)  # a guess that failed: the step reads it

    def _prepare(self, d: Detail) -> None:
        """Make the lines of the panes a step onto ``d`` would show (the State tab's, if it is the one shown)."""
        op_lines(d, self.start_ns, fold=not self.unfold)
        if self._tab() == "state":
            state_lines(d, unfold=self.unfold)

    def _stop_prefetch(self) -> None:
        for worker in list(self._pending):
            if worker.name == "prefetch":
                worker.cancel()

    def _detail_failed(self, text: str) -> None:
        self.tell(text)
        if self.detail is None or self.detail.seq != self.seq:
            for pane in (self.query_one(OpPane), self.query_one(StatePane), self.query_one(DiffPane)):
                pane.show_empty(f"op {self.seq:,} could not be read: {text}")

    def _detail_loaded(self, d: Detail) -> None:
        if d.seq != self.seq:
            return  # a newer position is on its way
        same_object = self.detail is not None and self.detail.key == d.key and d.key is not None
        self.detail = d
        if self.cursor_ts is None:
            self.cursor_ts = d.op.ts_ns
        self.pinned_label = safe(str(d.key)) if self.pinned is not None and d.key is not None else ""
        self.query_one(OpPane).show_detail(d, self.start_ns, fold=not self.unfold)
        self._stale_tabs = {"state", "diff"}
        self._show_tab_content(keep_scroll=same_object)
        self._painted()
        self.load_trend()
        self.call_after_refresh(self._prefetch)

    def _painted(self) -> None:
        if self.jobs.painted_at is None:
            self.jobs.painted(time.monotonic())
            heap.settle()  # the session's first screen: what exists now lives as long as it
            # The statistics start as soon as they may, not at the background timer's next tick.
            self.set_timer(STATS_DELAY_S, self._background)

    def _show_tab_content(self, *, keep_scroll: bool = False) -> None:
        """Fill the visible tab; the hidden ones are filled when shown (a step renders what is seen)."""
        d = self.detail
        tab = self._tab()
        if d is None or tab not in self._stale_tabs:
            return
        self._stale_tabs.discard(tab)
        if tab == "state":
            self.query_one(StatePane).show_detail(d, unfold=self.unfold, keep_scroll=keep_scroll)
        elif tab == "diff":
            self.query_one(DiffPane).show_detail(d, self.state_diff)

    def load_state_diff(self) -> None:
        """The whole state between the diff mark and the cursor (debounced: a held key diffs once)."""
        ses = self.ses
        ends = diff_ends(self.diff_ends, self.seq, self.marks) if self.diff_ends is not None else None
        if ends is None or ses is None or not self.seq:
            return
        a, _, b, _ = ends

        async def go() -> StateDiff:
            await self._sleep(STATE_DIFF_DEBOUNCE_S)
            return await compute_state_diff(ses.heavy, a, b)

        self.start("statediff", go, self._state_diff_ready)

    @staticmethod
    async def _sleep(seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)

    def _state_diff_ready(self, sd: StateDiff) -> None:
        self.state_diff = sd
        if self.detail is not None and self.detail.seq == self.seq:
            self._stale_tabs.add("diff")
            self._show_tab_content(keep_scroll=True)

    def load_trend(self) -> None:
        """The first field column of the cursor's object over the session (its change index, once per object)."""
        d, ses = self.detail, self.ses
        if not self.columns.fields or d is None or d.obj_id is None or ses is None:
            if self.trend is not None:
                self.trend = None
                self.repaint_bar()
            return
        obj_id, path, key = d.obj_id, self.columns.fields[0], d.key
        index = self.trend
        if index is not None and index.obj_id == obj_id and index.path == path and index.upto >= ses.last:
            self.repaint_bar()
            return

        async def go() -> Any:
            from replay_tui.engine.watch import change_index

            await self._sleep(TREND_DEBOUNCE_S)  # a held key builds one index, for where it stops
            return await change_index(ses.heavy, obj_id, path, key=key)

        def built(index: Any) -> None:
            self.trend = index
            self.repaint_bar()

        self.start("trend", go, built, failed=lambda text: self.tell(f"field {path}: {text}", "warning"))

    def _show_watches(self) -> None:
        """Refill the Watches tab from the change indexes (in memory: no query)."""
        ws = self.watches
        self.query_one(WatchPanel).show_watches(ws.values_at(self.seq) if ws is not None else [], self.seq)

    # --- the filter's scan ----------------------------------------------------------------------

    def scan(self) -> None:
        """Find the filter's matches window by window; each window shows as it arrives."""
        nav = self.nav
        if nav is None or not nav.source.filtered:
            return
        src = nav.source

        async def go() -> None:
            async for seqs, lo, hi in src.scan_windows(around=self.seq):
                self.post_message(MatchesFound(src.generation, seqs, lo, hi))

        self.start("scan", go, lambda _: self._filter_changed(), failed=lambda text: self.tell(f"filter: {text}"))

    def on_matches_found(self, message: MatchesFound) -> None:
        nav = self.nav
        if nav is None or message.generation != nav.source.generation:
            return
        src = nav.source
        old = src.count
        stick = self.following and nav.at_last_row(self.last)  # following: stay on the newest match
        before = src.add_matches(message.seqs, message.lo, message.hi)
        if before:
            self.timeline.shifted(before)
        else:
            self.timeline.grew(old)
        if stick and src.matches and src.matches[-1] > self.seq:
            self.goto(int(src.matches[-1]))
        else:  # the cursor stays where it is, whatever the scan finds; its row may have moved
            self.timeline.select(nav.row(), moved=True)
        self._filter_changed()
        if not src.scanning and not src.matches:
            self.tell(f"no op matches {src.filter.text if src.filter else ''!r}", "warning")

    # --- whole-session work in the background ------------------------------------------------------

    def _background(self) -> None:
        """Start the next whole-session job when it is due (statistics, analysis, cycles)."""
        ses = self.ses
        if ses is None:
            return
        self.ended = ses.ended  # the follow loop refreshes the session's end time: show it (no query)
        if self.following and ses.info.interrupted and self.position.interrupted_ns is None:
            self.repaint_bar()  # its writer died (engine.liveness): no LIVE badge
        if self.serving is not None and self.serving.error:
            self.tell(f"serving stopped: {self.serving.error}")
            self.stop_serving()
        name = self.jobs.next_job(time.monotonic(), ses.last)
        if name is None:
            return
        self.jobs.started(name, time.monotonic(), ses.last)
        self.start(name, lambda: compute(name, ses.stats), lambda data: self._job_done(name, data),
                   failed=lambda text: self._job_failed(name, text))

    def _job_done(self, name: str, data: Any) -> None:
        first = self.jobs[name].data is None
        self.jobs.finished(name, time.monotonic(), data)
        self._show_job(name)
        if first:
            heap.settle()  # its result (and its panel) live as long as the session; a recomputed one is not frozen
        self._background()  # the next one, without waiting for the timer

    def _job_failed(self, name: str, text: str) -> None:
        """The tab says it, instead of "computing..." forever; the next job still runs."""
        self.jobs.failed(name, time.monotonic(), text)
        self._show_job(name)
        self.tell(f"{name}: {text}")
        self._background()

    def _show_job(self, name: str) -> None:
        job = self.jobs[name]
        if name == "stats":
            self.query_one(StatsPanel).show_stats(job.data, self.cursor_ts, job.error)
            return
        analysis, cycles = self.jobs["analysis"], self.jobs["cycles"]
        data = None
        if analysis.data is not None:
            data = dict(analysis.data, causality_cycles=cycles.data, cycles_error=cycles.error)
        self.query_one(AnalysisPanel).show_analysis(data, "" if data is not None else analysis.error)

    # --- an object's own timeline (t) -------------------------------------------------------------

    def hide_object_header(self) -> None:
        from replay_tui.tui.widgets.objectheader import ObjectHeader

        self.query_one(ObjectHeader).hide()

    # --- errors that matter (!) ----------------------------------------------------------------------

    def classify_errors(self) -> None:
        """Classify the errors not classified yet (all of them, then those a followed session adds)."""
        ex = self.expected
        if ex is None or ex.done or self.running("errors"):
            return

        def done(_: Any) -> None:
            if ex is self.expected:
                self.timeline.set_expected(ex.expected)
                self.repaint_bar()

        self.start("errors", ex.classify, done, exclusive=False)

    # --- serving the session to clients (K) -----------------------------------------------------

    def stop_serving(self) -> None:
        serving, self.serving = self.serving, None
        self.app.withdraw(self.serving_note)  # type: ignore[attr-defined]
        self.serving_note = None
        if serving is not None:
            serving.stop()
            self.repaint_bar()

    # --- a compared run beside this one ---------------------------------------------------------

    def close_compare(self) -> None:
        compared, self.compared = self.compared, None
        if compared is None:
            return
        self.timeline.set_diverged(())
        other = self.timeline_b
        other.set_source(None)
        other.set_diverged(())
        other.remove_class("-shown")
        self.run_worker(compared.close(), name="compare-close", group="compare-close", exit_on_error=False)
        self.repaint_bar()

    @property
    def timeline_b(self) -> Timeline:
        return self.query_one("#timeline-b", Timeline)

    def align_compared(self, seq: int, seq_b: int | None = None) -> None:
        """Keep run B's timeline at the op aligned with the cursor (``seq_b``: a divergence's own)."""
        c = self.compared
        if c is None:
            return
        other = self.timeline_b
        ds = c.divergences
        if seq_b is None and 0 <= c.current < len(ds) and c.anchors[c.current] == seq:
            seq_b = ds[c.current].seq_b  # the cursor arrived at the divergence > / < went to: B at its own op
        if seq_b is not None:
            self.workers.cancel_group(self, "compare-align")  # a time alignment still reading must not undo it
            self._select_b(seq_b)
            return
        ts = self.cursor_ts
        if ts is None:
            return
        self.start("compare-align", lambda: c.aligned(ts), lambda target: self._select_b(target)
                   if c is self.compared else None, failed=lambda _: None)
        other.refresh()

    def _select_b(self, seq_b: int) -> None:
        c = self.compared
        if c is None or not c.session.last:
            return
        other = self.timeline_b
        index, _ = c.source.index_of(max(1, min(seq_b, c.session.last)))
        other.select(index, center=True)

    # --- the session report (R) ------------------------------------------------------------------

    def write_report(self, out: str, *, overwrite: bool = False) -> None:
        """Write the open session's report to ``out`` in a worker; what went wrong is a notification."""
        ses = self.ses
        if ses is None:
            return
        if self.report_writing is not None:
            self.tell(f"a report is already being written to {self.report_writing}", "warning")
            return
        try:
            path = reportjob.check(out, self.db)
        except RecordingError as exc:
            self.tell(f"report: {exc}")
            return
        if os.path.exists(path) and not overwrite:
            self.app.push_screen(ConfirmScreen("That file already exists: replace it with the report?",
                                               f"{path} would be overwritten"),
                                 lambda yes: self.write_report(out, overwrite=True) if yes else
                                 self.tell(f"report not written: {path} kept as it was", "information"))
            return
        self.report_writing = path
        # kept up until the report is written (withdrawn then), however long the build takes
        self._report_note = self.app.keep_note(  # type: ignore[attr-defined]
            f"writing the report of session {safe(ses.info.name)!r} to {path}...")
        self.start("report", lambda: reportjob.write(self.db, ses.info.id, path), self._report_written,
                   failed=lambda text: self._report_written(None, text))

    def _report_written(self, written: reportjob.Written | None, error: str = "") -> None:
        self.report_writing = None
        self.app.withdraw(self._report_note)  # type: ignore[attr-defined]
        if written is None:
            self.app.notify(f"report: {error}", severity="error", timeout=8, markup=False)
        else:
            self.app.notify(f"Report written to {written.path} ({written.size / 1024:,.1f} KiB, "
                            f"{written.seconds:.1f} s)", timeout=8, markup=False)

    # --- follow ----------------------------------------------------------------------------------

    def start_follow(self) -> None:
        ses = self.ses
        if ses is None:
            return
        self.following = True

        async def go() -> None:
            from replay_tui.engine.follow import follow as follow_session

            async for _ in follow_session(ses.main, interval=FOLLOW_POLL_S, stop_when_ended=False):
                if not self._tick_pending:  # coalesced: one tick in the queue at a time
                    self._tick_pending = True
                    self.post_message(FollowTick())

        self.start("follow", go, lambda _: None, failed=self._follow_failed)

    def _follow_failed(self, text: str) -> None:
        self.following = False
        self.tell(f"follow stopped: {text}")

    def on_follow_tick(self, message: FollowTick) -> None:
        self._tick_pending = False
        ses, nav = self.ses, self.nav
        if ses is None or nav is None:
            return
        self.ended = ses.ended
        last, old_last = ses.last, self.last
        if last <= old_last:
            return
        stick = self.following and nav.at_last_row(old_last)
        old_count = nav.source.count
        ses.grew(last)
        self.last = last
        if old_last == 0:
            self.start("start-time", lambda: ses.main.rows(1, 1),
                       lambda rows: setattr(self, "start_ns", rows[0].ts_ns) if rows else None, group="open")
        if nav.source.filtered:
            if not self.running("scan"):
                self.scan()
        else:
            self.timeline.grew(old_count)
            if stick:
                self.goto(last)
        if self._tab() == "watches" and self.watches is not None and self.watches.stale:
            self.start("watch-refresh", self.watches.refresh, lambda _: self._show_watches())
        self._background()


FOLLOW_POLL_S = 0.05  # one index lookup per poll; half of engine.follow's default, for the 500 ms budget
