"""Trace queries: changed=PATH against a naive scan, streaming window by window,
find/count through engine.filters, and the ``replay-tui query`` command (streamed
text, a JSON list, errors that point at the token)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay_tui.engine import filters, query
from replay_tui.engine.diff import MISSING, get_path
from replay_tui.engine.filters import FilterError, parse
from replay_tui.engine.store import Recording, Session
from tests.conftest import (
    StreamModel,
    build_stream,
    k8s_object,
    object_ids,
    op_for,
    stream_actions,
    write_session,
)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PATHS = (".spec.v", ".metadata.resourceVersion", ".metadata.finalizers", ".metadata.deletionTimestamp",
         ".status", '["metadata"]', ".spec")


def _enc(value: Any) -> bytes:
    return b"\x00M" if value is MISSING else msgspec.json.encode(value, order="sorted")


def naive_changed(model: StreamModel, keys: list[Any], path: str, n: int) -> set[int]:
    """Ops at which some object's value at ``path`` differs from the position before."""
    out = set()
    for seq in range(1, n + 1):
        for key in keys:
            before, after = model.states[seq - 1].get(key), model.states[seq].get(key)
            a = MISSING if before is None else get_path(before, path)
            b = MISSING if after is None else get_path(after, path)
            if _enc(a) != _enc(b):
                out.add(seq)
    return out


async def _check(db: str, model: StreamModel, path: str, extra: str) -> None:
    async with await Recording.open(db) as rec:
        session = await rec.session()
        keys = list((await object_ids(rec)).keys())
        expected = naive_changed(model, keys, path, session.last)
        flt = parse(f"changed={path} {extra}".strip())
        sql_part = {r[0] for r in await rec.fetchall(
            f"SELECT seq FROM operations WHERE session_id = ? AND ({flt.sql})", (session.id, *flt.params))}
        expected &= sql_part
        got = await query.scan(session, flt, 0, session.last)
        assert got == sorted(expected)
        streamed = [m.row.seq async for ms in query.stream(session, flt) for m in ms]
        assert streamed == sorted(expected)
        assert await filters.count(session, flt) == len(expected)
        for pos in range(session.last + 2):
            nxt = min((s for s in expected if s > pos), default=None)
            prv = max((s for s in expected if s < pos), default=None)
            assert await filters.find(session, pos, flt, True) == nxt
            assert await filters.find(session, pos, flt, False) == prv


@SETTINGS
@given(actions=stream_actions(max_size=30), path=st.sampled_from(PATHS),
       extra=st.sampled_from(["", "verb=update,patch", "kind=Deployment", "ns=other"]))
def test_changed_equals_a_naive_scan(actions: list[Any], path: str, extra: str) -> None:
    ops, effects = build_stream(actions)
    model = StreamModel(effects)
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "rec.db")
        write_session(db, ops)
        asyncio.run(_check(db, model, path, extra))


# --- streaming over a longer session ----------------------------------------------------------

