"""The recorder observed from outside: sampling, JSON logs, Prometheus metrics, and how sampled
sessions read back (scaled statistics, marked as estimates)."""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from replay_tui.engine import report as reportmod
from replay_tui.engine import stats as statsmod
from replay_tui.engine.format import ADDED, GET, LIST, PATCH, WATCH
from replay_tui.engine.writer import RecordingWriter
from replay_tui.recorder.capture import Capture, Converter
from replay_tui.recorder.paths import parse_path, template
from replay_tui.recorder.queue import CaptureQueue
from tests.conftest import T0, k8s_object, op_for, write_session

# --- path templates keep log and metric labels few -------------------------------------------


@pytest.mark.parametrize("path, expected", [
    ("/api/v1/namespaces/default/pods/web-0", "/api/v1/namespaces/{ns}/pods/{name}"),
    ("/api/v1/namespaces/prod/pods", "/api/v1/namespaces/{ns}/pods"),
    ("/api/v1/pods", "/api/v1/pods"),
    ("/apis/apps/v1/namespaces/x/deployments/d/status", "/apis/apps/v1/namespaces/{ns}/deployments/{name}/status"),
    ("/api/v1/namespaces/team-a", "/api/v1/namespaces/{name}"),
    ("/api/v1/watch/namespaces/a/pods", "/api/v1/watch/namespaces/{ns}/pods"),
    ("/api/v1/namespaces/a/pods/p/proxy/metrics/x", "/api/v1/namespaces/{ns}/pods/{name}/proxy/..."),
    ("/apis/apps/v1", "/apis/apps/v1"),
    ("/version", "/version"),
    ("/openapi/v3/apis/apps/v1", "/openapi/..."),
    ("/some/random/thing-123", "/..."),
])
def test_path_templates_replace_names(path: str, expected: str) -> None:
    assert template(parse_path(path)) == expected


def test_thousands_of_objects_make_one_template() -> None:
    paths = {f"/apis/example.com/v1/namespaces/ns-{i % 50}/widgets/w-{i}" for i in range(5000)}
    assert {template(parse_path(p)) for p in paths} == {"/apis/example.com/v1/namespaces/{ns}/widgets/{name}"}


# --- sampling in the capture queue -----------------------------------------------------------

def _get_capture(i: int) -> Capture:
    body = json.dumps(k8s_object("ConfigMap", f"cm-{i % 7}", rv=i + 1)).encode()
    return Capture("GET", f"/api/v1/namespaces/default/configmaps/cm-{i % 7}", "", 200, T0 + i * 1000,
                   250_000, None, "", body, "application/json")


def _record(db: Path, sample: float, n: int, seed: int = 7) -> tuple[Any, Any]:
    writer = RecordingWriter(db)
    session = writer.session("sampled", "proxy", attributes={"sample_rate": sample})
    queue = CaptureQueue(session, Converter(None), sample=sample, seed=seed).start()
    for i in range(n):
        queue.request(_get_capture(i))
    sid = queue.watch_open(Capture("GET", "/api/v1/namespaces/default/configmaps", "watch=true", 200, T0, 1000))
    events = b"".join(json.dumps({"type": "ADDED", "object": k8s_object("ConfigMap", f"w-{i}")}).encode() + b"\n"
                      for i in range(20))
    queue.watch_chunk(sid, T0 + 5, events)
    queue.watch_close(sid, T0 + 6)
    # A failed watch request is a watch: never sampled out.
    queue.request(Capture("GET", "/api/v1/namespaces/default/configmaps", "watch=true", 410, T0 + 7, 1000),
                  sampled=False)
    counters = queue.close()
    writer.close()
    return counters, session


