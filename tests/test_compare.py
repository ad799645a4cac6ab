"""``replay-tui compare``: alignment rules on recordings written by the real writer, and the command's
output, JSON and exit statuses (the CI gate)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine.compare import compare, significant
from replay_tui.engine.format import Operation
from replay_tui.engine.store import Recording
from tests.conftest import SECOND, T0, k8s_object, op_for, status_body, write_session
from tests.support.harness import replay_tui


def run_ops(stamp: str = "2024-01-01T00:00:00Z", *, replicas: int = 1, conflicts: int = 0, stop_after: int = 0,
            offset: int = 0) -> list[Operation]:
    """An operator's run: reads a Deployment, patches its status with a timestamp, scales it."""
    ops = []
    dep = k8s_object("Deployment", "web", api_version="apps/v1", rv=10, uid="u-1", generation=1)
    for i in range(6):
        if stop_after and i >= stop_after:
            break
        ops.append(op_for("get", dep, response=dep, ts_ns=T0 + (offset + 2 * i) * SECOND))
        body = {"status": {"lastSync": stamp.replace("00:00", f"00:{i:02d}"), "round": i},
                "metadata": {"uid": f"uid-run-{stamp}"}}
        ops.append(op_for("patch", dep, subresource="status", request=body, response=dep,
                          ts_ns=T0 + (offset + 2 * i + 1) * SECOND))
    if conflicts:
        for j in range(conflicts):
            ops.append(op_for("update", dep, status=409, reason="Conflict", response=status_body(409, "Conflict"),
                              request=dep, ts_ns=T0 + (offset + 20 + j) * SECOND))
    ops.append(op_for("patch", dep, request={"spec": {"replicas": replicas}}, response=dep,
                      ts_ns=T0 + (offset + 30) * SECOND))
    return ops


async def _compare(tmp: Path, a: list[Operation], b: list[Operation], **kwargs: Any) -> Any:
    write_session(tmp / "a.db", a, name="a")
    write_session(tmp / "b.db", b, name="b")
    ra, rb = await Recording.open(tmp / "a.db"), await Recording.open(tmp / "b.db")
    try:
        return await compare(await ra.session(), await rb.session(), **kwargs)
    finally:
        await ra.close()
        await rb.close()


async def test_runs_that_differ_only_in_noise_do_not_diverge(tmp_path: Path) -> None:
    result = await _compare(tmp_path, run_ops("2024-01-01T00:00:00Z"), run_ops("2025-06-30T12:00:00.123+02:00"))
    assert result.first is None and result.divergences == []
    assert [(w.object, w.a, w.b) for w in result.writes] == [("Deployment.apps/default/web", 7, 7)]


async def test_a_significant_field_is_the_divergence_and_is_named(tmp_path: Path) -> None:
    result = await _compare(tmp_path, run_ops(replicas=1), run_ops(replicas=3))
    (d,) = result.divergences
    assert (d.kind, d.seq_a, d.seq_b, d.fields) == ("fields", 13, 13, [".spec.replicas"])
    assert "they differ in .spec.replicas" in d.text and result.first == d


async def test_a_request_one_run_made_and_the_other_did_not_while_still_running(tmp_path: Path) -> None:
    longer = run_ops() + [op_for("get", k8s_object("ConfigMap", "late"), ts_ns=T0 + 40 * SECOND)]
    b = run_ops(stop_after=2)[:4] + [op_for("get", k8s_object("ConfigMap", "late"), ts_ns=T0 + 40 * SECOND)]
    result = await _compare(tmp_path, longer, b)
    first = result.first
    assert first is not None and first.kind == "only-a" and first.seq_a == 5 and first.seq_b is None
    assert "B did not" in first.text


async def test_a_run_that_ended_is_not_a_divergence(tmp_path: Path) -> None:
    result = await _compare(tmp_path, run_ops(), run_ops(stop_after=2)[:4])
    assert result.divergences == []


async def test_errors_storms_and_the_gate(tmp_path: Path) -> None:
    result = await _compare(tmp_path, run_ops(), run_ops(conflicts=4), window_s=60,
                            fail_on=("conflict-storm", "errors", "hot-loop"))
    assert [(e.status, e.reason, e.a, e.b) for e in result.errors] == [(409, "Conflict", 0, 4)]
    (storm,) = [f for f in result.findings if f.kind == "conflict-storm"]
    assert (storm.in_a, storm.in_b, storm.verdict) == (False, True, "only in B (new)")
    assert result.failed == ["conflict-storm", "errors"]
    assert result.latency_b.requests == result.latency_a.requests + 4


