"""``replay-tui serve --fork``: a writable copy of a recorded cluster, the run recorded as a new session
that stores its fork point, and the outside world of the recording replayed into it.

The recordings are the demo's real kopf runs.  Clients are the official Python client (a small
program run as the fork's COMMAND, with nothing but the KUBECONFIG it is given) and, for the
outside world, the healthy kopf operator itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from replay_tui.engine import state
from replay_tui.engine.store import Recording
from replay_tui.server import fork
from replay_tui.server.apiserver import numeric_rv
from tests.support.harness import replay_tui
from tests.support.scenarios import kopf_command

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fork") / "demo.db"
    shutil.copy(DEMO, path)
    return path


def run_fork(demo: Path, tmp: Path, *args: str, program: str = "", command: list[str] | None = None,
             timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """``serve --fork`` with a Python program (or a command) as its COMMAND; the program's JSON lines."""
    if command is None:
        (tmp / "program.py").write_text(textwrap.dedent(program))
        command = [sys.executable, str(tmp / "program.py")]
    done = subprocess.run([*replay_tui(), "serve", str(demo), *args, "--", *command], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp)
    said = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done, said


async def recorded(db: Path, at: int, resource: str, session: str) -> Any:
    rec = await Recording.open(db)
    try:
        ses = await rec.session(session)
        obj_id, _ = await ses.resolve_object(resource)
        return await state.object_at(ses, obj_id, at)
    finally:
        await rec.close()


async def test_seeding_holds_the_state_at_the_position_and_versions_continue(demo: Path) -> None:
    rec = await Recording.open(demo)
    try:
        ses = await rec.session("buggy-operator")
        server, discovery = await fork.seed(ses, 200)
        items = await (await state.snapshot(ses, 200)).items()
        for _, key, body in items:
            rt = server.types.kind(key.group, key.kind)
            assert rt is not None and server.get(rt.group, rt.plural, key.namespace, key.name) == body, key
        top = max(numeric_rv(b["metadata"]["resourceVersion"]) or 0 for _, _, b in items)
        assert server.writable
        made = server.put("", "configmaps", {"metadata": {"name": "new", "namespace": "default"}})
        assert int(made["metadata"]["resourceVersion"]) == server.rv > top  # continuing the recording's
        assert server.get("", "namespaces", "", "default") is not None  # every cluster has it
        assert any(r["name"] == "reports/status" for r in discovery.resources("example.com", "v1")["resources"])
    finally:
        await rec.close()


SEMANTICS = """
    import json
    from kubernetes import client, config

    config.load_kube_config()
    custom, core = client.CustomObjectsApi(), client.CoreV1Api()
    def say(**kw): print(json.dumps(kw), flush=True)
    daily = custom.get_namespaced_custom_object("example.com", "v1", "default", "reports", "daily")
    say(step="get", uid=daily["metadata"]["uid"], rv=daily["metadata"]["resourceVersion"])
    stale = dict(daily, metadata=dict(daily["metadata"], resourceVersion="1"))
    try:
        custom.replace_namespaced_custom_object("example.com", "v1", "default", "reports", "daily", stale)
        say(step="stale", status=200)
    except client.ApiException as exc:
        say(step="stale", status=exc.status)
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "made-in-the-fork"}})
    say(step="create", rv=cm.metadata.resource_version)
    s = custom.patch_namespaced_custom_object_status("example.com", "v1", "default", "reports", "daily",
                                                     {"status": {"lastSync": "fork"}, "spec": {"period": "x"}})
    say(step="status", status=s["status"], spec=s["spec"])
    custom.delete_namespaced_custom_object("example.com", "v1", "default", "reports", "weekly")
    w = custom.get_namespaced_custom_object("example.com", "v1", "default", "reports", "weekly")
    say(step="delete", deleting=bool(w["metadata"].get("deletionTimestamp")), finalizers=w["metadata"]["finalizers"])
"""


