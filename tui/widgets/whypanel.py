"""The Why tab: a provenance chain, or a causality cycle's rounds, as a list Enter jumps through.

* ``p`` (or the palette) shows the chain of the object at the cursor, newest link first:
  the version, the write that made it, the reconcile that issued the write, the watch event
  that started the reconcile, the write behind that event, and so on.  The link the cursor is
  on is marked ``▶``; Enter on any link goes there; the last row extends a chain cut at its
  length limit.
* Enter on a causality cycle in the Analysis tab shows its rounds here: each round is a
  write, the watch event it caused and the reconcile that event started; Enter on a round
  goes to its write.

Names and texts come from the recording and pass through ``textsafe``.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from replay_tui.engine.textsafe import safe
from replay_tui.tui.messages import ExtendChain, GoToLink, JumpTo
from replay_tui.tui.widgets.pane import ListPane, wrap

LABEL = "replay.label"
GUTTER = 16
KIND_ROLE = {"write": "replay.verb.write", "reconcile": "replay.accent", "trigger": "replay.verb.event",
             "observed": "replay.warn", "requeue": "replay.warn", "loop": "replay.bad.strong",
             "limit": "replay.label", "absent": "replay.warn", "unattributed": "replay.warn"}
EMPTY = ("nothing to explain yet: p explains the object at the cursor (who made this version, "
         "and why); Enter on a causality cycle in the Analysis tab lists its rounds here")


class WhyPanel(ListPane):
    """Provenance links or cycle rounds; Enter on one jumps to its op."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.targets: dict[str, int] = {}  # option id -> a link's index (provenance) or an op (a cycle's round)
        self.mode = ""  # "" | provenance | cycle
        self._shown: tuple[Any, ...] = ()

    def _row(self, text: Text, *, oid: str | None = None, disabled: bool = False, hang: int = GUTTER) -> Option:
        width = max((self.size.width or 100) - 3, 40)
        if width < 60:  # a narrow pane (80 columns): a deep hanging indent would leave a thin column of text
            hang = min(hang, 4)
        return Option(Text("\n").join(wrap(text, width, hang)), id=oid, disabled=disabled)

    def show_empty(self, text: str = EMPTY) -> None:
        self.mode, self._shown = "", ()
        self.clear_options()
        self.targets = {}
        self.add_option(self._row(Text(text, LABEL), disabled=True, hang=2))  # prose: no link gutter

    # --- provenance -----------------------------------------------------------------------

    def show_chain(self, walk: Any, last: int, *, extending: bool = False) -> None:
        """``walk``: a ``ProvenanceWalk`` (its chain, and the link the cursor is on)."""
        self.mode, self._shown = "provenance", (walk, last, extending)
        chain = walk.chain
        self.clear_options()
        self.targets = {}
        head = Text("WHY ", "replay.heading")
        head.append(safe(chain.object), "replay.object")
        head.append(f" LOOKS LIKE THIS AT OP {chain.at:,}", "replay.heading")
        head.append(f"   {len(chain.links)} links, newest first · p: next link back · Enter: go to one", LABEL)
        self.add_option(self._row(head, disabled=True, hang=2))
        for n, link in enumerate(chain.links):
            t = Text("▶ " if n == walk.i else "  ", "replay.mark")
            t.append(f"{n + 1:>2} ", LABEL)
            t.append(f"{link.kind:<12}", KIND_ROLE.get(link.kind, "replay.text"))
            reachable = link.seq is not None and 1 <= link.seq <= last
            t.append(f"op {link.seq:<8,} " if reachable else " " * 12, "replay.mark")
            t.append(safe(link.text), "replay.text")
            oid = f"link-{n}"
            if reachable:
                self.targets[oid] = n  # a link's index: the walk moves to it
            self.add_option(self._row(t, oid=oid, disabled=not reachable))
        if walk.extendable:
            more = Text("  … ", LABEL)
            more.append("reading more links..." if extending else
                        "the chain goes on: Enter (or p past the last link) reads further back", "replay.accent")
            self.add_option(self._row(more, oid="extend", disabled=extending))
        else:
            self.add_option(self._row(Text(f"  end of the chain: {chain.end}", LABEL), disabled=True))
        if 0 <= walk.i < len(chain.links):
            self.highlighted = self.get_option_index(f"link-{walk.i}") if f"link-{walk.i}" in self.targets \
                else self.highlighted

    # --- a cycle's rounds -------------------------------------------------------------------

    def show_cycle(self, cycle: dict[str, Any], current: int | None = None) -> None:
        """``cycle``: one of ``engine.causality.cycles`` as plain data (the Analysis tab's)."""
        self.mode, self._shown = "cycle", (cycle, current)
        self.clear_options()
        self.targets = {}
        head = Text("CAUSALITY CYCLE ", "replay.heading")
        head.append(" -> ".join(safe(str(c)) for c in cycle.get("controllers") or []) or "?", "replay.mark")
        head.append(f"   {cycle.get('rounds', 0):,} rounds in {cycle.get('runs', 0):,} run(s), longest "
                    f"{cycle.get('longest_run', 0):,} · Enter: go to a round's write", LABEL)
        self.add_option(self._row(head, disabled=True, hang=2))
        self.add_option(self._row(Text("  " + safe(str(cycle.get("explanation", ""))), LABEL), disabled=True,
                                  hang=4))
        rounds = [r for r in cycle.get("rounds_sample") or [] if isinstance(r, dict)]
        for n, r in enumerate(rounds):
            write, trigger = r.get("write_seq"), r.get("trigger_seq")
            start, end = r.get("start_seq"), r.get("end_seq")
            t = Text("▶ " if current is not None and current in (write, trigger, start) else "  ", "replay.mark")
            t.append(f"round {n + 1:<4}", LABEL)
            t.append(f"write op {write:<7}", "replay.verb.write")
            t.append(" → ", LABEL)
            t.append(f"event op {trigger:<7}", "replay.verb.event")
            t.append(" → ", LABEL)
            t.append(f"reconcile #{r.get('reconcile')} (ops {start}..{end if end is not None else '?'})",
                     "replay.accent")
            oid = f"round-{n}"
            if isinstance(write, int) and write > 0:
                self.targets[oid] = write
            self.add_option(self._row(t, oid=oid, disabled=oid not in self.targets))
        total = int(cycle.get("rounds") or 0)
        if total > len(rounds):
            self.add_option(self._row(Text(f"  ({len(rounds)} of {total:,} rounds listed; the later ones repeat "
                                           "them: t narrows the timeline to the object)", LABEL), disabled=True))

    # --- Textual ------------------------------------------------------------------------------

    def redraw(self) -> None:
        if self.mode == "provenance":
            walk, last, extending = self._shown
            self.show_chain(walk, last, extending=extending)
        elif self.mode == "cycle":
            self.show_cycle(*self._shown)
        else:
            self.show_empty()

    def on_resize(self) -> None:
        self.redraw()

    def palette_changed(self) -> None:
        self.redraw()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        oid = event.option.id or ""
        if oid == "extend":
            self.post_message(ExtendChain())
        elif oid in self.targets:
            target = self.targets[oid]
            if self.mode == "cycle":
                highlighted = self.highlighted
                self.show_cycle(self._shown[0], target)  # the ▶ moves to the round gone to
                self.highlighted = highlighted
            self.post_message(GoToLink(target) if self.mode == "provenance" else JumpTo(target))

    @property
    def text(self) -> str:
        """What the panel shows, as plain text (for tests)."""
        return "\n".join(str(self.get_option_at_index(i).prompt) for i in range(self.option_count))
