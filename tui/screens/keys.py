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
    _b("escape", "back_out", "Back out of a search, zoom, object timeline, filter", "clear-filter",
       show=False, key_display="esc"),
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
    _b("p", "provenance", "Provenance: why the object looks like this (Why tab)", "provenance", show=False),
    _b("ctrl+o", "jump_back", "Back to where the last jump came from", "jump-back", key_display="^o"),
    _b("ctrl+n", "jump_forward", "Forward again (after ^o)", "jump-forward", show=False, key_display="^n"),
    _b("t", "object_timeline", "This object's own timeline (Esc: all ops)", "object-timeline"),
    _b("y", "yank('object')", "Copy the object's YAML", "yank-object", show=False),
    _b("Y", "yank('op')", "Copy the operation (request and response) as JSON", "yank-op", show=False),
    _b("number_sign", "yank('ref')", "Copy the op's seq and target", "yank-ref", show=False, key_display="#"),
    _b("v", "pager('object')", "View the object's YAML in $PAGER", "pager", show=False),
    _b("V", "pager('op')", "View the operation as JSON in $PAGER", "pager-op", show=False),
    _b("ctrl+f", "find", "Find in the pane (n / N: next / previous match)", "find", show=False, key_display="^f"),
    _b("n", "find_next(1)", "Next match", "find-next", show=False),
    _b("N", "find_next(-1)", "Previous match", "find-prev", show=False),
    _b("D", "diff_range", "Diff between any two points (marks, seqs, the cursor)", "diff-range", show=False),
    _b("M", "marks", "Marks: jump, rename, delete", "marks", show=False),
    _b("plus", "add_column", "Add a field column (.status.phase)", "add-column", show=False, key_display="+"),
    _b("minus", "remove_column", "Remove the last field column", "remove-column", show=False, key_display="-"),
    _b("T", "columns", "Choose the timeline's columns", "columns", show=False),
    _b("exclamation_mark", "toggle_expected", "Hide expected errors: 404 before create, 409 retried",
       "expected-errors", show=False, key_display="!"),
    _b("Z", "zoom", "Zoom the focused pane (again: back)", "zoom", show=False),
    _b("K", "serve", "Serve the cursor's state to kubectl (again: stop)", "serve", show=False),
    _b("greater_than_sign", "divergence(1)", "Next divergence from the compared run", "next-divergence",
       show=False, key_display=">"),
    _b("less_than_sign", "divergence(-1)", "Previous divergence from the compared run", "prev-divergence",
       show=False, key_display="<"),
    _b("1", "show_tab('state')", "State tab", "tab-state", show=False),
    _b("2", "show_tab('diff')", "Diff tab", "tab-diff", show=False),
    _b("3", "show_tab('stats')", "Stats tab", "tab-stats", show=False),
    _b("4", "show_tab('analysis')", "Analysis tab", "tab-analysis", show=False),
    _b("5", "show_tab('watches')", "Watches tab", "tab-watches", show=False),
    _b("6", "show_tab('why')", "Why tab (provenance, a cycle's rounds)", "tab-why", show=False),
    _b("S", "pick_session", "Switch session, or compare one beside this", "session", show=False),
    _b("R", "write_report", "Write report (HTML/Markdown/JSON)", "report", show=False),
    _b("question_mark,f1", "help", "Help", "help", key_display="?"),
    _b("q", "app.quit", "Quit", "quit"),
]

#: The key bar, most used first; it shows as many as fit, then TAIL.
KEYBAR = ("step", "back", "jump", "filter", "next-error", "jump-back", "object-timeline", "mark", "diff-mark",
          "follow", "watch", "continue")
TAIL = ("help", "quit")

_NAMES = {"right": "→", "left": "←", "down": "↓", "up": "↑", "colon": ":", "slash": "/", "apostrophe": "'",
          "right_square_bracket": "]", "left_square_bracket": "[", "question_mark": "?", "escape": "esc",
          "number_sign": "#", "plus": "+", "minus": "-", "exclamation_mark": "!", "greater_than_sign": ">",
          "less_than_sign": "<", "pagedown": "PgDn", "pageup": "PgUp", "home": "Home", "end": "End"}

#: A user's keymap: binding id -> keys (replay.step -> right,l,space), as Textual's ``App.set_keymap`` takes.
Keymap = dict[str, str]


