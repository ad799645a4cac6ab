"""The ``replay-tui`` command line: argument parsing and the non-interactive commands.

It never loads Textual: only ``replay-tui DB`` / ``demo`` import the TUI, when they open it.
"""
