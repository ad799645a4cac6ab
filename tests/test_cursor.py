"""Every cursor move: steps clamp, jumps by seq/percent/time/offset/mark, next/prev error,
reconcile and match."""

from __future__ import annotations

from typing import Any

import pytest

from replay_tui.engine.cursor import Cursor, resolve_position
from replay_tui.engine.filters import parse
from replay_tui.engine.store import PositionError, Session
from tests.conftest import SECOND, T0, k8s_object, op_for, status_body

# T0 is 2023-11-14 22:13:20 UTC; op n starts at T0 + 10 s * (n - 1).
STEP = 10 * SECOND
N = 20
ERRORS = (4, 9, 15)


def _script() -> list[Any]:
    steps: list[Any] = [lambda sw: sw.mark("start")]  # before any op: seq 0
    for n in range(1, N + 1):
        if n == 2:
            steps.append(lambda sw: sw.begin_reconcile("r", name="obj-1"))
        if n == 10:
            steps.append(lambda sw: sw.begin_reconcile("r", name="obj-2"))
        obj = k8s_object("ConfigMap", f"obj-{n % 4}", rv=n)
        reconcile = 1 if 2 <= n <= 5 else 2 if 10 <= n <= 14 else None
        if n in ERRORS:
            op = op_for("update", obj, status=409, reason="Conflict", response=status_body(409, "Conflict"))
        else:
            op = op_for("update" if n > 4 else "create", obj, response=obj)
        op.ts_ns, op.reconcile = T0 + (n - 1) * STEP, reconcile
        steps.append(op)
        if n == 5:
            steps.append(lambda sw: sw.end_reconcile(1))
        if n == 12:
            steps.append(lambda sw: sw.mark("deploy", note="rollout begins"))
        if n == 14:
            steps.append(lambda sw: sw.end_reconcile(2))
    return steps


@pytest.fixture
async def session(session_of: Any) -> Session:
    return await session_of(_script())


async def test_steps_clamp_at_both_ends(session: Session) -> None:
    c = Cursor(session)
    assert c.seq == 1
    assert c.step() == 2
    assert c.step(5) == 7
    assert c.step(-3) == 4
    assert c.step(-100) == 1
    assert c.step(1000) == N
    assert c.first() == 1
    assert c.end() == N
    assert (await c.op()).seq == N


async def test_goto_and_its_errors(session: Session) -> None:
    c = Cursor(session)
    assert c.goto(7) == 7
    for bad in (0, -1, N + 1):
        with pytest.raises(PositionError, match=f"position {bad} is out of range"):
            c.goto(bad)
    assert c.seq == 7  # a failed jump leaves the cursor where it was


@pytest.mark.parametrize("percent, seq", [(0, 1), (50, 10), (100, N), (33.3, 7), (2, 1)])
async def test_goto_percent(session: Session, percent: float, seq: int) -> None:
    assert Cursor(session).goto_percent(percent) == seq
    assert await resolve_position(session, f"{percent:g}%") == seq


@pytest.mark.parametrize("text, seq", [
    ("7", 7), ("#7", 7), (" 12 ", 12),
    ("50%", 10),
    # time of day (UTC, on the session's day)
    ("22:13:20", 1), ("22:14:00", 5), ("22:14:01", 6), ("22:14:00.5", 6), ("22:13", 1),
    ("22:16:30", N), ("22:16:30.000", N),
    # offsets from the session start
    ("+0s", 1), ("+90s", 10), ("+1m30s", 10), ("+1m", 7), ("+1.5s", 2), ("+3m10s", N),
    # ISO times
    ("2023-11-14T22:14:00Z", 5), ("2023-11-14T23:14:00+01:00", 5), ("2023-11-14 22:14:00", 5),
    ("2023-11-14T22:14:00.000000001Z", 6), ("2023-11-14", 1), ("2023-11-14T22", 1), ("2023-11-14T22:13", 1),
    # a time given to the minute (hour, day) is that whole minute: it holds the first op, at 22:13:20
    ("22:13", 1), ("2023-11-14T22:13Z", 1),
    # marks
    ("deploy", 12), ("start", 1),
])
async def test_jump(session: Session, text: str, seq: int) -> None:
    c = Cursor(session)
    assert await c.jump(text) == seq
    assert c.seq == seq


async def test_allow_zero(session: Session) -> None:
    assert await resolve_position(session, "0", allow_zero=True) == 0
    assert await resolve_position(session, "start", allow_zero=True) == 0
    with pytest.raises(PositionError):
        await resolve_position(session, "0")


OUTSIDE = ("is outside the session's time: its ops run from 2023-11-14 22:13:20.000000Z to"
           " 2023-11-14 22:16:30.000000Z \\(\\+0s to \\+3m10.000s\\)")


