"""The filter language: each field, operators, ranges, units, wildcards, bare words,
verbs, errors that point at the bad token, and window-by-window search."""

from __future__ import annotations

from typing import Any

import pytest

from replay_tui.engine import filters
from replay_tui.engine.filters import FilterError, count, find, parse
from replay_tui.engine.format import Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.store import Session

MS = 1_000_000


def _op(verb: str, kind: str, ns: str, name: str, status: int, duration_ns: int, **kw: Any) -> Operation:
    api_version = "apps/v1" if kind == "Deployment" else "v1"
    resource = {"ConfigMap": "configmaps", "Pod": "pods", "Deployment": "deployments",
                "Secret": "secrets"}.get(kind, "")
    return Operation(verb=verb, kind=kind, api_version=api_version, resource=resource, namespace=ns,
                     name=name, status=status, duration_ns=duration_ns, **kw)


OPS = [
    _op("get", "ConfigMap", "default", "web-1", 200, 50_000, actor="kopf"),                       # 1
    _op("list", "Pod", "default", "", 200, 5 * MS, actor="kopf"),                                 # 2
    _op("update", "Deployment", "prod", "web-2", 409, 250 * MS, actor="kopf", reconcile=1,        # 3
        generation=3, reason="Conflict", message="the object has been modified"),
    _op("patch", "Deployment", "prod", "web-2", 200, 2000 * MS, reconcile=1, generation=3,        # 4
        subresource="status"),
    _op("create", "Pod", "default", "api-0", 201, 800_000, actor="controller-manager",            # 5
        reconcile=2, uid="u-5"),
    _op("get", "Pod", "default", "api-0", 404, 1 * MS, reconcile=2, reason="NotFound"),           # 6
    _op("added", "Pod", "default", "api-0", 0, 0),                                                # 7
    _op("delete", "Pod", "default", "api-0", 500, 30_000 * MS, reason="InternalError",            # 8
        message="etcd request timeout"),
    _op("error", "", "", "", 0, 0, reason="Expired", message="too old resource version"),         # 9
    _op("get", "Secret", "kube-system", "Web_Token", 200, 1_500_000),                             # 10
    _op("update", "ConfigMap", "default", "web-1", 422, 100 * MS, reason="Invalid"),              # 11
]
ALL = list(range(1, len(OPS) + 1))


@pytest.fixture
async def session(session_of: Any) -> Session:
    return await session_of([_copy(op) for op in OPS])


def _copy(op: Operation) -> Operation:
    """The writer fills in seq and ts: give it a fresh Operation each time."""
    import copy
    return copy.copy(op)


async def matching(session: Session, expression: str) -> list[int]:
    flt = parse(expression)
    rows = await session.rec.fetchall(
        f"SELECT seq FROM operations WHERE session_id = ? AND ({flt.sql}) ORDER BY seq",
        (session.id, *flt.params))
    got = [r[0] for r in rows]
    assert await count(session, flt) == len(got)
    return got


