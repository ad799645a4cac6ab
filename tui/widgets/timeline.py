"""The timeline: one Line-API ScrollView over every operation of a session.

Row ``i`` is drawn from a page of rows read by index (``TimelineSource``); the
widget holds an LRU of pages and an LRU of rendered lines, and asks a worker
for missing pages, nearest to the screen first.  Nothing is a widget per row,
so a million rows scroll as smoothly as ten.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.cache import LRUCache
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from replay_tui.engine.format import EVENT_VERBS, READ_VERBS, OpRow, Reconcile
from replay_tui.engine.units import fmt_duration
from replay_tui.tui.messages import Notice, PageLoaded
from replay_tui.tui.source import PAGE, TimelineSource
from replay_tui.tui.widgets.pane import set_virtual_size

SLOW_NS = 1_000_000_000  # a call this slow is shown in red; SLOWISH_NS in yellow
SLOWISH_NS = 250_000_000

S = Style.parse
BASE = S("#d8dee9")
HEADER = S("bold #8fbcbb on #1f2630")
DIM = S("#5c6773")
SEQ = S("#7b8794")
TIME = S("#8a96a3")
VERB_READ = S("#81a1c1")
VERB_CREATE = S("bold #a3be8c")
VERB_WRITE = S("bold #ebcb8b")
VERB_DELETE = S("bold #d08770")
VERB_EVENT = S("italic #88c0d0")
OBJ = S("#d8dee9")
OBJ_EVENT = S("#6f98a3")
STATUS_OK = S("#7b8794")
STATUS_ERR = S("bold #ff6b6b")
ERROR_ROW = S("on #3a1f24")
LAT = S("#8a96a3")
LAT_SLOWISH = S("#ebcb8b")
LAT_SLOW = S("bold #ff6b6b")
MARK = S("bold #ebcb8b")
SELECTED = S("on #2e4a6b")
SELECTED_INEXACT = S("on #263140")
SPAN_COLOURS = [S(c) for c in ("#b48ead", "#5e81ac", "#a3be8c", "#d08770", "#88c0d0", "#ebcb8b")]
VERB_SHORT = {"deletecollection": "deletecoll"}


class Columns:
    """Where each field goes at a given width."""

    def __init__(self, width: int, last: int):
        self.width = width
        self.seq = max(len(str(max(last, 1))), 4)
        self.time = 12
        self.verb = 10
        self.status = 18 if width >= 120 else 15 if width >= 100 else 4
        self.latency = 8
        fixed = 1 + 2 + self.seq + 1 + self.time + 1 + self.verb + 1 + 1 + self.status + 1 + self.latency + 1
        self.obj = max(width - fixed, 8)


def _cell(text: str, width: int, right: bool = False) -> str:
    if cell_len(text) > width:
        return set_cell_size(text[: max(width - 1, 0)], max(width - 1, 0)) + "…" if width > 0 else ""
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


def verb_style(verb: str) -> Style:
    if verb in EVENT_VERBS:
        return VERB_EVENT
    if verb in READ_VERBS:
        return VERB_READ
    if verb == "create":
        return VERB_CREATE
    if verb in ("delete", "deletecollection"):
        return VERB_DELETE
    return VERB_WRITE


def span_glyph(row: OpRow, span: Reconcile | None) -> str:
    if row.reconcile is None:
        return " "
    if span is None:
        return "│"
    start, end = span.start_seq, span.end_seq
    if start == row.seq and end == row.seq:
        return "╶"
    if start == row.seq:
        return "┌"
    if end == row.seq:
        return "└"
    return "│"


def header_strip(cols: Columns) -> Strip:
    text = (" " + " " + " " + _cell("SEQ", cols.seq, right=True) + " " + _cell("TIME (UTC)", cols.time)
            + " " + _cell("VERB", cols.verb) + " " + _cell("OBJECT", cols.obj) + " "
            + _cell("STATUS", cols.status) + " " + _cell("LATENCY", cols.latency, right=True) + " ")
    return Strip([Segment(_cell(text, cols.width), HEADER)], cols.width)


def row_strip(row: OpRow, cols: Columns, span: Reconcile | None, marked: bool) -> Strip:
    """One operation as a line of the timeline."""
    error = row.error
    event = row.verb in EVENT_VERBS
    segs: list[Segment] = []
    add = segs.append
    add(Segment("◆" if marked else " ", MARK))
    glyph = span_glyph(row, span)
    add(Segment(glyph + " ", SPAN_COLOURS[(row.reconcile or 0) % len(SPAN_COLOURS)]))
    add(Segment(_cell(str(row.seq), cols.seq, right=True) + " ", SEQ))
    ts = time.strftime("%H:%M:%S", time.gmtime(row.ts_ns // 1_000_000_000))
    add(Segment(f"{ts}.{(row.ts_ns // 1_000_000) % 1000:03d} ", TIME))
    add(Segment(_cell(VERB_SHORT.get(row.verb, row.verb), cols.verb) + " ", verb_style(row.verb)))
    add(Segment(_cell(row.target or "-", cols.obj) + " ", OBJ_EVENT if event else OBJ))
    if row.status:
        status = f"{row.status} {row.reason}" if row.reason else str(row.status)
    else:
        status = row.reason or ("ERROR" if error else "")
    add(Segment(" " + _cell(status, cols.status) + " ", STATUS_ERR if error else STATUS_OK))
    lat = row.duration_ns
    lat_style = LAT_SLOW if lat >= SLOW_NS else LAT_SLOWISH if lat >= SLOWISH_NS else LAT
    add(Segment(_cell(fmt_duration(lat) if lat or not event else "", cols.latency, right=True) + " ",
                lat_style))
    strip = Strip(segs)
    strip = strip.adjust_cell_length(cols.width, None)
    if error:
        strip = Strip(Segment.apply_style(list(strip), ERROR_ROW), cols.width)
    return strip


class Timeline(ScrollView, can_focus=True, inherit_bindings=False):
    """Every operation of the session, one line each, with a sticky header."""

    DEFAULT_CSS = """
    Timeline {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;
    }
    """

    class RowClicked(Message):
        def __init__(self, index: int):
            super().__init__()
            self.index = index

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.source: TimelineSource | None = None
        self.selected = 0
        self.exact = True
        self.marked: set[int] = set()
        self.empty_text = "opening the recording..."
        self._pages: LRUCache[int, list[OpRow]] = LRUCache(256)
        self._lines: LRUCache[tuple[int, int, int], Strip] = LRUCache(4096)
        self._wanted: set[int] = set()
        self._loading = False
        self._cols: Columns | None = None
        self.pages_loaded = 0  # for tests and the benchmark

    # --- data ------------------------------------------------------------------

    def set_source(self, source: TimelineSource | None) -> None:
        self.source = source
        self.reset()

    def reset(self) -> None:
        """Forget rows and lines (a new filter or session)."""
        self._pages.clear()
        self._lines.clear()
        self._wanted.clear()
        self.update_count()
        self.refresh()

    def update_count(self) -> None:
        count = self.source.count if self.source else 0
        set_virtual_size(self, Size(self.size.width, count + 1))
        self._cols = None

    def on_resize(self) -> None:
        self.update_count()

    def grew(self, old_count: int) -> None:
        """The session (or the match list) grew: the old last page is incomplete now."""
        if old_count:
            page = (old_count - 1) // PAGE
            self._pages.discard(page)
            self._lines.clear()
        self.update_count()
        self.refresh()

    def set_marks(self, seqs: Iterable[int]) -> None:
        self.marked = set(seqs)
        self._lines.clear()
        self.refresh()

    def row_at(self, index: int) -> OpRow | None:
        """The row at an index when its page is loaded (None otherwise)."""
        page = self._pages.get(index // PAGE)
        if page is None:
            return None
        i = index % PAGE
        return page[i] if i < len(page) else None

    def row_for_seq(self, seq: int) -> OpRow | None:
        if self.source is None:
            return None
        index, exact = self.source.index_of(seq)
        if not exact:
            return None
        row = self.row_at(index)
        return row if row is not None and row.seq == seq else None

    # --- selection and scrolling -------------------------------------------------

    @property
    def body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def select(self, index: int, exact: bool = True, *, center: bool = False) -> None:
        old = self.selected
        self.selected = index
        self.exact = exact
        top = round(self.scroll_y)
        height = self.body_height
        if center and not top <= index < top + height:
            target = max(index - height // 2, 0)
        elif index < top:
            target = index
        elif index >= top + height:
            target = index - height + 1
        else:
            target = top
        if target != top:
            self.scroll_to(y=target, animate=False, immediate=True)
            self.refresh()
        else:
            self._refresh_index(old)
            self._refresh_index(index)

    def _refresh_index(self, index: int) -> None:
        if 0 <= index - round(self.scroll_y) < self.body_height:
            self.refresh_line(index + 1)  # virtual line: the header sits above row 0

    # --- rendering -----------------------------------------------------------------

    def _columns(self, width: int) -> Columns:
        cols = self._cols
        last = self.source.session.last if self.source else 0
        if cols is None or cols.width != width:
            cols = self._cols = Columns(width, last)
        return cols

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        cols = self._columns(width)
        if y == 0:
            return header_strip(cols)
        source = self.source
        count = source.count if source else 0
        index = round(self.scroll_y) + y - 1
        if index >= count:
            if count == 0 and y == 2:
                return Strip([Segment(_cell("   " + self.empty_text, width), DIM)], width)
            return Strip.blank(width)
        assert source is not None
        key = (source.generation, index, width)
        strip = self._lines.get(key)
        if strip is None:
            row = self.row_at(index)
            if row is None:
                page = index // PAGE
                if page in self._pages:  # a page read at the live end before it filled up
                    self._pages.discard(page)
                self._want(page)
                seq = source.seq_at(index)
                return self._decorate(Strip([Segment(_cell(f"   {seq:>{cols.seq}}  ...", width), DIM)], width),
                                      index)
            span = source.spans.get(row.reconcile) if row.reconcile is not None else None
            strip = row_strip(row, cols, span, row.seq in self.marked)
            self._lines[key] = strip
        return self._decorate(strip, index)

    def _decorate(self, strip: Strip, index: int) -> Strip:
        if index != self.selected:
            return strip
        style = SELECTED if self.exact else SELECTED_INEXACT
        return Strip(Segment.apply_style(list(strip), post_style=style), strip.cell_length)

    # --- page loading ------------------------------------------------------------------

    def _want(self, page: int) -> None:
        self._wanted.add(page)
        if not self._loading:
            self._loading = True
            self.call_later(self._load_pages)

    def _visible_pages(self) -> set[int]:
        top = round(self.scroll_y)
        return {p for p in range(top // PAGE, (top + self.body_height) // PAGE + 1)}

    @work(group="timeline-pages", exit_on_error=False)
    async def _load_pages(self) -> None:
        """Read wanted pages, those on screen first; pages scrolled past are dropped."""
        source = self.source
        try:
            while self._wanted and source is self.source and source is not None:
                visible = self._visible_pages()
                self._wanted &= visible | {self.selected // PAGE}
                if not self._wanted:
                    break
                page = min(self._wanted)
                self._wanted.discard(page)
                if page in self._pages:
                    continue
                generation = source.generation
                rows = await source.fetch_page(page)
                self.post_message(PageLoaded(generation, page, rows))
        except Exception as exc:
            from replay_tui.engine.schema import RecordingError
            text = str(exc) if isinstance(exc, RecordingError) else f"{type(exc).__name__}: {exc}"
            self.post_message(Notice(f"timeline: {text}"))
        finally:
            self._loading = False

    def on_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        if self.source is None or message.generation != self.source.generation:
            return
        self._pages[message.page] = message.rows
        self.pages_loaded += 1
        top = round(self.scroll_y)
        first, last = message.page * PAGE, (message.page + 1) * PAGE
        if first < top + self.body_height and last > top:
            self.refresh()
        if self._wanted and not self._loading:
            self._loading = True
            self.call_later(self._load_pages)

    # --- mouse ---------------------------------------------------------------------------

    def on_click(self, event: Click) -> None:
        if event.y == 0 or self.source is None:
            return
        index = round(self.scroll_y) + event.y - 1
        if 0 <= index < self.source.count:
            self.post_message(self.RowClicked(index))
