"""Text from a recording, made safe to show: no control character reaches a terminal raw.

Object names, user names, status messages and bodies come from whoever talked to the
API server.  An ESC or BEL among them would drive the reader's terminal (retitle it,
move the cursor, hide text), and a bidi override would make a name read as another.
Every place that prints recorded text (the TUI, each CLI text output, Markdown and HTML
reports) passes it through :func:`safe` (one-line fields) or :func:`safe_block`
(multi-line text such as YAML, where newlines and tabs are kept).
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and the marks that
# reorder text; the line/paragraph separators some terminals treat as newlines.
_BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")  # keeps \t and \n


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """One line of recorded text: every control character shown as an escape (``\\x1b``)."""
    return _LINE.sub(_escape, text) if _LINE.search(text) else text


def safe_block(text: str) -> str:
    """Multi-line recorded text: newlines and tabs kept, every other control escaped."""
    return _BLOCK.sub(_escape, text) if _BLOCK.search(text) else text


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe_json(document: str) -> str:
    """One encoded JSON document (no newline of ours in it), with every control and bidi character
    written as a JSON escape (``\\u009b``): the same data for a parser, nothing raw for a terminal.
    (Encoders escape C0 controls already; C1 controls and bidi overrides they leave raw.)"""
    return _LINE.sub(_json_escape, document) if _LINE.search(document) else document
