"""``python -m replay_tui``: the same as the ``replay-tui`` command."""

from replay_tui.cli.main import run

run()
