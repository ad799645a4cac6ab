"""Layering: the engine never imports the UI, the recorder or textual/rich; the recorder
never imports the UI.  Checked on the source (AST), so a lazy import inside a
function counts too; the Makefile also runs import-linter on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RULES = {
    "engine": ("textual", "rich", "tui", "recorder"),
    "recorder": ("tui", "textual"),
}


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
            # ``from engine import tui``-style imports of a forbidden submodule
            out.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
    return out


def violations(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root)
        module = ".".join(rel.with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")] + ".__init__"
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module):
            top = name.split(".")[0]
            if top in forbidden:
                found.append(f"{rel}:{line} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_forbidden_imports(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(ROOT, package, RULES[package]) == []


def test_the_check_detects_violations(tmp_path: Path) -> None:
    (tmp_path / "engine" / "sub").mkdir(parents=True)
    (tmp_path / "recorder").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("")
    (tmp_path / "engine" / "ok.py").write_text("import os\nfrom engine import store\nimport msgspec\n")
    (tmp_path / "engine" / "bad.py").write_text(
        "import os\n\ndef later():\n    from textual.app import App\n    return App\n")
    (tmp_path / "engine" / "sub" / "worse.py").write_text("import rich.console as c\nimport cli.main\n")
    (tmp_path / "recorder" / "proxy.py").write_text("from tui import cli\nimport engine.store\n")
    (tmp_path / "recorder" / "fine.py").write_text("from engine.format import Operation\n")
    assert violations(tmp_path, "engine", RULES["engine"]) == [
        "engine/bad.py:4 imports textual.app",
        "engine/bad.py:4 imports textual.app.App",
        "engine/sub/worse.py:1 imports rich.console",
        "engine/sub/worse.py:2 imports cli.main",
    ]
    assert violations(tmp_path, "recorder", RULES["recorder"]) == [
        "recorder/proxy.py:1 imports tui", "recorder/proxy.py:1 imports cli.main"]


def test_relative_imports_are_resolved() -> None:
    assert imported_modules("from ..tui import app\n", "recorder.sub.mod") == [
        (1, "recorder.tui"), (1, "recorder.tui.app")]
    assert imported_modules("from . import x\n", "engine.store") == [(1, "engine"), (1, "engine.x")]