def _verbs(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT verb, COUNT(*) FROM operations GROUP BY verb").fetchall())
    finally:
        conn.close()


def test_sampling_keeps_about_that_fraction_of_requests_and_every_watch_event(tmp_path: Path) -> None:
    n = 2000
    counters, _ = _record(tmp_path / "s.db", 0.25, n)
    verbs = _verbs(tmp_path / "s.db")
    kept = verbs[GET]
    assert kept + counters.sampled_out == n  # every request accounted for
    assert 0.25 * n - 4 * (n * 0.25 * 0.75) ** 0.5 <= kept <= 0.25 * n + 4 * (n * 0.25 * 0.75) ** 0.5
    assert verbs[ADDED] == 20 and verbs[WATCH] == 2  # the stream and the failed watch: never sampled
    assert counters.dropped == 0 and counters.recorded == sum(verbs.values())
    conn = sqlite3.connect(tmp_path / "s.db")
    attrs = json.loads(conn.execute("SELECT attributes FROM sessions").fetchone()[0])
    conn.close()
    assert attrs["sample_rate"] == 0.25 and attrs["sampled_out"] == counters.sampled_out


def test_sample_rate_one_records_everything_and_zero_only_watches(tmp_path: Path) -> None:
    counters, _ = _record(tmp_path / "all.db", 1.0, 300)
    assert _verbs(tmp_path / "all.db")[GET] == 300 and counters.sampled_out == 0
    counters, _ = _record(tmp_path / "none.db", 0.0, 300)
    verbs = _verbs(tmp_path / "none.db")
    assert GET not in verbs and counters.sampled_out == 300 and verbs[ADDED] == 20


# --- a sampled session reads back scaled and marked ------------------------------------------

def _sampled_steps(gets: int, patches: int, events: int) -> list[Any]:
    obj = k8s_object("ConfigMap", "cm")
    steps: list[Any] = []
    for _ in range(gets):
        steps.append(op_for(GET, obj, resource="configmaps", duration_ns=2_000_000, response=obj))
    for i in range(patches):
        steps.append(op_for(PATCH, obj, resource="configmaps", status=409 if i % 2 else 200,
                            duration_ns=8_000_000, response=obj))
    for i in range(events):
        steps.append(op_for(ADDED, k8s_object("ConfigMap", f"e{i}"), resource="configmaps",
                            response=k8s_object("ConfigMap", f"e{i}")))
    return steps


async def test_statistics_of_a_sampled_session_are_scaled_and_marked(session_of: Any) -> None:
    sampled = await session_of(_sampled_steps(30, 10, 12), attributes={"sample_rate": 0.1})
    full = await session_of(_sampled_steps(30, 10, 12))
    s = await statsmod.compute(sampled)
    f = await statsmod.compute(full)
    assert s.sample_rate == 0.1 and f.sample_rate == 1.0
    assert s.by_verb == {GET: 300, PATCH: 100, ADDED: 12}  # requests x 10, watch events as they are
    assert s.operations == 412 and s.requests == 400 and s.watch_events == 12
    assert s.recorded_operations == 52 == f.operations
    assert s.errors == 50 and s.error_rate == pytest.approx(50 / 412)
    assert s.by_status == {"200": 362, "409": 50}
    assert sum(s.timeline.counts) == 412
    assert s.latency_ms == f.latency_ms  # a uniform sample has the same latency distribution
    top = s.top_objects.by_reads[0]
    assert top.reads == 300 and s.top_objects.by_writes[0].writes == 100


async def test_the_report_of_a_sampled_session_says_so(session_of: Any) -> None:
    from replay_tui.cli.report import render_markdown

    sampled = await session_of(_sampled_steps(30, 10, 12), attributes={"sample_rate": 0.1, "sampled_out": 360})
    r = await reportmod.build(sampled)
    assert r.summary.sample_rate == 0.1 and r.summary.sampled_out == 360
    rows = {e.endpoint: (e.count, e.recorded, e.errors) for e in r.endpoints}
    assert rows["GET configmaps"] == (300, 30, 0) and rows["PATCH configmaps"] == (100, 10, 50)
    assert rows["ADDED configmaps"] == (12, 12, 0)
    md = render_markdown(r)
    assert "SAMPLED: 10% of non-watch requests recorded (360 left out)" in md
    assert "| GET configmaps | ~300 |" in md and "| ADDED configmaps | 12 |" in md


async def test_an_unsampled_report_says_it_is_not_sampled(session_of: Any) -> None:
    from replay_tui.cli.report import render_markdown

    md = render_markdown(await reportmod.build(await session_of(_sampled_steps(3, 1, 1))))
    assert "not sampled: every request the source saw is in the recording" in md
    assert "~" not in md.split("## Endpoints")[1].split("##")[0]


@pytest.mark.parametrize("bogus", ["0.5", -1, 7, True, None])
async def test_a_foreign_sample_rate_is_not_used_to_scale(session_of: Any, bogus: Any) -> None:
    s = await statsmod.compute(await session_of(_sampled_steps(3, 1, 1), attributes={"sample_rate": bogus}))
    assert s.sample_rate == 1.0 and s.by_verb[GET] == 3


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from replay_tui.cli.main import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_command_marks_sampled_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    write_session(db, _sampled_steps(30, 10, 12), name="s", attributes={"sample_rate": 0.1})
    code, out, err = _cli(capsys, "stats", str(db))
    assert code == 0, err
    assert "~412 operations" in out and "SAMPLED: 10% of non-watch requests recorded" in out
    code, out, _ = _cli(capsys, "sessions", str(db))
    assert "closed, sampled 10%" in out
    code, out, _ = _cli(capsys, "stats", str(db), "--json")
    data = json.loads(out)
    assert data["sample_rate"] == 0.1 and data["recorded_operations"] == 52 and data["operations"] == 412


# --- the real recorder: metrics, logs and sampling end to end ----------------------------------

kubernetes = pytest.importorskip("kubernetes")
parser = pytest.importorskip("prometheus_client.parser")

from kubernetes import client, config, watch  # noqa: E402

from tests.support.emulator import EmulatorThread  # noqa: E402
from tests.support.harness import RecorderProcess  # noqa: E402

GETS = 300
RATE = 0.3


class Recorded(msgspec.Struct):
    db: Path
    metrics: dict[str, Any]
    log_lines: list[str]
    status: int
    names: list[str]


def _scrape(url: str) -> str:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
    return resp.read().decode()


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def _value(families: dict[str, Any], name: str, **labels: str) -> float:
    family = families[name.removesuffix("_total")]
    for sample in family.samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    tmp = tmp_path_factory.mktemp("observability")
    with EmulatorThread() as emu:
        kubeconfig = emu.write_kubeconfig(tmp / "kubeconfig")
        db = tmp / "rec.db"
        with RecorderProcess(db, kubeconfig, session="observed", extra=[
                "--metrics", "127.0.0.1:0", "--sample", str(RATE), "--log-format", "json"]) as rec:
            api = config.new_client_from_config(str(rec.proxy_kubeconfig))
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": "obs"}})
            names = [f"cm-{i}" for i in range(5)]
            for name in names:
                core.create_namespaced_config_map("obs", {"metadata": {"name": name}, "data": {"a": "1"}})
            for i in range(GETS):
                core.read_namespaced_config_map(names[i % 5], "obs")
            with pytest.raises(client.ApiException):
                core.read_namespaced_config_map("missing", "obs")
            list(watch.Watch().stream(core.list_namespaced_config_map, "obs", timeout_seconds=1))
            match = re.search(r'"metrics on (http://[0-9.]+:[0-9]+)/metrics"', rec._output())
            assert match, rec._output()
            deadline = time.monotonic() + 10
            while True:  # the writer commits every 100 ms: wait until it has caught up
                families = _families(_scrape(match.group(1)))
                done = _value(families, "replay_recorded_total") + _value(families, "replay_sampled_out_total")
                if ((_value(families, "replay_queue_depth") == 0 and done >= 1 + 5 + GETS + 1 + 1 + 5)
                        or time.monotonic() > deadline):
                    break
                time.sleep(0.1)
            status = rec.stop()
            yield Recorded(db=db, metrics=families, log_lines=rec.stderr.splitlines(), status=status,
                           names=names)


def _session_attrs(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        return json.loads(conn.execute("SELECT attributes FROM sessions").fetchone()[0])
    finally:
        conn.close()


def test_metrics_parse_and_account_for_every_request(recorded: Recorded) -> None:
    m = recorded.metrics
    for name in ("replay_requests", "replay_recorded", "replay_sampled_out", "replay_dropped", "replay_errors"):
        assert m[name].type == "counter", name
    assert m["replay_request_duration_seconds"].type == "histogram"
    assert m["replay_queue_depth"].type == "gauge"
    requests = _value(m, "replay_requests_total")
    # namespace + 5 creates + GETS reads + the missing one + the watch (+ whatever discovery the client does)
    assert requests >= 1 + 5 + GETS + 1 + 1
    assert _value(m, "replay_dropped_total") == 0
    assert {s.labels["category"] for s in m["replay_errors"].samples} == {"disk", "encode", "locked", "upstream"}
    assert all(s.value == 0 for s in m["replay_errors"].samples)
    # Every non-watch request was either recorded or sampled out, and the file agrees.
    conn = sqlite3.connect(recorded.db)
    requests_in_file = conn.execute(
        "SELECT COUNT(*) FROM operations WHERE verb NOT IN ('watch','added','modified','deleted','bookmark','error')"
    ).fetchone()[0]
    conn.close()
    assert requests_in_file + _value(m, "replay_sampled_out_total") == requests - 1  # the watch is not sampled
    assert 0.3 * GETS * 0.5 < requests_in_file < 0.3 * (GETS + 12) * 1.7


def test_the_duration_histogram_counts_each_verb(recorded: Recorded) -> None:
    m = recorded.metrics["replay_request_duration_seconds"]
    by_verb: dict[str, dict[str, float]] = {}
    for s in m.samples:
        by_verb.setdefault(s.labels["verb"], {})[s.name.rsplit("_", 1)[1] + s.labels.get("le", "")] = s.value
    assert by_verb["get"]["count"] == GETS + 1 and by_verb["create"]["count"] == 6
    assert by_verb["watch"]["count"] == 1
    for verb, values in by_verb.items():
        buckets = [v for k, v in values.items() if k.startswith("bucket")]
        assert buckets == sorted(buckets), verb  # cumulative
        assert values["bucket+Inf"] == values["count"] and values["sum"] > 0, verb


def test_json_log_lines_carry_request_fields_with_path_templates(recorded: Recorded) -> None:
    lines = [json.loads(line) for line in recorded.log_lines]  # every line is JSON
    assert all({"time", "level", "message"} <= set(line) for line in lines)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]) for line in lines)
    requests = [line for line in lines if line["message"] == "request"]
    assert len(requests) == _value(recorded.metrics, "replay_requests_total")
    assert len({r["request_id"] for r in requests}) == len(requests)
    gets = [r for r in requests if r["verb"] == "get" and r["path"].endswith("/configmaps/{name}")]
    assert len(gets) == GETS + 1
    assert {r["path"] for r in gets} == {"/api/v1/namespaces/{ns}/configmaps/{name}"}
    assert sorted(r["status"] for r in gets)[-1] == 404
    assert all(isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0 for r in requests)
    every_path = " ".join(r["path"] for r in requests)
    assert not any(name in every_path for name in [*recorded.names, "missing", "obs"])
    watches = [r for r in requests if r["verb"] == "watch"]
    assert len(watches) == 1 and watches[0]["events"] >= 5
    summary = lines[-1]
    assert summary["level"] == "info" and summary["message"].startswith("recorded ")
    assert summary["sampled_out"] == _value(recorded.metrics, "replay_sampled_out_total")