def test_a_fork_is_writable_with_api_server_semantics_and_records_its_run(demo: Path, tmp_path: Path) -> None:
    done, said = run_fork(demo, tmp_path, "-s", "buggy-operator", "--at", "200", "--fork", "--record-to",
                          str(tmp_path / "fork.db"), program=SEMANTICS)
    assert done.returncode == 0, done.stderr
    steps = {s["step"]: s for s in said}
    original = __import__("asyncio").run(recorded(demo, 200, "Report/default/daily", "buggy-operator"))
    assert steps["get"]["uid"] == original["metadata"]["uid"]
    assert steps["get"]["rv"] == original["metadata"]["resourceVersion"]  # the object as it was recorded
    assert steps["stale"]["status"] == 409
    assert int(steps["create"]["rv"]) > int(original["metadata"]["resourceVersion"])
    assert steps["status"] == {"step": "status", "status": {**original["status"], "lastSync": "fork"},
                               "spec": original["spec"]}
    assert steps["delete"]["deleting"] and steps["delete"]["finalizers"] == ["example.com/report"]
    assert "forked" in done.stderr and "recorded" in done.stderr

    capture = subprocess.run([*replay_tui(), "sessions", str(tmp_path / "fork.db"), "--json"], capture_output=True,
                             text=True, timeout=60)
    (session,) = json.loads(capture.stdout)
    point = session["attributes"]["fork"]
    assert point["source"] == str(demo) and point["session"] == "buggy-operator" and point["seq"] == 200
    assert point["session_id"] == 2 and point["replay_external"] is True
    assert session["name"] == "buggy-operator-fork" and session["source"] == "proxy"
    assert session["cluster"].startswith("fork of ")
    ops = subprocess.run([*replay_tui(), "query", str(tmp_path / "fork.db"), "discovery=false", "--json"],
                         capture_output=True, text=True, timeout=60)
    verbs = [(op["verb"], op["status"]) for op in json.loads(ops.stdout)]
    assert ("update", 409) in verbs and ("create", 201) in verbs and ("delete", 200) in verbs


OBSERVER = """
    import json, time
    from kubernetes import client, config

    config.load_kube_config()
    custom = client.CustomObjectsApi()
    time.sleep(1.0)  # the recording's outside world acted within 0.2 s of the fork point
    for name in ("hello", "world"):
        g = custom.get_namespaced_custom_object("example.com", "v1", "default", "greetings", name)
        print(json.dumps({"name": name, "message": g["spec"]["message"],
                          "deleting": bool(g["metadata"].get("deletionTimestamp"))}), flush=True)
"""


@pytest.mark.parametrize("external", [True, False])
def test_the_outside_world_is_replayed_at_its_offsets(demo: Path, tmp_path: Path, external: bool) -> None:
    flag = "--replay-external" if external else "--no-replay-external"
    done, said = run_fork(demo, tmp_path, "-s", "healthy-operator", "--at", "41", "--fork", flag, "--record-to",
                          str(tmp_path / "fork.db"), program=OBSERVER)
    assert done.returncode == 0, done.stderr
    seen = {s["name"]: s for s in said}
    if external:  # the user's kubectl edits and delete, as recorded at ops 42, 48 and 54
        assert seen["hello"] == {"name": "hello", "message": "goodbye", "deleting": True}
        assert seen["world"]["message"] == "goodbye from world"
        assert "outside world: change Greeting.example.com/default/hello (op 42" in done.stderr
    else:
        assert seen["hello"] == {"name": "hello", "message": "hello, world", "deleting": False}
        assert seen["world"]["message"] == "world, world"
        assert "outside world" not in done.stderr


async def test_external_changes_are_the_versions_no_recorded_write_of_the_operator_made(demo: Path) -> None:
    rec = await Recording.open(demo)
    try:
        ses = await rec.session("healthy-operator")
        changes = [c async for c in fork.external_changes(ses, 41)]
    finally:
        await rec.close()
    assert [(c.seq, str(c.key), "delete" if c.delete else "patch") for c in changes] == [
        (42, "Greeting.example.com/default/hello", "patch"), (48, "Greeting.example.com/default/world", "patch"),
        (54, "Greeting.example.com/default/hello", "delete")]
    assert changes[0].patch == {"spec": {"message": "goodbye"}}
    assert 0 < changes[0].offset_ns < changes[1].offset_ns < changes[2].offset_ns < 1_000_000_000