def key_label(key: str) -> str:
    key = key.strip()
    if key.startswith("ctrl+") and len(key) > 5:
        return "^" + key_label(key[5:])
    return _NAMES.get(key, key)


def bindings(keymap: Keymap | None = None) -> list[Binding]:
    """The debugger's bindings, with the keys a user's keymap gives them."""
    out = []
    for b in BINDINGS:
        if isinstance(b, Binding):
            keys = (keymap or {}).get(b.id or "")
            out.append(b.with_key(keys, key_display=None) if keys else b)
    return out


def shown_key(b: Binding) -> str:
    """The key as the bar, the help and the palette show it (the first, when there are several)."""
    return b.key_display or key_label(b.key.split(",")[0])


#: Keys the help screen shows on one row: (ids, what they do together).
HELP_GROUPS = (
    (("step", "back"), "Step forward / back one op in time"),
    (("next-row", "prev-row"), "Next / previous row (under a filter: match)"),
    (("page-down", "page-up"), "Page down / up"),
    (("first", "last"), "First / last row"),
    (("next-error", "prev-error"), "Next / previous error (among the rows shown)"),
    (("mark", "goto-mark", "marks"), "Set a mark / go to one / list them to rename, delete"),
    (("diff-mark", "diff-range"), "Diff vs a mark / between any two points"),
    (("watch", "unwatch"), "Watch a field of the object / stop watching one"),
    (("next-reconcile", "prev-reconcile"), "Next / previous reconcile"),
    (("continue", "reverse-continue"), "Next / previous change of a watched field"),
    (("jump-back", "jump-forward"), "Back to where a jump came from / forward again"),
    (("yank-object", "yank-op", "yank-ref"), "Copy object YAML / op JSON / seq and target"),
    (("pager", "pager-op"), "View the object's YAML / the op's JSON in $PAGER"),
    (("find-next", "find-prev"), "Next / previous match of the search (^f)"),
    (("add-column", "remove-column"), "Add a field column / remove the last one"),
    (("next-divergence", "prev-divergence"), "Next / previous divergence from the compared run"),
    (("tab-state", "tab-diff", "tab-stats", "tab-analysis", "tab-watches", "tab-why"),
     "Tabs: State, Diff, Stats, Analysis, Watches, Why"),
)


def keys_of(b: Binding) -> str:
    return ", ".join(key_label(k) for k in b.key.split(","))


def help_rows(keymap: Keymap | None = None) -> list[tuple[str, str]]:
    """(keys, what they do) for every binding, pairs on one row (e / E), for the help screen."""
    by = {b.id: b for b in bindings(keymap)}
    grouped = {f"replay.{i}": (ids, text) for ids, text in HELP_GROUPS for i in ids}
    rows: list[tuple[str, str]] = []
    done: set[str] = set()
    for b in bindings(keymap):
        bid = b.id or ""
        if bid in done:
            continue
        if bid in grouped:
            ids, text = grouped[bid]
            members = [by[f"replay.{i}"] for i in ids]
            done.update(m.id or "" for m in members)
            shown = [keys_of(m) for m in members]
            if len(shown) > 3 and all(len(k) == 1 for k in shown):
                rows.append((f"{shown[0]}-{shown[-1]}", text))  # 1-6
            else:
                rows.append((" / ".join(shown), text))
        else:
            rows.append((keys_of(b), b.description))
    return rows


def by_id(bid: str, keymap: Keymap | None = None) -> Binding:
    return next(b for b in bindings(keymap) if b.id == f"replay.{bid}")


def ids() -> set[str]:
    """Every id a keymap may name."""
    return {b.id for b in bindings() if b.id}


def keybar(keymap: Keymap | None = None) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The key bar's keys (most used first) and its tail: (key as shown, description, action)."""
    def key(bid: str) -> tuple[str, str, str]:
        b = by_id(bid, keymap)
        return shown_key(b), SHORT.get(bid, b.description), b.action

    return [key(k) for k in KEYBAR], [*(key(k) for k in TAIL), ("^p", "Commands", "app.command_palette")]


#: Shorter words for the key bar, where the description is long.
SHORT = {"jump-back": "Jump back", "object-timeline": "Object", "diff-mark": "Diff vs mark", "next-error": "Next error",
         "watch": "Watch field", "continue": "Next watched change"}
