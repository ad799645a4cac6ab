"""``replay-tui restore``: the state at a position created in a cluster (the emulator), as a user runs it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import k8s_object, op_for, write_session
from tests.support.emulator import EmulatorThread
from tests.support.harness import replay_tui

CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com", "uid": "uid-crd", "resourceVersion": "3"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                              "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
OWNER = [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w1", "uid": "uid-w1", "controller": True}]


def owned(obj: dict[str, Any], refs: list[dict[str, Any]]) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = refs
    return obj


def objects() -> list[dict[str, Any]]:
    return [
        CRD,
        k8s_object("Namespace", "default", "", rv=2),
        k8s_object("Namespace", "shop", "", rv=4),
        k8s_object("Namespace", "other", "", rv=5),
        k8s_object("Namespace", "kube-system", "", rv=6),
        k8s_object("Widget", "w1", "shop", api_version="example.com/v1", rv=7, uid="uid-w1", generation=3,
                   spec={"size": 2}, status={"ready": True, "observedGeneration": 3}),
        owned(k8s_object("ConfigMap", "owned", "shop", rv=8, data={"a": "1"}), OWNER),
        owned(k8s_object("ConfigMap", "orphan", "shop", rv=9), [{**OWNER[0], "uid": "uid-gone", "name": "gone"}]),
        k8s_object("Secret", "creds", "shop", rv=10, data={"password": "redacted:hmac-sha256:0123456789abcdef"}),
        k8s_object("Secret", "plain", "shop", rv=11, data={"token": "aGVsbG8="}),
        k8s_object("ConfigMap", "cluster-info", "kube-system", rv=12),
        k8s_object("Event", "ev", "shop", rv=13, reason="Started"),
        k8s_object("Service", "svc", "shop", rv=14, spec={"clusterIP": "10.0.0.7", "ports": [{"port": 80}]}),
        k8s_object("Pod", "p", "shop", rv=15, spec={"nodeName": "node-7", "containers": [{"name": "c"}]},
                   status={"phase": "Running"}),
        k8s_object("ConfigMap", "x", "other", rv=16),
    ]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    db = tmp_path / "rec.db"
    write_session(db, [op_for("create", o, status=201, request=o, response=o) for o in objects()], name="rec")
    return db


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[EmulatorThread, Path]]:
    with EmulatorThread() as emu:
        yield emu, emu.write_kubeconfig(tmp_path / "cluster.kubeconfig")


def restore(db: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*replay_tui(), "restore", str(db), "--at", "100%", "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120)


def get(emu: EmulatorThread, group: str, plural: str, ns: str, name: str) -> Any:
    return emu.call(emu.emulator.get, group, plural, ns, name)


def test_the_state_is_created_in_the_cluster(recording: Path, cluster: tuple[EmulatorThread, Path]) -> None:
    emu, kubeconfig = cluster
    done = restore(recording, kubeconfig)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    order = [line.split(":")[0] for line in lines if ": created" in line]
    assert order[0] == "CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com"
    assert order.index("Namespace/shop") < order.index("Widget.example.com/shop/w1") < order.index(
        "ConfigMap/shop/owned")
    widget = get(emu, "example.com", "widgets", "shop", "w1")
    assert widget["spec"] == {"size": 2} and widget["status"] == {"ready": True, "observedGeneration": 3}
    assert widget["metadata"]["uid"] != "uid-w1" and widget["metadata"]["generation"] == 1  # the cluster's own
    owned = get(emu, "", "configmaps", "shop", "owned")
    assert owned["metadata"]["ownerReferences"][0]["uid"] == widget["metadata"]["uid"]
    assert "ownerReferences" not in get(emu, "", "configmaps", "shop", "orphan")["metadata"]
    assert "owner reference to an object not restored was dropped" in done.stdout
    assert get(emu, "", "secrets", "shop", "creds") is None
    assert "warning: refused Secret/shop/creds: its values were redacted" in done.stderr
    assert get(emu, "", "secrets", "shop", "plain")["data"] == {"token": "aGVsbG8="}
    assert get(emu, "", "configmaps", "kube-system", "cluster-info") is None
    assert get(emu, "", "namespaces", "", "kube-system") is None
    assert get(emu, "", "events", "shop", "ev") is None
    assert "clusterIP" not in get(emu, "", "services", "shop", "svc")["spec"]
    pod = get(emu, "", "pods", "shop", "p")
    assert "nodeName" not in pod["spec"] and pod["status"] == {"phase": "Running"}
    assert "Namespace/default: exists" in done.stdout  # every cluster has it: left as it is
    again = restore(recording, kubeconfig)
    assert again.returncode == 0 and "ConfigMap/shop/owned: exists" in again.stdout


def test_dry_run_writes_nothing(recording: Path, cluster: tuple[EmulatorThread, Path]) -> None:
    emu, kubeconfig = cluster
    before = emu.call(lambda: sum(len(objs) for objs in emu.emulator.store.values()))
    done = restore(recording, kubeconfig, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "Widget.example.com/shop/w1: would create, then its status" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("would create 11 of 15 objects")
    assert emu.call(lambda: sum(len(objs) for objs in emu.emulator.store.values())) == before


def test_namespaces_choose_what_is_restored(recording: Path, cluster: tuple[EmulatorThread, Path]) -> None:
    emu, kubeconfig = cluster
    done = restore(recording, kubeconfig, "--namespace", "other", "--json")
    assert done.returncode == 0, done.stderr
    steps = {s["key"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["ConfigMap/other/x"]["outcome"] == "created" and steps["Namespace/other"]["outcome"] == "created"
    assert steps["ConfigMap/shop/owned"]["reason"] == "not in --namespace"
    assert "CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com" not in steps  # no widget wanted
    assert get(emu, "", "configmaps", "shop", "owned") is None


def test_a_namespace_that_matches_nothing_is_said(recording: Path, cluster: tuple[EmulatorThread, Path]) -> None:
    """A typo in --namespace restores nothing of it: a warning; when nothing at all is selected, exit 1."""
    emu, kubeconfig = cluster
    before = emu.call(lambda: sum(len(objs) for objs in emu.emulator.store.values()))
    done = restore(recording, kubeconfig, "-n", "nope")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("replay-tui: error: --namespace nope: no object of the state at op 15 is in it"
                           " (namespaces there: default, kube-system, other, shop); nothing to restore\n")
    assert emu.call(lambda: sum(len(objs) for objs in emu.emulator.store.values())) == before
    done = restore(recording, kubeconfig, "-n", "nope", "-n", "other", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("replay-tui: warning: --namespace nope: no object of the state at op 15 is in it")
    assert "ConfigMap/other/x: would create" in done.stdout


def test_a_cluster_that_cannot_be_reached_is_one_line(recording: Path, tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: "
                  "'http://127.0.0.1:9'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
                  "users: [{name: u, user: {token: t}}]\n")
    done = restore(recording, kc)
    assert done.returncode == 1 and "cannot reach the cluster" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_cluster_that_never_answers_fails_as_fast_as_record_does(recording: Path, tmp_path: Path) -> None:
    """A server that accepts connections and never answers: record's bounded probe, its message, ~10 s."""
    import socket
    import time

    from replay_tui.recorder.cli import PROBE_TIMEOUT_S

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts connections; nothing ever reads or answers them
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kc = tmp_path / "kc"
        kc.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: "
                      f"'{url}'}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
                      "users: [{name: u, user: {token: t}}]\n")
        started = time.monotonic()
        done = restore(recording, kc)
        took = time.monotonic() - started
    assert done.returncode == 1 and done.stderr == f"replay-tui: error: cannot reach the cluster at {url}: timed out\n"
    assert PROBE_TIMEOUT_S <= took < PROBE_TIMEOUT_S + 8, took
    assert done.stdout == ""