def deployments(n: int) -> list[Any]:
    ops = []
    for i in range(n):
        name = f"web-{i % 7}"
        body = k8s_object("Deployment", name, api_version="apps/v1", rv=i + 1,
                          spec={"replicas": (i // 7) % 3}, status={"phase": "Ready" if i % 5 else "Progressing"})
        ops.append(op_for("update" if i >= 7 else "create", body, status=200 if i >= 7 else 201,
                          request=body, response=body, duration_ns=(i % 10) * 50_000_000))
    return ops


@pytest.fixture
async def long_session(session_of: Any) -> Session:
    return await session_of(deployments(12_000))


async def test_stream_yields_every_match_in_order_in_growing_windows(long_session: Session) -> None:
    flt = parse("latency>=400ms")
    batches = [[m.row.seq for m in ms] async for ms in query.stream(long_session, flt)]
    flat = [s for b in batches for s in b]
    assert flat == [i + 1 for i in range(12_000) if (i % 10) * 50 >= 400]
    assert len(batches) > 1 and len(batches[0]) < len(batches[-1])  # small first window, then larger
    limited = [m.row.seq async for ms in query.stream(long_session, flt, limit=5) for m in ms]
    assert limited == flat[:5]
    after = [m.row.seq async for ms in query.stream(long_session, flt, after=100, upto=200) for m in ms]
    assert after == [s for s in flat if 100 < s <= 200]


async def test_changed_reports_the_fields_and_values(long_session: Session) -> None:
    flt = parse("changed=.spec.replicas")
    first = [ms async for ms in query.stream(long_session, flt, limit=10)]
    matches = [m for ms in first for m in ms]
    assert [m.row.seq for m in matches] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert [(f.path, f.old, f.new) for f in matches[0].fields] == [(".spec.replicas", MISSING, 0)]
    assert [(f.old, f.new) for f in matches[7].fields] == [(0, 1)]  # web-0 at i=7: replicas 0 -> 1
    both = parse("changed=.spec.replicas changed=.status.phase")
    seqs = await query.scan(long_session, both, 0, 200)
    for seq in seqs:
        body_changes = {f.path for ms in [await _one(long_session, both, seq)] for f in ms}
        assert body_changes == {".spec.replicas", ".status.phase"}
    either = parse("changed=.spec.replicas,.status.phase")
    assert set(seqs) <= set(await query.scan(long_session, either, 0, 200))


async def _one(session: Session, flt: filters.Filter, seq: int) -> list[query.FieldMatch]:
    async for ms in query.stream(session, flt, after=seq - 1, upto=seq):
        return ms[0].fields
    return []


def test_changed_errors_point_at_the_token() -> None:
    cases = [("verb=update changed!=.spec", 20, "changed takes ="),
             ("changed=spec", 9, "field path"),
             ("kind=Pod changed=.spec,status", 24, "field path"),
             ("changed=.status.conditions[type=Ready", 27, "bad field path"),
             ("changed=", 1, "needs a value")]
    for expression, column, text in cases:
        with pytest.raises(FilterError) as info:
            parse(expression)
        assert info.value.column == column, expression
        assert text in info.value.short, expression
    assert parse("changed=.status.conditions[type=Ready].status").changed == (
        (".status.conditions[type=Ready].status",),)
    assert not parse("changed=.a").exact and parse("verb=get").exact


# --- the CLI -------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "replay_tui", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.fixture
def deploy_db(tmp_path: Path) -> Path:
    db = tmp_path / "deploy.db"
    write_session(db, deployments(300), name="deploy")
    return db


def test_query_text_streams_rows_and_a_summary(deploy_db: Path) -> None:
    proc = run_cli("query", str(deploy_db), "kind=Deployment", "latency<=100ms", "changed=.status.phase")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = [line for line in lines if line.strip() and line.split()[0].isdigit()]
    # phase is Progressing when i % 5 == 0; each object's previous write was 7 ops earlier
    expected = [i + 1 for i in range(300) if i % 10 <= 2 and (i % 5 in (0, 2) or i < 7)]
    assert len(expected) > 20
    assert [int(r.split()[0]) for r in rows] == expected
    assert any(".status.phase:" in line for line in lines)
    assert lines[-1] == f"-- {len(expected)} match(es) for kind=Deployment latency<=100ms changed=.status.phase"


def test_query_json_is_one_list(deploy_db: Path) -> None:
    out = json.loads(run_cli("query", str(deploy_db), "name=web-3 verb=update", "--json", "--limit", "4").stdout)
    assert [row["seq"] for row in out] == [11, 18, 25, 32]
    assert set(out[0]) >= {"seq", "verb", "kind", "namespace", "name", "status", "reconcile", "target"}
    changed = json.loads(run_cli("query", str(deploy_db), "changed=.spec.replicas", "--json",
                                 "--limit", "1").stdout)
    assert changed[0]["changed"] == [{"obj_id": changed[0]["changed"][0]["obj_id"], "path": ".spec.replicas",
                                      "old": None, "new": 0, "op": "added",
                                      "object": "Deployment.apps/default/web-0"}]
    assert json.loads(run_cli("query", str(deploy_db), "name=nope", "--json").stdout) == []


def test_query_errors_show_a_caret_under_the_token(deploy_db: Path) -> None:
    proc = run_cli("query", str(deploy_db), "kind=Pod bogus=1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first, second = proc.stderr.splitlines()
    assert first.endswith("kind=Pod bogus=1")
    assert second.index("^") == first.index("bogus=1") and "unknown field 'bogus'" in second
    proc = run_cli("query", str(deploy_db), "latency>fast")
    first, second = proc.stderr.splitlines()
    assert second.index("^") == first.index("fast")