CASES = [
    # verbs
    ("verb=update", [3, 11]), ("verb=update,patch", [3, 4, 11]), ("verb=UPDATE", [3, 11]),
    ("verb!=get", [2, 3, 4, 5, 7, 8, 9, 11]), ("patch", [4]), ("added", [7]), ("verb:list", [2]),
    # kind, namespace, name
    ("kind=pod", [2, 5, 6, 7, 8]), ("kind=dep*", [3, 4]), ("kind!=Pod", [1, 3, 4, 9, 10, 11]),
    ("ns=prod", [3, 4]), ("namespace=prod,kube-system", [3, 4, 10]), ("ns!=default", [3, 4, 9, 10]),
    ("name=web-*", [1, 3, 4, 11]), ("name=Web*", [10]), ("name=web-1", [1, 11]), ("name=WEB-1", []),
    ("name=web-?", []), ("name=*-[12]", []),  # only * is a wildcard
    # status
    ("status=404", [6]), ("status:404", [6]), ("code=201", [5]), ("status=4xx", [3, 6, 11]),
    ("status=4xx,500", [3, 6, 8, 11]), ("status>=400", [3, 6, 8, 11]), ("status<200", [7, 9]),
    ("status!=2xx", [3, 6, 7, 8, 9, 11]), ("status>404", [3, 8, 11]), ("status<=201", [1, 2, 4, 5, 7, 9, 10]),
    # latency
    ("latency>200ms", [3, 4, 8]), ("latency>=2s", [4, 8]), ("latency<1ms", [1, 5, 7, 9]),
    ("latency>1.5", [2, 3, 4, 8, 11]), ("latency<=800us", [1, 5, 7, 9]), ("latency<800µs", [1, 7, 9]),
    ("latency>=0.5m", [8]), ("latency=100ms", [11]), ("duration>=1s", [4, 8]),
    ("latency>49999ns", [1, 2, 3, 4, 5, 6, 8, 10, 11]),
    # reason, actor, message, uid, subresource, resource, seq
    ("reason=conflict", [3]), ("reason=Not*", [6]), ("reason!=Conflict", [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]),
    ("actor=kopf", [1, 2, 3]), ("actor=KOPF", []), ("actor=controller-*", [5]),
    ("message=*timeout*", [8]), ("message=*Timeout*", []), ("uid=u-5", [5]),
    ("subresource=status", [4]), ("resource=PODS", [2, 5, 6, 7, 8]), ("seq>=10", [10, 11]),
    ("seq=1,2", [1, 2]),
    # errors
    ("error", [3, 6, 8, 9, 11]), ("errors", [3, 6, 8, 9, 11]), ("failed", [3, 6, 8, 9, 11]),
    ("error=true", [3, 6, 8, 9, 11]), ("error:yes", [3, 6, 8, 9, 11]),
    ("error=false", [1, 2, 4, 5, 7, 10]), ("error!=true", [1, 2, 4, 5, 7, 10]),
    # reconcile and generation: != keeps ops where the field is absent
    ("reconcile=1", [3, 4]), ("reconcile!=1", [1, 2, 5, 6, 7, 8, 9, 10, 11]), ("reconcile>1", [5, 6]),
    ("generation>=3", [3, 4]), ("generation!=3", [1, 2, 5, 6, 7, 8, 9, 10, 11]),
    # bare words: kind, namespace, name, reason or message, case-insensitively
    ("timeout", [8]), ("TIMEOUT", [8]), ("web", [1, 3, 4, 10, 11]), ("web_", [10]),
    ("100%", []), ("kube", [10]), ("expired", [9]), ("deployment", [3, 4]),
    # combinations: all terms must hold
    ("kind=Pod error", [6, 8]), ("verb=update status=409 ns=prod", [3]), ("web error", [3, 11]),
    ("", ALL), ("   ", ALL),
]


@pytest.mark.parametrize("expression, expected", CASES)
async def test_filter_matches(session: Session, expression: str, expected: list[int]) -> None:
    assert await matching(session, expression) == expected


def test_empty_filter() -> None:
    assert parse("").empty and parse("  ").empty and not parse("kind=Pod").empty
    assert parse("  kind=Pod ").text == "kind=Pod"


