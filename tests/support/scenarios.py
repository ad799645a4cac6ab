"""Real operators recorded end to end: kopf operators from ``fixtures/operators`` under ``replay-tui record``.

Shared by the end-to-end tests and ``fixtures/make_demo.py``: an emulator
serving the operators' custom resources, the operator run exactly as a user
would (``replay-tui record --db DB -- kopf run --standalone -A OP.py``), and
a scenario that changes objects the way a user with kubectl would (directly
on the emulator, so only the operator's own traffic is recorded).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.emulator import EmulatorThread, KubernetesAPIEmulator
from tests.support.harness import RecorderProcess

OPERATORS = Path(__file__).resolve().parents[2] / "fixtures" / "operators"
GROUP, VERSION = "example.com", "v1"


def new_emulator() -> KubernetesAPIEmulator:
    """An emulator serving the custom resources of the fixture operators."""
    emulator = KubernetesAPIEmulator()
    emulator.add_crd(GROUP, VERSION, "greetings", "Greeting", short_names=("greet",))
    emulator.add_crd(GROUP, VERSION, "reports", "Report")
    return emulator


def kopf_command(operator: str) -> list[str]:
    kopf = Path(sys.executable).with_name("kopf")
    run = [str(kopf)] if kopf.exists() else [sys.executable, "-m", "kopf"]
    return [*run, "run", "--standalone", "-A", str(OPERATORS / operator)]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


class Cluster:
    """Convenience calls on an emulator running in a thread (the user's side of a scenario)."""

    def __init__(self, server: EmulatorThread, recorder: RecorderProcess | None = None):
        self.server = server
        self.emu = server.emulator
        self.recorder = recorder

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Like :func:`wait_for`, but gives up at once when the recorded operator has died."""
        def alive_check() -> Any:
            proc = self.recorder.proc if self.recorder is not None else None
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the operator exited while waiting for {what}:\n"
                                   f"{self.recorder._output()[-3000:]}")  # type: ignore[union-attr]
            return check()

        return wait_for(what, alive_check, timeout)

    def put(self, plural: str, obj: dict[str, Any], group: str = GROUP) -> dict[str, Any]:
        return self.server.call(self.emu.put, group, plural, obj)  # type: ignore[no-any-return]

    def get(self, plural: str, name: str, namespace: str = "default", group: str = GROUP) -> Any:
        return self.server.call(self.emu.get, group, plural, namespace, name)

    def delete(self, plural: str, name: str, namespace: str = "default", group: str = GROUP) -> None:
        self.server.call(lambda: self.emu._delete(self.emu.type_of(group, plural), namespace, name, None))

    def watched(self, plural: str, group: str = GROUP) -> bool:
        return bool(self.server.call(lambda: len(self.emu.watchers[(group, plural)])))


def healthy_scenario(cluster: Cluster, greetings: int = 2, updates: int = 1) -> None:
    """Create greetings, change messages, delete the first: each change handled once by the healthy operator."""
    cluster.wait_for("the operator to watch greetings", lambda: cluster.watched("greetings"))
    names = ["hello", "world", "bonjour", "hola"][:greetings]
    for name in names:
        cluster.put("greetings", {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Greeting",
                                  "metadata": {"name": name, "namespace": "default"},
                                  "spec": {"message": f"{name}, world"}})
        cluster.wait_for(f"ConfigMap {name}-greeting",
                         lambda n=name: cluster.get("configmaps", f"{n}-greeting", group=""))
    for name in names[:updates]:
        obj = cluster.get("greetings", name)
        obj["spec"]["message"] = f"goodbye from {name}" if name != names[0] else "goodbye"
        cluster.put("greetings", obj)
        cluster.wait_for("the ConfigMap to follow the new message", lambda n=name, m=obj["spec"]["message"]: (
            cluster.get("configmaps", f"{n}-greeting", group="") or {}).get("data", {}).get("message") == m)
    first = names[0]
    cluster.delete("greetings", first)
    cluster.wait_for(f"Greeting {first} to be gone", lambda: cluster.get("greetings", first) is None)
    cluster.wait_for(f"ConfigMap {first}-greeting to be gone",
                     lambda: cluster.get("configmaps", f"{first}-greeting", group="") is None)


def buggy_scenario(cluster: Cluster, reports: int = 1, seconds: float = 4.0) -> None:
    """Create reports and let the buggy operator loop and conflict for a while."""
    cluster.wait_for("the operator to watch reports", lambda: cluster.watched("reports"))
    for name in ["daily", "weekly"][:reports]:
        cluster.put("reports", {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Report",
                                "metadata": {"name": name, "namespace": "default"},
                                "spec": {"period": name}})
    time.sleep(seconds)


def record_operator(db: str | Path, operator: str, scenario: Callable[[Cluster], None], *,
                    session: str | None = None, server: EmulatorThread | None = None,
                    grace: float = 10.0, ok_status: tuple[int, ...] = (0,)) -> RecorderProcess:
    """Run ``operator`` under ``replay-tui record`` against an emulator, play ``scenario``, stop with SIGTERM.

    ``ok_status``: the exit statuses expected of the operator (the buggy one
    has to be killed after ``grace`` seconds: its hot loop keeps kopf busy).
    """
    own = server is None
    server = server or EmulatorThread(new_emulator()).__enter__()
    try:
        kubeconfig = server.write_kubeconfig(Path(db).with_name(Path(db).name + ".emulator.kubeconfig"))
        rec = RecorderProcess(db, kubeconfig, command=kopf_command(operator), session=session,
                              extra=["--grace", str(grace)])
        with rec:
            scenario(Cluster(server, rec))
            status = rec.stop(signal.SIGTERM, timeout=grace + 30)
        kubeconfig.unlink()
        if status not in ok_status:
            raise RuntimeError(f"recording {operator} ended with status {status}:\n{rec.stderr[-3000:]}")
        return rec
    finally:
        if own:
            server.stop()