@pytest.mark.parametrize("text, message", [
    ("", "empty position"),
    ("   ", "empty position"),
    ("0", "position 0 is out of range"),
    (str(N + 1), f"position {N + 1} is out of range"),
    ("abc%", "bad percentage 'abc%'"),
    ("150%", "150% is not between 0% and 100%"),
    ("-5%", "-5% is not between"),
    ("25:00", "bad time of day '25:00'"),
    ("12:75", "bad time of day"),
    ("2023-13-45T00:00:00", "bad timestamp"),
    ("+", "cannot jump to '\\+'"),
    ("+90", "cannot jump to '\\+90'"),
    # a time outside the session is an error, as a seq out of range is, and says the session's range
    ("+1h", OUTSIDE), ("+3m11s", OUTSIDE), ("+99999999999h", OUTSIDE), ("+" + "9" * 400 + "s", OUTSIDE),
    ("23:59:59", OUTSIDE), ("00:00", OUTSIDE), ("22:13:19", OUTSIDE), ("22:16:30.001", OUTSIDE), ("22:12", OUTSIDE),
    ("9999-12-31T23:59:59Z", OUTSIDE), ("0001-01-01T00:00:00Z", OUTSIDE), ("2020-11-14", OUTSIDE),
    ("2023-11-14T21", OUTSIDE), ("2023-11-14T22:13:19.999Z", OUTSIDE),
    ("no-such-mark", "cannot jump to 'no-such-mark': expected a seq"),
    ("-3", "cannot jump to '-3'"),
])
async def test_jump_errors(session: Session, text: str, message: str) -> None:
    c = Cursor(session, 3)
    with pytest.raises(PositionError, match=message) as info:
        await c.jump(text)
    assert "\n" not in str(info.value)
    assert c.seq == 3


async def test_time_of_day_across_midnight(session_of: Any) -> None:
    late = T0 - (T0 % (86400 * SECOND)) + 86400 * SECOND - 20 * SECOND  # 23:59:40 UTC
    ops = []
    for n in range(1, 7):
        obj = k8s_object("ConfigMap", "cm", rv=n)
        op = op_for("update", obj, response=obj)
        op.ts_ns = late + (n - 1) * STEP  # 23:59:40 ... 00:00:30 next day
        ops.append(op)
    s = await session_of(ops)
    assert await resolve_position(s, "23:59:50") == 2
    assert await resolve_position(s, "00:00:05") == 4  # the next day, not 24 h earlier
    assert await resolve_position(s, "00:00:30") == 6


async def test_next_and_previous_error(session: Session) -> None:
    c = Cursor(session)
    assert [await c.next_error() for _ in range(4)] == [4, 9, 15, None]
    assert c.seq == 15  # no further error: stays put
    assert await c.next_error(forward=False) == 9
    assert await c.next_error(forward=False) == 4
    assert await c.next_error(forward=False) is None
    assert c.seq == 4


async def test_next_and_previous_reconcile(session: Session) -> None:
    c = Cursor(session)
    span = await c.next_reconcile()
    assert span is not None and (span.id, span.start_seq, span.end_seq, c.seq) == (1, 2, 5, 2)
    span = await c.next_reconcile()
    assert span is not None and (span.id, span.start_seq, span.end_seq, c.seq) == (2, 10, 14, 10)
    assert await c.next_reconcile() is None and c.seq == 10
    c.goto(N)
    span = await c.next_reconcile(forward=False)
    assert span is not None and span.id == 2 and c.seq == 10
    span = await c.next_reconcile(forward=False)
    assert span is not None and span.id == 1 and c.seq == 2
    assert await c.next_reconcile(forward=False) is None and c.seq == 2


async def test_next_and_previous_match(session: Session) -> None:
    c = Cursor(session)
    flt = parse("name=obj-3")  # ops 3, 7, 11, 15, 19
    assert [await c.next_match(flt) for _ in range(6)] == [3, 7, 11, 15, 19, None]
    assert c.seq == 19
    assert await c.next_match(flt, forward=False) == 15
    c.goto(3)
    assert await c.next_match(flt, forward=False) is None and c.seq == 3
    assert await c.next_match(parse("status=409 reconcile=1")) == 4
    # != keeps ops outside any reconcile (reconcile is NULL there)
    assert await c.next_match(parse("status=409 reconcile!=1")) == 9
    assert await c.next_match(parse("status=409 reconcile=2")) is None and c.seq == 9


async def test_empty_session(session_of: Any) -> None:
    s = await session_of([])
    c = Cursor(s)
    assert c.seq == 0
    assert c.step(5) == 0 and c.end() == 0 and c.first() == 0
    with pytest.raises(PositionError, match="has no operations"):
        c.goto(1)
    with pytest.raises(PositionError, match="has no operations"):
        c.goto_percent(50)
    with pytest.raises(PositionError, match="has no operations"):
        await c.jump("+5s")
    assert await c.next_error() is None
    assert await c.next_match(parse("kind=Pod")) is None
