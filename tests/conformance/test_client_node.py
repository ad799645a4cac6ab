"""@kubernetes/client-node 1.x recorded through ``replay-tui record``, with the kubeconfig it writes only.

``node/controller.mjs`` is a small controller: an informer on one namespace's ConfigMaps and a
merge patch copying ``data.want`` into an annotation.  The test changes ConfigMaps on the
emulator's side, waits for the controller to catch up, stops the recorder (SIGTERM, passed on
to node) and compares the recording with the emulator's account and the controller's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance import clients, fidelity
from tests.conformance.fidelity import Run, wait_for
from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess

NODE, WHY = clients.client_node()
pytestmark = pytest.mark.skipif(NODE is None, reason=WHY)
NS = "nodeconf"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("client-node")
    db = tmp / "node.db"
    with EmulatorThread() as emu:
        put = emu.emulator.put

        def seen(name: str, want: str) -> bool:
            obj = emu.call(emu.emulator.get, "", "configmaps", NS, name)
            return obj is not None and (obj["metadata"].get("annotations") or {}).get("seen") == want

        def current_rv(name: str) -> str:
            return str(emu.call(emu.emulator.get, "", "configmaps", NS, name)["metadata"]["resourceVersion"])

        def sent_rvs() -> set[str]:
            return {rv for events in fidelity.sent_events(emu.emulator).values() for _, _, rv in events}

        emu.call(put, "", "namespaces", {"metadata": {"name": NS}})
        emu.call(put, "", "configmaps", {"metadata": {"name": "one", "namespace": NS}, "data": {"want": "1"}})
        kc = emu.write_kubeconfig(tmp / "emulator.kubeconfig")
        command = [str(NODE), str(clients.NODE_DIR / "controller.mjs"), NS]
        with RecorderProcess(db, kc, command=command, session="client-node") as rec:
            wait_for(lambda: seen("one", "1"), "the controller to handle 'one'")
            emu.call(put, "", "configmaps", {"metadata": {"name": "two", "namespace": NS}, "data": {"want": "2"}})
            emu.call(put, "", "configmaps", {"metadata": {"name": "one", "namespace": NS}, "data": {"want": "3"}})
            wait_for(lambda: seen("two", "2") and seen("one", "3"), "the controller to handle the changes")
            # the controller's own patches come back as events: wait until its watch has sent them
            wait_for(lambda: {current_rv("one"), current_rv("two")} <= sent_rvs(), "the events of the patches")
            status = rec.stop()
            yield Run(db, emu, status, rec.stderr)


def test_the_controller_ran_and_stopped_cleanly(run: Run) -> None:
    assert run.status == 0, run.output
    assert {"stopped": True} in run.said
    assert "refused" not in run.output and "HTTP protocol is not allowed" not in run.output


def test_every_request_is_recorded_once(run: Run) -> None:
    served = fidelity.served(run.emu.emulator)
    assert fidelity.recorded(run.db) == served
    patches = [line for line in run.said if line.get("request") == "patch"]
    assert [(p["name"], p["want"]) for p in patches] == [("one", "1"), ("two", "2"), ("one", "3")]
    assert sum(n for (verb, *_), n in served.items() if verb == "patch") == len(patches)
    assert {verb for verb, *_ in served} == {"list", "watch", "patch"}


def test_watch_events_one_op_each_in_order(run: Run) -> None:
    sent = fidelity.sent_events(run.emu.emulator)
    assert fidelity.recorded_events(run.db) == sent
    assert all(name for _, name, _ in sent["configmaps"])


def test_each_patch_is_in_the_span_of_the_event_that_caused_it(run: Run) -> None:
    """The patches answering events sit in the span their event started, on their own object.
    The first answers the informer's initial list, not an event: it has a span only when the
    event of its own write was captured first (then that span is on its own object too)."""
    rows = fidelity._rows(run.db, "SELECT o.name, r.name AS span_object, t.name AS trigger_object FROM operations o"
                                  " LEFT JOIN reconciles r ON r.id = o.reconcile LEFT JOIN operations t"
                                  " ON t.seq = r.trigger_seq WHERE o.verb = 'patch' ORDER BY o.seq")
    spans = [(r["name"], r["span_object"], r["trigger_object"]) for r in rows]
    assert spans[1:] == [("two", "two", "two"), ("one", "one", "one")]
    assert spans[0] in (("one", None, None), ("one", "one", "one"))


def test_the_final_state_is_the_emulators(run: Run) -> None:
    assert fidelity.final_state_mismatches(run.db, run.emu.emulator, run.emu.call) == []
