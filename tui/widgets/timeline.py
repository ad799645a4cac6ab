"""The timeline: one Line-API ScrollView over every operation of a session.

Row ``i`` is drawn from a page of rows read by index (``TimelineSource``); the widget holds
an LRU of pages and an LRU of rendered lines, and asks a worker for missing pages, nearest
to the screen first.  Nothing is a widget per row, so a million rows scroll as smoothly as
ten.  The highlighted row is always the cursor's op: under a filter that hides it, its
ghost row (dim, italic) stands where it belongs in time.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment, Segments
from rich.style import Style
from textual.cache import LRUCache
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBarRender
from textual.strip import Strip

from replay_tui.engine.format import EVENT_VERBS, READ_VERBS, OpRow, Reconcile, has_latency
from replay_tui.engine.textsafe import safe
from replay_tui.engine.units import elide as elide_middle
from replay_tui.engine.units import fmt_latency
from replay_tui.tui.control.columns import ColumnChoice, shown
from replay_tui.tui.control.source import GHOST_PAGE, TimelineSource
from replay_tui.tui.messages import PageLoaded
from replay_tui.tui.widgets.pane import set_virtual_size

SLOW_NS = 1_000_000_000  # a call this slow is drawn as slow; SLOWISH_NS as slowish
SLOWISH_NS = 250_000_000
OBJECT_MAX = 72  # the OBJECT column's widest; what is left goes to RECONCILE
SPANS = 6  # reconcile bracket colours, replay.span.0 .. 5
VERB_SHORT = {"deletecollection": "deletecoll"}
ROLES = ("header", "dim", "seq", "label", "text", "event", "bad.strong", "error.row", "slow", "slowish", "mark",
         "cursor", "ghost", "changed", *(f"verb.{v}" for v in ("read", "create", "write", "delete", "event")),
         *(f"span.{i}" for i in range(SPANS)))
OVERLAYS = ("error.row", "ghost", "cursor")


def verb_role(verb: str) -> str:
    """The palette role a verb is drawn in (also used by the panes)."""
    if verb in EVENT_VERBS:
        return "replay.verb.event"
    if verb in READ_VERBS:
        return "replay.verb.read"
    if verb == "create":
        return "replay.verb.create"
    if verb in ("delete", "deletecollection"):
        return "replay.verb.delete"
    return "replay.verb.write"


class Columns:
    """Where each field goes at a given width (and which optional columns are shown: ``choice``)."""

    def __init__(self, width: int, last: int, choice: ColumnChoice | None = None):
        choice = choice or ColumnChoice()
        self.width = width
        self.choice = choice
        self.seq = max(len(str(max(last, 1))), 4)
        self.time = 12 if choice.time else 0
        self.verb = 10
        self.status = (18 if width >= 120 else 15 if width >= 100 else 4) if choice.status else 0
        self.latency = 8 if choice.latency else 0
        self.actor = (18 if width >= 140 else 12) if choice.actor else 0
        self.field = (24 if width >= 150 else 18 if width >= 120 else 12) if choice.fields else 0
        fixed = (1 + 2 + self.seq + 1 + (self.time + 1 if self.time else 0) + self.verb + 1
                 + (1 + self.status + 1 if self.status else 0) + (self.latency + 1 if self.latency else 0)
                 + (self.actor + 1 if self.actor else 0) + (self.field + 1) * len(choice.fields))
        rest = max(width - fixed, 8)
        self.obj = min(rest, OBJECT_MAX) if rest >= OBJECT_MAX + 14 else rest
        self.reconcile = rest - self.obj - 1 if rest > self.obj and choice.reconcile else 0


def cell(text: str, width: int, right: bool = False) -> str:
    """``text`` in exactly ``width`` cells (cut with '…' at the end)."""
    if cell_len(text) > width:
        return set_cell_size(text[: max(width - 1, 0)], max(width - 1, 0)) + "…" if width > 0 else ""
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


def elide(text: str, width: int) -> str:
    """``text`` in exactly ``width`` cells, a long one cut in the middle: object names differ at their end."""
    return cell(text if cell_len(text) <= width else elide_middle(text, width), width)


def span_glyph(row: OpRow, span: Reconcile | None, prev: OpRow | None, nxt: OpRow | None, filtered: bool) -> str:
    """The reconcile bracket beside a row: ┌ first, │ inside, └ last (╶ alone) of the rows shown."""
    rid = row.reconcile
    if rid is None:
        return " "
    if filtered or span is None:  # the bracket spans the rows on screen, whichever the filter kept
        first = prev is None or prev.reconcile != rid
        last = nxt is None or nxt.reconcile != rid
    else:
        first, last = span.start_seq == row.seq, span.end_seq == row.seq
    return "╶" if first and last else "┌" if first else "└" if last else "│"


def latency_cell(row: OpRow) -> str:
    """A measured latency; '-' for a request whose latency was not recorded; nothing for a watch event."""
    return "" if row.verb in EVENT_VERBS else fmt_latency(row.verb, row.duration_ns)


@dataclass
class RowClicked(Message):
    index: int


class Timeline(ScrollView, can_focus=True, inherit_bindings=False):
    """Every operation of the session, one line each, with a sticky header."""

    DEFAULT_CSS = """
    Timeline {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;
    }
    Timeline:focus {
        background-tint: $foreground 3%;
    }
    """

    RowClicked = RowClicked

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.source: TimelineSource | None = None
        self.selected = 0
        self.marked: set[int] = set()
        self.diverged: set[int] = set()  # ops where a compared run differs (≠)
        self.expected: set[int] = set()  # errors the user asked to treat as expected (not tinted)
        self.choice = ColumnChoice()
        self.empty_text = "opening the recording..."
        self._pages: LRUCache[int, list[OpRow | None]] = LRUCache(256)
        self._ghosts: LRUCache[int, OpRow] = LRUCache(16)
        self._lines: LRUCache[tuple[int, int, int], Strip] = LRUCache(4096)
        self._wanted: set[int] = set()
        self._loading = False
        self._cols: Columns | None = None
        self._styles: dict[str, Style] = {}
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
        self.call_after_refresh(self.scroll_to_cursor)  # a smaller window keeps the cursor row in view

    def grew(self, old_count: int) -> None:
        """The session (or the match list) grew: the old last page is incomplete now."""
        if old_count and self.source is not None:
            self._pages.discard(self.source.page_of(old_count - 1)[0])
            self._lines.clear()
        self.update_count()
        self.refresh()

    def shifted(self, rows: int) -> None:
        """``rows`` matches were put before the known ones (the scan reaching back from the cursor):
        every row moved down by that much, and the view moves with them, so what is on screen stays
        where it is.  Pages keep their numbers (``TimelineSource.page_of``): none is read again."""
        self._lines.clear()
        self.update_count()
        self.scroll_to(y=self.scroll_y + rows, animate=False, immediate=True)
        self.refresh()

    def set_marks(self, seqs: Iterable[int]) -> None:
        self.marked = set(seqs)
        self._lines.clear()
        self.refresh()
        self.refresh_minimap()

    def set_diverged(self, seqs: Iterable[int]) -> None:
        self.diverged = set(seqs)
        self._lines.clear()
        self.refresh()
        self.refresh_minimap()

    def set_expected(self, seqs: Iterable[int]) -> None:
        self.expected = set(seqs)
        self._lines.clear()
        self.refresh()

    def set_choice(self, choice: ColumnChoice) -> None:
        """Show these columns (field values and actors are read again for the pages on screen)."""
        self.choice = choice
        if self.source is not None:
            self.source.extras.choose(choice)
        self.reset()

    # --- the minimap: marks and divergences drawn on the scrollbar ---------------------------

    def on_mount(self) -> None:
        self.vertical_scrollbar.renderer = minimap(self)  # type: ignore[misc]  # (Textual's documented way)

    def refresh_minimap(self) -> None:
        if self.is_mounted:
            self.vertical_scrollbar.refresh()

    def ticks(self, size: int) -> list[tuple[int, str, Style]]:
        """(scrollbar row, glyph, style) of each mark and divergence, for a bar ``size`` rows high."""
        source = self.source
        count = source.count if source else 0
        if source is None or not count or size <= 0:
            return []
        out: dict[int, tuple[int, str, Style]] = {}
        for seqs, glyph, role in ((self.diverged, "≠", "bad.strong"), (self.marked, "◆", "mark")):
            for seq in sorted(seqs)[:5000]:
                index, _ = source.index_of(seq)
                row = min(int(index * size / max(count, 1)), size - 1)
                out[row] = (row, glyph, self._style(role))
        return sorted(out.values())

    def palette_changed(self) -> None:
        """The theme changed (or the focus, which tints the background): draw the rows again."""
        self._styles = {}
        self._lines.clear()
        self.refresh()

    def on_focus(self) -> None:
        self.palette_changed()

    def on_blur(self) -> None:
        self.palette_changed()

    def row_at(self, index: int) -> OpRow | None:
        """The row at an index when it is loaded (None otherwise)."""
        source = self.source
        if source is None:
            return None
        base = source.base_of(index)
        if base is None:
            return self._ghosts.get(source.ghost) if source.ghost is not None else None
        number, i = source.page_of(base)
        page = self._pages.get(number)
        if page is None:
            return None
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

    def select(self, index: int, *, center: bool = False, moved: bool = False) -> None:
        """Highlight row ``index`` and scroll it into view (``moved``: rows shifted, repaint all)."""
        old = self.selected
        self.selected = index
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
        elif moved:
            self.refresh()
        else:
            self._refresh_index(old)
            self._refresh_index(index)

    def scroll_to_cursor(self) -> None:
        if self.source is not None and self.source.count:
            self.select(self.selected)

    def _refresh_index(self, index: int) -> None:
        if 0 <= index - round(self.scroll_y) < self.body_height:
            self.refresh_line(index + 1)  # virtual line: the header sits above row 0

    # --- rendering -----------------------------------------------------------------

    def _style(self, role: str) -> Style:
        """A role over the timeline's own colours (its theme background under every cell)."""
        if not self._styles:
            get, base = self.app.console.get_style, self.rich_style
            self._styles = {r: base + get(f"replay.{r}", default="none") for r in ROLES}
            self._styles["base"] = base
            for r in OVERLAYS:  # laid over a whole row: only what the role itself sets
                self._styles[f"over.{r}"] = get(f"replay.{r}", default="none")
        return self._styles[role]

    def _columns(self, width: int) -> Columns:
        cols = self._cols
        last = self.source.session.last if self.source else 0
        if cols is None or cols.width != width or cols.choice is not self.choice:
            cols = self._cols = Columns(width, last, self.choice)
        return cols

    def header_strip(self, cols: Columns) -> Strip:
        text = "   " + cell("SEQ", cols.seq, right=True) + " "
        if cols.time:
            text += cell("TIME (UTC)", cols.time) + " "
        text += cell("VERB", cols.verb) + " " + cell("OBJECT", cols.obj) + " "
        for path in cols.choice.fields:
            text += cell(safe(path), cols.field) + " "
        if cols.status:
            text += cell("STATUS" if cols.status >= 6 else "CODE", cols.status) + " "
        if cols.latency:
            text += cell("LATENCY", cols.latency, right=True) + " "
        if cols.actor:
            text += " " + cell("ACTOR", cols.actor)
        if cols.reconcile:
            text += " " + cell("RECONCILE", cols.reconcile)
        return Strip([Segment(cell(text, cols.width), self._style("header"))], cols.width)

    def row_strip(self, row: OpRow, cols: Columns, index: int, ghost: bool) -> Strip:
        """One operation as a line of the timeline."""
        source = self.source
        assert source is not None
        s = self._style
        error = row.error and row.seq not in self.expected
        event = row.verb in EVENT_VERBS
        span = source.spans.get(row.reconcile) if row.reconcile is not None else None
        segs: list[Segment] = []
        add = segs.append
        if row.seq in self.marked:
            add(Segment("◆", s("mark")))
        else:
            add(Segment("≠", s("bad.strong")) if row.seq in self.diverged else Segment(" ", s("mark")))
        glyph = span_glyph(row, span, self.row_at(index - 1) if index else None, self.row_at(index + 1),
                           source.filtered)
        add(Segment(glyph + " ", s(f"span.{(row.reconcile or 0) % SPANS}")))
        add(Segment(cell(str(row.seq), cols.seq, right=True) + " ", s("seq")))
        if cols.time:
            ts = time.strftime("%H:%M:%S", time.gmtime(row.ts_ns // 1_000_000_000))
            add(Segment(f"{ts}.{(row.ts_ns // 1_000_000) % 1000:03d} ", s("label")))
        verb = cell(VERB_SHORT.get(row.verb, row.verb), cols.verb) + " "
        add(Segment(verb, s(verb_role(row.verb).removeprefix("replay."))))
        add(Segment(elide(safe(row.target) or "-", cols.obj) + " ", s("event" if event else "text")))
        extra = source.extras.rows.get(row.seq) if cols.choice.needs_extras else None
        for i in range(len(cols.choice.fields)):
            if extra is None or i >= len(extra.values):
                add(Segment(cell("…", cols.field) + " ", s("dim")))
            else:
                value = elide(shown(extra.values[i]), cols.field)
                add(Segment(value, s("changed") if extra.changed[i] else s("text")))
                add(Segment(" ", s("base")))
        if cols.status:
            if row.status:
                status = f"{row.status} {safe(row.reason)}" if row.reason else str(row.status)
            else:
                status = safe(row.reason) or ("ERROR" if row.error else "")
            add(Segment(" " + cell(status, cols.status) + " ",
                        s("bad.strong" if error else "label" if row.error else "seq")))
        if cols.latency:
            lat = row.duration_ns if has_latency(row.verb, row.duration_ns) else 0
            add(Segment(cell(latency_cell(row), cols.latency, right=True) + " ",
                        s("slow" if lat >= SLOW_NS else "slowish" if lat >= SLOWISH_NS else "label")))
        if cols.actor:
            add(Segment(" " + cell(safe(extra.actor) if extra is not None else "…", cols.actor),
                        s("label")))
        if cols.reconcile:
            what = f"#{row.reconcile} {safe(span.reconciler) if span else ''}" if row.reconcile is not None else ""
            add(Segment(" " + cell(what.rstrip(), cols.reconcile), s(f"span.{(row.reconcile or 0) % SPANS}")))
        strip = Strip(segs).adjust_cell_length(cols.width, s("base"))
        if ghost:
            strip = Strip(Segment.apply_style(list(strip), post_style=s("over.ghost")), cols.width)
        elif error:
            strip = Strip(Segment.apply_style(list(strip), post_style=s("over.error.row")), cols.width)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        cols = self._columns(width)
        if y == 0:
            return self.header_strip(cols)
        source = self.source
        count = source.count if source else 0
        index = round(self.scroll_y) + y - 1
        if index >= count:
            if count == 0 and y == 2:
                return Strip([Segment(cell("   " + self.empty_text, width), self._style("dim"))], width)
            return Strip.blank(width, self._style("base"))
        assert source is not None
        seq = source.seq_at(index)
        ghost = source.base_of(index) is None
        key = (source.generation, -seq if ghost else seq, width)
        strip = self._lines.get(key)
        if strip is None:
            row = self.row_at(index)
            if row is None:
                self._want(index)
                return self._decorate(Strip([Segment(cell(f"   {seq:>{cols.seq}}  ...", width), self._style("dim"))],
                                            width), index)
            strip = self.row_strip(row, cols, index, ghost)
            self._lines[key] = strip
        return self._decorate(strip, index)

    def _decorate(self, strip: Strip, index: int) -> Strip:
        if index != self.selected:
            return strip
        return Strip(Segment.apply_style(list(strip), post_style=self._style("over.cursor")), strip.cell_length)

    # --- page loading ------------------------------------------------------------------

    def _want(self, index: int) -> None:
        source = self.source
        assert source is not None
        base = source.base_of(index)
        page = GHOST_PAGE if base is None else source.page_of(base)[0]
        if page != GHOST_PAGE and page in self._pages:  # a page read at an end of the rows before it filled up
            self._pages.discard(page)
        self._wanted.add(page)
        self._start_loading()

    def _start_loading(self) -> None:
        """Read the wanted pages in a worker of the screen: its end, a failure included, reaches the
        screen's one handler of workers (``Worker.StateChanged`` does not bubble up from here)."""
        if self._wanted and not self._loading:
            self._loading = True
            self.call_later(lambda: self.screen.run_worker(self._load_pages(), name="timeline-pages",
                                                           group="timeline-pages", exit_on_error=False))

    def _visible_pages(self) -> set[int]:
        source = self.source
        if source is None:
            return set()
        top = round(self.scroll_y)
        bases = [b for b in (source.base_of(top), source.base_of(top + self.body_height)) if b is not None]
        first, last = (source.page_of(min(bases, default=0))[0], source.page_of(max(bases, default=0))[0])
        return set(range(first, last + 1)) | {GHOST_PAGE}

    async def _load_pages(self) -> None:
        """Read wanted pages, those on screen first; pages scrolled past are dropped."""
        source = self.source
        try:
            while self._wanted and source is self.source and source is not None:
                self._wanted &= self._visible_pages()
                if not self._wanted:
                    break
                page = min(self._wanted)
                self._wanted.discard(page)
                generation = source.generation
                if page == GHOST_PAGE:
                    if source.ghost is not None and source.ghost not in self._ghosts:
                        self.post_message(PageLoaded(generation, page, list(await source.rows_by_seq([source.ghost]))))
                    continue
                if page not in self._pages:
                    self.post_message(PageLoaded(generation, page, await source.fetch_page(page)))
        finally:
            self._loading = False

    def on_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        if self.source is None or message.generation != self.source.generation:
            return
        if message.page == GHOST_PAGE:
            for row in message.rows:
                if row is not None:
                    self._ghosts[row.seq] = row
        else:
            self._pages[message.page] = message.rows
            self.pages_loaded += 1
            self._lines.clear()  # neighbours decide brackets under a filter
        self.refresh()
        self._start_loading()

    # --- mouse ---------------------------------------------------------------------------

    def on_click(self, event: Click) -> None:
        if event.y == 0 or self.source is None:
            return
        index = round(self.scroll_y) + event.y - 1
        if 0 <= index < self.source.count:
            self.post_message(RowClicked(index))


def minimap(timeline: Timeline) -> type[ScrollBarRender]:
    """A scrollbar renderer that draws the timeline's marks (◆) and divergences (≠) over the bar."""
    ref = weakref.ref(timeline)

    class Minimap(ScrollBarRender):
        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            for bar in super().__rich_console__(console, options):
                tl = ref()
                if not isinstance(bar, Segments) or tl is None or not self.vertical:
                    yield bar
                    continue
                segments = list(bar.segments)
                for row, glyph, style in tl.ticks(len(segments)):
                    old = segments[row].style or Style()
                    under = old.color if old.reverse else old.bgcolor
                    segments[row] = Segment(glyph, Style(color=style.color, bgcolor=under, bold=True, meta=old.meta))
                yield Segments(segments, new_lines=True)

    return Minimap
