"""A cursor over a session: where the user is, and every way to move.

Positions are op seqs, 1-based; 0 means "before the first op".  Moves clamp at
the ends instead of failing, as a debugger's step does; explicit jumps to a
position that does not exist raise ``PositionError``: a seq out of range, and a time
outside the session's (before its first op or after its last), whose message gives
the session's time range.
"""

from __future__ import annotations

import datetime as dt
import re

from replay_tui.engine.filters import Filter, find
from replay_tui.engine.format import Operation, Reconcile
from replay_tui.engine.store import PositionError, Session
from replay_tui.engine.units import fmt_elapsed, fmt_ts

_ELAPSED = re.compile(r"\+(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?\Z")
_ISO_FRACTION = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})\.(?P<frac>\d+)(?P<zone>.*)\Z")
_TIME_OF_DAY = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?\Z")


class Cursor:
    """The current position in a session, with step/jump/search moves."""

    def __init__(self, session: Session, seq: int | None = None):
        self.session = session
        self.seq = min(1, session.last) if seq is None else seq

    @property
    def last(self) -> int:
        return self.session.last

    def _clamp(self, seq: int) -> int:
        return max(min(seq, self.last), min(1, self.last))

    async def op(self) -> Operation:
        return await self.session.op(self.seq)

    def step(self, n: int = 1) -> int:
        self.seq = self._clamp(self.seq + n)
        return self.seq

    def first(self) -> int:
        self.seq = min(1, self.last)
        return self.seq

    def end(self) -> int:
        self.seq = self.last
        return self.seq

    def goto(self, seq: int) -> int:
        self.seq = self.session.check_position(seq)
        return self.seq

    def goto_percent(self, percent: float) -> int:
        if not 0 <= percent <= 100:
            raise PositionError(f"{percent:g}% is not between 0% and 100%")
        self.session.check_position(1)
        self.seq = self._clamp(round(self.last * percent / 100))
        return self.seq

    async def goto_time(self, ts_ns: int) -> int:
        self.seq = await self.session.seq_at_time(ts_ns)
        return self.seq

    async def next_match(self, flt: Filter, forward: bool = True) -> int | None:
        """Move to the next (previous) op matching; stays put and returns None when none does."""
        seq = await find(self.session, self.seq, flt, forward)
        if seq is not None:
            self.seq = seq
        return seq

    async def next_error(self, forward: bool = True) -> int | None:
        seq = await self.session.next_error(self.seq, forward)
        if seq is not None:
            self.seq = seq
        return seq

    async def next_reconcile(self, forward: bool = True) -> Reconcile | None:
        span = await self.session.next_reconcile(self.seq, forward)
        if span is not None:
            self.seq = self._clamp(span.start_seq)
        return span

    async def jump(self, text: str) -> int:
        """Jump by what a person types: ``1234``, ``50%``, ``12:03:04``, ``+90s``, an ISO time, a mark."""
        self.seq = await resolve_position(self.session, text)
        return self.seq


