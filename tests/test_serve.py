"""``replay-tui serve``: a real recording (the demo's kopf runs) served as a Kubernetes API to real clients.

kubectl (Debian's kubernetes-client, unpacked by tests/conformance/fetch-clients, never installed)
reads the served cluster at three positions, and what ``get -o json`` prints equals what
``replay-tui show`` says; ``kubectl get -w`` against ``--play`` sees the recorded events in order.
The position controller (``Replay.seek``) is driven in-process: forward moves stream the recorded
versions to open watches, a backward move ends them with 410 Gone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client, config

from replay_tui.cli.main import main as cli
from replay_tui.engine import state
from replay_tui.engine.store import Recording
from replay_tui.server.http import ApiHandler, Served, loopback_socket
from replay_tui.server.replay import Replay
from tests.conformance import clients
from tests.support.harness import ServeProcess, replay_tui

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "demo.db"
KUBECTL, WHY = clients.kubectl()
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason=WHY)
SESSION = "buggy-operator"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "demo.db"
    shutil.copy(DEMO, path)
    return path


def kubectl_env(tmp: Path, kubeconfig: Path | None = None) -> dict[str, str]:
    """A clean environment for kubectl (its cache in a home of its own)."""
    (tmp / "home").mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp / "home")}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env


def show_object(capsys: pytest.CaptureFixture[str], db: Path, at: int, resource: str) -> Any:
    """What ``replay-tui show --json`` says the object is at ``at`` (None: it does not exist)."""
    capsys.readouterr()
    assert cli(["show", str(db), "-s", SESSION, "--at", str(at), "-r", resource, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["object"]


def _resource(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta['namespace']}/{meta['name']}"


@needs_kubectl
@pytest.mark.parametrize("at", [60, 250, 487])
def test_kubectl_get_o_json_equals_show_at_three_positions(demo: Path, tmp_path: Path, at: int,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kubectl.json"
    done = subprocess.run([*replay_tui(), "serve", str(demo), "-s", SESSION, "--at", str(at), "--", "sh", "-c",
                           f"{KUBECTL} get reports,configmaps -A -o json > {out}"],
                          capture_output=True, text=True, timeout=60, env=kubectl_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"at op {at} of 487" in done.stderr and "read-only" in done.stderr
    items = json.loads(out.read_text())["items"]
    assert {i["kind"] for i in items} == {"Report", "ConfigMap"} or at == 60
    for item in items:
        assert item == show_object(capsys, demo, at, _resource(item)), _resource(item)

    async def live() -> set[str]:  # every Report and ConfigMap that exists there, and nothing else
        rec = await Recording.open(demo)
        try:
            ses = await rec.session(SESSION)
            return {f"{k.kind}/{k.namespace}/{k.name}" for _, k, _ in await (await state.snapshot(ses, at)).items()
                    if k.kind in ("Report", "ConfigMap")}
        finally:
            await rec.close()
    assert {_resource(i) for i in items} == asyncio.run(live())


@needs_kubectl
def test_tables_discovery_and_the_read_only_answer(demo: Path, tmp_path: Path) -> None:
    with ServeProcess(demo, "-s", SESSION, "--at", "300") as served:
        env = kubectl_env(tmp_path, served.proxy_kubeconfig)
        table = subprocess.run([str(KUBECTL), "get", "reports", "-n", "default"], env=env, capture_output=True,
                               text=True, timeout=30)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["NAME", "AGE"] and [line.split()[0] for line in lines[1:]] == ["daily", "weekly"]
        assert all(line.split()[1].endswith("s") for line in lines[1:])  # seconds old, on the recording's clock
        resources = subprocess.run([str(KUBECTL), "api-resources"], env=env, capture_output=True, text=True,
                                   timeout=30)
        assert resources.returncode == 0 and "reports" in resources.stdout and "example.com/v1" in resources.stdout
        write = subprocess.run([str(KUBECTL), "-n", "default", "create", "configmap", "x"], env=env,
                               capture_output=True, text=True, timeout=30)
        assert write.returncode != 0
        assert "read-only" in write.stderr and "--at 300 --fork" in write.stderr, write.stderr


def test_selectors_and_pages_through_the_python_client(demo: Path) -> None:
    with ServeProcess(demo, "-s", SESSION, "--at", "487") as served:
        api = client.CoreV1Api(config.new_client_from_config(str(served.proxy_kubeconfig)))
        assert sorted(c.metadata.name for c in api.list_namespaced_config_map(
            "default", label_selector="app=reporter").items) == ["daily-summary", "weekly-summary"]
        assert api.list_namespaced_config_map("default", label_selector="app!=reporter").items == []
        first = api.list_namespaced_config_map("default", limit=1)
        rest = api.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
        assert [first.items[0].metadata.name, rest.items[0].metadata.name] == ["daily-summary", "weekly-summary"]
        assert api.read_namespaced_config_map("daily-summary", "default").data["count"]
        with pytest.raises(client.ApiException) as exc:
            api.delete_namespaced_config_map("daily-summary", "default")
        assert exc.value.status == 405 and "fork" in json.loads(exc.value.body)["message"]


def _watch_lines(text: str) -> list[dict[str, Any]]:
    decoder, out, i = json.JSONDecoder(), [], 0
    while (start := text.find("{", i)) >= 0:
        obj, i = decoder.raw_decode(text, start)
        out.append(obj)
    return out


@needs_kubectl
def test_kubectl_get_w_against_play_sees_the_recorded_events_in_order(demo: Path, tmp_path: Path) -> None:
    async def recorded() -> list[tuple[str, str, str]]:
        rec = await Recording.open(demo)
        try:
            ses = await rec.session(SESSION)
            seen: set[str] = set()
            out = []
            async for batch in state.changes(ses, 0, ses.last):
                for ch in batch:
                    if ch.key.kind == "Report":
                        kind = "DELETED" if ch.body is None else "MODIFIED" if ch.key.name in seen else "ADDED"
                        seen.add(ch.key.name)
                        out.append((kind, ch.key.name, ch.body["metadata"]["resourceVersion"] if ch.body else ""))
            return out
        finally:
            await rec.close()

    events = asyncio.run(recorded())
    with ServeProcess(demo, "-s", SESSION, "--at", "0", "--play", "--speed", "3") as served:
        out = (tmp_path / "watch.out").open("w+")
        watcher = subprocess.Popen([str(KUBECTL), "get", "reports", "-n", "default", "-w", "--output-watch-events",
                                    "-o", "json"], env=kubectl_env(tmp_path, served.proxy_kubeconfig), stdout=out,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while "the end of the session" not in served.output():
                assert time.monotonic() < deadline and watcher.poll() is None, served.output()
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(30)
        seen = [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"])
                for e in _watch_lines(Path(out.name).read_text())]
    # kubectl lists first (what had been played by then, each object once, as ADDED), then watches
    # from the list's resourceVersion: from there on it printed every recorded event, in order.
    listed = next(k for k in range(3) if seen[k:] == events[len(events) - len(seen) + k:])
    assert len(seen) - listed > 50  # most of the loop arrived while kubectl watched
    assert all(kind == "ADDED" for kind, _, _ in seen[:listed])


async def _served(demo: Path, at: int) -> tuple[Recording, Replay, Served, str]:
    rec = await Recording.open(demo)
    ses = await rec.session(SESSION)
    replay = await Replay.open(ses, at)
    served = Served(ApiHandler(replay.server, discovery=replay.discovery))
    host, port = await served.start(loopback_socket())
    return rec, replay, served, f"http://{host}:{port}"


async def test_seek_forward_streams_recorded_versions_and_backward_ends_watches_with_410(demo: Path) -> None:
    rec, replay, served, url = await _served(demo, 50)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/apis/example.com/v1/reports") as resp:
                listing = await resp.json()
            rv = listing["metadata"]["resourceVersion"]
            watch = await http.get(f"{url}/apis/example.com/v1/reports?watch=true&resourceVersion={rv}")
            moved: list[int] = []
            replay.on_move.append(moved.append)
            assert await replay.seek(150) == 150 and moved == [150]
            expected = [(ch.key.name, ch.body["metadata"]["resourceVersion"])
                        async for batch in state.changes(replay.session, 50, 150) for ch in batch
                        if ch.key.kind == "Report"]
            got = []
            while len(got) < len(expected):
                event = json.loads(await asyncio.wait_for(watch.content.readline(), 10))
                got.append((event["object"]["metadata"]["name"], event["object"]["metadata"]["resourceVersion"]))
            assert got == expected and len(expected) > 10
            await replay.seek(60)
            event = json.loads(await asyncio.wait_for(watch.content.readline(), 10))
            assert event["type"] == "ERROR" and event["object"]["code"] == 410
            assert await asyncio.wait_for(watch.content.readline(), 10) == b""  # the stream ended
            watch.close()
            async with http.get(f"{url}/apis/example.com/v1/reports?watch=true&resourceVersion={rv}&"
                                "timeoutSeconds=1") as resp:  # the old resourceVersion is gone: re-list
                assert json.loads((await resp.read()).splitlines()[0])["object"]["code"] == 410
            async with http.get(f"{url}/apis/example.com/v1/namespaces/default/reports/daily") as resp:
                daily = await resp.json()
            expect = await state.object_at(replay.session, (await replay.session.resolve_object(
                "Report/default/daily"))[0], 60)
            assert daily == expect and replay.position == 60
    finally:
        await served.close()
        await rec.close()


async def test_play_follows_recorded_time(demo: Path) -> None:
    rec, replay, served, _ = await _served(demo, 0)
    try:
        first, last = await replay.session.time_range()
        started = time.monotonic()
        assert await replay.play(speed=20) == replay.session.last
        took = time.monotonic() - started
        assert took >= (last - first) / 1e9 / 20 * 0.9  # not faster than recorded time allows
        assert replay.time_ns == last and not replay.playing
    finally:
        await served.close()
        await rec.close()


@pytest.mark.parametrize("args, message", [
    (["missing.db"], "no such file"),
    (["DEMO", "-s", SESSION, "--at", "9999"], "out of range"),
    (["DEMO", "-s", "nope"], "no session"),
    (["DEMO", "-s", SESSION, "--speed", "0", "--play"], "--speed"),
    (["DEMO", "-s", SESSION, "--listen", "nowhere"], "HOST:PORT"),
])
def test_bad_input_is_one_line_and_status_1(demo: Path, tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(demo) if a == "DEMO" else str(tmp_path / a) if a.endswith(".db") else a for a in args]
    done = subprocess.run([*replay_tui(), "serve", *args, "--", "true"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--speed", "5"], "--speed goes with --play (the position moves only when played)"),
    (["--fork", "--play"], "--play moves a read-only server; a fork runs in real time (leave out --play)"),
    (["--record-to", "x.db"], "--record-to and --name go with --fork"),
])
def test_options_that_do_not_go_together_are_a_usage_error(demo: Path, args: list[str], message: str) -> None:
    """Never silently ignored: one line, as argparse's own usage errors, exit status 2."""
    done = subprocess.run([*replay_tui(), "serve", str(demo), "-s", SESSION, *args, "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"replay-tui serve: error: {message} (see 'replay-tui serve --help')\n"


def test_a_command_gets_the_kubeconfig_and_its_status_is_ours(demo: Path) -> None:
    done = subprocess.run([*replay_tui(), "serve", str(demo), "-s", SESSION, "--", "sh", "-c",
                           'grep -q "certificate-authority-data" "$KUBECONFIG" && exit 7'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr


def test_sigterm_stops_serving(demo: Path) -> None:
    with ServeProcess(demo, "-s", SESSION) as served:
        assert served.stop(signal.SIGTERM, timeout=30) == 0


async def test_discovery_is_what_the_recording_holds_completed_with_what_it_saw(demo: Path) -> None:
    rec = await Recording.open(demo)
    try:
        ses = await rec.session(SESSION)
        replay = await Replay.open(ses, 100)
        recorded = {(await ses.op(seq)).resource: (await ses.op(seq)).response for seq in range(1, 6)}
        assert replay.discovery.api() == recorded["/api"]
        served = replay.discovery.resources("example.com", "v1")
        assert served is not None and served["resources"][:len(recorded["/apis/example.com/v1"]["resources"])] == \
            recorded["/apis/example.com/v1"]["resources"]
        names = {r["name"] for r in served["resources"]}
        assert {"reports", "reports/status", "greetings"} <= names
        core = {r["name"] for r in replay.discovery.resources("", "v1")["resources"]}
        assert {"configmaps", "pods", "namespaces"} <= core  # the kinds every cluster has
        groups = {g["name"] for g in replay.discovery.apis()["groups"]}
        assert {"example.com", "apiextensions.k8s.io", "apps"} <= groups
    finally:
        await rec.close()
