"""The cyclic garbage collector while the debugger runs: kept off the path of a key press.

At a million ops the app's live heap (the widget tree, Textual's strip caches, a session's
statistics and analysis) is ~100,000 container objects, and CPython's full collection walks
every one: 30-130 ms with the other core busy, about once every eight steps (each step's lines
and strips outlive two young collections and pile up in the old generation).  That was most of
the step repaint's p95.  So, while the app runs:

* what is alive once a session's first screen is painted, and once each of its whole-session
  jobs has finished, is frozen (``gc.freeze``): the collector no longer walks it;
* the young generation is larger (``THRESHOLD``), so a step's short-lived objects are freed
  before they are promoted: an old-generation collection becomes rare, and small;
* opening another session thaws everything and collects once (what the old session held in
  cycles is freed there, not kept frozen); leaving the app thaws and restores the defaults.

The cost: cyclic garbage that exists at a freeze is kept until the session closes (the moments
are few: the first paint and three jobs).
"""

from __future__ import annotations

import gc

THRESHOLD = (10_000, 10, 10)  # CPython's default is (700, 10, 10)

_saved: tuple[int, int, int] | None = None  # the thresholds before the app started (None: not running)
_frozen = False


def hold() -> None:
    """The app starts: a larger young generation until it ends."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(*THRESHOLD)


def settle() -> None:
    """What exists now is long-lived: out of the collector's sight."""
    global _frozen
    if _saved is not None:
        gc.freeze()
        _frozen = True


def release() -> None:
    """A session closes: thaw what was frozen and collect what it left in cycles."""
    global _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False
        gc.collect()


def restore() -> None:
    """The app ends: the collector as it was."""
    global _saved, _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False
    if _saved is not None:
        gc.set_threshold(*_saved)
        _saved = None
