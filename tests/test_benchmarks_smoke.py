"""``make bench`` at a tiny size: every benchmark module runs and prints its JSON object.

A smoke run, not a timing (targets live in the benchmarks' own output, never in a test):
it keeps a benchmark from rotting when the code it measures changes shape.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")


def bench_modules() -> list[str]:
    """The modules the Makefile's bench target runs, in order."""
    text = (ROOT / "Makefile").read_text()
    recipe = text.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"-m (benchmarks(?:\.\w+)?)", recipe)


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_bench_runs_every_benchmark(tmp_path: Path) -> None:
    modules = bench_modules()
    assert len(modules) >= 5 and "benchmarks" in modules
    # -o: never (re)install from inside the tests; PY: the interpreter running them.
    proc = subprocess.run([str(MAKE), "-s", "-o", ".venv/.installed", "bench", "OPS=3000",
                           f"BENCH_DB={tmp_path / 'bench.db'}", f"PY={sys.executable}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    decoder, text, objects, i = json.JSONDecoder(), proc.stdout, [], 0
    while (start := text.find("{", i)) >= 0:
        obj, i = decoder.raw_decode(text, start)
        objects.append(obj)
    assert len(objects) == len(modules), proc.stdout[-2000:]
    for obj in objects:
        assert isinstance(obj, dict) and obj
