"""The debugger's keys: one Binding per action, each with an id (so a keymap can rebind it),
and the order the key bar shows them in when the width does not hold them all."""

from __future__ import annotations

from textual.binding import Binding


def _b(keys: str, action: str, description: str, bid: str, *, show: bool = True, key_display: str | None = None
       ) -> Binding:
    return Binding(keys, action, description, show=show, key_display=key_display, id=f"replay.{bid}")


BINDINGS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    _b("right,l", "step(1)", "Step", "step", key_display="→/l"),
    _b("left,h", "step(-1)", "Back", "back", key_display="←/h"),
    _b("down,j", "move(1)", "Next row", "next-row", show=False, key_display="↓/j"),
    _b("up,k", "move(-1)", "Previous row", "prev-row", show=False, key_display="↑/k"),
    _b("pagedown", "page(1)", "Page down", "page-down", show=False),
    _b("pageup", "page(-1)", "Page up", "page-up", show=False),
    _b("g,home", "first", "First row", "first", show=False, key_display="g"),
    _b("G,end", "last", "Last row", "last", show=False, key_display="G"),
    _b("colon", "jump", "Jump", "jump", key_display=":"),
    _b("e", "error(1)", "Next error", "next-error"),
    _b("E", "error(-1)", "Previous error", "prev-error", show=False),
    _b("right_square_bracket", "reconcile(1)", "Next reconcile", "next-reconcile", show=False, key_display="]"),
    _b("left_square_bracket", "reconcile(-1)", "Previous reconcile", "prev-reconcile", show=False, key_display="["),
    _b("slash", "filter", "Filter", "filter", key_display="/"),
    _b("escape", "clear_filter", "Clear filter", "clear-filter", show=False, key_display="esc"),
    _b("m", "mark", "Mark", "mark"),
    _b("apostrophe", "goto_mark", "Go to mark", "goto-mark", show=False, key_display="'"),
    _b("d", "diff_mark", "Diff vs mark", "diff-mark"),
    _b("f", "toggle_follow", "Follow", "follow"),
    _b("o", "pick_object", "Pick object", "pick-object", show=False),
    _b("z", "toggle_fold", "Unfold/fold big values and noise fields", "fold", show=False),
    _b("w", "watch_field", "Watch field", "watch"),
    _b("c", "continue_watch(1)", "Next watched change", "continue"),
    _b("C", "continue_watch(-1)", "Previous watched change", "reverse-continue", show=False),
    _b("x", "remove_watch", "Stop watching a field", "unwatch", show=False),
    _b("p", "provenance", "Provenance (who made this version)", "provenance", show=False),
    _b("1", "show_tab('state')", "State tab", "tab-state", show=False),
    _b("2", "show_tab('diff')", "Diff tab", "tab-diff", show=False),
    _b("3", "show_tab('stats')", "Stats tab", "tab-stats", show=False),
    _b("4", "show_tab('analysis')", "Analysis tab", "tab-analysis", show=False),
    _b("5", "show_tab('watches')", "Watches tab", "tab-watches", show=False),
    _b("S", "pick_session", "Switch session", "session", show=False),
    _b("R", "write_report", "Write report (HTML/Markdown/JSON)", "report", show=False),
    _b("question_mark,f1", "help", "Help", "help", key_display="?"),
    _b("q", "app.quit", "Quit", "quit"),
]

#: The key bar, most used first; it shows as many as fit, then TAIL.
KEYBAR = ("step", "back", "jump", "filter", "next-error", "mark", "diff-mark", "follow", "watch", "continue")
TAIL = ("help", "quit")

_NAMES = {"right": "→", "left": "←", "down": "↓", "up": "↑", "colon": ":", "slash": "/", "apostrophe": "'",
          "right_square_bracket": "]", "left_square_bracket": "[", "question_mark": "?", "escape": "esc"}


def key_label(key: str) -> str:
    return _NAMES.get(key.strip(), key.strip())


def help_rows() -> list[tuple[str, str]]:
    """(keys, what they do) for every binding, for the help screen and the palette."""
    return [(", ".join(key_label(k) for k in b.key.split(",")), b.description) for b in bindings()]


def bindings() -> list[Binding]:
    return [b for b in BINDINGS if isinstance(b, Binding)]


def by_id(bid: str) -> Binding:
    return next(b for b in bindings() if b.id == f"replay.{bid}")


def keybar() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The key bar's keys (most used first) and its tail: (key as shown, description, action)."""
    def key(bid: str) -> tuple[str, str, str]:
        b = by_id(bid)
        return b.key_display or key_label(b.key), b.description, b.action

    return [key(k) for k in KEYBAR], [*(key(k) for k in TAIL), ("^p", "Commands", "app.command_palette")]
