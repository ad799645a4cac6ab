"""A one-line input in a modal: jump (:), filter (/), mark name (m)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

Validator = Callable[[str], "tuple[str, int] | None"]


class PromptScreen(ModalScreen["str | None"]):
    """Enter accepts (after ``validate`` finds nothing wrong), Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    PromptScreen {
        align: center top;
        background: $background 40%;
    }
    PromptScreen > Vertical {
        margin-top: 3;
        width: 90;
        max-width: 95%;
        height: auto;
        border: round $accent;
        background: $panel;
        padding: 0 1;
    }
    PromptScreen .prompt-title { text-style: bold; color: $accent; }
    PromptScreen .prompt-hint { color: $text-muted; }
    PromptScreen .prompt-error { color: $error; height: auto; }
    PromptScreen Input { margin: 0; }
    """

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
            yield Label(self.title_text, classes="prompt-title")
            yield Input(value=self.value, placeholder=self.placeholder, select_on_focus=True)
            yield Static("", classes="prompt-error")
            if self.hint:
                yield Static(self.hint, classes="prompt-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if self.validate_fn is not None:
            problem = self.validate_fn(text)
            if problem is not None:
                message, column = problem
                err = Text()
                if column > 0:
                    err.append(" " * (column - 1) + "^ ", "bold")
                err.append(message)
                self.query_one(".prompt-error", Static).update(err)
                return
        self.dismiss(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(".prompt-error", Static).update("")

    def action_cancel(self) -> None:
        self.dismiss(None)