def test_the_session_stores_the_rate_and_statistics_estimate_the_real_traffic(
        recorded: Recorded, capsys: pytest.CaptureFixture[str]) -> None:
    assert recorded.status == 0
    attrs = _session_attrs(recorded.db)
    assert attrs["sample_rate"] == RATE and attrs["sampled_out"] == _value(recorded.metrics, "replay_sampled_out_total")
    code, out, err = _cli(capsys, "stats", str(recorded.db), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["sample_rate"] == RATE
    # A statistical check with a 4-sigma margin: 300 reads sampled at 30 % estimate 300 +- 35 %.
    assert GETS * 0.65 < data["by_verb"][GET] < GETS * 1.35 + 10
    assert data["by_verb"].get(LIST, 0) >= 0


def test_log_format_text_stays_quiet_about_requests(tmp_path: Path) -> None:
    with EmulatorThread() as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
        with RecorderProcess(tmp_path / "t.db", kubeconfig, session="t") as rec:
            core = client.CoreV1Api(config.new_client_from_config(str(rec.proxy_kubeconfig)))
            core.read_namespace("default")
            assert rec.stop() == 0
    lines = rec.stderr.splitlines()
    assert lines and all(line.startswith("replay-tui: ") for line in lines)
    assert not any("/api/v1" in line for line in lines)


@pytest.mark.parametrize("value, message", [
    ("1.5", "'1.5' is outside 0 to 1"), ("half", "'half' is not a number"), ("-0.1", "is outside 0 to 1")])
def test_a_bad_sample_rate_is_one_clear_line(tmp_path: Path, value: str, message: str) -> None:
    from tests.support.harness import replay_tui

    proc = subprocess.run([*replay_tui(), "record", "--db", str(tmp_path / "x.db"), "--sample", value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_stats_of_a_sampled_recording_use_the_exact_request_count_and_mark_every_estimate(
        recorded: Recorded, capsys: pytest.CaptureFixture[str]) -> None:
    """The proxy counted every request: the totals are exact (no ~); what is scaled, per verb, kind,
    status, the errors, says ~ (the verb table too)."""
    requests = int(_value(recorded.metrics, "replay_requests_total"))
    assert _session_attrs(recorded.db)["requests"] == requests
    code, out, err = _cli(capsys, "stats", str(recorded.db), "--json")
    data = json.loads(out)
    assert data["requests_exact"] is True and data["requests"] == requests
    assert data["operations"] == requests + data["watch_events"]
    code, out, err = _cli(capsys, "stats", str(recorded.db))
    assert code == 0, err
    head = out.splitlines()[0]
    assert head.startswith(f"session observed: {requests + data['watch_events']:,} operations over ")
    verbs = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()[:1] in (["get"], ["watch"])}
    assert verbs["get"].startswith("~") and verbs["get"] == f"~{data['by_verb']['get']:,}"
    assert verbs["watch"] == f"{data['by_verb']['watch']:,}"  # watches are never sampled: exact
    assert f"errors     ~{data['errors']:,}" in out
    code, md, _ = _cli(capsys, "report", str(recorded.db))
    assert f"| Requests | {requests:,} |" in md and f"| Operations | {data['operations']:,} |" in md


async def test_the_statistics_panel_and_stats_text_mark_a_sampled_sessions_estimates(session_of: Any) -> None:
    """The TUI's panel marks scaled counts with ``~`` as ``stats`` does; watch events (never
    sampled) and the exact counts of an unsampled session carry no mark."""
    import msgspec

    from replay_tui.cli.commands import render_stats as stats_text
    from replay_tui.tui.widgets.statspanel import render_stats as panel

    def steps() -> list[Any]:  # watch events with no status of their own, as the recorders write them
        return [op if op.verb != ADDED else msgspec.structs.replace(op, status=0)
                for op in _sampled_steps(30, 10, 12)]

    sampled = msgspec.to_builtins(await statsmod.compute(
        await session_of(steps(), attributes={"sample_rate": 0.1})))
    shown = panel(sampled, None, 120).plain
    assert "operations ~412" in shown and "errors     ~50" in shown
    assert "~300" in shown and "~100" in shown  # GET and PATCH scaled
    assert "watch events 12" in shown and "events:12" in shown  # watch events kept as they are
    assert "409:~50" in shown and "ConfigMap:~" in shown
    text = "\n".join(stats_text("s", sampled))
    assert "409:~50" in text and "-:12" in text

    full = msgspec.to_builtins(await statsmod.compute(await session_of(steps())))
    assert "~" not in panel(full, None, 120).plain
