"""The ``replay-tui`` command line: argument parsing and the non-interactive commands.

It never loads Textual: only ``replay-tui DB`` / ``demo`` import the TUI, when they open it.
"""

from replay_tui.engine.schema import RecordingError


class UsageError(RecordingError):
    """Options that do not go together: said like argparse's errors (one line, exit status 2)."""

    def __init__(self, command: str, message: str):
        super().__init__(message)
        self.command = command