def test_noise_is_taken_out_of_bodies() -> None:
    body = {"metadata": {"resourceVersion": "5", "uid": "x", "managedFields": [], "labels": {"a": "b"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "k": "v"}},
            "status": {"at": "2024-01-01T00:00:00.5Z", "note": "owner 0b3c1e24-7f1d-4b36-9c1a-2f6d8e9a0b1c ok"}}
    assert significant(body) == {"metadata": {"labels": {"a": "b"}, "annotations": {"k": "v"}},
                                 "status": {"at": "<time>", "note": "owner <uid> ok"}}


def test_a_fork_is_compared_with_its_source_from_the_fork_point(tmp_path: Path) -> None:
    source = run_ops()
    write_session(tmp_path / "src.db", source, name="original")
    fork_ops = run_ops(offset=100)[6:]  # the run after the fork point: the same as ops 7.. of the source
    write_session(tmp_path / "fork.db", fork_ops, name="original-fork", source="proxy", attributes={
        "fork": {"source": str(tmp_path / "src.db"), "session": "original", "session_id": 1, "seq": 6}})
    done = subprocess.run([*replay_tui(), "compare", f"{tmp_path / 'src.db'}:original", str(tmp_path / "fork.db"),
                           "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["a"]["after"] == 6 and result["a"]["ops"] == len(source) - 6
    assert result["b"]["fork"]["seq"] == 6 and result["divergences"] == []


def test_the_command_prints_the_comparison_and_gates(tmp_path: Path) -> None:
    write_session(tmp_path / "a.db", run_ops(), name="a")
    write_session(tmp_path / "b.db", run_ops(replicas=5, conflicts=4), name="b")
    done = subprocess.run([*replay_tui(), "compare", str(tmp_path / "a.db"), str(tmp_path / "b.db"),
                           "--fail-on", "conflict-storm"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    for heading in ("FIRST DIVERGENCE", "WRITES PER OBJECT (successful: a 409 or other error is not counted)",
                    "HOT LOOPS, 409 STORMS, CYCLES", "ERRORS BY REASON", "LATENCY",
                    "FAIL-ON conflict-storm: FAILED: run B has conflict-storm"):
        assert heading in done.stdout
    assert "B op 13 update Deployment.apps/default/web (409)" in done.stdout  # where B began its retries
    ok = subprocess.run([*replay_tui(), "compare", str(tmp_path / "a.db"), str(tmp_path / "a.db") + ":a",
                         "--fail-on", "hot-loop,conflict-storm,errors"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "FAIL-ON hot-loop,conflict-storm,errors: passed" in ok.stdout


@pytest.mark.parametrize("args, message", [
    (["A", "B", "--fail-on", "slowness"], "unknown"),
    (["A", "missing.db"], "no such file"),
    (["A:nope", "B"], "no session"),
    (["A", "B", "--settle", "-1"], "--settle"),
])
def test_bad_input_is_one_line_and_status_1(tmp_path: Path, args: list[str], message: str) -> None:
    write_session(tmp_path / "a.db", run_ops(), name="a")
    write_session(tmp_path / "b.db", run_ops(), name="b")
    args = [a.replace("A", str(tmp_path / "a.db"), 1) if a.startswith("A") else
            a.replace("B", str(tmp_path / "b.db"), 1) if a == "B" else
            str(tmp_path / a) if a.endswith(".db") else a for a in args]
    done = subprocess.run([*replay_tui(), "compare", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _spanned(second: Operation) -> list[Any]:
    """An event, then an exact reconcile it started (rid 1) making a GET and ``second``."""
    dep = k8s_object("Deployment", "web", api_version="apps/v1", rv=10)
    second.reconcile = 1
    second.ts_ns = T0 + 2 * SECOND
    return [op_for("modified", dep, response=dep, ts_ns=T0),
            lambda sw: sw.begin_reconcile("webapp", kind="Deployment", namespace="default", name="web",
                                          trigger_seq=1),
            op_for("get", dep, response=dep, reconcile=1, ts_ns=T0 + SECOND), second,
            lambda sw: sw.end_reconcile(1)]


async def test_exact_reconciles_are_paired_by_their_trigger(tmp_path: Path) -> None:
    dep = k8s_object("Deployment", "web", api_version="apps/v1", rv=10)
    a = _spanned(op_for("patch", dep, subresource="status", request={"status": {"ok": True}}, response=dep))
    b = _spanned(op_for("get", k8s_object("ConfigMap", "cfg")))
    result = await _compare(tmp_path, a, b)
    (d,) = result.divergences  # by object, each run simply ended: only the reconcile tells them apart
    assert (d.kind, d.reconcile_a, d.reconcile_b, d.seq_a, d.seq_b) == ("reconcile", 1, 1, 2, 2)
    assert d.a == "patch Deployment.apps/default/web/status" and d.b == "get ConfigMap/default/cfg"
    assert d.text.startswith("reconcile after modified Deployment.apps/default/web")
