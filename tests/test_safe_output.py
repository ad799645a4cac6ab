"""No control character from a recording reaches a terminal or a report raw.

A recording whose object names, user names, reconciler names, reasons, messages and bodies
carry ESC sequences (a window-title change, a screen clear), BEL, C1 CSI, bidi overrides,
carriage returns, newlines and HTML is fed through every CLI text output and the Markdown
and HTML reports; the bytes written must hold none of those characters raw, and must show
the names escaped (``\\x1b``) rather than drop them.  JSON outputs stay valid JSON and decode
to the same data, with C1 and bidi characters written as ``\\u`` escapes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay_tui.engine.textsafe import safe_json
from tests.conftest import SECOND, T0, k8s_object, op_for, run_cli, status_body, write_session

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J\x1b[H"  # clears the screen
NAME = f"web{TITLE}-0"
NS = "ns\u202etxt"  # a bidi override: the namespace would read backwards
USER = f"system:serviceaccount:ops:bot{CLEAR}"
RECONCILER = "recon\x9b31mciler"  # C1 CSI
MESSAGE = "conflict\x07\r\nforged line"
HTML = "<script>alert(1)</script>"
MARKUP = "[bold red]markup[/]"

ALLOWED_CONTROLS = {"\n", "\t"}


def raw_controls(text: str) -> list[str]:
    """Every control or bidi character in ``text`` other than the newlines and tabs of the layout."""
    return [c for c in text if c not in ALLOWED_CONTROLS and (
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u061c\u200e\u200f\u2028\u2029"
        or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069)]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("hostile") / "rec.db"
    obj = k8s_object("ConfigMap", NAME, NS, rv=1, data={"motd": f"hello{CLEAR}", "html": HTML},
                     labels={"app": MARKUP})
    steps: list[Any] = [lambda sw: sw.begin_reconcile(RECONCILER, kind="ConfigMap", namespace=NS, name=NAME)]
    steps.append(op_for("create", obj, status=201, request=obj, response=obj, actor=USER, reconcile=1))
    for i in range(2, 16):
        changed = k8s_object("ConfigMap", NAME, NS, rv=i, data={"motd": f"v{i}{TITLE}", "html": HTML},
                             labels={"app": MARKUP})
        if i % 3 == 0:
            steps.append(op_for("update", changed, status=409, reason=f"Conflict{TITLE}", message=MESSAGE,
                                request=changed, response=status_body(409, "Conflict", MESSAGE), actor=USER,
                                reconcile=1))
        else:
            steps.append(op_for("update", changed, request=changed, response=changed, actor=USER, reconcile=1,
                                query={"labelSelector": f"app={TITLE}"}))
    steps.append(lambda sw: sw.end_reconcile(1, error=MESSAGE))
    steps.append(lambda sw: sw.mark(f"mark{TITLE}"))
    for i, step in enumerate(s for s in steps if not callable(s)):
        step.ts_ns = T0 + i * SECOND // 10
    write_session(db, steps, name=f"session{TITLE}{NS}", attributes={"recorder": HTML})
    return db



TEXT_OUTPUTS: dict[str, list[str]] = {
    "sessions": ["sessions"],
    "show": ["show", "--at", "2"],
    "show an error": ["show", "--at", "3"],
    "diff": ["diff", "--from", "1", "--to", "15"],
    "diff one object": ["diff", "--from", "0", "--to", "15", "-r", f"ConfigMap/{NS}/{NAME}"],
    "query": ["query", "kind=ConfigMap"],
    "query with fields": ["query", "changed=.data.motd"],
    "when": ["when", "--field", f"ConfigMap/{NS}/{NAME}:.data.motd", "--all"],
    "why": ["why", "--at", "14", "--field", ".data.motd"],
    "stats": ["stats"],
    "analyze": ["analyze", "--hot-min", "3"],
    "report md": ["report", "--format", "md"],
    "an error naming a recorded object": ["show", "--at", "3", "-r", f"Pod/{NS}/{NAME}"],
}


@pytest.mark.parametrize("what", sorted(TEXT_OUTPUTS))
def test_text_outputs_escape_every_control_character(hostile: Path, what: str) -> None:
    argv = TEXT_OUTPUTS[what]
    code, out, err = run_cli(argv[0], str(hostile), *argv[1:])
    written = out + err
    assert code in (0, 1) and "internal error" not in err, err
    assert raw_controls(written) == [], (what, written[:2000])
    assert written.encode("utf-8")  # what reaches the terminal is plain UTF-8
    if what != "an error naming a recorded object":
        assert code == 0, err
    else:
        assert code == 1 and err.count("\n") == 1
    # The hostile text is shown escaped, not dropped.
    assert "\\x1b]0;pwned\\x07" in written or "\\x1b[2J" in written or "\\u202e" in written, (what, written)


def test_show_prints_names_messages_and_bodies_escaped(hostile: Path) -> None:
    _, out, _ = run_cli("show", str(hostile), "--at", "2")
    assert "web\\x1b]0;pwned\\x07-0" in out and "ns\\u202etxt" in out
    assert "bot\\x1b[2J\\x1b[H" in out  # the actor
    assert "recon\\x9b31mciler" in out  # the reconciler
    _, out, _ = run_cli("show", str(hostile), "--at", "3")
    assert "conflict\\x07\\x0d\\x0aforged line" in out  # the message stays on its line
    assert not any(line.startswith("forged line") for line in out.splitlines())


@pytest.mark.parametrize("argv", [["sessions", "--json"], ["show", "--at", "3", "--json"],
                                  ["query", "kind=ConfigMap", "--json"], ["report", "--format", "json"],
                                  ["stats", "--json"], ["diff", "--from", "1", "--to", "15", "--json"]],
                         ids=lambda a: " ".join(a[:2]))
def test_json_outputs_stay_json_with_every_control_escaped(hostile: Path, argv: list[str]) -> None:
    code, out, err = run_cli(argv[0], str(hostile), *argv[1:])
    assert code == 0, err
    assert raw_controls(out) == []
    data = json.loads(out)
    assert NAME in json.dumps(data, ensure_ascii=False) or NS in json.dumps(data, ensure_ascii=False) \
        or f"session{TITLE}{NS}" in json.dumps(data, ensure_ascii=False)


def test_the_html_report_escapes_controls_and_markup(hostile: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, _, err = run_cli("report", str(hostile), "--out", str(out))
    assert code == 0 and raw_controls(err) == []
    page = out.read_text(encoding="utf-8")
    assert raw_controls(page) == []
    assert HTML not in page and "&lt;script&gt;" in page
    assert "web\\x1b]0;pwned\\x07-0" in page
    md = run_cli("report", str(hostile), "--format", "md")[1]
    assert "web\\x1b]0;pwned\\x07-0" in md and "```mermaid" in md


def test_the_real_command_writes_no_raw_escape_bytes(hostile: Path) -> None:
    """The bytes a terminal gets from the installed entry point, not a redirected stream."""
    for argv in (["show", str(hostile), "--at", "3"], ["sessions", str(hostile)], ["stats", str(hostile)]):
        proc = subprocess.run([sys.executable, "-m", "replay_tui", *argv], capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        for stream in (proc.stdout, proc.stderr):
            assert b"\x1b" not in stream and b"\x07" not in stream and b"\r" not in stream
            assert "\u202e".encode() not in stream and "\x9b".encode() not in stream


@given(st.recursive(st.none() | st.text() | st.integers(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                    max_leaves=10))
def test_safe_json_is_the_same_data_with_nothing_raw(value: Any) -> None:
    document = safe_json(msgspec.json.encode(value).decode())
    assert raw_controls(document) == []
    assert json.loads(document) == value
