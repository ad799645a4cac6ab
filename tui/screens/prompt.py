"""Small modal questions: a one-line input (jump, filter, mark name, report file) and a yes/no."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

Validator = Callable[[str], "tuple[str, int] | None"]

DIALOG_CSS = """
{name} {{
    align: center top;
    background: $background 40%;
}}
{name} > Vertical {{
    margin-top: 3;
    width: 90;
    max-width: 95%;
    height: auto;
    border: round $accent;
    background: $panel;
    padding: 0 1;
}}
{name} .prompt-title {{ text-style: bold; color: $text-accent; }}
{name} .prompt-hint {{ color: $text-muted; }}
{name} .prompt-error {{ color: $text-error; height: auto; }}
{name} Input {{ margin: 0; }}
"""


class PromptScreen(ModalScreen["str | None"]):
    """Enter accepts (after ``validate`` finds nothing wrong), Esc cancels.

    A problem is shown under the input, a caret under the column it names.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="PromptScreen")

    def __init__(self, title: str, *, value: str = "", placeholder: str = "", hint: str = "",
                 validate: Validator | None = None, prompt_id: str = "prompt"):
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.validate_fn = validate
        self.prompt_id = prompt_id

    def compose(self) -> ComposeResult:
        with Vertical(id=self.prompt_id):
            yield Label(Text(self.title_text), classes="prompt-title")
            yield Input(value=self.value, placeholder=self.placeholder, select_on_focus=True)
            yield Static("", classes="prompt-error")
            if self.hint:
                yield Static(Text(self.hint), classes="prompt-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_key(self, event: events.Key) -> None:
        self.take_key(event)

    def take_key(self, event: events.Key) -> None:
        """A printable key that missed the input goes into it.  Typed (or pasted) right after the key
        that opened this prompt (``:1234``), a key was sent where the focus was before the prompt
        showed, or to this screen before its input had the focus, and would be lost.  (A printable
        key the input gets never comes here: the input keeps every one.)"""
        if not event.is_printable or event.character is None:
            return
        event.stop()
        event.prevent_default()
        inp = self.query_one(Input)
        inp.focus()
        if inp.selection.is_empty:
            inp.insert_text_at_cursor(event.character)
        else:
            inp.replace(event.character, *inp.selection)

    def caret_line(self, column: int, message: str) -> Text:
        """``message`` after a caret under the input's ``column`` (1-based; 0: no caret)."""
        err = Text()
        if column > 0:
            inp = self.query_one(Input)
            error = self.query_one(".prompt-error", Static)
            # the input's text starts inside its border and padding, and may be scrolled
            indent = inp.content_region.x - error.content_region.x - round(inp.scroll_x) + column - 1
            err.append(" " * max(indent, 0) + "^ ", "bold")
        err.append(message)
        return err

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if self.validate_fn is not None:
            problem = self.validate_fn(text)
            if problem is not None:
                message, column = problem
                self.query_one(".prompt-error", Static).update(self.caret_line(column, message))
                return
        self.dismiss(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(".prompt-error", Static).update("")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; anything but y is no (Enter and Esc included)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes", id="confirm.yes"),
                Binding("n,escape,enter", "answer(False)", "No", id="confirm.no")]
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmScreen")

    def __init__(self, question: str, detail: str = ""):
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(Text(self.question), classes="prompt-title")
            if self.detail:
                yield Static(Text(self.detail), classes="prompt-hint")
            yield Static(Text("y: yes · n, Enter or Esc: no"), classes="prompt-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
