"""The help screen: every key, the jump forms and the filter language."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: What ``:`` accepts: (form, what it means), laid out as a table so narrow terminals wrap each meaning
#: under itself.
JUMP_HELP = [
    ("1234", "op number"), ("50%", "a percentage of the session"),
    ("12:03:04", "a time of day (UTC)"), ("+90s  +2m  +1h", "an offset from the start"),
    ("2024-05-01T10:03:04Z", "an ISO time"), ("a", "a mark name (yours or the recording's)"),
]

FILTER_HELP = """\
verb:update,patch   kind:Pod   ns:shop   name:web-*   status:409   status:4xx   status>=500
latency>200ms   reason:Conflict   actor:kopf   reconcile:12   generation>3   seq>=100   error
timeout   discovery   discovery=false   path=/apis*   changed=.status.phase (ops that gave an
object a new value there)   free text (matches kind, namespace, name, reason or message).
Terms are ANDed; ',' lists alternatives; '*' is a wildcard; != negates.  Esc clears the filter."""

#: Keys that are not the debugger's own bindings, and the mouse: (key, what it does).
MORE_HELP = [
    ("Tab / shift+Tab", "move the focus: timeline → operation pane → tab content (a focused pane scrolls with "
                        "↑ ↓ PgUp PgDn Home End; every other key still works the timeline)"),
    ("Esc", "back out, innermost first: a search, a zoom, an object's own timeline, the filter"),
    ("Enter / z", "State pane: unfold huge values (z anywhere) · Why tab: go to a link or a round · Analysis: go to "
                  "a finding (on a causality cycle: its rounds, in the Why tab)"),
    ("x, Delete", "Watches tab: stop watching the highlighted field · marks list (M): x deletes, r renames · "
                  "session picker (S): c compares that run beside this one"),
    ("ctrl+q", "quit (as q does); ctrl+c copies selected text, or says how to quit"),
    ("mouse", "click a timeline row: go to that op · wheel: scroll the timeline or a pane · click a tab, a "
              "finding or a watch: open it · click a key at the bottom: run it · drag over text: select it"),
]


WIDE = 120  # terminal columns from which the keys are listed in two columns


def pairs_table(pairs: list[tuple[str, str]], columns: int) -> Table:
    """(key, text) pairs in ``columns`` side-by-side columns, read down the first then the next;
    a text too long for its column wraps under itself, never back under the key."""
    table = Table(show_header=False, box=None, expand=columns > 1, padding=(0, 1))
    widest = max((len(k) for k, _ in pairs), default=8)
    for _ in range(columns):
        table.add_column("key", style="replay.accent", no_wrap=True, min_width=widest)
        table.add_column("what it does", ratio=1)
    rows = -(-len(pairs) // columns)
    for r in range(rows):
        cells: list[str] = []
        for c in range(columns):
            i = c * rows + r
            cells += pairs[i] if i < len(pairs) else ("", "")
        table.add_row(*cells)
    return table


class HelpScreen(ModalScreen[None]):
    """Keys come from the app's bindings, so this never drifts from what the keys do."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 50%; }
    HelpScreen > VerticalScroll {
        width: 156; max-width: 96%; height: 96%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def __init__(self, bindings: list[tuple[str, str]], keymap: str = ""):
        super().__init__()
        self.bindings = bindings
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        columns = 2 if self.app.size.width >= WIDE else 1  # on a wide terminal it all fits on one screen
        table = pairs_table(self.bindings, columns)
        with VerticalScroll():
            yield Static(Text.styled("replay-tui: keys (ctrl+p finds any action by name)", "replay.heading"))
            yield Static(table)
            yield Static(Text.styled("\njump (:) accepts", "replay.heading"))
            yield Static(pairs_table(JUMP_HELP, columns))
            yield Static(Text.styled("\nfilter (/) language", "replay.heading"))
            yield Static(Text(FILTER_HELP))
            yield Static(Text.styled("\nmore keys, and the mouse", "replay.heading"))
            yield Static(pairs_table(MORE_HELP, 1))
            yield Static(Text.styled("\ntimeline: ◆ mark (also on the scrollbar), ≠ where a compared run diverges, "
                              "┌│└ a reconcile span, failed rows tinted, slow latency lit (>=250ms / >=1s), watch "
                              "events in italics, '-' a latency the source did not record, a dim italic row: the "
                              "cursor's op the filter hides. Marks you set are kept beside your state, never in the "
                              "recording.", "replay.label"))
            keymap = f"Rebind any key by its id (ctrl+p shows each one) in {self.keymap}, e.g. " \
                     "'replay.jump-forward' = 'ctrl+n,alt+right'. " if self.keymap else ""
            yield Static(Text.styled(f"\n{keymap}Esc, q, ? or F1 closes this screen", "replay.label"))

    def action_close(self) -> None:
        self.dismiss(None)
