"""The story end to end, as a user lives it: the buggy demo operator recorded; forked at the start of its
hot loop; the fixed build run in the fork, and ``compare`` says the loop is gone (exit 0); the buggy
build re-run in the fork reproduces it, and ``compare --fail-on hot-loop`` fails (exit 3).

Real kopf operators, real subprocesses of the real commands, real recordings on disk.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kopf")

from tests.support.harness import replay_tui
from tests.support.scenarios import buggy_scenario, kopf_command, record_operator

RUN_S = "5"  # how long each build runs in its fork


def rt(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*replay_tui(), *args], capture_output=True, text=True, timeout=timeout)


class Story:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.recording = tmp / "buggy.db"
        self.fixed = tmp / "fixed-fork.db"
        self.rerun = tmp / "buggy-fork.db"
        self.at = 0
        self.forks: dict[str, subprocess.CompletedProcess[str]] = {}

    def fork(self, operator: str, out: Path) -> subprocess.CompletedProcess[str]:
        return rt("serve", str(self.recording), "--at", str(self.at), "--fork", "--record-to", str(out), "--grace",
                  "3", "--", "timeout", "-s", "INT", RUN_S, *kopf_command(operator), timeout=180)

    def compare(self, a: Path, b: Path, *args: str) -> tuple[int, dict[str, Any]]:
        done = rt("compare", str(a), str(b), "--json", *args)
        assert done.returncode in (0, 3), done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    s = Story(tmp_path_factory.mktemp("story"))
    record_operator(s.recording, "buggy.py", lambda c: buggy_scenario(c, seconds=3.0), session="buggy", grace=1,
                    ok_status=(0, 137))
    analysis = json.loads(rt("analyze", str(s.recording), "--json").stdout)
    s.at = analysis["hot_loops"][0]["first_seq"]  # where the worst loop starts: the README's recipe
    s.forks["fixed"] = s.fork("fixed.py", s.fixed)
    s.forks["buggy"] = s.fork("buggy.py", s.rerun)
    yield s


def test_both_builds_ran_in_forks_of_the_recording(story: Story) -> None:
    for name, done in story.forks.items():
        assert done.returncode in (0, 124, 130), f"{name}: {done.stderr[-3000:]}"
        assert f"at op {story.at:,}" in done.stderr
    for db in (story.fixed, story.rerun):
        (session,) = json.loads(rt("sessions", str(db), "--json").stdout)
        assert session["attributes"]["fork"]["seq"] == story.at and session["operations"] > 5


def test_compare_says_the_fix_removed_the_loop(story: Story) -> None:
    status, result = story.compare(story.recording, story.fixed, "--fail-on", "hot-loop,conflict-storm")
    assert status == 0 and result["failed"] == []
    loops = [f for f in result["findings"] if f["kind"] == "hot-loop"]
    assert loops and all(f["in_a"] and not f["in_b"] for f in loops)
    assert {f["verdict"] for f in loops} == {"only in A (gone in B)"}
    assert result["a"]["after"] == story.at  # the recording is compared from the fork point on
    first = result["first"]
    assert first is not None and first["object"].startswith(("Report", "ConfigMap"))
    writes = {w["object"]: w for w in result["writes"]}
    assert writes["Report.example.com/default/daily"]["b"] < writes["Report.example.com/default/daily"]["a"]


def test_the_buggy_build_rerun_in_the_fork_reproduces_it_and_fails_the_gate(story: Story) -> None:
    status, result = story.compare(story.recording, story.rerun, "--fail-on", "hot-loop")
    assert status == 3 and result["failed"] == ["hot-loop"]
    assert any(f["kind"] == "hot-loop" and f["in_a"] and f["in_b"] for f in result["findings"])


def test_compare_text_tells_where_the_fixed_and_the_buggy_build_first_differ(story: Story) -> None:
    done = rt("compare", str(story.rerun), str(story.fixed), "--fail-on", "hot-loop")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "FIRST DIVERGENCE at +" in text and "Report.example.com/default/" in text
    assert "only in A (gone in B)" in text and "FAIL-ON hot-loop: passed" in text
