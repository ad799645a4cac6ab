"""The official Python client recorded through ``replay-tui record``, with the kubeconfig it writes only.

``python/client.py`` lists with a resourceVersion, writes, watches from that resourceVersion
with a server-side timeout (``watch.Watch().stream``), fails an update with a stale
resourceVersion (409) and deletes; the recording must match the emulator's own account.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

pytest.importorskip("kubernetes")

from tests.conformance import clients, fidelity
from tests.conformance.fidelity import Run
from tests.support.emulator import EmulatorThread
from tests.support.harness import RecorderProcess

NS = "pyconf"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("python-client")
    db = tmp / "python.db"
    with EmulatorThread() as emu:
        kc = emu.write_kubeconfig(tmp / "emulator.kubeconfig")
        command = [sys.executable, str(clients.HERE / "python" / "client.py"), NS]
        with RecorderProcess(db, kc, command=command, session="python") as rec:
            status = rec.wait(120)
            yield Run(db, emu, status, rec.stderr)


def test_the_program_ran_as_it_would_without_the_recorder(run: Run) -> None:
    assert run.status == 0, run.output
    said = {line["request"]: line for line in run.said}
    assert said["watch"]["events"] == [["ADDED", "a"], ["ADDED", "b"], ["MODIFIED", "a"]]
    assert said["update"]["status"] == 409
    assert said["get"]["data"] == {"n": "3"}
    assert "refused" not in run.output


def test_every_request_is_recorded_once(run: Run) -> None:
    served = fidelity.served(run.emu.emulator)
    assert fidelity.recorded(run.db) == served
    assert sorted(verb for verb, *_ in served.elements()) == sorted(
        ["create", "list", "create", "create", "patch", "watch", "update", "get", "delete"])


def test_watch_events_one_op_each_in_order(run: Run) -> None:
    assert fidelity.recorded_events(run.db) == fidelity.sent_events(run.emu.emulator)
    rows = fidelity._rows(run.db, "SELECT verb, name FROM operations WHERE verb IN ('added', 'modified')"
                                  " ORDER BY seq")
    assert [(r["verb"], r["name"]) for r in rows] == [("added", "a"), ("added", "b"), ("modified", "a")]


def test_the_stale_update_is_a_recorded_conflict(run: Run) -> None:
    rows = fidelity._rows(run.db, "SELECT status, reason, name FROM operations WHERE verb = 'update'")
    assert [(r["status"], r["reason"], r["name"]) for r in rows] == [(409, "Conflict", "a")]


def test_the_watch_kept_its_resource_version_and_server_side_timeout(run: Run) -> None:
    start = next(line for line in run.said if line["request"] == "list")["resource_version"]
    rows = fidelity._rows(run.db, "SELECT query FROM operations WHERE verb = 'watch'")
    query = json.loads(rows[0]["query"])
    assert query["resourceVersion"] == start and query["timeoutSeconds"] == "1"


def test_the_final_state_is_the_emulators(run: Run) -> None:
    assert fidelity.final_state_mismatches(run.db, run.emu.emulator, run.emu.call) == []
