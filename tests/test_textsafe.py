"""Recorded text is shown with its control characters escaped, whatever they are."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replay_tui.engine.textsafe import safe, safe_block


def test_escapes_terminal_controls_and_bidi_overrides() -> None:
    assert safe("web\x1b]0;pwned\x07-0") == "web\\x1b]0;pwned\\x07-0"
    assert safe("a\u202eb") == "a\\u202eb"
    assert safe("line\nbreak\ttab") == "line\\x0abreak\\x09tab"
    assert safe("\x9b31m") == "\\x9b31m"  # C1 CSI
    assert safe("plain-name.ü") == "plain-name.ü"


def test_blocks_keep_newlines_and_tabs_only() -> None:
    assert safe_block("a: 1\n\tb: \x1b[2J\r") == "a: 1\n\tb: \\x1b[2J\\x0d"


@given(st.text())
def test_nothing_unsafe_survives(text: str) -> None:
    for out, allowed in ((safe(text), ""), (safe_block(text), "\n\t")):
        assert all(c in allowed or not (ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f
                                        or c in "\u061c\u200e\u200f\u2028\u2029"
                                        or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069)
                   for c in out)
