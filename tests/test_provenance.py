"""Provenance chains: on the real Sieve sample (its reconcile ids are Sieve's), and on
recordings built to end each way a chain can end (another client, a requeue, a write
outside any reconcile, a loop of self-triggered reconciles cut at the link limit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import provenance
from replay_tui.engine.format import Operation
from replay_tui.engine.state import version_at
from replay_tui.engine.store import Recording, Session
from replay_tui.recorder.importers.sieve import import_sieve
from tests.conftest import k8s_object, op_for

SAMPLE = Path(__file__).parent / "data" / "cassandra-operator-recreate.sieve-server.log"
RECONCILER = ("github.com/instaclustr/cassandra-operator/pkg/controller/cassandradatacenter."
              "(*ReconcileCassandraDataCenter)")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sieve_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sieve") / "sieve.db"
    import_sieve(str(SAMPLE), str(db), progress=False)
    return db


@pytest.fixture
async def sieve(sieve_db: Path, open_recording: Any) -> Session:
    rec: Recording = await open_recording(sieve_db)
    session = await rec.session()
    await session.refresh()
    return session


async def chain(session: Session, resource: str, at: int, path: str | None = None,
                max_links: int = 32) -> provenance.Provenance:
    obj_id, _ = await session.resolve_object(resource)
    return await provenance.explain(session, obj_id, at, path=path, max_links=max_links)


async def test_a_created_service_goes_back_to_the_watch_event_that_started_its_reconcile(sieve: Session) -> None:
    p = await chain(sieve, "Service/default/cassandra-test-cluster-dc1-nodes", 70)
    assert [(link.kind, link.seq) for link in p.links] == [
        ("version", 17), ("write", 18), ("reconcile", 7), ("trigger", 6), ("observed", 6)]
    write, span, trigger, origin = p.links[1:]
    # Sieve logged the ADDED event (op 17) before the create that caused it (op 18):
    # the write is found by resourceVersion.
    assert write.verb == "create" and write.status == 201 and write.actor == RECONCILER
    assert write.reconcile == 1 and "seen at op 17 (added)" in write.text
    assert (span.reconcile, span.source_id, span.reconciler, span.inferred) == (1, "0", RECONCILER, False)
    assert span.object == "CassandraDataCenter/default/cassandra-datacenter"
    assert trigger.verb == "added" and trigger.object == "CassandraDataCenter/default/cassandra-datacenter"
    assert origin.verb == "added" and "another client" in origin.text
    assert p.end == "observed"


async def test_the_recreated_service_names_the_later_reconcile(sieve: Session) -> None:
    p = await chain(sieve, "Service/default/cassandra-test-cluster-dc1-nodes", 175)
    assert [(link.kind, link.seq) for link in p.links] == [
        ("version", 115), ("write", 116), ("reconcile", 105), ("trigger", 104), ("observed", 104)]
    assert p.links[2].reconcile == 12 and p.links[2].source_id == "11"


async def test_a_field_chain_starts_at_the_op_that_set_the_value(sieve: Session) -> None:
    p = await chain(sieve, "CassandraDataCenter/default/cassandra-datacenter", 175,
                    ".metadata.resourceVersion")
    assert [(link.kind, link.seq) for link in p.links] == [
        ("field", 106), ("write", 106), ("reconcile", 105), ("trigger", 104), ("observed", 104)]
    assert (p.links[0].old, p.links[0].new) == ("1172", "1173")
    early = await chain(sieve, "CassandraDataCenter/default/cassandra-datacenter", 20,
                        ".metadata.resourceVersion")
    assert [(link.kind, link.seq) for link in early.links][:3] == [("field", 8), ("write", 9), ("reconcile", 7)]
    assert early.links[2].source_id == "0"


async def test_deletions_and_objects_not_yet_seen(sieve: Session) -> None:
    p = await chain(sieve, "CassandraDataCenter/default/cassandra-datacenter", 100)
    assert [(link.kind, link.seq) for link in p.links] == [("version", 91), ("observed", 91)]
    assert "deleted" in p.links[0].text and "deleted" in p.links[1].text
    p = await chain(sieve, "StatefulSet/default/cassandra-test-cluster-dc1-rack1", 2)
    assert [(link.kind, link.seq) for link in p.links] == [("absent", 31)]
    lock = await chain(sieve, "ConfigMap/default/myoperator-lock", 3)
    assert [link.kind for link in lock.links] == ["version", "write", "unattributed"]


async def test_every_sieve_write_is_attributed_to_its_reconcile(sieve: Session) -> None:
    """A write that changed its object explains that version with its own span (Sieve's id);
    a no-op write (same resourceVersion) leaves the earlier write as the one that made it."""
    rows = await sieve.rec.fetchall(
        "SELECT o.seq, o.obj_id, o.reconcile, r.source_id, o.resource_version FROM operations o"
        " JOIN reconciles r ON r.session_id = o.session_id AND r.id = o.reconcile"
        " WHERE o.session_id = ? AND o.verb IN ('create','update','patch') AND o.status < 400", (sieve.id,))
    effective = 0
    for seq, obj_id, rid, source_id, rv in rows:
        version = await version_at(sieve, obj_id, seq)
        assert version is not None
        writer = await provenance.written_by(sieve, obj_id, version.seq)
        assert writer is not None, seq
        if writer.seq != seq:
            earlier = await sieve.rec.fetchone(
                "SELECT resource_version FROM operations WHERE session_id = ? AND seq = ?",
                (sieve.id, writer.seq))
            assert writer.seq < seq and earlier == (rv,), seq
            continue
        effective += 1
        assert writer.reconcile == rid
        links = [link async for link in provenance.walk(sieve, obj_id, seq, max_links=4)]
        span = next(link for link in links if link.kind == "reconcile")
        assert (span.reconcile, span.source_id) == (rid, source_id)
    assert effective >= 10 and len(rows) > effective


def test_why_cli_json_and_text(sieve_db: Path) -> None:
    cmd = [sys.executable, "-m", "replay_tui", "why", str(sieve_db), "--at", "70",
           "--resource", "Service/default/cassandra-test-cluster-dc1-nodes"]
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["at"] == 70 and out["end"] == "observed"
    assert [(link["kind"], link["seq"]) for link in out["links"]] == [
        ("version", 17), ("write", 18), ("reconcile", 7), ("trigger", 6), ("observed", 6)]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = text.stdout.splitlines()
    assert lines[0] == "why Service/default/cassandra-test-cluster-dc1-nodes at op 70"
    assert [line.split()[0] for line in lines[1:]] == ["version", "write", "reconcile", "trigger", "observed"]
    bad = subprocess.run([sys.executable, "-m", "replay_tui", "why", str(sieve_db), "--at", "10"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--resource" in bad.stderr


# --- chains built to end each way ----------------------------------------------------------

def _status(n: int) -> dict[str, Any]:
    return k8s_object("Widget", "w", api_version="example.com/v1", rv=100 + n, spec={"size": 1},
                      status={"count": n})


def self_triggering(rounds: int) -> list[Any]:
    """A controller whose status write's watch event starts its next reconcile, ``rounds`` times."""
    steps: list[Any] = []
    state: dict[str, Any] = {"trigger": None}

    def first_event(sw: Any) -> None:
        state["trigger"] = sw.append(op_for("added", _status(0), response=_status(0)))

    steps.append(first_event)
    for n in range(1, rounds + 1):
        def one_round(sw: Any, n: int = n) -> None:
            rid = sw.begin_reconcile("widgets", kind="Widget", namespace="default", name="w",
                                     trigger_seq=state["trigger"])
            sw.append(op_for("get", _status(n - 1), response=_status(n - 1), reconcile=rid, actor="widgets"))
            sw.append(op_for("update", _status(n), subresource="status", request=_status(n),
                             response=_status(n), reconcile=rid, actor="widgets"))
            sw.end_reconcile(rid)
            state["trigger"] = sw.append(op_for("modified", _status(n), response=_status(n)))
        steps.append(one_round)
    return steps


async def test_a_self_triggering_loop_is_walked_back_to_the_limit(session_of: Any) -> None:
    session = await session_of(self_triggering(30))
    obj_id, _ = await session.resolve_object("Widget/default/w")
    p = await provenance.explain(session, obj_id, session.last, max_links=10)
    kinds = [link.kind for link in p.links]
    assert kinds[0] == "version" and kinds[-1] == "limit"
    assert kinds[1:10] == ["write", "reconcile", "trigger"] * 3
    writes = [link.seq for link in p.links if link.kind == "write"]
    assert writes == sorted(writes, reverse=True)
    assert [(await session.op(s)).verb for s in writes] == ["update"] * 3
    whole = await provenance.explain(session, obj_id, session.last, max_links=1000)
    assert whole.end == "observed" and whole.links[-1].seq == 1  # the ADDED that started it all
    assert sum(link.kind == "reconcile" for link in whole.links) == 30


async def test_a_requeue_ends_the_chain(session_of: Any) -> None:
    cm = k8s_object("ConfigMap", "c", data={"a": "1"})

    def steps(sw: Any) -> None:
        rid = sw.begin_reconcile("cms", kind="ConfigMap", namespace="default", name="c")  # no trigger
        sw.append(op_for("create", cm, status=201, request=cm, response=cm, reconcile=rid))
        sw.end_reconcile(rid)

    session = await session_of([steps])
    obj_id, _ = await session.resolve_object("ConfigMap/default/c")
    p = await provenance.explain(session, obj_id, 1)
    assert [link.kind for link in p.links] == ["version", "write", "reconcile", "requeue"]
    assert p.links[-1].final and p.end == "requeue"


async def test_an_object_that_never_had_the_field(session_of: Any) -> None:
    cm = k8s_object("ConfigMap", "c", data={"a": "1"})
    session = await session_of([op_for("create", cm, status=201, request=cm, response=cm)])
    obj_id, _ = await session.resolve_object("ConfigMap/default/c")
    p = await provenance.explain(session, obj_id, 1, path=".spec.replicas")
    assert [link.kind for link in p.links] == ["absent"] and p.links[0].seq is None


async def test_positions_are_checked(session_of: Any) -> None:
    cm = k8s_object("ConfigMap", "c", data={"a": "1"})
    session = await session_of([Operation(verb="create", status=201, kind="ConfigMap", name="c",
                                          namespace="default", api_version="v1", request=cm, response=cm)])
    obj_id, _ = await session.resolve_object("ConfigMap/default/c")
    from replay_tui.engine.store import PositionError
    with pytest.raises(PositionError):
        await provenance.explain(session, obj_id, 5)
    p = await provenance.explain(session, obj_id, 0)
    assert p.links[0].kind == "absent"