async def resolve_position(session: Session, text: str, *, allow_zero: bool = False) -> int:
    """The seq a position text names; PositionError with a one-line reason otherwise.

    ``allow_zero`` admits position 0, "before the first op" (a diff's starting point).
    """
    raw = text.strip()
    if not raw:
        raise PositionError("empty position")
    if re.fullmatch(r"#?\d+", raw):
        return session.check_position(int(raw.lstrip("#")), allow_zero=allow_zero)
    if raw.endswith("%"):
        try:
            percent = float(raw[:-1])
        except ValueError:
            raise PositionError(f"bad percentage {raw!r}") from None
        cursor = Cursor(session)
        return cursor.goto_percent(percent)
    session.check_position(1)
    start, end = await session.time_range()

    async def at_time(when_ns: int, before_ns: int, after_ns: int) -> int:
        """The first op at or after a time, which must fall in the session's time range.  What was
        typed stands for ``[when - before, when + after]``: ``12:03:04`` for that whole second (a clock
        shows the second it is in), ``+7.993s`` or ``12:03:04.279364`` for what rounds to it (as
        the session's times are printed)."""
        if when_ns + after_ns < start or when_ns - before_ns > end:
            raise PositionError(
                f"{raw!r} is outside the session's time: its ops run from {fmt_ts(start)} to {fmt_ts(end)}"
                f" (+0s to {fmt_elapsed(end - start)})")
        return await session.seq_at_time(when_ns)

    m = _ELAPSED.match(raw)
    if m and raw != "+":
        seconds = int(m.group("h") or 0) * 3600 + int(m.group("m") or 0) * 60 + float(m.group("s") or 0)
        try:
            offset = int(seconds * 1e9)
        except OverflowError:  # "+1e999s"-sized: past any end
            offset = 2**63
        decimals = (m.group("s") or "").partition(".")[2]
        half = _precision_ns(decimals) // 2 if decimals else 0
        return await at_time(start + offset, half, half)
    m = _TIME_OF_DAY.match(raw)
    if m:
        day = dt.datetime.fromtimestamp(start / 1e9, tz=dt.UTC)
        whole, _, fraction = (m.group("s") or "0").partition(".")
        try:
            when = day.replace(hour=int(m.group("h")), minute=int(m.group("m")), second=int(whole),
                               microsecond=0)
        except ValueError:
            raise PositionError(f"bad time of day {raw!r}") from None
        if when < day.replace(microsecond=0) - dt.timedelta(hours=12):
            when += dt.timedelta(days=1)  # a session that crosses midnight
        when_ns = _ns(when) + _fraction_ns(fraction)
        if fraction:
            return await at_time(when_ns, _precision_ns(fraction) // 2, _precision_ns(fraction) // 2)
        return await at_time(when_ns, 0, (SECOND_NS if m.group("s") else 60 * SECOND_NS) - 1)
    if re.match(r"\d{4}-\d{2}-\d{2}", raw):
        # Times are recorded to the nanosecond; datetime keeps microseconds, so the
        # fraction of a second is read separately.
        fm = _ISO_FRACTION.match(raw)
        base, fraction = (fm.group("base") + fm.group("zone"), fm.group("frac")) if fm else (raw, "")
        try:
            when = dt.datetime.fromisoformat(base.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise PositionError(f"bad timestamp {raw!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        clock = re.match(r"\d{4}-\d{2}-\d{2}[T ](\d{2})(:\d{2})?(:\d{2})?", base)  # to the day, hour, ...
        unit = 86_400 if clock is None else 1 if clock.group(3) else 60 if clock.group(2) else 3600
        when_ns = _ns(when) + _fraction_ns(fraction)
        if fraction:
            return await at_time(when_ns, _precision_ns(fraction) // 2, _precision_ns(fraction) // 2)
        return await at_time(when_ns, 0, unit * SECOND_NS - 1)
    for mark in await session.marks():
        if mark.name == raw:
            # A mark set before the first op sits at 0: land on the first op unless 0 is allowed.
            seq = mark.seq if mark.seq > 0 or allow_zero else min(1, session.last)
            return session.check_position(seq, allow_zero=allow_zero)
    raise PositionError(
        f"cannot jump to {raw!r}: expected a seq (1234), a percentage (50%), a time (12:03:04 UTC),"
        " an offset (+90s) or a mark name")


SECOND_NS = 1_000_000_000


def _precision_ns(digits: str) -> int:
    """'5' -> 100000000: the step of the last digit of a fraction of a second, in ns."""
    return 10 ** (9 - min(len(digits), 9))


def _fraction_ns(digits: str) -> int:
    """'5' -> 500000000, '000000001' -> 1: a decimal fraction of a second, in ns."""
    return int(digits[:9].ljust(9, "0")) if digits else 0


def _ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
