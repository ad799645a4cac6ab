"""The debugger's logic, as plain Python: no Textual import here (an import-linter contract
says so), so every piece is unit-tested without a screen.

* ``connections``: the read-only connections of a recording and the session on each;
* ``source``:      which op each timeline row shows (through a filter), read a page at a time;
* ``navigation``:  the cursor and every way to move it;
* ``detail``:      what the panes show at the cursor, and diffs against a mark;
* ``background``:  when the whole-session computations (statistics, analysis, cycles) run;
* ``timetravel``:  watched fields and the provenance walk;
* ``reportjob``:   where the session report goes, and writing it;
* ``marks``:       marks kept beside the user's state, never in the recording.
"""