@pytest.mark.parametrize("expression, bad, message", [
    ("foo=bar", "foo", "unknown field 'foo'"),
    ("kind=Pod stauts=404", "stauts", "unknown field 'stauts'"),
    ("status=abc", "abc", "'abc' is not a number"),
    ("status=404,abc", "abc", "'abc' is not a number"),
    ("reconcile=x", "x", "'x' is not a number"),
    ("seq>1.5", "1.5", "'1.5' is not a number"),
    ("latency>fast", "fast", "bad latency 'fast'"),
    ("latency>5h", "5h", "bad latency '5h'"),
    ("status>4xx", "4xx", "> takes a number, not a range"),
    ("kind>Pod", ">", "kind is text: use = or !=, not >"),
    ("name<=a", "<=", "name is text"),
    ("name=", "name=", "name= needs a value"),
    ("error=maybe", "maybe", "error takes true or false, not 'maybe'"),
    ("error>1", ">", "error takes = or !=, not >"),
    ("verb=update,frob", "frob", "unknown verb 'frob'"),
    ("verb=frob", "frob", "unknown verb 'frob'"),
    ("status >= 400", ">=", "'>=' has no field before its operator"),
    ("status=99999999999999999999", "9999", "is out of range"),
    ("latency>99999999999999999999s", "9999", "is out of range"),
    ("seq>-99999999999999999999", "-9999", "is out of range"),
    ("kind=Pod =web", "=web", "no field before its operator"),
    ("path=apis", "apis", "path= takes a request path"),
    ("path=/api,v1", "v1", "path= takes a request path"),
    ("path>/api", ">", "path takes = or !=, not >"),
    ("path=", "path=", "path= needs a value"),
    ("discovery=maybe", "maybe", "discovery takes true or false"),
])
def test_bad_expressions_point_at_the_bad_token(expression: str, bad: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse(expression)
    exc = info.value
    assert isinstance(exc, RecordingError)
    assert exc.column == expression.index(bad) + 1, (exc.column, str(exc))
    assert message in exc.short
    assert f"(column {exc.column}: {expression!r})" in str(exc)
    assert "\n" not in str(exc)


# --- find --------------------------------------------------------------------------------

FIND_EXPRESSIONS = ["error", "kind=Pod", "name=web-*", "status=2xx", "reconcile!=1", "kind=Nothing", ""]


@pytest.mark.parametrize("window", [1, 2, 3, 65536])
async def test_find_is_the_next_and_previous_match_whatever_the_window(
        session: Session, window: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "SCAN_WINDOW", window)
    for expression in FIND_EXPRESSIONS:
        flt = parse(expression)
        hits = await matching(session, expression)
        for seq in range(len(OPS) + 2):
            nxt = min((h for h in hits if h > seq), default=None)
            prev = max((h for h in hits if h < seq), default=None)
            assert await find(session, seq, flt) == nxt, (expression, seq, "forward")
            assert await find(session, seq, flt, forward=False) == prev, (expression, seq, "backward")


async def test_find_stays_within_the_session(tmp_path: Any, open_recording: Any) -> None:
    """Two sessions in one file: a search never crosses into the other one."""
    from tests.conftest import write_session

    path = tmp_path / "two.db"
    write_session(path, [_copy(op) for op in OPS], name="one")
    write_session(path, [_copy(op) for op in OPS[:5]], name="two")
    rec = await open_recording(path)
    one, two = await rec.session("one"), await rec.session("two")
    assert await find(one, 0, parse("kind=Secret")) == 10
    assert await find(two, 0, parse("kind=Secret")) is None
    assert await find(two, 5, parse("kind=Pod")) is None
    assert await count(two, parse("")) == 5


# --- requests on no resource: path= and discovery --------------------------------------------

PATH_OPS = [
    Operation(verb="get", resource="/api", status=200),                                           # 1
    Operation(verb="get", api_version="apps/v1", resource="/apis/apps/v1", status=200),          # 2
    Operation(verb="get", resource="/openapi/v2", status=200),                                    # 3
    Operation(verb="list", kind="Pod", api_version="v1", resource="pods", namespace="default", status=200),  # 4
    Operation(verb="get", resource="/apis/metrics.k8s.io/v1beta1", status=503),                  # 5
]


@pytest.mark.parametrize("expression, expected", [
    ("discovery", [1, 2, 3, 5]), ("DISCOVERY", [1, 2, 3, 5]), ("discovery=true", [1, 2, 3, 5]),
    ("discovery=false", [4]), ("discovery!=true", [4]), ("discovery error", [5]),
    ("path=/apis*", [2, 5]), ("path=/api", [1]), ("path=/api*", [1, 2, 5]), ("path=/openapi/v2,/api", [1, 3]),
    ("path!=/openapi*", [1, 2, 4, 5]), ("path=*/v1*", [2, 5]), ("path=/apis/APPS/v1", []),
    ("path=/apis* verb=get status=2xx", [2]),
])
async def test_requests_on_no_resource_are_selected_by_path(session_of: Any, expression: str,
                                                            expected: list[int]) -> None:
    ses = await session_of([_copy(op) for op in PATH_OPS])
    assert await matching(ses, expression) == expected


async def test_their_rows_show_the_path(session_of: Any) -> None:
    ses = await session_of([_copy(op) for op in PATH_OPS])
    assert [r.target for r in await ses.rows(1, 5)] == [
        "/api", "/apis/apps/v1", "/openapi/v2", "Pod/default", "/apis/metrics.k8s.io/v1beta1"]


def test_every_term_the_tuis_filter_help_shows_parses_and_every_field_the_readme_lists_is_shown() -> None:
    """The help a user reads in the TUI (`?`) is the language: each example term in it is valid, and
    no field of the README's filter block is missing from it."""
    import re
    from pathlib import Path

    from replay_tui.tui.screens.help import FILTER_HELP

    terms = re.findall(r"(?<![\w.])[a-z]+(?:[:=<>!]=?|>=|<=)[^\s()]+", FILTER_HELP)
    terms += [w for w in ("error", "timeout", "discovery") if re.search(rf"(?<![\w=]){w}(?![\w=])", FILTER_HELP)]
    assert len(terms) >= 18
    for term in terms:
        filters.parse(term)  # raises FilterError on a term the language does not have
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("### Filters", 1)[1].split("```", 2)[1]
    fields = {re.split(r"[:=<>!]", t, maxsplit=1)[0] for t in block.split()}
    shown = {re.split(r"[:=<>!]", t, maxsplit=1)[0] for t in terms}
    assert fields <= shown | {"namespace"}, fields - shown