def test_the_healthy_operator_reacts_in_the_fork_to_the_replayed_world(demo: Path, tmp_path: Path) -> None:
    """kopf, forked after it handled four greetings: the recorded message edits and the delete reach it
    again, and it patches and deletes the ConfigMaps as it did the first time.  (The world acts at its
    recorded offsets, within 0.2 s of the fork point, while kopf takes a second to start: it finds
    hello already being deleted, so its delete handler runs and its update handler has nothing to do.)"""
    pytest.importorskip("kopf")
    done, _ = run_fork(demo, tmp_path, "-s", "healthy-operator", "--at", "41", "--fork", "--record-to",
                       str(tmp_path / "fork.db"), "--grace", "5",
                       command=["timeout", "-s", "INT", "6", *kopf_command("healthy.py")])
    assert done.returncode in (0, 124, 130), done.stderr[-3000:]
    ops = subprocess.run([*replay_tui(), "query", str(tmp_path / "fork.db"), "kind=ConfigMap verb=patch,delete",
                          "--json"], capture_output=True, text=True, timeout=60)
    writes = [(op["verb"], op["name"]) for op in json.loads(ops.stdout)]
    assert ("patch", "world-greeting") in writes and ("delete", "hello-greeting") in writes
    assert ("delete", "world-greeting") not in writes


def digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "relative", "through a linked directory"])
def test_a_fork_never_records_into_the_file_it_forks(demo: Path, tmp_path: Path, how: str) -> None:
    """The file itself is compared (device and inode, links resolved), not the path as written."""
    before = digest(demo)
    target = {"same path": demo, "relative": Path("..") / tmp_path.name / "demo.db"}.get(how)
    source = demo
    if how == "symlink":
        target = tmp_path / "link.db"
        target.symlink_to(demo)
    elif how == "hard link":
        source = tmp_path / "src" / "demo.db"
        source.parent.mkdir()
        shutil.copy(demo, source)
        target = tmp_path / "hard.db"
        target.hardlink_to(source)
        before = digest(source)
    elif how == "relative":
        source = tmp_path / "demo.db"
        shutil.copy(demo, source)
        before = digest(source)
    elif how == "through a linked directory":  # OUT does not exist yet; its directory is the source's
        (tmp_path / "alias").symlink_to(demo.parent, target_is_directory=True)
        target = tmp_path / "alias" / "demo.db"
    assert target is not None
    done, _ = run_fork(source, tmp_path, "-s", "healthy-operator", "--fork", "--record-to", str(target),
                       command=["true"])
    assert done.returncode == 1 and "another file" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert digest(source) == before


async def test_writes_by_other_actors_and_unexplained_versions_are_the_outside_world(tmp_path: Path) -> None:
    """An audit log names every writer: the operator's writes are its own, another user's are the world's;
    a version no recorded write made (seen through a watch) is the world's too."""
    from tests.conftest import k8s_object, op_for, write_session

    a1 = k8s_object("ConfigMap", "a", rv=1, data={"x": "1"})
    a2 = k8s_object("ConfigMap", "a", rv=2, data={"x": "2"})
    a3 = k8s_object("ConfigMap", "a", rv=3, data={"x": "2", "y": "3"})
    b1 = k8s_object("ConfigMap", "b", rv=4, data={"z": "1"})
    write_session(tmp_path / "audit.db", [
        op_for("create", a1, status=201, request=a1, response=a1, actor="my-operator"),
        op_for("update", a2, request=a2, response=a2, actor="alice"),
        op_for("modified", b1, response=b1),
        op_for("patch", a3, request={"data": {"y": "3"}}, response=a3, actor="my-operator"),
    ], name="audit", source="audit", actor="my-operator")
    rec = await Recording.open(tmp_path / "audit.db")
    try:
        changes = [c async for c in fork.external_changes(await rec.session(), 0)]
    finally:
        await rec.close()
    assert [(c.seq, c.key.name, c.patch, c.body is not None) for c in changes] == [
        (2, "a", {"data": {"x": "2"}}, False), (3, "b", None, True)]
    assert changes[1].body is not None and "uid" not in changes[1].body["metadata"]  # the server's to set
