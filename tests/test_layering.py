"""Layering, checked two ways beside the import-linter contracts in pyproject.toml:

* on the source (AST): the product imports itself only as ``replay_tui.*`` (never a
  generic top-level ``engine``/``tui``/... that would only resolve in a checkout) and
  never imports test support (``tests``, ``benchmarks``, kmock, kopf);
* at run time: the command line and the engine never load Textual or Rich, even after
  running a command (``sys.modules`` in a fresh interpreter).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("engine", "recorder", "tui", "cli", "server")
FORBIDDEN_TOP = {"engine", "recorder", "tui", "cli", "fixtures", "benchmarks", "tests", "kmock", "kopf",
                 "pytest", "hypothesis"}


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, relative ones resolved."""
    package = module.rsplit(".", 1)[0] if "." in module else module
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


def violations(root: Path, folder: str) -> list[str]:
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        rel = path.relative_to(root)
        module = "replay_tui." + ".".join(rel.with_suffix("").parts)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module):
            if name.split(".")[0] in FORBIDDEN_TOP:
                found.append(f"{rel}:{line} imports {name}")
    return found


@pytest.mark.parametrize("folder", PRODUCT)
def test_the_product_imports_itself_only_as_replay_tui(folder: str) -> None:
    assert (ROOT / "replay_tui" / folder).resolve() == (ROOT / folder).resolve()
    assert violations(ROOT, folder) == []


def test_the_check_detects_violations(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "ok.py").write_text(
        "import os\nfrom replay_tui.engine import store\nfrom . import format\n")
    (tmp_path / "engine" / "bad.py").write_text(
        "def later():\n    from engine.store import Session\n    import kmock\n")
    (tmp_path / "engine" / "worse.py").write_text("from tests.support.emulator import X\n")
    assert violations(tmp_path, "engine") == [
        "engine/bad.py:2 imports engine.store", "engine/bad.py:3 imports kmock",
        "engine/worse.py:1 imports tests.support.emulator"]


# Run in a fresh interpreter: pytest itself (and other tests) may have loaded Textual.
PROBE = r"""
import contextlib, io, json, pkgutil, sys
import replay_tui.engine
engine_modules = [m.name for m in pkgutil.walk_packages(replay_tui.engine.__path__, "replay_tui.engine.")]
for name in engine_modules:
    __import__(name)
after_engine = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
from replay_tui.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    codes = [main(["sessions", sys.argv[1]]), main(["stats", sys.argv[1], "-s", "1"])]
after_cli = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(json.dumps({"engine": engine_modules, "after_engine": after_engine, "after_cli": after_cli,
                  "codes": codes, "printed": len(out.getvalue())}))
"""


def test_the_command_line_and_the_engine_never_load_textual() -> None:
    demo = ROOT / "fixtures" / "demo" / "demo.db"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(demo)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(seen["engine"]) > 10          # every engine module was imported
    assert seen["codes"] == [0, 0] and seen["printed"] > 100  # and the commands really ran
    assert seen["after_engine"] == []
    assert seen["after_cli"] == []
