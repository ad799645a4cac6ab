"""kubectl (client-go) recorded through ``replay-tui record``, with the kubeconfig it writes and nothing else.

kubectl is Debian's ``kubernetes-client``, unpacked (never installed) by
``tests/conformance/fetch-clients``.  One recorder serves a whole session of kubectl
commands: get (a Table), ``get -o yaml``, create, ``apply -f`` twice, patch (merge, JSON,
strategic), label, delete, ``get -w`` while objects change, ``api-resources``.  Every kubectl
runs at ``-v=6``, which logs each request it makes: those logs, the emulator's own request
log and the watch lines it sent are the independent accounts the recording must match.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conformance import clients, fidelity
from tests.conformance.fidelity import wait_for
from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess, replay_tui

KUBECTL, WHY = clients.kubectl()
pytestmark = pytest.mark.skipif(KUBECTL is None, reason=WHY)
NS = "conf"
APP_V1 = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": NS,
                                                                  "labels": {"app": "demo"}},
          "data": {"color": "blue"}}
APP_V2 = {**APP_V1, "data": {"color": "green", "size": "L"}}


class Session:
    """One recorder, an emulator behind it, and the kubectl commands run through it."""

    def __init__(self, tmp: Path, emu: EmulatorThread, rec: RecorderProcess):
        self.tmp, self.emu, self.rec = tmp, emu, rec
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        self.env.update(KUBECONFIG=str(rec.proxy_kubeconfig), HOME=str(tmp / "home"))
        self.logs: list[str] = []  # every kubectl's -v=6 output
        self.outputs: dict[str, str] = {}

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([str(KUBECTL), "-v=6", *args], env=self.env, input=stdin, capture_output=True,
                              text=True, timeout=60)
        self.logs.append(done.stderr)
        said = "\n".join(line for line in done.stderr.splitlines()
                         if line[:1] in "IEFW" and "goroutine" not in line)  # not Go's stack dumps
        assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{said[-3000:]}"
        self.outputs[" ".join(args)] = done.stdout
        return done.stdout

    def watching(self) -> bool:
        return bool(self.emu.call(lambda: any(
            w.namespace == NS for w in self.emu.emulator.watchers[("", "configmaps")])))


class Result:
    def __init__(self, session: Session, status: int, watch_output: str, db: Path):
        self.session, self.status, self.watch_output, self.db = session, status, watch_output, db
        self.emu = session.emu
        self.stderr = session.rec.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Result]:
    tmp = tmp_path_factory.mktemp("kubectl")
    (tmp / "home").mkdir()
    db = tmp / "kubectl.db"
    with EmulatorThread() as emu:
        kc = emu.write_kubeconfig(tmp / "emulator.kubeconfig")
        with RecorderProcess(db, kc, session="kubectl") as rec:
            s = Session(tmp, emu, rec)
            s.kubectl("create", "namespace", NS)
            s.kubectl("get", "namespaces")
            s.kubectl("-n", NS, "create", "configmap", "settings", "--from-literal=mode=a")
            s.kubectl("-n", NS, "get", "configmap", "settings", "-o", "yaml")
            (tmp / "app.yaml").write_text(yaml.safe_dump(APP_V1))
            s.kubectl("apply", "-f", str(tmp / "app.yaml"))
            (tmp / "app.yaml").write_text(yaml.safe_dump(APP_V2))
            s.kubectl("apply", "-f", str(tmp / "app.yaml"))
            s.kubectl("-n", NS, "patch", "configmap", "settings", "--type", "merge", "-p", '{"data":{"mode":"b"}}')
            s.kubectl("-n", NS, "patch", "configmap", "settings", "--type", "json",
                      "-p", '[{"op":"add","path":"/data/extra","value":"1"}]')
            s.kubectl("-n", NS, "patch", "configmap", "settings", "-p", '{"data":{"mode":"c"}}')  # strategic
            out = (tmp / "watch.out").open("w+")
            err = (tmp / "watch.err").open("w+")
            watcher = subprocess.Popen([str(KUBECTL), "-v=6", "-n", NS, "get", "configmaps", "-w"], env=s.env,
                                       stdout=out, stderr=err, text=True)
            try:
                wait_for(s.watching, "kubectl get -w to open its watch")
                s.kubectl("-n", NS, "label", "configmap", "settings", "tier=backend")
                s.kubectl("-n", NS, "create", "configmap", "temp", "--from-literal=x=1")
                s.kubectl("-n", NS, "delete", "configmap", "temp", "--wait=false")
                # header, the two listed ConfigMaps, then one row per event: settings, temp, temp
                wait_for(lambda: len(Path(out.name).read_text().splitlines()) >= 6, "kubectl get -w to print")
            finally:
                watcher.send_signal(signal.SIGTERM)
                watcher.wait(30)
            err.seek(0)
            s.logs.append(err.read())
            out.seek(0)
            watch_output = out.read()
            s.kubectl("api-resources")
            status = rec.stop()
            yield Result(s, status, watch_output, db)


def test_the_recorder_exits_cleanly_and_refuses_nothing(run: Result) -> None:
    assert run.status == 0, run.stderr
    assert "refused" not in run.stderr and "logged in" not in run.stderr
    assert fidelity.session_attributes(run.db)["refused"] == 0


def test_every_request_kubectl_made_is_recorded_once(run: Result) -> None:
    said = fidelity.kubectl_requests("\n".join(run.session.logs))
    assert sum(said.values()) > 30  # discovery, openapi, reads, writes, the watch
    assert fidelity.recorded(run.db) == said
    assert fidelity.served(run.emu.emulator) == said


def test_verbs_match_what_kubectl_did(run: Result) -> None:
    said = Counter(key[0] for key in fidelity.kubectl_requests("\n".join(run.session.logs)).elements())
    recorded = Counter(key[0] for key in fidelity.recorded(run.db).elements())
    assert recorded == said
    assert {"get", "list", "watch", "create", "patch", "delete"} <= set(recorded)


def test_watch_events_are_one_op_each_in_the_order_sent(run: Result) -> None:
    sent = fidelity.sent_events(run.emu.emulator)
    assert fidelity.recorded_events(run.db) == sent
    assert [(t, n) for t, n, _ in sent["configmaps"]] == [
        ("modified", "settings"), ("added", "temp"), ("deleted", "temp")]


def test_get_w_records_named_objects_and_their_state(run: Result) -> None:
    """kubectl asks for Tables: the events still name their objects and move the state."""
    rows = fidelity._rows(run.db, "SELECT seq, verb, kind, namespace, name FROM operations"
                                  " WHERE verb IN ('added', 'modified', 'deleted') ORDER BY seq")
    assert [(r["verb"], r["kind"], r["namespace"], r["name"]) for r in rows] == [
        ("modified", "ConfigMap", NS, "settings"), ("added", "ConfigMap", NS, "temp"),
        ("deleted", "ConfigMap", NS, "temp")]
    modified, _, deleted = (r["seq"] for r in rows)
    show = subprocess.run([*replay_tui(), "show", str(run.db), "--at", str(modified), "-r",
                           f"ConfigMap/{NS}/settings", "--json"], capture_output=True, text=True, timeout=60)
    obj = yaml.safe_load(show.stdout)["object"]
    assert obj["metadata"]["labels"] == {"tier": "backend"}
    assert obj["data"] == {"mode": "c", "extra": "1"}  # kept: the event carried metadata only
    gone = subprocess.run([*replay_tui(), "show", str(run.db), "--at", str(deleted), "-r", f"ConfigMap/{NS}/temp"],
                          capture_output=True, text=True, timeout=60)
    assert f"does not exist at op {deleted}" in gone.stdout
    assert "temp" in run.watch_output and "settings" in run.watch_output


def test_the_final_state_is_the_emulators(run: Result) -> None:
    assert fidelity.final_state_mismatches(run.db, run.emu.emulator, run.emu.call) == []


def test_get_o_yaml_and_apply_saw_what_the_emulator_holds(run: Result) -> None:
    shown = yaml.safe_load(run.session.outputs[f"-n {NS} get configmap settings -o yaml"])
    assert shown["metadata"]["name"] == "settings" and shown["data"] == {"mode": "a"}
    app = run.emu.call(run.emu.emulator.get, "", "configmaps", NS, "app")
    assert app["data"] == {"color": "green", "size": "L"}
    ops = fidelity._rows(run.db, "SELECT verb, patch_type FROM operations WHERE name = 'app' AND verb != 'get'"
                                 " ORDER BY seq")
    assert [(r["verb"], r["patch_type"]) for r in ops] == [
        ("create", ""), ("patch", "application/strategic-merge-patch+json")]
    patches = fidelity._rows(run.db, "SELECT patch_type FROM operations WHERE name = 'settings' AND verb = 'patch'"
                                     " ORDER BY seq")
    assert [r["patch_type"] for r in patches] == [
        "application/merge-patch+json", "application/json-patch+json",
        "application/strategic-merge-patch+json", "application/merge-patch+json"]  # the last: kubectl label


def test_discovery_shows_its_path(run: Result) -> None:
    out = subprocess.run([*replay_tui(), "query", str(run.db), "path=/openapi*"], capture_output=True,
                         text=True, timeout=60)
    assert "get      /openapi/v2" in out.stdout, out.stdout
    discovery = subprocess.run([*replay_tui(), "query", str(run.db), "discovery", "--json"], capture_output=True,
                               text=True, timeout=60)
    targets = {row["target"] for row in json.loads(discovery.stdout)}
    assert {"/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v2"} <= targets


# --- the issue's own reproduction, and a refusal made visible ----------------------------------------

def _record(tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with EmulatorThread() as emu:
        kc = emu.write_kubeconfig(tmp / "kc")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["HOME"] = str(tmp)
        return subprocess.run([*replay_tui(), "record", "--db", str(tmp / "r.db"), "--kubeconfig", str(kc), *extra,
                               "--", str(KUBECTL), "-v=6", "get", "ns"], capture_output=True, text=True,
                              timeout=120, env=env)


def test_record_kubectl_get_ns_just_works(tmp_path: Path) -> None:
    done = _record(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "default" in done.stdout and "refused" not in done.stderr
    said = fidelity.kubectl_requests(done.stderr)
    assert fidelity.recorded(tmp_path / "r.db") == said
    assert f"recorded {sum(said.values())} operations" in done.stderr


def test_plain_http_refusals_are_counted_logged_once_and_summarised(tmp_path: Path) -> None:
    done = _record(tmp_path, "--plain-http")
    assert done.returncode != 0 and "logged in" in done.stderr  # client-go sent no token over HTTP
    refused = sum(1 for line in done.stderr.splitlines() if "round_trippers" in line and " 401 " in line)
    assert refused >= 1
    warnings = [line for line in done.stderr.splitlines() if line.startswith("replay-tui: warning: refused")]
    assert len(warnings) == 1, done.stderr
    assert "it sent no token" in warnings[0] and "without --plain-http" in warnings[0]
    assert (f"replay-tui: warning: {refused} request{'s' if refused > 1 else ''} refused: the client did not "
            "present the recorder's token") in done.stderr
    assert fidelity.session_attributes(tmp_path / "r.db")["refused"] == refused


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
